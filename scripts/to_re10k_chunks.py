"""Convert between nerfstudio datasets and RealEstate10k chunks.

    # nerfstudio datasets (transforms.json, COLMAP, any nerfstudio dataparser) -> chunks, one scene each
    python scripts/to_re10k_chunks.py to-chunks --data my_room my_kitchen --out datasets/mine --split test
    # one chunk scene -> a nerfstudio-data folder (images/ + transforms.json)
    python scripts/to_re10k_chunks.py to-nerfstudio --root datasets/re10k --split test --key 5aca87f95a9412c6 \\
        --out scenes/5aca87f95a9412c6

Poses keep the input's world frame (no re-orientation, centring or scaling). Distorted or non-pinhole cameras
are refused with an explanation. Existing output is never replaced without --overwrite.
The conversion lives in pixelsplat_ns/data/nerfstudio_convert.py.
"""

from dataclasses import dataclass
from pathlib import Path

import tyro

from pixelsplat_ns.data.nerfstudio_convert import nerfstudio_to_chunks, write_nerfstudio_scene
from pixelsplat_ns.data.scene import read_scene


@dataclass
class ToChunks:
    """nerfstudio datasets -> chunks + index.json under OUT/SPLIT."""

    data: list[Path]
    """Dataset folders (or transforms.json files), one scene each."""
    out: Path
    """Chunk dataset root."""
    split: str = "test"
    """Split folder to write under OUT."""
    keys: list[str] | None = None
    """Scene keys, one per dataset (default: the folder names)."""
    dataparser: str = "auto"
    """nerfstudio dataparser name (nerfstudio-data, colmap, ...); auto: transforms.json, else COLMAP."""
    overwrite: bool = False
    """Replace the chunks and index.json already in OUT/SPLIT."""

    def main(self) -> None:
        index = nerfstudio_to_chunks(self.data, self.out, self.split, self.keys, self.dataparser, self.overwrite)
        print(f"wrote {len(index)} scene(s) to {self.out / self.split}: {', '.join(index)}")


@dataclass
class ToNerfstudio:
    """One chunk scene -> a nerfstudio-data folder (images/ + transforms.json)."""

    root: Path
    """Chunk dataset root."""
    key: str
    """Scene key."""
    out: Path
    """Output folder."""
    split: str = "test"
    """Split folder under ROOT."""
    overwrite: bool = False
    """Write into a folder that is not empty (replacing files of the same names)."""

    def main(self) -> None:
        scene = read_scene(self.root, self.split, self.key)
        write_nerfstudio_scene(scene, self.out, self.overwrite)
        print(f"wrote {len(scene)} frames of {self.key} to {self.out}")


if __name__ == "__main__":
    command = tyro.extras.subcommand_cli_from_dict({"to-chunks": ToChunks, "to-nerfstudio": ToNerfstudio})
    try:
        command.main()
    except (FileNotFoundError, FileExistsError, KeyError, ValueError) as error:  # bad input: say why, no traceback
        raise SystemExit(f"error: {error}") from error
