"""pixelSplat (CVPR 2024) as a nerfstudio plugin.

``load_encoder`` is imported on first use: nerfstudio imports ``pixelsplat_ns.config`` for every ns-*
command, and that must not pull in the model code. The same import makes nerfstudio's own checkpoints
loadable under torch >= 2.6 (``pixelsplat_ns.nerfstudio_checkpoints``).
"""

from pixelsplat_ns.nerfstudio_checkpoints import allow_nerfstudio_checkpoints

allow_nerfstudio_checkpoints()

__all__ = ["load_encoder"]


def __getattr__(name: str):
    if name == "load_encoder":
        from pixelsplat_ns.checkpoints import load_encoder

        return load_encoder
    raise AttributeError(f"module 'pixelsplat_ns' has no attribute {name!r}")
