"""``pixelsplat-export-encoder``: the encoder of a ``ns-train pixelsplat-pretrain`` run as a converted
checkpoint, for ``load_encoder`` and ``ns-train pixelsplat --pipeline.model.encoder-checkpoint``.

    pixelsplat-export-encoder --load-config outputs/.../config.yml --output-path outputs/encoder.pt [--step N]

The run's config.yml is read as plain data (nothing it names is imported); the file records the image size
the encoder was trained at.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tyro

from pixelsplat_ns.checkpoints import CheckpointError, read_pretraining_run, save_converted
from pixelsplat_ns.cli import check_output_file, input_errors_exit
from pixelsplat_ns.core.errors import InputError


@dataclass
class ExportEncoder:
    """Export the encoder of a pixelsplat-pretrain run."""

    load_config: Path
    """config.yml of a pixelsplat-pretrain run."""
    output_path: Path
    """Converted checkpoint to write (.pt)."""
    step: Optional[int] = None
    """Checkpoint step (default: the latest)."""
    force: bool = False
    """Overwrite OUTPUT_PATH if it exists."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(ExportEncoder, args=argv, prog="pixelsplat-export-encoder")
    with input_errors_exit(FileNotFoundError, FileExistsError, CheckpointError):
        check_output_file(args.output_path, args.force, [args.load_config])
        run = read_pretraining_run(args.load_config, args.step)
    with input_errors_exit(InputError, OSError):  # a folder that cannot be made or written
        args.output_path.parent.mkdir(parents=True, exist_ok=True)
        save_converted(args.output_path, run.config, run.state_dict, run.image_shape, run.step, run.data)
    print(f"exported the encoder of {run.checkpoint} (step {run.step}) to {args.output_path}")


if __name__ == "__main__":
    main()
