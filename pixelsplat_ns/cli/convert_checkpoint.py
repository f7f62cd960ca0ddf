"""``pixelsplat-convert-checkpoint IN OUT``: an official pixelSplat Lightning checkpoint (re10k.ckpt,
acid.ckpt, the ablations, the 3-view model) -> pixelsplat-ns's encoder format (our parameter names plus the
configuration it needs).

``load_encoder`` reads the official file directly too; converting makes a smaller file that also records the
configuration. A wrong or partial checkpoint is refused, naming the missing and unexpected keys.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import tyro
from tyro.conf import Positional, arg

from pixelsplat_ns.checkpoints import CheckpointError, convert_official, read_checkpoint, save_converted
from pixelsplat_ns.cli import input_errors_exit


@dataclass
class ConvertCheckpoint:
    """Convert an official pixelSplat checkpoint for pixelsplat-ns."""

    input: Positional[Annotated[Path, arg(metavar="IN.ckpt")]]
    """Official Lightning checkpoint (.ckpt)."""
    output: Positional[Annotated[Path, arg(metavar="OUT.pt")]]
    """Converted checkpoint to write (.pt)."""
    force: bool = False
    """Overwrite OUT.pt if it exists."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(ConvertCheckpoint, args=argv, prog="pixelsplat-convert-checkpoint")
    with input_errors_exit(FileNotFoundError, FileExistsError, CheckpointError):
        if args.output.exists() and not args.force:
            raise FileExistsError(f"{args.output} exists; pass --force to overwrite it")
        if args.output.resolve() == args.input.resolve():
            raise FileExistsError("the output must be a different file from the input")
        config, state_dict = convert_official(read_checkpoint(args.input))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    save_converted(args.output, config, state_dict)
    variant = (
        "no epipolar transformer"
        if not config.use_epipolar_transformer
        else "no depth encoding"
        if config.epipolar.num_octaves == 0
        else "no probabilistic sampling"
        if config.num_depth_bins == 1
        else f"{config.num_context_views} context views"
    )
    print(
        f"converted {len(state_dict)} tensors ({sum(v.numel() for v in state_dict.values()):,} parameters; "
        f"{variant}) to {args.output}"
    )


if __name__ == "__main__":
    main()
