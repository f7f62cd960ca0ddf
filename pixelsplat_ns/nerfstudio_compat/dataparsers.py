"""nerfstudio's dataparsers, read so that the input's own frame and every frame survive for our checks."""

import dataclasses
import json
from pathlib import Path
from typing import Any

from pixelsplat_ns.core.errors import InputError

NEUTRAL_DATAPARSER_SETTINGS: dict[str, Any] = {
    "orientation_method": "none",
    "center_method": "none",
    "auto_scale_poses": False,
    "scale_factor": 1.0,
    "eval_mode": "all",
    "downscale_factor": 1,
    "assume_colmap_world_coordinate_convention": False,
    "load_3D_points": False,
}
"""Applied to whichever of these fields a dataparser's config has: keep the input's frame and every frame, and
never write downscaled image copies into the user's folder."""


def parse_input_frame(dataparser_config, data, every_frame: bool = False):
    """The dataparser's training outputs with the poses as the input gives them (``NEUTRAL_DATAPARSER_
    SETTINGS``; the train/eval split kept unless ``every_frame``), to check cameras before nerfstudio
    normalizes them.

    Works around: nerfstudio's dataparsers re-centre and scale the poses (``auto_orient_and_center_poses``,
    ``1 / max |t|``) without checks, so one view, views at one position or one NaN pose turn every pose into
    NaN or infinity, or end in a ZeroDivisionError far from the cause. The dataparser then runs twice: once
    here, once in nerfstudio's datamanager."""
    neutral = {
        k: v
        for k, v in NEUTRAL_DATAPARSER_SETTINGS.items()
        if (every_frame or k != "eval_mode") and hasattr(dataparser_config, k)
    }
    config = dataclasses.replace(dataparser_config, **neutral)
    if data is not None:
        config.data = Path(data)
    from nerfstudio.utils.rich_utils import (
        CONSOLE,  # nerfstudio only where a dataparser runs: data/ imports this module
    )

    quiet, CONSOLE.quiet = CONSOLE.quiet, True  # its notes (e.g. on --eval-mode all) are about this read only
    try:
        return config.setup().get_dataparser_outputs(split="train")
    finally:
        CONSOLE.quiet = quiet


def without_dataparser_alpha(datamanager_config):
    """A copy of the datamanager config whose dataparser leaves RGBA images as they are.

    Works around: nerfstudio's ``InputDataset`` composites RGBA images onto the dataparser's ``alpha_color``
    when it loads them, before the model sees them; the per-scene model composites context views, targets
    and renders onto one background of its own (``--pipeline.model.background-color``)."""
    dataparser = datamanager_config.dataparser
    if getattr(dataparser, "alpha_color", None) is None:
        return datamanager_config
    return dataclasses.replace(datamanager_config, dataparser=dataclasses.replace(dataparser, alpha_color=None))


NERFSTUDIO_INTRINSICS = {
    "fl_x": "focal length in x, pixels",
    "fl_y": "focal length in y, pixels",
    "cx": "principal point x, pixels",
    "cy": "principal point y, pixels",
    "w": "image width, pixels",
    "h": "image height, pixels",
}
"""What nerfstudio-data needs of every frame's camera, at the top level or in the frame
(``nerfstudio_dataparser.py``: an ``assert`` each)."""


NS_TRAIN_DATAPARSER = "add its dataparser at the end of the command, `ns-train pixelsplat --data {data} {dataparser}`"
"""How an ``ns-train`` user chooses a dataparser, for ``check_nerfstudio_transforms``."""


def check_nerfstudio_transforms(data: Path, choose_dataparser: str = NS_TRAIN_DATAPARSER) -> None:
    """Refuse, in one line naming the fix, a scene that nerfstudio's default dataparser (``nerfstudio-data``) would
    fail on with a bare ``AssertionError``, ``KeyError`` or JSON error: a scene in another dataparser's format
    (Blender's synthetic scenes: ``transforms_train.json``, ``camera_angle_x``; instant-ngp's field of view), a
    transforms.json that is not JSON, or one missing ``frames``, a frame's ``file_path`` / ``transform_matrix``,
    or an intrinsic (``NERFSTUDIO_INTRINSICS``). ``data`` is ``--data``: the scene's folder or its transforms.json;
    ``choose_dataparser`` says how the command takes another dataparser (``{data}`` and ``{dataparser}`` filled in).
    A folder without transforms.json is left to the caller unless it is a Blender scene. Raises ``InputError``."""
    data = Path(data)
    path = data if data.suffix == ".json" else data / "transforms.json"
    folder = path.parent
    blender = (folder / "transforms_train.json").is_file()
    if not path.is_file():
        if blender:
            raise InputError(
                f"{folder} is a Blender synthetic scene (transforms_train.json, no transforms.json), which "
                f"nerfstudio's default dataparser does not read: "
                + choose_dataparser.format(data=folder, dataparser="blender-data")
            )
        return
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise InputError(f"{path} is not valid JSON ({error}): fix it, or write the scene anew") from error
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames or not all(isinstance(frame, dict) for frame in frames):
        raise InputError(
            f'{path} has no list of frames (a "frames" list of objects, each with file_path and transform_matrix): '
            "it is not a nerfstudio scene's transforms.json"
        )
    for i, frame in enumerate(frames):
        for field in ("file_path", "transform_matrix"):
            if field not in frame:
                raise InputError(f"{path}: frame {i} has no {field}: each frame needs file_path and transform_matrix")
    missing = {key for key in NERFSTUDIO_INTRINSICS if key not in meta and any(key not in f for f in frames)}
    if not missing:
        return
    if "camera_angle_x" in meta:
        dataparser = "blender-data" if blender else "instant-ngp-data"
        raise InputError(
            f"{path} gives the cameras' field of view (camera_angle_x) instead of focal lengths in pixels: the "
            f"{'Blender synthetic scenes' if blender else 'instant-ngp'} format, which nerfstudio's default "
            f"dataparser does not read: "
            + choose_dataparser.format(data=folder if blender else data, dataparser=dataparser)
        )
    first = next(i for i, frame in enumerate(frames) if any(k not in frame and k not in meta for k in missing))
    named = ", ".join(f"{key} ({NERFSTUDIO_INTRINSICS[key]})" for key in NERFSTUDIO_INTRINSICS if key in missing)
    raise InputError(
        f"{path}: frame {first} has no {named}, at the top level or in the frame: add them (nerfstudio's "
        "`ns-process-data` and `pixelsplat-process-data` write complete files), or read your format with its own "
        "dataparser: " + choose_dataparser.format(data=data, dataparser="DATAPARSER")
    )
