"""``pixelsplat-ply-to-input-frame IN.ply DATAPARSER_TRANSFORMS.json OUT.ply``: a splat exported by
``ns-export gaussian-splat`` (in nerfstudio's dataparser frame) mapped into the frame of your input poses.

Positions, rotations, scales, normals and the view-dependent (SH) colour are mapped; everything else is copied
(``pixelsplat_ns/input_frame.py`` says how). The input is never overwritten, an existing output only with
``--force``.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import tyro
from tyro.conf import Positional, arg

from pixelsplat_ns.cli import input_errors_exit
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.input_frame import convert


@dataclass
class PlyToInputFrame:
    """Map a Gaussian splat .ply from nerfstudio's dataparser frame into the input data's own frame."""

    input: Positional[Annotated[Path, arg(metavar="IN.ply")]]
    """Gaussian splat .ply from ns-export gaussian-splat."""
    transforms: Positional[Annotated[Path, arg(metavar="DATAPARSER_TRANSFORMS.json")]]
    """The run's dataparser_transforms.json."""
    output: Positional[Annotated[Path, arg(metavar="OUT.ply")]]
    """.ply to write, in the input data's frame."""
    force: bool = False
    """Overwrite OUT.ply if it exists."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(PlyToInputFrame, args=argv, prog="pixelsplat-ply-to-input-frame")
    with input_errors_exit(InputError):  # ConversionError, CannotWrite
        count, degree = convert(args.input, args.transforms, args.output, args.force)
    print(f"wrote {count:,} Gaussians (SH degree {degree}) in the input data's frame to {args.output}")


if __name__ == "__main__":
    main()
