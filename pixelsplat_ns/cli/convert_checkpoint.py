"""``pixelsplat-convert-checkpoint IN OUT``: any encoder file (an official pixelSplat Lightning checkpoint of
either architecture: re10k.ckpt, acid.ckpt, the ablations, the 3-view model; or a pixelsplat-pretrain run) ->
pixelsplat-ns's encoder format: our parameter names, the configuration it needs, what the file records of its
training, and nothing else.

``load_encoder`` reads the official file directly too; converting drops the optimizer state and Lightning's
records, so the file is about a third of the official one and loads faster. Weights are stored in float32. A
wrong or partial checkpoint is refused, naming the missing and unexpected keys.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import tyro
from tyro.conf import Positional, arg

from pixelsplat_ns.checkpoints import CheckpointError, read_encoder, save_converted
from pixelsplat_ns.cli import check_output_file, input_errors_exit
from pixelsplat_ns.core.errors import InputError


@dataclass
class ConvertCheckpoint:
    """Convert a pixelSplat checkpoint (official or a pretraining run) to a weights-only pixelsplat-ns file."""

    input: Positional[Annotated[Path, arg(metavar="IN.ckpt")]]
    """Official Lightning checkpoint (.ckpt), or a pixelsplat-pretrain run's config.yml or step-*.ckpt."""
    output: Positional[Annotated[Path, arg(metavar="OUT.pt")]]
    """Converted checkpoint to write (.pt)."""
    force: bool = False
    """Overwrite OUT.pt if it exists."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(ConvertCheckpoint, args=argv, prog="pixelsplat-convert-checkpoint")
    with input_errors_exit(FileNotFoundError, FileExistsError, CheckpointError):
        check_output_file(args.output, args.force, [args.input])
        encoder_file = read_encoder(args.input)
    weights = {k: v.float() if v.is_floating_point() else v for k, v in encoder_file.state_dict.items()}
    with input_errors_exit(InputError, OSError):  # a folder that cannot be made or written
        args.output.parent.mkdir(parents=True, exist_ok=True)
        save_converted(
            args.output, encoder_file.config, weights, encoder_file.image_shape, encoder_file.step, encoder_file.data
        )
    sizes = f"{args.output.stat().st_size / 1e6:,.1f} MB"
    if args.input.suffix not in (".yml", ".yaml"):
        sizes += f" from {args.input.stat().st_size / 1e6:,.1f} MB"
    print(
        f"converted {len(weights)} tensors of {args.input} ({encoder_file.summary()}; "
        f"{encoder_file.parameters:,} parameters) to {args.output}: {sizes}"
    )


if __name__ == "__main__":
    main()
