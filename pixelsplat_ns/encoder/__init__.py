"""The pixelSplat encoder (Charatan et al., CVPR 2024), as the official camera-ready code computes it."""

from pixelsplat_ns.encoder.config import EncoderConfig, ablation, paper, tiny
from pixelsplat_ns.encoder.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.gaussian_adapter import Gaussians

__all__ = ["EncoderConfig", "Gaussians", "PixelSplatEncoder", "ablation", "paper", "tiny"]
