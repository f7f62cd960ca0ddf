"""The nerfstudio methods this plugin registers (entry points in pyproject.toml): ``pixelsplat``,
``pixelsplat-pretrain`` and ``pixelsplat-pretrain-tiny``, with their trainers and optimizers.

Imported by every ``ns-*`` command through nerfstudio's plugin discovery, so it must stay cheap and safe:
configurations only (each method's own in ``per_scene.config`` and ``pretraining.config``); what they build
is imported when nerfstudio instantiates it. Importing it changes no global state: the process-wide hooks a
pixelsplat run needs are installed when its trainer or pipeline is set up
(``nerfstudio_compat.install_process_hooks``). And it cannot take nerfstudio down: each method's configuration
is built inside ``registered``, so a part of the package that does not import in the user's environment
leaves every other method working and makes only ``ns-train pixelsplat*`` stop with one line saying why.
"""

from dataclasses import dataclass, replace
from typing import Literal, Optional

import torch
from nerfstudio.configs.base_config import LoggingConfig, MachineConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig

from pixelsplat_ns.nerfstudio_compat.unavailable import registered


@dataclass
class FusedAdamOptimizerConfig(AdamOptimizerConfig):
    """nerfstudio's Adam config with torch's fused kernel: one pass over each parameter instead of several, so
    the update of every Gaussian's parameters reads and writes memory once a step; the
    same update up to float rounding."""

    fused: bool = True

    def setup(self, params) -> torch.optim.Optimizer:
        params = list(params)
        try:
            return super().setup(params)
        except RuntimeError:
            if not self.fused:
                raise
            return replace(self, fused=False).setup(params)  # a device torch has no fused Adam for: the usual one


def _adam(lr: float, lr_final: Optional[float] = None, steps: int = 30000) -> dict:
    """A per-scene parameter group's optimizer: splatfacto's Adam settings (eps 1e-15), fused."""
    scheduler = None if lr_final is None else ExponentialDecaySchedulerConfig(lr_final=lr_final, max_steps=steps)
    return {"optimizer": FusedAdamOptimizerConfig(lr=lr, eps=1e-15), "scheduler": scheduler}


def _device_type() -> Literal["cuda", "cpu"]:
    return "cuda" if torch.cuda.is_available() else "cpu"


PAPER_LR = 1.5e-4
PAPER_STEPS = 300_001
TINY_LR = 5e-4
TINY_STEPS = 2500


def pretraining_trainer(
    method_name: str, pipeline, lr: float, steps: int, warmup: int, save_every: int
) -> TrainerConfig:
    """nerfstudio's trainer with the paper's optimization: Adam, linear warm-up from lr / 2000, then a
    constant rate, gradient norm clipped at 0.5; evaluation is left to ns-eval over the evaluation index.
    ``pipeline``: a ``PretrainPipelineConfig``."""
    from pixelsplat_ns.nerfstudio_compat.trainer import PixelSplatTrainer
    from pixelsplat_ns.nerfstudio_compat.trainer_config import PixelSplatTrainerConfig

    return PixelSplatTrainerConfig(
        _target=PixelSplatTrainer,
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


def _pixelsplat() -> TrainerConfig:
    from pixelsplat_ns.nerfstudio_compat.trainer import PixelSplatTrainer
    from pixelsplat_ns.nerfstudio_compat.trainer_config import PixelSplatTrainerConfig
    from pixelsplat_ns.per_scene.config import PixelSplatPipelineConfig

    return PixelSplatTrainerConfig(
        _target=PixelSplatTrainer,
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
    )


def _pixelsplat_pretrain() -> TrainerConfig:
    from pixelsplat_ns.pretraining.config import PretrainPipelineConfig

    return pretraining_trainer("pixelsplat-pretrain", PretrainPipelineConfig(), PAPER_LR, PAPER_STEPS, 2000, 5000)


def _pixelsplat_pretrain_tiny() -> TrainerConfig:
    from pixelsplat_ns.data.dataset import ChunkDatasetConfig
    from pixelsplat_ns.data.samplers import BoundedSamplerConfig
    from pixelsplat_ns.encoder.config import tiny
    from pixelsplat_ns.pretraining.config import PretrainDataManagerConfig, PretrainModelConfig, PretrainPipelineConfig
    from pixelsplat_ns.pretraining.loss import LossConfig

    return pretraining_trainer(
        "pixelsplat-pretrain-tiny",
        PretrainPipelineConfig(
            datamanager=PretrainDataManagerConfig(
                dataset=ChunkDatasetConfig(repeat=True, image_shape=(64, 64)),
                sampler=BoundedSamplerConfig(
                    num_target_views=4,
                    warm_up_steps=800,
                    initial_min_distance_between_context_views=8,
                    initial_max_distance_between_context_views=12,
                    min_distance_between_context_views=16,
                    max_distance_between_context_views=24,
                ),
                batch_size=2,
                num_workers=1,
            ),
            model=PretrainModelConfig(encoder=tiny(), loss=LossConfig(lpips_weight=0.0)),
        ),
        TINY_LR,
        TINY_STEPS,
        100,
        500,
    )


pixelsplat = registered(
    "pixelsplat",
    "pixelSplat (CVPR 2024): a Gaussian splat scene from two posed views by a feed-forward encoder.",
    _pixelsplat,
)
pixelsplat_pretrain = registered(
    "pixelsplat-pretrain",
    "pixelSplat encoder training across RealEstate10k/ACID scenes (generalizable, multi-GPU).",
    _pixelsplat_pretrain,
)
pixelsplat_pretrain_tiny = registered(
    "pixelsplat-pretrain-tiny",
    "pixelSplat's tiny preset for CPU training (64 x 64 images, small backbone, MSE only).",
    _pixelsplat_pretrain_tiny,
)
