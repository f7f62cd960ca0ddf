"""``pixelsplat-checkpoint-info FILE...``: what encoder files are, read without running anything from them.

    pixelsplat-checkpoint-info re10k.ckpt [acid.ckpt ...] [--expect-sha256 HEX]

Prints for each file its kind (official, converted, a pretraining run), architecture (camera-ready or original
codebase), context views, ablation, SH conventions, parameter count, training image size, the training step
and data where the file records them, its size and sha256. A file that is none of these is refused, naming the
kind it is nearest to and what differs. With ``--expect-sha256`` (one file) the download is checked first:
status 1 when the file's sha256 differs.
"""

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import tyro
from tyro.conf import Positional, arg

from pixelsplat_ns.checkpoints import CheckpointError, read_encoder
from pixelsplat_ns.checkpoints.identity import sha256_of

SHA256 = re.compile(r"(?:sha256[:=])?\s*([0-9a-fA-F]{64})(?:\s+\*?\S.*)?")
"""A sha256 as given: 64 hex digits, also with a ``sha256:`` prefix or as a ``sha256sum`` line (hash, file)."""


@dataclass
class CheckpointInfo:
    """Say what pixelSplat checkpoints are: kind, architecture, views, ablation, training, sha256."""

    files: Positional[Annotated[tuple[Path, ...], arg(metavar="FILE")]]
    """Official .ckpt files, converted .pt files, or pixelsplat-pretrain runs (config.yml or step-*.ckpt)."""
    expect_sha256: Optional[str] = None
    """The sha256 the file should have (docs/checkpoints.md; one FILE): exit with status 1 when it differs.
    64 hex digits, also as "sha256:HEX" or a sha256sum line."""


def expected_sha256(given: str) -> str:
    """The 64 hex digits of ``given``, lower case; ``ValueError`` saying what a sha256 looks like otherwise."""
    found = SHA256.fullmatch(given.strip())
    if found is None:
        raise ValueError(
            f"--expect-sha256 {given!r} is not a sha256: give its 64 hexadecimal digits (as sha256sum or the "
            "checkpoints page prints them)"
        )
    return found.group(1).lower()


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(CheckpointInfo, args=argv, prog="pixelsplat-checkpoint-info")
    expected = None
    if args.expect_sha256 is not None:
        if len(args.files) != 1:
            raise SystemExit("error: --expect-sha256 checks one file: give one FILE with it")
        try:
            expected = expected_sha256(args.expect_sha256)
        except ValueError as error:
            raise SystemExit(f"error: {error}") from error
    failures = 0
    for index, path in enumerate(args.files):
        if index:
            print()
        actual = None
        if expected is not None and path.is_file():  # a download is checked before it is read
            actual = sha256_of(path)
            if actual != expected:
                raise SystemExit(
                    f"error: {path}: sha256 {actual} differs from the expected {expected}: the file is incomplete or "
                    "another one; download it again"
                )
        try:
            encoder_file = read_encoder(path)
            rows = encoder_file.report(actual if encoder_file.weights_path in (None, path) else None)
        except (FileNotFoundError, CheckpointError) as error:
            print(f"error: {error}", file=sys.stderr)
            failures += 1
            continue
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        if expected is not None:
            print("sha256 matches")
    if failures:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
