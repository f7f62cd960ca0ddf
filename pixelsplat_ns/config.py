"""The nerfstudio methods this plugin registers (entry points in pyproject.toml).

Imported by every ``ns-*`` command through nerfstudio's plugin discovery, so it must stay cheap and safe:
configs only, no model construction, no weights, no network, nothing from ``pixelsplat_ns.render``.
"""

from dataclasses import dataclass, field
from typing import Type

from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification


class MethodUnavailableError(RuntimeError):
    """Raised when a registered method is run before this release ships its pipeline."""


class UnavailablePipeline:
    """What ``ns-train`` builds for a method whose pipeline this release does not ship: it stops at once."""

    def __init__(self, config: "UnavailablePipelineConfig", **_kwargs) -> None:
        raise MethodUnavailableError(
            "pixelsplat-ns 0.1.0 registers this method, but its pipeline (the pixelSplat encoder and its "
            "nerfstudio model) is not in this release yet, so nothing was trained. What works today is the "
            "Gaussian renderer: `from pixelsplat_ns.render import rasterize` (see README.md)."
        )


@dataclass
class UnavailablePipelineConfig(VanillaPipelineConfig):
    """Stands in for a pipeline this release does not ship yet: setting it up stops with a clear error."""

    _target: Type = field(default_factory=lambda: UnavailablePipeline)


pixelsplat = MethodSpecification(
    config=TrainerConfig(method_name="pixelsplat", pipeline=UnavailablePipelineConfig()),
    description="pixelSplat (CVPR 2024): a Gaussian splat scene from two posed views by a feed-forward encoder.",
)

pixelsplat_pretrain = MethodSpecification(
    config=TrainerConfig(method_name="pixelsplat-pretrain", pipeline=UnavailablePipelineConfig()),
    description="pixelSplat encoder training across RealEstate10k/ACID scenes (generalizable, multi-GPU).",
)
