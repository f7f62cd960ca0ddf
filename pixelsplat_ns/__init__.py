"""pixelSplat (CVPR 2024) as a nerfstudio plugin, and as a library.

The library: ``pixelsplat_ns.encoder`` (``load_encoder``, ``prepare_views``, ``PixelSplatEncoder.encode``)
and ``pixelsplat_ns.render`` (``rasterize``). The plugin: ``pixelsplat_ns.methods`` (nerfstudio's entry
points). ``load_encoder`` is imported here on first use, so that importing the package stays cheap and
changes nothing outside it.
"""

__all__ = ["load_encoder"]


def __getattr__(name: str):
    if name == "load_encoder":
        from pixelsplat_ns.encoder.checkpoints import load_encoder

        return load_encoder
    raise AttributeError(f"module 'pixelsplat_ns' has no attribute {name!r}")
