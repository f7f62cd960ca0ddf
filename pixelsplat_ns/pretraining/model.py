"""The encoder as a nerfstudio model: its parameters form the optimizer group "encoder"."""

import logging
from dataclasses import is_dataclass

from nerfstudio.models.base_model import Model
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.checkpoints import CheckpointError, read_encoder
from pixelsplat_ns.checkpoints.dino import load_dino_weights
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.random_draws import per_example_generators
from pixelsplat_ns.metrics import load_lpips_vgg
from pixelsplat_ns.nerfstudio_compat.scene_batches import SceneBatchModelHooks

from .config import PretrainModelConfig
from .loss import pretraining_loss

LOGGER = logging.getLogger(__name__)

HOW_NOT_WHAT = ("sh_rotation", "sh_coefficient_14")
"""Encoder settings that say how the weights are used (the colour convention), not which weights there are:
an encoder differing only in these can initialize another. (How it computes is not in ``EncoderConfig``:
``ComputeOptions``, --pipeline.model.encoder-compute.)"""


class PretrainModel(SceneBatchModelHooks, Model):
    """The encoder and the paper's loss; every parameter gets a gradient every step (DDP needs no
    unused-parameter search)."""

    config: PretrainModelConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.remove_device_indicator()

    @property
    def device(self):
        return next(self.encoder.parameters()).device

    def populate_modules(self) -> None:
        super().populate_modules()
        self.encoder = PixelSplatEncoder(self.config.encoder, self.config.encoder_compute)
        if self.config.dino_init and self.config.encoder_init is not None:
            raise InputError(
                "--pipeline.model.dino-init and --pipeline.model.encoder-init both initialize the backbone: give one"
            )
        self.lpips = None
        if self.config.loss.lpips_weight > 0:
            try:
                self.lpips = load_lpips_vgg()
                self.lpips.requires_grad_(False)
            except RuntimeError as error:
                LOGGER.warning("LPIPS loss disabled: %s", error)

    def initialize_encoder(self) -> None:
        """The starting weights of a new run (``dino_init`` or ``encoder_init``), called by the pipeline of a
        training run only: ns-eval, the viewer and a resumed run load their checkpoint's weights instead, and
        must neither read these files nor say they were used."""
        if self.config.dino_init:
            load_dino_weights(self.encoder.backbone)
        if self.config.encoder_init is not None:
            self._initialize_from(self.config.encoder_init)

    def _initialize_from(self, path) -> None:
        """Load another encoder's weights; refuses one of a different architecture, naming the difference."""
        try:
            encoder_file = read_encoder(path)
        except (FileNotFoundError, CheckpointError) as error:
            raise CheckpointError(
                f"--pipeline.model.encoder-init {path}: {error}. Give an official .ckpt, a converted "
                ".pt or a pixelsplat-pretrain run's config.yml or step-*.ckpt"
            ) from error
        config, image_shape = encoder_file.config, encoder_file.image_shape
        own = self.config.encoder
        differing = [n for n in vars(config) if n not in HOW_NOT_WHAT and getattr(config, n) != getattr(own, n)]
        if differing:
            differences = "; ".join(f"{n}: {getattr(config, n)} != {getattr(own, n)}" for n in differing)
            plain = [n for n in differing if not is_dataclass(getattr(config, n))]  # one flag each
            flags = " ".join(f"--pipeline.model.encoder.{n.replace('_', '-')} {getattr(config, n)}" for n in plain)
            fix = (
                f"give {flags}" if len(plain) == len(differing) else "give the matching --pipeline.model.encoder flags"
            )
            raise CheckpointError(
                f"{path} is an encoder of another architecture than --pipeline.model.encoder ({differences}): {fix}, "
                "or another file"
            )
        for name in ("sh_rotation", "sh_coefficient_14"):
            if getattr(config, name) != getattr(own, name):
                CONSOLE.log(
                    f"[bold yellow]{path} was trained with {name} {getattr(config, name)}; this run trains "
                    f"with {getattr(own, name)} (--pipeline.model.encoder.{name.replace('_', '-')} "
                    f"{getattr(config, name)} keeps the checkpoint's)"
                )
        self.encoder.load_state_dict(encoder_file.state_dict)
        CONSOLE.log(
            f"pixelsplat-pretrain: encoder initialized from {path} ({encoder_file.summary()}; trained at "
            f"{image_shape[0]}x{image_shape[1]}; the optimizer and the step count start afresh)"
        )

    def get_param_groups(self):
        return {"encoder": list(self.encoder.parameters())}

    def forward(self, batch: dict, step: int, rank: int = 0):  # type: ignore[override]  # scene batches, not rays
        """Loss of one batch, the batch of process ``rank`` in the step's global batch. Each example's random
        draws are seeded by (step, its place in the global batch): a resumed run repeats them, and N processes
        with batch b draw what one process with batch N x b draws for the same examples."""
        size = batch["context"].images.shape[0]
        generators = per_example_generators(step, rank * size, size, self.device)
        # The datamanager's batches are ChunkDataset's, made by prepare_views.
        return pretraining_loss(self.encoder, batch, step, self.config.loss, self.lpips, generators, prepared=True)
