"""A numba CPU kernel for the backbone's full-resolution sum, in one pass over the output.

The backbone (official ``src/model/encoder/backbone/backbone_resnet.py`` and ``backbone_dino.py``) upsamples
each ResNet stage's projection to full resolution with ``F.interpolate(mode="bilinear", align_corners=True)``,
sums them, and adds each ViT patch token to its patch's pixels. With torch's operators every upsampled map is
a full-resolution tensor (268 MB each at 2 x 256^2 and 512 channels) that is written, read back and added:
the time goes to memory traffic, not to the 0.8 GFLOP of arithmetic. This kernel computes each output pixel's
channels in one go, with torch's source indices and weights (``compute_source_index_and_lambda`` in float32)
and the same order of sums, and writes the output once: the same values within float rounding (torch's kernel
may fuse a multiply-add that this one rounds, about one unit in the last place).

The output is allocated by torch, not numpy: numpy asks for transparent huge pages for large arrays, and in a
process whose memory is fragmented (an encode) faulting those in stalled the encode at random for a sizeable
share of its time.

numba compiles the kernel on first use and keeps it on disk (``cache=True``); ``warm_up_upsampling()`` compiles or
loads it.
"""

import time

import numba
import numpy as np
import torch
from jaxtyping import Float
from numba import prange
from torch import Tensor

from pixelsplat_ns.render.numba_compilation import announces_compilation


@numba.njit(inline="always")
def _scale(size_in, size_out):
    """torch's ``area_pixel_compute_scale`` with corners aligned, in float32."""
    if size_out <= 1:
        return np.float32(0.0)
    return np.float32(size_in - 1) / np.float32(size_out - 1)


@numba.njit(inline="always")
def _source(index_out, scale, size_in):
    """torch's ``compute_source_index_and_lambda`` with corners aligned: the two source indices and their
    weights, in float32."""
    real = scale * np.float32(index_out)
    i0 = min(int(real), size_in - 1)
    i1 = i0 + 1 if i0 < size_in - 1 else i0
    lambda1 = min(max(real - np.float32(i0), np.float32(0.0)), np.float32(1.0))
    return i0, i1, np.float32(1.0) - lambda1, lambda1


@numba.njit(parallel=True, cache=True)
def _upsample_and_sum(maps, patches, patch_size, out):
    """``out`` [n, h, w, c] = the sum over ``maps`` (a tuple of [n, hi, wi, c]) of each upsampled to h x w,
    plus ``patches`` [n, h / patch_size, w / patch_size, c] repeated over their pixels; all channels-last."""
    n, h, w, c = out.shape
    for job in prange(n * h):
        b, y = job // h, job % h
        for x in range(w):
            pixel = out[b, y, x]
            first = True
            for level in maps:
                y0, y1, h0, h1 = _source(y, _scale(level.shape[1], h), level.shape[1])
                x0, x1, w0, w1 = _source(x, _scale(level.shape[2], w), level.shape[2])
                a, b_, c_, d = level[b, y0, x0], level[b, y0, x1], level[b, y1, x0], level[b, y1, x1]
                if first:
                    for k in range(c):
                        pixel[k] = h0 * (w0 * a[k] + w1 * b_[k]) + h1 * (w0 * c_[k] + w1 * d[k])
                    first = False
                else:
                    for k in range(c):
                        pixel[k] += h0 * (w0 * a[k] + w1 * b_[k]) + h1 * (w0 * c_[k] + w1 * d[k])
            token = patches[b, y // patch_size, x // patch_size]
            for k in range(c):
                pixel[k] += token[k]


def _channels_last(t: Tensor) -> np.ndarray:
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


@announces_compilation("the encoder's full-resolution sum")
def upsample_and_sum_numba(
    maps: list[Float[Tensor, "n c hi wi"]], patches: Float[Tensor, "n rows cols c"], height: int, width: int
) -> Float[Tensor, "n height width c"]:
    """Each of ``maps`` upsampled to ``height`` x ``width`` (bilinear, corners aligned: ``F.interpolate``'s
    weights), summed in their order, plus each patch token of ``patches`` added to the pixels of its patch
    (``height / rows`` pixels square). CPU float32 tensors without autograd; the result is channels-last.

    Raises:
        ValueError: tensors that are not float32 on CPU, or whose sizes disagree.
    """
    tensors = [*maps, patches]
    if any(t.device.type != "cpu" or t.dtype != torch.float32 for t in tensors):
        raise ValueError("upsample_and_sum_numba needs float32 CPU tensors")
    n, c = maps[0].shape[:2]
    rows, cols = patches.shape[1:3]
    if any(m.shape[:2] != (n, c) for m in maps) or patches.shape != (n, rows, cols, c):
        raise ValueError(f"maps {[tuple(m.shape) for m in maps]} and patches {tuple(patches.shape)} disagree")
    if height % rows or width % cols or height // rows != width // cols:
        raise ValueError(f"{rows} x {cols} patches do not tile a {height} x {width} image in squares")
    out = torch.empty(n, height, width, c, dtype=torch.float32)  # not np.empty: see the module's note on pages
    _upsample_and_sum(
        tuple(_channels_last(m) for m in maps), patches.detach().contiguous().numpy(), height // rows, out.numpy()
    )
    return out


def warm_up_upsampling() -> float:
    """Compile (or load from numba's disk cache) the kernel for the backbone's three resolutions; returns the
    seconds it took. ``pixelsplat_ns.fast_routes.numba_cache.warm_up`` calls it with the renderer's."""
    start = time.perf_counter()
    maps = [torch.zeros(1, 2, size, size, dtype=torch.float32) for size in (4, 2, 1)]
    upsample_and_sum_numba(maps, torch.zeros(1, 1, 1, 2, dtype=torch.float32), 8, 8)
    return time.perf_counter() - start
