"""``pixelsplat-make-synthetic``: a RealEstate10k-format dataset of ray-traced rooms with boxes and forward
camera walks, for training and testing without the real datasets.

    pixelsplat-make-synthetic --output-dir outputs/datasets/synthetic --scenes 200 --seed 0

Writes OUTPUT_DIR/train and OUTPUT_DIR/test (chunks + index.json) and OUTPUT_DIR/evaluation_index.json
(official format). The generator lives in ``pixelsplat_ns/data/synthetic.py``.
"""

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import tyro
from tqdm import tqdm

from pixelsplat_ns.cli import input_errors_exit
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset


@dataclass
class MakeSynthetic:
    """Write a synthetic RealEstate10k-format dataset."""

    output_dir: Path
    """Output dataset root."""
    scenes: int = 100
    """Number of scenes."""
    seed: int = 0
    """Dataset seed: the same seed gives the same scenes."""
    test_fraction: float = 0.1
    """Chance of each scene going to the test split (and the evaluation index); at least one test scene when
    there are two scenes or more."""
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Rendering processes."""
    overwrite: bool = False
    """Replace chunks, index.json files and evaluation_index.json already in OUTPUT_DIR."""
    scene: SyntheticConfig = field(default_factory=SyntheticConfig)
    """Frame size, frames per scene, boxes per room, JPEG quality."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(MakeSynthetic, args=argv, prog="pixelsplat-make-synthetic")
    start = time.perf_counter()
    with input_errors_exit(FileExistsError, ValueError):
        counts = write_synthetic_dataset(
            args.output_dir,
            args.scenes,
            args.seed,
            args.scene,
            args.test_fraction,
            args.workers,
            args.overwrite,
            progress=lambda scenes: tqdm(scenes, total=args.scenes, desc="scenes", unit="scene"),
        )
    minutes = (time.perf_counter() - start) / 60
    print(
        f"wrote {counts['train']} train and {counts['test']} test scenes to {args.output_dir} in {minutes:.1f} "
        f"min ({args.scenes / max(minutes, 1e-9):.0f} scenes/min)"
    )


if __name__ == "__main__":
    main()
