"""The paper's training objective for one batch of scenes: encode the context views, render the targets,
compare (paper, section 4; official ``src/model/model_wrapper.py``). Framework-free: nerfstudio's pipeline,
the tests and the GPU check share it."""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from pixelsplat_ns.core.views import Views
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.random_draws import Generators
from pixelsplat_ns.render import render_gaussians


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
    generator: Generators = None,
    prepared: bool = False,
) -> tuple[dict[str, Tensor], Tensor]:
    """Loss terms (``mse`` and, when enabled, ``lpips`` already weighted) and the rendered targets
    ``[b, v, 3, h, w]``.

    ``batch`` is a batch of ``ChunkDataset`` examples: ``context`` and ``target`` ``Views`` of a batch.
    Depth bins are drawn stochastically, as in training. ``prepared``: the views were made by ``prepare_views``
    (``ChunkDataset``'s are), so the encoder does not check their values again (``encode_prepared``); by default
    it checks everything (``encode``)."""
    context, target = batch["context"], batch["target"]
    if not isinstance(context, Views) or not isinstance(target, Views):
        raise TypeError("the batch's context and target must be Views (pixelsplat_ns.core.views)")
    encode = encoder.encode_prepared if prepared else encoder.encode
    gaussians = encode(context, deterministic=False, generator=generator)
    rendered = render_gaussians(gaussians, target.extrinsics, target.intrinsics, target.near, target.image_shape)
    losses = {"mse": F.mse_loss(rendered, target.images)}
    if lpips_model is not None and config.lpips_weight > 0 and step >= config.lpips_start_step:
        truth, prediction = target.images.flatten(0, 1), rendered.flatten(0, 1)
        losses["lpips"] = config.lpips_weight * lpips_model(truth, prediction, normalize=True).mean()
    return losses, rendered
