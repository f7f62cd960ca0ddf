"""``warm_up()``: every numba kernel of the project compiled, or loaded from numba's disk cache, in one call.

The renderer's (``projection`` and ``compositing``, with the ``sh`` and ``tiles`` kernels they call) and the
encoder's full-resolution sum (``pixelsplat_ns.fast_routes.upsampling_numba``). The setup script runs it once, so
that the demo, the viewer and the tests load the kernels instead of each compiling them.
"""

import time

import torch

from pixelsplat_ns.fast_routes import upsampling_numba
from pixelsplat_ns.render.numba_kernels.compositing import composite_numba
from pixelsplat_ns.render.numba_kernels.projection import project_and_shade_numba


def warm_up(dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> float:
    """Compile (or load) the renderer's kernels for the given dtypes, by running a tiny scene forward and
    backward through ``project_and_shade_numba`` and ``composite_numba``, and the encoder's kernel (float32,
    the one dtype it takes); returns the seconds it took."""
    start = time.perf_counter()
    for dtype in dtypes:
        means2d = torch.tensor([[[8.0, 8.0]]], dtype=dtype, requires_grad=True)
        conics = torch.tensor([[[0.5, 0.0, 0.5]]], dtype=dtype, requires_grad=True)
        opacities = torch.tensor([[0.9]], dtype=dtype, requires_grad=True)
        colors = torch.ones(1, 1, 3, dtype=dtype, requires_grad=True)
        image, alpha = composite_numba(
            means2d,
            conics,
            opacities,
            colors,
            torch.ones(1, 1, dtype=dtype),
            torch.full((1, 1), 4, dtype=torch.int32),
            16,
            16,
        )
        (image.sum() + alpha.sum()).backward()
        means = torch.tensor([[0.0, 0.0, 2.0]], dtype=dtype, requires_grad=True)
        covars = (0.01 * torch.eye(3, dtype=dtype))[None].requires_grad_()
        coeffs = torch.zeros(1, 4, 3, dtype=dtype, requires_grad=True)
        camera = torch.eye(4, dtype=dtype)[None]
        Ks = torch.tensor([[[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]]], dtype=dtype)
        _, means2d, depths, conics, shaded = project_and_shade_numba(
            means, covars, coeffs, camera, Ks, 16, 16, 0.3, 0.01, 1e10, 1
        )
        assert shaded is not None  # given SH coefficients, the projection shades
        (means2d.sum() + depths.sum() + conics.sum() + shaded.sum()).backward()
    upsampling_numba.warm_up_upsampling()
    return time.perf_counter() - start
