"""Configuration of ``ns-train pixelsplat-pretrain``: its datamanager, model and pipeline (tyro turns them
into flags).

Imported by every ``ns-*`` command through ``pixelsplat_ns.methods``: dataclasses only; what they build is
imported when nerfstudio instantiates it (``lazy_target``).
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Type

from nerfstudio.data.datamanagers.base_datamanager import DataManagerConfig
from nerfstudio.models.base_model import ModelConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig

from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.data.dataset import ChunkDatasetConfig
from pixelsplat_ns.data.samplers import BoundedSamplerConfig
from pixelsplat_ns.encoder.compute import ComputeOptions
from pixelsplat_ns.encoder.config import EncoderConfig, paper
from pixelsplat_ns.nerfstudio_compat.lazy_targets import lazy_target
from pixelsplat_ns.pretraining.loss import LossConfig


@dataclass
class PretrainDataManagerConfig(DataManagerConfig):
    """Scenes streamed from RealEstate10k-format chunks (``--data`` is the dataset root)."""

    _target: Type = field(
        default_factory=lambda: lazy_target("pixelsplat_ns.pretraining.datamanager:PretrainDataManager")
    )
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
    """The encoder as a nerfstudio model, trained with the paper's loss."""

    _target: Type = field(default_factory=lambda: lazy_target("pixelsplat_ns.pretraining.model:PretrainModel"))
    enable_collider: bool = False
    encoder: EncoderConfig = field(default_factory=paper)
    """Encoder architecture (default: the paper's)."""
    encoder_compute: ComputeOptions = ComputeOptions()
    """How the encoder computes (the same function with other arithmetic; not saved with its weights)."""
    dino_init: bool = False
    """Initialize the backbone with DINO weights (downloaded: needs the internet), as the paper does."""
    encoder_init: Optional[Path] = None
    """Start from the weights of this encoder (an official .ckpt, a converted or exported .pt, or a
    pixelsplat-pretrain run's config.yml or step-*.ckpt) instead of a random initialization: fine-tuning, or
    training at a new image size (give it with --pipeline.datamanager.dataset.image-shape H W). Its
    architecture must be --pipeline.model.encoder's; its colour convention may differ (a converted official
    checkpoint's coefficient 14: --pipeline.model.encoder.sh-coefficient-14 official_forward_kernel keeps it).
    The optimizer and the step count start afresh."""
    loss: LossConfig = field(default_factory=LossConfig)


@dataclass
class PretrainPipelineConfig(VanillaPipelineConfig):
    """One training step per batch of scenes; ns-eval scores the paper's evaluation index."""

    _target: Type = field(default_factory=lambda: lazy_target("pixelsplat_ns.pretraining.pipeline:PretrainPipeline"))
    datamanager: PretrainDataManagerConfig = field(default_factory=PretrainDataManagerConfig)
    model: PretrainModelConfig = field(default_factory=PretrainModelConfig)
    evaluation_index: Optional[Path] = None
    """Evaluation index JSON for ns-eval (default: <data>/evaluation_index.json)."""
    check_memory: bool = True
    """Before training, measure one scene's step and refuse a batch that would not fit in memory (saying which
    batch size would), instead of being killed by the kernel or running out of GPU memory mid-step."""
    time_budget_minutes: Optional[float] = None
    """Stop training after this many minutes (and save a checkpoint), whatever --max-num-iterations says."""
    sync_batch_norm: bool = True
    """With several GPUs (--machine.num-devices, --machine.num-machines), the backbone's batch norm takes its
    statistics over the whole step's batch, every process's examples, as one GPU with that batch does (the
    paper's setting: batch 7 on one GPU); off, each process normalizes over its own examples alone. torch's
    SyncBatchNorm needs GPUs: CPU processes normalize over their own examples."""

    def check_flags(self) -> None:
        """Refuse flags that contradict each other, before anything is built (``PixelSplatTrainerConfig`` calls
        this before the run's folder is written): an encoder built for another number of context views than the
        sampler draws. With ``--pipeline.model.encoder.num-context-views 3`` alone a run trained on pairs and
        exported a 3-view encoder that demands triples; the other way round the first step failed inside the
        encoder."""
        encoder_views = self.model.encoder.num_context_views
        sampler_views = self.datamanager.sampler.num_context_views
        if encoder_views != sampler_views:
            views = max(encoder_views, sampler_views)
            raise InputError(
                f"--pipeline.model.encoder.num-context-views {encoder_views} and "
                f"--pipeline.datamanager.sampler.num-context-views {sampler_views} differ: the encoder must be "
                f"trained on the context views it is built for; give both, e.g. both {views}"
            )
