"""``pixelsplat-process-data``: your own data -> a nerfstudio-data scene (images/ + transforms.json) that
``ns-train pixelsplat --data <scene>`` takes unchanged.

    pixelsplat-process-data cameras --cameras photos/cameras.json --output-dir outputs/scenes/mine
    pixelsplat-process-data re10k --data datasets/re10k --key 5aca87f95a9412c6 --output-dir outputs/scenes/5aca

``cameras``: photos with known cameras, described in a small JSON file (format:
``pixelsplat_ns/process_data/cameras.py``). ``re10k``: one scene of a RealEstate10k/ACID-format dataset.
Photos without cameras: nerfstudio's ``ns-process-data images`` (COLMAP). Subcommands import what they use
when they run, so that ``--help`` is quick.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tyro

from pixelsplat_ns.scripts import input_errors_exit


@dataclass
class Cameras:
    """Photos and their known cameras (a cameras JSON) -> OUTPUT_DIR/images + OUTPUT_DIR/transforms.json.
    The photos are copied, never changed."""

    cameras: Path
    """Cameras JSON (format: pixelsplat_ns/process_data/cameras.py)."""
    output_dir: Path
    """Scene folder to write (images/ and transforms.json)."""
    images: Optional[Path] = None
    """Folder that relative image paths are resolved against (default: the cameras JSON's folder)."""
    overwrite: bool = False
    """Write into OUTPUT_DIR although it is not empty (files of the same names are replaced)."""

    def main(self) -> None:
        from pixelsplat_ns.process_data.cameras import CamerasError, scene_from_cameras

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        with input_errors_exit(CamerasError):
            transforms = scene_from_cameras(self.cameras, self.output_dir, self.images, self.overwrite)
        print(f"wrote {len(transforms['frames'])} frames to {self.output_dir}; train with: "
              f"ns-train pixelsplat --data {self.output_dir}")


@dataclass
class Re10k:
    """One scene of a RealEstate10k/ACID-format dataset (chunks) -> a nerfstudio-data folder, its frames
    stored byte for byte, its cameras in the dataset's world frame."""

    data: Path
    """Dataset root (<split>/*.torch and <split>/index.json)."""
    key: str
    """Scene key."""
    output_dir: Path
    """Scene folder to write."""
    split: str = "test"
    """Split folder under DATA."""
    overwrite: bool = False
    """Write into OUTPUT_DIR although it is not empty (files of the same names are replaced)."""

    def main(self) -> None:
        from pixelsplat_ns.data.nerfstudio_convert import write_nerfstudio_scene
        from pixelsplat_ns.data.scene import read_scene

        with input_errors_exit(FileNotFoundError, FileExistsError, KeyError, ValueError):
            scene = read_scene(self.data, self.split, self.key)
            write_nerfstudio_scene(scene, self.output_dir, self.overwrite)
        print(f"wrote {len(scene)} frames of {self.key} to {self.output_dir}")


def main(argv: Optional[list[str]] = None) -> None:
    tyro.extras.subcommand_cli_from_dict({"cameras": Cameras, "re10k": Re10k}, args=argv,
                                         prog="pixelsplat-process-data").main()


if __name__ == "__main__":
    main()
