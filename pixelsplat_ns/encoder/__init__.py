"""The pixelSplat encoder network (Charatan et al., CVPR 2024), as the official camera-ready code computes it.

``PixelSplatEncoder.encode`` takes ``Views`` (``pixelsplat_ns.core.views.prepare_views`` makes them from posed
images) and returns ``Gaussians``; ``pixelsplat_ns.checkpoints.load_encoder`` builds one from trained weights.
"""

from pixelsplat_ns.encoder.compute import ComputeOptions
from pixelsplat_ns.encoder.config import EncoderConfig, ablation, paper, tiny
from pixelsplat_ns.encoder.encoder import PixelSplatEncoder

__all__ = ["ComputeOptions", "EncoderConfig", "PixelSplatEncoder", "ablation", "paper", "tiny"]
