"""The project's own encoder files, written by ``pixelsplat-convert-checkpoint`` and
``pixelsplat-export-encoder``: ``{"format", "version", "config", "state_dict", "image_shape"}``."""

from dataclasses import asdict
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor

from pixelsplat_ns.core.atomic_files import tensor_bytes, write_atomically
from pixelsplat_ns.encoder.config import (
    FORMER_COMPUTE_FIELDS,
    BackboneConfig,
    EncoderConfig,
    EpipolarConfig,
    ImageSelfAttentionConfig,
    ResNetConfig,
    ViTConfig,
)

FORMAT = "pixelsplat-ns-encoder"
VERSION = 1


def save_converted(
    path: Union[str, Path],
    config: EncoderConfig,
    state_dict: dict[str, Tensor],
    image_shape: Optional[tuple[int, int]] = None,
    step: Optional[int] = None,
    data: Optional[str] = None,
) -> None:
    """Write a converted checkpoint: weights and configuration only (no optimizer state, no code); what is given
    of ``image_shape`` (h, w, the image size it was trained at), the training ``step`` and ``data`` is recorded.
    Written whole or not at all (``core.atomic_files``)."""
    given = {"image_shape": None if image_shape is None else list(image_shape), "step": step, "data": data}
    extra = {k: v for k, v in given.items() if v is not None}
    content = {"format": FORMAT, "version": VERSION, "config": asdict(config), "state_dict": state_dict, **extra}
    write_atomically(path, lambda file: torch.save(content, file), tensor_bytes(state_dict))


def config_from_dict(data: dict) -> EncoderConfig:
    """The ``EncoderConfig`` of a saved dict (``asdict`` of one); the compute options that files written before
    they became ``ComputeOptions`` hold (``FORMER_COMPUTE_FIELDS``) are ignored: the encoder built from it
    computes with the defaults unless told otherwise."""
    backbone = data["backbone"]
    epipolar = data["epipolar"]
    return EncoderConfig(
        **{k: v for k, v in data.items() if k not in ("backbone", "epipolar", *FORMER_COMPUTE_FIELDS)},
        backbone=BackboneConfig(
            resnet=ResNetConfig(block=backbone["resnet"]["block"], layers=tuple(backbone["resnet"]["layers"])),
            vit=ViTConfig(**backbone["vit"]),
            d_out=backbone["d_out"],
        ),
        epipolar=EpipolarConfig(
            **{k: v for k, v in epipolar.items() if k != "self_attention"},
            self_attention=ImageSelfAttentionConfig(**epipolar["self_attention"]),
        ),
    )
