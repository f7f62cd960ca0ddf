"""What an encoder file is: ``EncoderFile`` (what ``read_encoder`` returns) says its kind, the network it holds
and what it records of its training, in one line for the log of every door that takes a checkpoint and in full
for ``pixelsplat-checkpoint-info``."""

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional

from torch import Tensor

from pixelsplat_ns.encoder.config import ARCHITECTURE_COMMITS, EncoderConfig, ablation_of

Kind = Literal["official", "converted", "pretraining_run"]
KIND_NAMES: dict[Kind, str] = {
    "official": "official pixelSplat checkpoint",
    "converted": "pixelsplat-ns encoder file",
    "pretraining_run": "ns-train pixelsplat-pretrain run",
}
KIND_DETAILS: dict[Kind, str] = {
    "official": "the official code's weights: a Lightning .ckpt, or its encoder's state dict",
    "converted": "written by pixelsplat-convert-checkpoint or pixelsplat-export-encoder",
    "pretraining_run": "nerfstudio's config.yml and nerfstudio_models/step-*.ckpt",
}


def architecture_label(config: EncoderConfig) -> str:
    """The docs' name of ``config.architecture``: "camera-ready" or "original codebase"."""
    return {"camera_ready": "camera-ready", "original_codebase": "original codebase"}[config.architecture]


def architecture_name(config: EncoderConfig) -> str:
    """The official architecture, with its commit; without the epipolar transformer (where the two differ)
    both are the same network."""
    if not config.use_epipolar_transformer:
        return "camera-ready or original codebase (one network without the epipolar transformer)"
    return f"{architecture_label(config)} ({ARCHITECTURE_COMMITS[config.architecture]})"


@dataclass
class EncoderFile:
    """An encoder file as read by ``read_encoder``: the network and weights, and what the file records."""

    path: Path
    kind: Kind
    config: EncoderConfig
    state_dict: dict[str, Tensor]
    image_shape: tuple[int, int]
    """(h, w) it was trained at (the paper's 256 x 256 where the file records none)."""
    step: Optional[int] = None
    """Training step, where the file records it."""
    data: Optional[str] = None
    """Training data, where the file records it (a pretraining run's ``--data``)."""
    weights_path: Optional[Path] = None
    """The file holding the weights, where it is not ``path`` (a run's ``step-*.ckpt`` for its config.yml)."""

    @property
    def parameters(self) -> int:
        """Learned parameters (batch norm's running statistics excluded)."""
        return sum(
            v.numel()
            for k, v in self.state_dict.items()
            if not k.endswith(("running_mean", "running_var", "num_batches_tracked"))
        )

    def summary(self) -> str:
        """One line for a log: kind, architecture, context views, ablation, step."""
        parts = [
            KIND_NAMES[self.kind],
            f"architecture {architecture_name(self.config)}",
            f"{self.config.num_context_views} context views",
        ]
        if (ablation := ablation_of(self.config)) != "none":
            parts.append(f"ablation: {ablation}")
        if self.step is not None:
            parts.append(f"step {self.step}")
        return ", ".join(parts)

    def report(self, sha256: Optional[str] = None) -> list[tuple[str, str]]:
        """Everything known of the file, as (field, value) rows; reads the weights file once for its sha256 (size
        and sha256 are the weights file's: a run's checkpoint, not its config.yml); ``sha256``: the weights file's,
        when the caller has it already."""
        config, weights = self.config, self.weights_path or self.path
        return [
            ("file", str(self.path)),
            ("kind", f"{KIND_NAMES[self.kind]} ({KIND_DETAILS[self.kind]})"),
            ("architecture", architecture_name(config)),
            ("context views", str(config.num_context_views)),
            ("ablation", ablation_of(config)),
            (
                "SH",
                f"degree {config.sh_degree}; rotation {config.sh_rotation}; coefficient 14 {config.sh_coefficient_14}",
            ),
            ("parameters", f"{self.parameters:,} (learned weights the encoder uses)"),
            ("trained at", f"{self.image_shape[0]} x {self.image_shape[1]}"),
            ("training step", "not recorded" if self.step is None else str(self.step)),
            ("training data", self.data or "not recorded"),
            *([("weights", str(self.weights_path))] if self.weights_path not in (None, self.path) else []),
            ("size", f"{weights.stat().st_size:,} bytes"),
            ("sha256", sha256 or sha256_of(weights)),
        ]


def sha256_of(path: Path, block: int = 1 << 22) -> str:
    """The file's SHA-256, hex, read in blocks (checkpoints are over a gigabyte)."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(block):
            digest.update(chunk)
    return digest.hexdigest()
