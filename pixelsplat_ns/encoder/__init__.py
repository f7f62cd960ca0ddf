"""The pixelSplat encoder (Charatan et al., CVPR 2024), as the official camera-ready code computes it.

``load_encoder`` reads trained weights; ``prepare_views`` turns posed images into the ``Views`` that
``PixelSplatEncoder.encode`` takes; it returns ``Gaussians``.
"""

from pixelsplat_ns.encoder.checkpoints import load_encoder
from pixelsplat_ns.encoder.config import EncoderConfig, ablation, paper, tiny
from pixelsplat_ns.encoder.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.views import DegenerateBaseline, Views, prepare_views
from pixelsplat_ns.gaussians import Gaussians

__all__ = [
    "DegenerateBaseline",
    "EncoderConfig",
    "Gaussians",
    "PixelSplatEncoder",
    "Views",
    "ablation",
    "load_encoder",
    "paper",
    "prepare_views",
    "tiny",
]
