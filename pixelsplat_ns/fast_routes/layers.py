"""Faster CPU routes to the encoder's heaviest products, computing the same function within float rounding.

- Linear layers as channels-last 1x1 convolutions: torch sends float32 matmuls to MKL, whose sgemm takes
  its AVX2 path on AMD CPUs, and convolutions to oneDNN, which uses AVX-512: the same products and sums run
  faster (``scripts/benchmarks/benchmark_encoder.py`` measures by how much).
- Large-kernel convolutions in the Fourier domain, tile by tile (overlap-save): a 7x7 convolution costs
  about a tenth of the multiply-adds; used at inference on large images, where it is faster.

On other devices both fall back to torch's own ``F.linear`` and ``F.conv2d``.
"""

import torch
import torch.nn.functional as F
from einops import rearrange
from jaxtyping import Complex, Float
from torch import Tensor, nn

from pixelsplat_ns.fast_routes.derived_weights import DerivedWeights

MIN_ROWS_FOR_CONVOLUTION = 128
"""Below this many rows a matmul is too small for the convolution route to pay off."""

FFT_TILE = 32
"""Side of the Fourier tiles: each yields (FFT_TILE - kernel + 1)^2 output pixels, so larger tiles waste less of
each transform on the overlap but cost more per pixel to transform; chosen by timing."""

MIN_FOURIER_SIDE = 128
"""Smaller images convolve faster directly: their tiles waste more of each transform."""

FFT_CHUNK_TILES = 128
"""Tiles transformed together: whole images up to this many tiles, which bounds the spectra's memory."""


def _on_cpu_float32(x: Tensor) -> bool:
    return x.device.type == "cpu" and x.dtype == torch.float32


def linear(
    x: Float[Tensor, "*batch d_in"], weight: Float[Tensor, "d_out d_in"], bias: Tensor | None
) -> Float[Tensor, "*batch d_out"]:
    """``F.linear``; on CPU in float32 computed by oneDNN as a 1x1 convolution over a channels-last row of
    pixels (one pixel per input row), whose output is already the row-major result."""
    if not _on_cpu_float32(x) or x.numel() < MIN_ROWS_FOR_CONVOLUTION * x.shape[-1]:
        return F.linear(x, weight, bias)
    rows = x.reshape(-1, x.shape[-1]).contiguous()
    # A [1, c, 1, m] view with NHWC strides; an explicit permute, because oneDNN picks its layout from the
    # strides, including those of the size-1 axes.
    pixels = rows.view(1, 1, *rows.shape).permute(0, 3, 1, 2)
    out = F.conv2d(pixels, weight[:, :, None, None], bias)
    return out.permute(0, 2, 3, 1).reshape(*x.shape[:-1], -1)


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and state dict) through ``linear``; ``via_convolution = False`` restores
    torch's default kernel."""

    via_convolution: bool = True

    def forward(self, x: Tensor) -> Tensor:
        if self.via_convolution:
            return linear(x, self.weight, self.bias)
        return F.linear(x, self.weight, self.bias)


def kernel_spectrum(weight: Float[Tensor, "o c k k"], size: int = FFT_TILE) -> Complex[Tensor, "freq c o"]:
    """The conjugate spectrum of each kernel on a size x size tile (correlation, which conv2d computes, is
    multiplication by it), laid out for one matmul per frequency."""
    return rearrange(torch.fft.rfft2(weight, s=(size, size)).conj(), "o c u v -> (u v) c o").contiguous()


def conv2d_fourier(
    x: Float[Tensor, "n c h w"],
    spectrum: Complex[Tensor, "freq c o"],
    bias: Float[Tensor, " o"] | None,
    kernel_size: int,
    size: int = FFT_TILE,
) -> Float[Tensor, "n o h w"]:
    """``F.conv2d(x, weight, bias, padding=kernel_size // 2)`` on overlapping size x size tiles (overlap-save),
    given ``kernel_spectrum(weight, size)``. Images are transformed in chunks of about ``FFT_CHUNK_TILES``
    tiles, which bounds the memory of the spectra; the result is channels-last."""
    radius = kernel_size // 2
    step = size - 2 * radius  # the first `step` outputs of each circular correlation never wrap around
    h, w = x.shape[-2:]
    rows, cols = -(-h // step), -(-w // step)

    def convolve(images: Float[Tensor, "m c h w"]) -> Float[Tensor, "m h w o"]:
        padded = F.pad(images, (radius, cols * step - w + radius, radius, rows * step - h + radius))
        tiles = padded.unfold(2, size, step).unfold(3, size, step)  # m c rows cols size size
        spectra = rearrange(torch.fft.rfft2(tiles), "n c r s u v -> (u v) (n r s) c").contiguous()
        del padded, tiles
        mixed = rearrange(torch.bmm(spectra, spectrum), "(u v) m o -> m o u v", u=size)
        del spectra
        valid = torch.fft.irfft2(mixed, s=(size, size))[..., :step, :step]
        return rearrange(valid, "(n r s) o a b -> n (r a) (s b) o", n=len(images), r=rows)[:, :h, :w]

    images_per_chunk = max(1, FFT_CHUNK_TILES // (rows * cols))
    out = torch.cat([convolve(chunk) for chunk in x.split(images_per_chunk)])
    if bias is not None:
        out = out + bias
    return rearrange(out, "n h w o -> n o h w")


class FourierConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict; odd square kernel, "same" padding) whose ``fourier``
    method computes the same convolution in the Fourier domain where that is faster: on CPU in float32, at
    inference, on images of at least ``MIN_FOURIER_SIDE`` pixels (on smaller images, and with autograd's
    backward, the direct convolution is faster). The kernel's spectrum is
    computed once while the weights stay unchanged."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int) -> None:
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self._derived = DerivedWeights()

    def fourier(self, x: Float[Tensor, "n c h w"]) -> Float[Tensor, "n o h w"]:
        needs_grad = torch.is_grad_enabled() and (x.requires_grad or self.weight.requires_grad)
        if needs_grad or not _on_cpu_float32(x) or min(x.shape[-2:]) < MIN_FOURIER_SIDE:
            return self(x)
        spectrum = self._derived("spectrum", (self.weight,), lambda: kernel_spectrum(self.weight))
        return conv2d_fourier(x, spectrum, self.bias, self.kernel_size[0])
