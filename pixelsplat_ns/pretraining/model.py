"""The encoder as a nerfstudio model: its parameters form the optimizer group "encoder"."""

import logging

import torch
from nerfstudio.models.base_model import Model

from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.pretrained import load_dino_weights
from pixelsplat_ns.metrics import load_lpips_vgg
from pixelsplat_ns.nerfstudio_workarounds import SceneBatchModelHooks

from .loss import pretraining_loss

LOGGER = logging.getLogger(__name__)


class PretrainModel(SceneBatchModelHooks, Model):
    """The encoder and the paper's loss; every parameter gets a gradient every step (DDP needs no
    unused-parameter search)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.remove_device_indicator()

    @property
    def device(self):
        return next(self.encoder.parameters()).device

    def populate_modules(self) -> None:
        super().populate_modules()
        self.encoder = PixelSplatEncoder(self.config.encoder)
        if self.config.dino_init:
            load_dino_weights(self.encoder.backbone)
        self.lpips = None
        if self.config.loss.lpips_weight > 0:
            try:
                self.lpips = load_lpips_vgg()
                self.lpips.requires_grad_(False)
            except RuntimeError as error:
                LOGGER.warning("LPIPS loss disabled: %s", error)

    def get_param_groups(self):
        return {"encoder": list(self.encoder.parameters())}

    def forward(self, batch: dict, step: int, rank: int = 0):
        """Loss of one batch. The depth-bin draws are seeded by (step, rank), so a resumed run repeats them."""
        generator = torch.Generator(self.device).manual_seed(step * 65_536 + rank)
        return pretraining_loss(self.encoder, batch, step, self.config.loss, self.lpips, generator)
