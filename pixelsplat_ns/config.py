"""The nerfstudio methods this plugin registers (entry points in pyproject.toml), with their configurations.

Imported by every ``ns-*`` command through nerfstudio's plugin discovery, so it must stay cheap and safe:
dataclass configurations only. What they build is imported when nerfstudio instantiates it
(``_lazy_target``): no model is constructed, no weight read and nothing fetched at import time.
"""

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Type

import torch
from nerfstudio.configs.base_config import LoggingConfig, MachineConfig
from nerfstudio.data.datamanagers.base_datamanager import DataManagerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.base_model import ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from pixelsplat_ns.data.dataset import ChunkDatasetConfig
from pixelsplat_ns.data.samplers import BoundedSamplerConfig
from pixelsplat_ns.encoder.config import EncoderConfig, paper, tiny
from pixelsplat_ns.training import LossConfig


def _lazy_target(path: str) -> type:
    """A class standing for ``module:Class`` that imports it only when nerfstudio instantiates it."""
    module, name = path.split(":")

    class Target:
        def __new__(cls, *args, **kwargs):
            return getattr(importlib.import_module(module), name)(*args, **kwargs)

    # Saved configs (config.yml) then name the real class, which loading imports.
    Target.__module__, Target.__name__, Target.__qualname__ = module, name, name
    return Target


class MethodUnavailableError(RuntimeError):
    """Raised when a registered method is run before this release ships its pipeline."""


class UnavailablePipeline:
    """What ``ns-train`` builds for a method whose pipeline this release does not ship: it stops at once."""

    def __init__(self, config: "UnavailablePipelineConfig", **_kwargs) -> None:
        raise MethodUnavailableError(
            "pixelsplat-ns 0.1.0 registers this method, but its pipeline (the per-scene nerfstudio model) is "
            "not in this release yet, so nothing was trained. What works today: `ns-train pixelsplat-pretrain`, "
            "the encoder (`from pixelsplat_ns import load_encoder`) and the renderer (see README.md)."
        )


@dataclass
class UnavailablePipelineConfig(VanillaPipelineConfig):
    """Stands in for a pipeline this release does not ship yet: setting it up stops with a clear error."""

    _target: Type = field(default_factory=lambda: UnavailablePipeline)


@dataclass
class PretrainDataManagerConfig(DataManagerConfig):
    """Scenes streamed from RealEstate10k-format chunks (``--data`` is the dataset root)."""

    _target: Type = field(default_factory=lambda: _lazy_target("pixelsplat_ns.pretraining:PretrainDataManager"))
    dataset: ChunkDatasetConfig = field(default_factory=lambda: ChunkDatasetConfig(repeat=True))
    """Frames, augmentation and skipping; the roots come from --data."""
    sampler: BoundedSamplerConfig = field(default_factory=BoundedSamplerConfig)
    """Context and target views per scene (the paper's bounded sampler and warm-up)."""
    batch_size: int = 7
    """Scenes per batch and GPU (the paper: 7)."""
    num_workers: int = 2
    """DataLoader worker processes."""


@dataclass
class PretrainModelConfig(ModelConfig):
    _target: Type = field(default_factory=lambda: _lazy_target("pixelsplat_ns.pretraining:PretrainModel"))
    enable_collider: bool = False
    encoder: EncoderConfig = field(default_factory=paper)
    """Encoder architecture (default: the paper's)."""
    dino_init: bool = False
    """Initialize the backbone with DINO weights (downloaded: needs the internet), as the paper does."""
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class PretrainPipelineConfig(VanillaPipelineConfig):
    _target: Type = field(default_factory=lambda: _lazy_target("pixelsplat_ns.pretraining:PretrainPipeline"))
    datamanager: PretrainDataManagerConfig = field(default_factory=PretrainDataManagerConfig)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    evaluation_index: Optional[Path] = None
    """Evaluation index JSON for ns-eval (default: <data>/evaluation_index.json)."""
    time_budget_minutes: Optional[float] = None
    """Stop training after this many minutes (and save a checkpoint), whatever --max-num-iterations says."""


PAPER_LR = 1.5e-4
PAPER_STEPS = 300_001
TINY_LR = 5e-4
TINY_STEPS = 2500


def pretraining_trainer(
    method_name: str, pipeline: PretrainPipelineConfig, lr: float, steps: int, warmup: int, save_every: int
) -> TrainerConfig:
    """nerfstudio's trainer with the paper's optimization: Adam, linear warm-up from lr / 2000, then a
    constant rate, gradient norm clipped at 0.5; evaluation is left to ns-eval over the evaluation index."""
    return TrainerConfig(
        method_name=method_name,
        max_num_iterations=steps,
        steps_per_save=save_every,
        steps_per_eval_batch=steps,
        steps_per_eval_image=steps,
        steps_per_eval_all_images=steps,
        vis="tensorboard",
        machine=MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu"),
        logging=LoggingConfig(steps_per_log=50),
        pipeline=pipeline,
        optimizers={
            "encoder": {
                "optimizer": AdamOptimizerConfig(lr=lr, max_norm=0.5),
                "scheduler": ExponentialDecaySchedulerConfig(
                    lr_pre_warmup=lr / 2000, lr_final=lr, warmup_steps=warmup, max_steps=steps, ramp="linear"
                ),
            }
        },
    )


pixelsplat = MethodSpecification(
    config=TrainerConfig(method_name="pixelsplat", pipeline=UnavailablePipelineConfig()),
    description="pixelSplat (CVPR 2024): a Gaussian splat scene from two posed views by a feed-forward encoder.",
)

pixelsplat_pretrain = MethodSpecification(
    config=pretraining_trainer("pixelsplat-pretrain", PretrainPipelineConfig(), PAPER_LR, PAPER_STEPS, 2000, 5000),
    description="pixelSplat encoder training across RealEstate10k/ACID scenes (generalizable, multi-GPU).",
)

pixelsplat_pretrain_tiny = MethodSpecification(
    config=pretraining_trainer(
        "pixelsplat-pretrain-tiny",
        PretrainPipelineConfig(
            datamanager=PretrainDataManagerConfig(
                dataset=ChunkDatasetConfig(repeat=True, image_shape=(64, 64)),
                sampler=BoundedSamplerConfig(
                    num_target_views=4, warm_up_steps=800,
                    initial_min_distance_between_context_views=8, initial_max_distance_between_context_views=12,
                    min_distance_between_context_views=16, max_distance_between_context_views=24,
                ),
                batch_size=2,
                num_workers=1,
            ),
            model=PretrainModelConfig(encoder=tiny(), loss=LossConfig(lpips_weight=0.0)),
        ),
        TINY_LR, TINY_STEPS, 100, 500,
    ),
    description="pixelSplat's tiny preset for CPU training (64 x 64 images, small backbone, MSE only).",
)
