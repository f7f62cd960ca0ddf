"""Gaussian rendering: ``rasterize`` is the one entry point every part of the project uses."""

from pixelsplat_ns.render.rasterize import rasterize

__all__ = ["rasterize"]
