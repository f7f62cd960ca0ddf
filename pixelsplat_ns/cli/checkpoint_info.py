"""``pixelsplat-checkpoint-info FILE``: what an encoder file is, read without running anything from it.

    pixelsplat-checkpoint-info re10k.ckpt [--expect-sha256 HEX]

Prints its kind (official, converted, a pretraining run), architecture (camera-ready or original codebase),
context views, ablation, SH conventions, parameter count, training image size, the training step and data
where the file records them, its size and sha256. A file that is none of these is refused, naming the kind it
is nearest to and what differs. With ``--expect-sha256`` it also checks a download: status 1 when the file's
sha256 differs.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import tyro
from tyro.conf import Positional, arg

from pixelsplat_ns.checkpoints import CheckpointError, read_encoder
from pixelsplat_ns.cli import input_errors_exit


@dataclass
class CheckpointInfo:
    """Say what a pixelSplat checkpoint is: kind, architecture, views, ablation, training, sha256."""

    file: Positional[Annotated[Path, arg(metavar="FILE")]]
    """An official .ckpt, a converted .pt, or a pixelsplat-pretrain run's config.yml or step-*.ckpt."""
    expect_sha256: Optional[str] = None
    """The sha256 the file should have (from the checkpoints page): exit with status 1 when it differs."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(CheckpointInfo, args=argv, prog="pixelsplat-checkpoint-info")
    with input_errors_exit(FileNotFoundError, CheckpointError):
        encoder_file = read_encoder(args.file)
    rows = encoder_file.report()
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    if args.expect_sha256 is not None:
        actual = dict(rows)["sha256"]
        if actual != args.expect_sha256.strip().lower():
            raise SystemExit(
                f"error: sha256 {actual} differs from the expected {args.expect_sha256}: the file is incomplete or "
                "another one; download it again"
            )
        print("sha256 matches")


if __name__ == "__main__":
    main()
