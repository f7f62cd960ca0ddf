"""Write a synthetic RealEstate10k-format dataset: ray-traced rooms with boxes, forward camera walks.

    python scripts/make_synthetic_re10k.py --out datasets/synthetic --scenes 300 --seed 0

Writes OUT/train and OUT/test (chunks + index.json) and OUT/evaluation_index.json (official format).
The generator lives in pixelsplat_ns/data/synthetic.py.
"""

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import tyro

from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset


@dataclass
class Args:
    out: Path
    """Output dataset root."""
    scenes: int = 100
    """Number of scenes."""
    seed: int = 0
    """Dataset seed: the same seed gives the same scenes."""
    test_fraction: float = 0.1
    """Share of scenes that go to the test split (and the evaluation index)."""
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Rendering processes."""
    overwrite: bool = False
    """Replace chunks, index.json files and evaluation_index.json already in OUT."""
    scene: SyntheticConfig = field(default_factory=SyntheticConfig)
    """Frame size, frames per scene, boxes per room, JPEG quality."""


def main(args: Args) -> None:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    start = time.perf_counter()
    counts = write_synthetic_dataset(
        args.out, args.scenes, args.seed, args.scene, args.test_fraction, args.workers, args.overwrite
    )
    minutes = (time.perf_counter() - start) / 60
    print(f"wrote {counts['train']} train and {counts['test']} test scenes to {args.out} in {minutes:.1f} min "
          f"({args.scenes / max(minutes, 1e-9):.0f} scenes/min)")


if __name__ == "__main__":
    try:
        main(tyro.cli(Args))
    except (FileExistsError, ValueError) as error:
        raise SystemExit(f"error: {error}") from error
