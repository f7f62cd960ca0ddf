"""``load_encoder``: a trained encoder from any file a user has, recognized by its contents."""

import logging
from pathlib import Path
from typing import Optional, Union

import torch
from torch import Tensor

from pixelsplat_ns.checkpoints.converted import FORMAT, VERSION, config_from_dict
from pixelsplat_ns.checkpoints.identity import EncoderFile
from pixelsplat_ns.checkpoints.official import PAPER_IMAGE_SHAPE, convert_official
from pixelsplat_ns.checkpoints.pretraining_runs import PretrainingRun, read_pretraining_run, run_of_checkpoint
from pixelsplat_ns.checkpoints.reading import CheckpointError, check_state_dict, read_checkpoint
from pixelsplat_ns.encoder.compute import ComputeOptions
from pixelsplat_ns.encoder.config import EncoderConfig
from pixelsplat_ns.encoder.encoder import PixelSplatEncoder

LOGGER = logging.getLogger(__name__)
BUNDLED_TINY_ENCODER = Path(__file__).parents[1] / "weights" / "tiny_synthetic.pt"
"""The tiny preset trained on the synthetic dataset on a CPU (docs/training.md: "The bundled encoder")."""


def read_encoder(path: Union[str, Path]) -> EncoderFile:
    """Configuration, weights, training image size and what else the file records, from any encoder file: a
    converted checkpoint, an official Lightning ``.ckpt`` (either architecture, ``EncoderConfig.architecture``,
    read from its weights' names), or a ``pixelsplat-pretrain`` run (its config.yml or a step-*.ckpt).
    Raises ``FileNotFoundError`` or ``CheckpointError`` saying what the file is nearest to and what differs."""
    path = Path(path)
    if path.is_dir():
        if not (path / "config.yml").is_file():
            raise CheckpointError(
                f"{path} is a folder: give a checkpoint file (.ckpt, .pt), or a pixelsplat-pretrain run's config.yml "
                "or one of its step-*.ckpt"
            )
        path = path / "config.yml"  # a pretraining run's folder
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint or run config at {path}")
    if path.suffix in (".yml", ".yaml"):
        return _of_run(path, read_pretraining_run(path))
    checkpoint = read_checkpoint(path)
    if "pipeline" in checkpoint:
        return _of_run(path, run_of_checkpoint(path, checkpoint))
    try:
        if checkpoint.get("format") == FORMAT:
            return _converted(path, checkpoint)
        config, state_dict = convert_official(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{path}: {error}") from error
    return EncoderFile(path, "official", config, state_dict, PAPER_IMAGE_SHAPE, _integer(checkpoint.get("global_step")))


def _converted(path: Path, checkpoint: dict) -> EncoderFile:
    """A file of the project's own format (``converted``)."""
    if checkpoint.get("version") != VERSION:
        raise CheckpointError(f"converted checkpoint version {checkpoint.get('version')}, expected {VERSION}")
    try:
        config, state_dict = config_from_dict(checkpoint["config"]), checkpoint["state_dict"]
    except (KeyError, TypeError) as error:
        raise CheckpointError("a converted checkpoint without a valid config and state_dict") from error
    check_state_dict(config, state_dict)
    image_shape = tuple(checkpoint.get("image_shape", PAPER_IMAGE_SHAPE))
    return EncoderFile(
        path, "converted", config, state_dict, image_shape, _integer(checkpoint.get("step")), checkpoint.get("data")
    )


def _of_run(path: Path, run: PretrainingRun) -> EncoderFile:
    return EncoderFile(
        path, "pretraining_run", run.config, run.state_dict, run.image_shape, run.step, run.data, run.checkpoint
    )


def _integer(value) -> Optional[int]:
    """A recorded step, when it is one (the inert reader turns unknown objects into placeholders)."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def build_encoder(
    config: EncoderConfig,
    state_dict: dict[str, Tensor],
    device: Union[str, torch.device] = "cpu",
    compute: Optional[ComputeOptions] = None,
) -> PixelSplatEncoder:
    """An encoder of ``config`` with the weights ``state_dict``, in eval mode on ``device``, computing with
    ``compute`` (None: the default ``ComputeOptions``)."""
    encoder = PixelSplatEncoder(config, compute)
    encoder.load_state_dict(state_dict)
    return encoder.to(device).eval()


def load_encoder(path: Union[str, Path], device: Union[str, torch.device] = "cpu") -> PixelSplatEncoder:
    """A trained encoder in eval mode, ready for ``encode``.

    ``path``: an official pixelSplat Lightning checkpoint (``re10k.ckpt``, ``acid.ckpt``, the ablations, the
    3-view model), a file converted by ``pixelsplat-convert-checkpoint`` or ``pixelsplat-export-encoder``, or
    a ``ns-train pixelsplat-pretrain`` run (its config.yml or one of its step-*.ckpt). Nothing in the file is
    executed. Raises ``FileNotFoundError``, or ``CheckpointError`` naming the missing and unexpected weights
    of a file that is not, or not entirely, a pixelSplat encoder.

    Example::

        encoder = load_encoder("re10k.ckpt")
        views, scale = prepare_views(images, extrinsics, intrinsics, context=[0, 1])
        gaussians = encoder.encode(views.batched())  # in the views' frame; .scaled(scale) for the input's
    """
    encoder_file = read_encoder(path)
    LOGGER.info("load_encoder: %s: %s", path, encoder_file.summary())
    return build_encoder(encoder_file.config, encoder_file.state_dict, device)
