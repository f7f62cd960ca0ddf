"""``pixelsplat-process-data``: your own data -> a nerfstudio-data scene (images/ + transforms.json) that
``ns-train pixelsplat --data <scene>`` takes unchanged. The photos are copied, never changed (``pair
--distortion`` writes them undistorted, as PNG, since pixelSplat assumes pinhole cameras).

    pixelsplat-process-data pair --data photos/ --output-dir outputs/scenes/mine         # two photos, no cameras
    pixelsplat-process-data cameras --cameras photos/cameras.json --output-dir outputs/scenes/mine
    pixelsplat-process-data re10k --data datasets/re10k --key 5aca87f95a9412c6 --output-dir outputs/scenes/5aca
    pixelsplat-process-data sample --output-dir outputs/scenes/sample                  # the bundled sample scene

``pair``: two photos and nothing else; the cameras come from the pixels (``pixelsplat_ns/process_data/pair.py``).
``cameras``: photos with known cameras, described in a small JSON file (``pixelsplat_ns/process_data/cameras.py``).
``re10k``: one scene of a RealEstate10k/ACID-format dataset. ``sample``: the sample scene that ships inside the
package, copied where you can see it. Many photos or a video: nerfstudio's
``ns-process-data images`` (COLMAP). Subcommands import what they use when they run, so that ``--help`` is quick.
"""

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import tyro

from pixelsplat_ns.cli import input_errors_exit
from pixelsplat_ns.core.errors import InputError


@dataclass
class Pair:
    """Two photos with no camera information -> their cameras, from the pixels, and the scene. Prints a line per
    stage and what it found: matches, inliers, the rotation between the photos, where the focal length came from.
    Warns when the matches show lens distortion; refuses a flat scene whose pose is ambiguous. With --distortion,
    both photos are undistorted before matching (for the focal length of --focal-px, --fov-deg or EXIF, the
    principal point at the centre), and the scene gets them undistorted (PNG)."""

    data: Path
    """Folder holding exactly two photos (any format; EXIF orientation is applied first)."""
    output_dir: Path
    """Scene folder to write (images/ and transforms.json)."""
    focal_px: Optional[float] = None
    """Focal length in pixels of the photos as displayed; overrides EXIF and the estimate."""
    fov_deg: Optional[float] = None
    """Horizontal field of view in degrees, if the focal length is not known; overrides EXIF and the estimate."""
    distortion: Optional[tuple[float, ...]] = None
    """Lens distortion, OpenCV's K1 K2 P1 P2 [K3] (calibrateCamera's, its fx as --focal-px): undistorts the photos."""
    force: bool = False
    """Write into OUTPUT_DIR although it is not empty (files of the same names are replaced)."""

    def main(self) -> None:
        from pixelsplat_ns.core.progress import stage
        from pixelsplat_ns.process_data.pair import pair_cameras, read_pair, undistorted_pair, write_pair_scene
        from pixelsplat_ns.process_data.scene_folder import check_output_folder

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        with input_errors_exit(InputError):
            check_output_folder(self.output_dir, [self.data], self.force)
            with stage("reading the photos") as found:
                photos = read_pair(self.data)
                found.text = f"{photos[0].path.name}, {photos[1].path.name}, {photos[0].size[0]}x{photos[0].size[1]}"
            if self.distortion is not None:
                with stage("undistorting the photos") as found:
                    photos = undistorted_pair(photos, self.distortion, self.focal_px, self.fov_deg)
                    found.text = f"--distortion {' '.join(f'{c:g}' for c in self.distortion)}"
            cameras = pair_cameras(photos, self.focal_px, self.fov_deg)
            with stage("writing the scene") as found:
                write_pair_scene(photos, cameras, self.output_dir)
                found.text = str(self.output_dir)
        print(
            f"{cameras.matches} matches, {cameras.inliers} inliers of the relative pose; the second photo is turned "
            f"{cameras.rotation_degrees:.1f} degrees from the first; focal length {cameras.focal_px:.1f} px, "
            f"{cameras.focal_source}; the pose comes from {cameras.pose_from}"
        )
        print(f"wrote {self.output_dir}; {next_step(self.output_dir)}")


@dataclass
class Cameras:
    """Photos and their known cameras (a cameras JSON) -> the scene."""

    cameras: Path
    """Cameras JSON (format: pixelsplat_ns/process_data/cameras.py)."""
    output_dir: Path
    """Scene folder to write (images/ and transforms.json)."""
    images: Optional[Path] = None
    """Folder that relative image paths are resolved against (default: the cameras JSON's folder)."""
    force: bool = False
    """Write into OUTPUT_DIR although it is not empty (files of the same names are replaced)."""

    def main(self) -> None:
        from pixelsplat_ns.process_data.cameras import scene_from_cameras

        logging.basicConfig(level=logging.INFO, format="%(message)s")
        with input_errors_exit(InputError):
            transforms = scene_from_cameras(self.cameras, self.output_dir, self.images, self.force)
        print(f"wrote {len(transforms['frames'])} frames to {self.output_dir}; {next_step(self.output_dir)}")


@dataclass
class Re10k:
    """One scene of a RealEstate10k/ACID-format dataset (chunks) -> the scene, its frames stored byte for byte,
    its cameras in the dataset's world frame."""

    data: Path
    """Dataset root (<split>/*.torch and <split>/index.json)."""
    key: str
    """Scene key."""
    output_dir: Path
    """Scene folder to write."""
    split: str = "test"
    """Split folder under DATA."""
    force: bool = False
    """Write into OUTPUT_DIR although it is not empty (files of the same names are replaced)."""

    def main(self) -> None:
        from pixelsplat_ns.data.nerfstudio_convert import write_nerfstudio_scene
        from pixelsplat_ns.data.scene import read_scene
        from pixelsplat_ns.process_data.scene_folder import check_output_folder, writing_into

        with input_errors_exit(FileNotFoundError, KeyError, InputError):
            check_output_folder(self.output_dir, [self.data], self.force)
            scene = read_scene(self.data, self.split, self.key)
            with writing_into(self.output_dir):
                write_nerfstudio_scene(scene, self.output_dir, overwrite=True)
        print(f"wrote {len(scene)} frames of {self.key} to {self.output_dir}; {next_step(self.output_dir)}")


@dataclass
class Sample:
    """The sample scene that ships inside the package (21 views of a synthetic room, 256 x 144, nerfstudio-data
    format) -> a folder of your choice, to try ``ns-train pixelsplat`` before bringing your own photos."""

    output_dir: Path
    """Scene folder to write (images/ and transforms.json)."""
    force: bool = False
    """Write into OUTPUT_DIR although it is not empty (files of the same names are replaced)."""

    def main(self) -> None:
        from pixelsplat_ns.process_data.scene_folder import copy_sample_scene

        with input_errors_exit(InputError):
            images = copy_sample_scene(self.output_dir, self.force)
        print(f"wrote the sample scene ({images} images) to {self.output_dir}; {next_step(self.output_dir)}")


def next_step(scene: Path) -> str:
    """What to run on a scene just written, and what that command does with the viewer (every subcommand ends
    with this line)."""
    return (
        f"predict it with: ns-train pixelsplat --data {scene} (the viewer then stays open until Ctrl+C; add "
        "--vis tensorboard to end once the prediction is saved)"
    )


def main(argv: Optional[list[str]] = None) -> None:
    tyro.extras.subcommand_cli_from_dict(
        {"pair": Pair, "cameras": Cameras, "re10k": Re10k, "sample": Sample}, args=argv, prog="pixelsplat-process-data"
    ).main()


if __name__ == "__main__":
    main()
