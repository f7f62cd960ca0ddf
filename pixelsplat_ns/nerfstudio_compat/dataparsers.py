"""nerfstudio's dataparsers, read so that the input's own frame and every frame survive for our checks."""

import dataclasses
from pathlib import Path
from typing import Any

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
