"""Gaussian rendering: ``rasterize`` (gsplat's conventions) and ``render_views`` (the project's cameras)."""

from pixelsplat_ns.render.rasterize import rasterize
from pixelsplat_ns.render.views import render_gaussians, render_views

__all__ = ["rasterize", "render_gaussians", "render_views"]
