"""Encoder checkpoints: every file format a user can bring, read without running code from it.

reading (the safe ``torch.load`` and the state-dict check), official (the official code's weight names, both
architectures), identity (what a file is: ``EncoderFile``, for logs and ``pixelsplat-checkpoint-info``),
converted (the project's own files), pretraining_runs (nerfstudio's run layout), loading (``load_encoder``),
dino (DINO initialization for training from scratch).
"""

from pixelsplat_ns.checkpoints.converted import FORMAT, VERSION, config_from_dict, save_converted
from pixelsplat_ns.checkpoints.identity import EncoderFile
from pixelsplat_ns.checkpoints.loading import BUNDLED_TINY_ENCODER, build_encoder, load_encoder, read_encoder
from pixelsplat_ns.checkpoints.official import PAPER_IMAGE_SHAPE, config_from_official, convert_official
from pixelsplat_ns.checkpoints.pretraining_runs import PretrainingRun, encoder_from_pretraining, read_pretraining_run
from pixelsplat_ns.checkpoints.reading import CheckpointError, check_state_dict, read_checkpoint

__all__ = [
    "BUNDLED_TINY_ENCODER",
    "FORMAT",
    "PAPER_IMAGE_SHAPE",
    "VERSION",
    "CheckpointError",
    "EncoderFile",
    "PretrainingRun",
    "build_encoder",
    "check_state_dict",
    "config_from_dict",
    "config_from_official",
    "convert_official",
    "encoder_from_pretraining",
    "load_encoder",
    "read_checkpoint",
    "read_encoder",
    "read_pretraining_run",
    "save_converted",
]
