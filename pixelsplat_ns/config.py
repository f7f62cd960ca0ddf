"""The nerfstudio methods this plugin registers (entry points in pyproject.toml), with their configurations.

Imported by every ``ns-*`` command through nerfstudio's plugin discovery, so it must stay cheap and safe:
dataclass configurations only. What they build is imported when nerfstudio instantiates it
(``_lazy_target``): no model is constructed, no weight read and nothing fetched at import time.
"""

import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Optional, Tuple, Type

import torch
from nerfstudio.cameras.camera_optimizers import CameraOptimizerConfig
from nerfstudio.configs.base_config import LoggingConfig, MachineConfig
from nerfstudio.data.datamanagers.base_datamanager import DataManagerConfig
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanagerConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.models.base_model import ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from pixelsplat_ns.data.context_datamanager import PixelSplatDataManager
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


@dataclass
class PixelSplatDataManagerConfig(FullImageDatamanagerConfig):
    """Full images from any nerfstudio dataparser; two of the training images are the encoder's context."""

    _target: Type = field(default_factory=lambda: PixelSplatDataManager)
    context_views: Optional[Tuple[int, ...]] = None
    """Indices (into the training images, in the dataparser's order) of the context views; default: the pair
    with the widest baseline among pairs whose viewing directions differ by at most max-context-angle."""
    max_context_angle: float = 30.0
    """Largest angle in degrees between the viewing directions of automatically chosen context views."""


@dataclass
class PixelSplatModelConfig(ModelConfig):
    """A splat model (nerfstudio's splatfacto layout) holding pixelSplat's predicted Gaussians; refinement is
    plain gradient descent on the target views, without densification or culling."""

    _target: Type = field(default_factory=lambda: _lazy_target("pixelsplat_ns.model:PixelSplatModel"))
    encoder_checkpoint: Optional[Path] = None
    """Encoder weights: an official .ckpt, a converted .pt, or a pixelsplat-pretrain run's config.yml or
    step-*.ckpt. Default: the bundled tiny encoder (trained on synthetic rooms at 64 x 64: a demo, not the
    paper's quality; use the official re10k.ckpt for real scenes)."""
    context_short_side: Optional[int] = None
    """Shorter side in pixels (a multiple of 16) of the context images the encoder sees; the other side keeps
    the aspect ratio. Default: the size the encoder was trained at (official checkpoints: 256)."""
    deterministic: bool = False
    """Take each pixel's most likely depth bin (1 Gaussian per pixel) instead of drawing bins as the paper does."""
    prediction_seed: int = 0
    """Seed of the depth-bin draws."""
    refine_encoder: bool = False
    """Refine the encoder's weights on the target views instead of the Gaussians: they are predicted anew at
    every step, and the scene keeps the prediction the last step rendered (one update behind the weights)."""
    background_color: Literal["random", "black", "white"] = "black"
    """Background of renders and of RGBA images (pixelSplat is trained on black)."""
    sh_degree: int = 3
    """SH degrees kept from the prediction (the paper renders degrees 0-3 of the predicted 0-4)."""
    output_depth_during_training: bool = False
    """Also render depth during refinement (it is always rendered for evaluation and the viewer)."""
    camera_optimizer: CameraOptimizerConfig = field(default_factory=lambda: CameraOptimizerConfig(mode="off"))
    """Pose refinement of the target views during refinement (nerfstudio's camera optimizer)."""


@dataclass
class PixelSplatPipelineConfig(VanillaPipelineConfig):
    _target: Type = field(default_factory=lambda: _lazy_target("pixelsplat_ns.per_scene:PixelSplatPipeline"))
    datamanager: PixelSplatDataManagerConfig = field(default_factory=PixelSplatDataManagerConfig)
    model: PixelSplatModelConfig = field(default_factory=PixelSplatModelConfig)


def _adam(lr: float, lr_final: Optional[float] = None, steps: int = 30000) -> dict:
    scheduler = None if lr_final is None else ExponentialDecaySchedulerConfig(lr_final=lr_final, max_steps=steps)
    return {"optimizer": AdamOptimizerConfig(lr=lr, eps=1e-15), "scheduler": scheduler}


def _device_type() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


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
        _target=_lazy_target("pixelsplat_ns.trainer:PixelSplatTrainer"),
        method_name=method_name,
        max_num_iterations=steps,
        steps_per_save=save_every,
        steps_per_eval_batch=steps,
        steps_per_eval_image=steps,
        steps_per_eval_all_images=steps,
        vis="tensorboard",
        machine=MachineConfig(device_type=_device_type()),
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
    config=TrainerConfig(
        _target=_lazy_target("pixelsplat_ns.trainer:PixelSplatTrainer"),
        method_name="pixelsplat",
        max_num_iterations=0,
        steps_per_eval_image=100,
        steps_per_eval_batch=0,
        steps_per_eval_all_images=1000,
        steps_per_save=500,
        machine=MachineConfig(device_type=_device_type()),
        pipeline=PixelSplatPipelineConfig(),
        # splatfacto's rates, for the optional refinement (--max-num-iterations N).
        optimizers={
            "means": _adam(1.6e-4, 1.6e-6),
            "features_dc": _adam(0.0025),
            "features_rest": _adam(0.0025 / 20),
            "opacities": _adam(0.05),
            "scales": _adam(0.005),
            "quats": _adam(0.001),
            "encoder": _adam(1e-4),  # --pipeline.model.refine-encoder True
        },
        vis="viewer",
    ),
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
