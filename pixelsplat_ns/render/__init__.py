"""Gaussian rendering: ``rasterize`` (gsplat's conventions) and ``render_views`` (the project's cameras).

rasterize (gsplat 1.4.0's classic rasterization: gsplat on CUDA, the same rules in numba on the CPU and in pure
torch on any device), views (``render_views``, ``render_gaussians``: the project's cameras -> ``rasterize``),
projection, spherical_harmonics and compositing (the torch backend's three stages), numba_kernels (the CPU
kernels by stage), untraced (kernel calls shielded from the viewer's interrupts), gsplat_drop_in (gsplat's
``rasterization`` signature, run by ``rasterize``).
"""

from pixelsplat_ns.render.rasterize import rasterize
from pixelsplat_ns.render.views import render_gaussians, render_views

__all__ = ["rasterize", "render_gaussians", "render_views"]
