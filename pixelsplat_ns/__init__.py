"""pixelSplat (CVPR 2024) as a nerfstudio plugin, and as a library.

The library's entry points, imported here on first use so that importing the package stays cheap and changes
nothing outside it: ``load_encoder`` (``pixelsplat_ns.checkpoints``), ``prepare_views``
(``pixelsplat_ns.core.views``), ``rasterize`` and ``render_gaussians`` (``pixelsplat_ns.render``). The network
is ``pixelsplat_ns.encoder``; the plugin is ``pixelsplat_ns.methods`` (nerfstudio's entry points).
"""

import importlib

__version__ = "0.3.0.dev0"

_LAZY = {
    "load_encoder": "pixelsplat_ns.checkpoints",
    "prepare_views": "pixelsplat_ns.core.views",
    "rasterize": "pixelsplat_ns.render",
    "render_gaussians": "pixelsplat_ns.render",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pixelsplat_ns' has no attribute {name!r}")
