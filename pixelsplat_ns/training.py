"""The paper's training objective for one batch of scenes: encode the context views, render the targets,
compare. Framework-free, so that nerfstudio's pipeline and tests share it."""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.evaluation import render_gaussians

VIEW_FIELDS = ("image", "extrinsics", "intrinsics", "near", "far")


@dataclass
class LossConfig:
    lpips_weight: float = 0.05
    """Weight of LPIPS (VGG) in the loss, from ``lpips_start_step`` on (the paper: 0.05 from step 150,000)."""
    lpips_start_step: int = 150_000


def pretraining_loss(
    encoder: PixelSplatEncoder,
    batch: dict,
    step: int,
    config: LossConfig,
    lpips_model: Optional[torch.nn.Module] = None,
    generator: Optional[torch.Generator] = None,
) -> tuple[dict[str, Tensor], Tensor]:
    """Loss terms (``mse`` and, when enabled, ``lpips`` already weighted) and the rendered targets.

    ``batch`` is a collated ``ChunkDataset`` example: ``context`` and ``target`` views with ``image``
    [B, V, 3, H, W], ``extrinsics``, ``intrinsics``, ``near`` and ``far``. Depth bins are drawn
    stochastically, as in training."""
    context, target = batch["context"], batch["target"]
    gaussians = encoder.encode(*(context[name] for name in VIEW_FIELDS), deterministic=False, generator=generator)
    h, w = target["image"].shape[-2:]
    rendered = render_gaussians(gaussians, target["extrinsics"], target["intrinsics"], target["near"], (h, w))
    losses = {"mse": F.mse_loss(rendered, target["image"])}
    if lpips_model is not None and config.lpips_weight > 0 and step >= config.lpips_start_step:
        truth, prediction = target["image"].flatten(0, 1), rendered.flatten(0, 1)
        losses["lpips"] = config.lpips_weight * lpips_model(truth, prediction, normalize=True).mean()
    return losses, rendered
