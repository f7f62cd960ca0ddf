"""The trainer's old module path, kept because runs saved by version 0.2.0 name it in their config.yml
(``_target: pixelsplat_ns.nerfstudio_workarounds.PixelSplatTrainer``): they still open in ``ns-viewer``,
``ns-eval``, ``ns-render`` and resume. The workarounds live in ``pixelsplat_ns.nerfstudio_compat``."""

from pixelsplat_ns.nerfstudio_compat.trainer import PixelSplatTrainer

__all__ = ["PixelSplatTrainer"]
