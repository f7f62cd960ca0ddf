"""``ComputeOptions``: how the encoder computes its function, chosen when it runs and never saved with its weights.

Every option gives the same Gaussians from the same weights (within float rounding): they choose the arithmetic,
not the network, so checkpoints and ``EncoderConfig`` do not hold them. Give them when the encoder is built
(``PixelSplatEncoder(config, compute)``, ``pixelsplat_ns.checkpoints.build_encoder(..., compute=...)``) or to a
built one (``encoder.set_compute_options``); the nerfstudio methods take them as
``--pipeline.model.encoder-compute.*`` flags.
"""

from dataclasses import dataclass


# Frozen, so that an instance can be a dataclass field's plain default: nerfstudio's loader restores a
# config.yml written before that field existed without it, and the attribute then falls back to the class's.
@dataclass(frozen=True)
class ComputeOptions:
    """How the encoder computes (not which network it is)."""

    exact_rewrites: bool = True
    """Compute the same function with less arithmetic (composed upscaler, projected epipolar keys, and on CPU
    at inference the last 7x7 convolution in the Fourier domain and the backbone's full-resolution sum in one
    numba pass); False runs the official code's straightforward arithmetic."""
    linear_as_convolution: bool = True
    """On CPU, run float32 linear layers through oneDNN as 1x1 convolutions, faster than torch's default
    (MKL) on AMD CPUs and equal within float rounding; False keeps torch's default. Applied to the encoder's
    linear layers when it is built or given new options (``PixelSplatEncoder.set_compute_options``)."""
