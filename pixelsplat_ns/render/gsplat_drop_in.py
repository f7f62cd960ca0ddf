"""``rasterization``: gsplat's ``rasterization`` call as nerfstudio's splatfacto makes it, run by ``rasterize``.

For code written against gsplat that should run where gsplat's CUDA kernels cannot (splatfacto on a CPU, for
comparisons: ``scripts/benchmarks/splatfacto_cpu.py``). Only what ``rasterize`` implements is accepted:
classic, unpacked rasterization without absgrad or sparse gradients; anything else is refused.
"""

import inspect

from pixelsplat_ns.render.rasterize import rasterize

SHARED = set(inspect.signature(rasterize).parameters) - {"backend"}
"""The arguments gsplat's ``rasterization`` and ``rasterize`` have in common (same names, defaults, meaning)."""


def rasterization(*args, packed=False, sparse_grad=False, absgrad=False, rasterize_mode="classic", **kwargs):
    """gsplat 1.4.0's ``rasterization(...)``; returns ``(colors, alphas, meta)`` as ``rasterize`` does.

    The arguments both share (the Gaussians, cameras, image size, planes, SH degree, backgrounds, render mode)
    go to ``rasterize``. Raises ``ValueError`` for ``packed``, ``sparse_grad``, ``absgrad`` or
    ``rasterize_mode="antialiased"``; gsplat's other keyword arguments (``tile_size``, ...) are ignored."""
    if packed or sparse_grad or absgrad or rasterize_mode != "classic":
        raise ValueError(
            "the CPU splatfacto supports classic, unpacked rasterization without absgrad; got "
            f"packed={packed}, sparse_grad={sparse_grad}, absgrad={absgrad}, mode={rasterize_mode}"
        )
    return rasterize(*args, **{name: value for name, value in kwargs.items() if name in SHARED})
