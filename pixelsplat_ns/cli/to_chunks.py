"""``pixelsplat-to-chunks``: nerfstudio datasets (transforms.json, COLMAP, any nerfstudio dataparser) ->
RealEstate10k-format chunks, one scene each, for ``ns-train pixelsplat-pretrain`` and ``pixelsplat-evaluate``.

    pixelsplat-to-chunks --data my_room my_kitchen --output-dir outputs/datasets/mine --split test

Poses keep the input's world frame (no re-orientation, centring or scaling). Distorted or non-pinhole cameras
are refused with an explanation. Existing chunks are never replaced without --overwrite. The reverse, one
chunk scene to a nerfstudio folder, is ``pixelsplat-process-data re10k``.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tyro

from pixelsplat_ns.cli import input_errors_exit


@dataclass
class ToChunks:
    """nerfstudio datasets -> chunks + index.json under OUTPUT_DIR/SPLIT."""

    data: list[Path]
    """Dataset folders (or transforms.json files), one scene each."""
    output_dir: Path
    """Chunk dataset root."""
    split: str = "test"
    """Split folder to write under OUTPUT_DIR."""
    keys: Optional[list[str]] = None
    """Scene keys, one per dataset (default: the folder names)."""
    dataparser: str = "auto"
    """nerfstudio dataparser name (nerfstudio-data, colmap, ...); auto: transforms.json, else COLMAP."""
    overwrite: bool = False
    """Replace the chunks and index.json already in OUTPUT_DIR/SPLIT."""


def main(argv: Optional[list[str]] = None) -> None:
    args = tyro.cli(ToChunks, args=argv, prog="pixelsplat-to-chunks")
    from pixelsplat_ns.data.nerfstudio_convert import nerfstudio_to_chunks

    with input_errors_exit(FileNotFoundError, FileExistsError, KeyError, ValueError):
        index = nerfstudio_to_chunks(args.data, args.output_dir, args.split, args.keys, args.dataparser, args.overwrite)
    print(f"wrote {len(index)} scene(s) to {args.output_dir / args.split}: {', '.join(index)}")


if __name__ == "__main__":
    main()
