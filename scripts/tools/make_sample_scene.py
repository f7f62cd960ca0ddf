"""Write the bundled sample scene: a synthetic room (the generator the bundled encoder was trained on, with a
seed it never saw) as a nerfstudio-data folder that ``ns-train pixelsplat --data`` reads.

    python scripts/tools/make_sample_scene.py --out pixelsplat_ns/sample_scene --overwrite

21 consecutive frames of a forward walk, 256 x 144: the first and last are 20 frames apart, inside the
context gaps the tiny encoder was trained on (16-24 frames), so they make a good context pair.
"""

from dataclasses import dataclass, replace
from pathlib import Path

import tyro

from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.data.nerfstudio_convert import write_nerfstudio_scene
from pixelsplat_ns.data.synthetic import SyntheticConfig, synthetic_scene
from pixelsplat_ns.process_data.scene_folder import check_output_folder, writing_into

SAMPLE_SCENE = Path(__file__).resolve().parents[2] / "pixelsplat_ns" / "sample_scene"


@dataclass
class Args:
    out: Path = SAMPLE_SCENE
    """Output folder (nerfstudio-data: images/ and transforms.json)."""
    seed: int = 1
    """Synthetic dataset seed (the bundled encoder was trained on seed 0)."""
    index: int = 0
    """Scene within the seed."""
    frames: int = 21
    """Consecutive frames kept from the start of the walk."""
    overwrite: bool = False
    """Write into a folder that is not empty: files of the same names are replaced, others stay (transforms.json
    lists only the new frames)."""


def main(args: Args) -> None:
    if args.frames < 2:
        raise SystemExit(f"--frames {args.frames}: a scene needs at least 2 frames")
    walk = max(48, args.frames)  # the walk the bundled scene was cut from, longer when more frames are asked for
    config = SyntheticConfig(height=144, width=256, min_frames=walk, max_frames=walk, jpeg_quality=92)
    scene = synthetic_scene(args.seed, args.index, config)
    keep = slice(0, args.frames)
    scene = replace(scene, timestamps=scene.timestamps[keep], cameras=scene.cameras[keep], images=scene.images[keep])
    try:  # the output-folder rules of pixelsplat-process-data
        check_output_folder(args.out, [], args.overwrite, force_flag="--overwrite")
        with writing_into(args.out):
            print(f"wrote {write_nerfstudio_scene(scene, args.out, overwrite=True)}")
    except InputError as error:
        raise SystemExit(str(error)) from None


if __name__ == "__main__":
    main(tyro.cli(Args))
