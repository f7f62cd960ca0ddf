"""The per-scene datamanager: nerfstudio's full-image datamanager (so every dataparser works) plus the choice
and checks of the context views the encoder sees. Imported by ``pixelsplat_ns.config``: keep it light."""

import dataclasses
from pathlib import Path

import torch
from nerfstudio.cameras.cameras import CameraType
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager
from nerfstudio.utils.rich_utils import CONSOLE

from .context import ContextError, check_cameras, choose_context_views
from .nerfstudio_convert import NEUTRAL_DATAPARSER_SETTINGS


def check_training_cameras(dataparser_outputs) -> list[str]:
    """Check the training cameras a dataparser produced; returns the image names."""
    cameras = dataparser_outputs.cameras
    names = [Path(f).name for f in dataparser_outputs.image_filenames]
    check_cameras(cameras.camera_to_worlds, [CameraType(int(t)).name for t in cameras.camera_type.flatten()], names)
    return names


def check_input_cameras(dataparser_config, data) -> None:
    """Check the training cameras as the input gives them, before nerfstudio re-centres and scales them: its
    dataparsers divide by zero for a single view or views at one position, and spread a NaN pose to all."""
    neutral = {k: v for k, v in NEUTRAL_DATAPARSER_SETTINGS.items()
               if k != "eval_mode" and hasattr(dataparser_config, k)}
    config = dataclasses.replace(dataparser_config, **neutral)
    if data is not None:
        config.data = Path(data)
    check_training_cameras(config.setup().get_dataparser_outputs(split="train"))


class PixelSplatDataManager(FullImageDatamanager):
    """Full images of the dataparser's splits, with ``context_indices`` (into the training images): the views
    the encoder sees. The other training views are the targets for refinement; the eval split is for ns-eval
    (when it is empty, the training views are evaluated, with a warning)."""

    def __init__(self, config, device="cpu", test_mode="val", world_size=1, local_rank=0, **kwargs) -> None:
        self.context_indices: tuple[int, ...] = ()
        check_input_cameras(config.dataparser, config.data)
        super().__init__(config, device, test_mode, world_size, local_rank, **kwargs)
        names = check_training_cameras(self.train_dataparser_outputs)
        self.context_indices = self._context_indices(self.train_dataset.cameras.camera_to_worlds, names)
        CONSOLE.log(f"pixelsplat context views: {', '.join(names[i] for i in self.context_indices)}")
        self.train_unseen_cameras = self.sample_train_cameras()
        if len(self.eval_dataset) == 0:
            CONSOLE.print(f"[bold yellow]The dataset has no eval images: ns-eval and the eval logs score the "
                          f"{len(self.train_dataset)} training views instead (these include the context views, so "
                          "the scores are optimistic).")
            self.eval_dataset = self.train_dataset
            self.eval_unseen_cameras = list(range(len(self.eval_dataset)))

    def _context_indices(self, camera_to_worlds: torch.Tensor, names: list[str]) -> tuple[int, ...]:
        chosen = self.config.context_views
        if chosen is None:
            return choose_context_views(camera_to_worlds, self.config.max_context_angle)
        out_of_range = [i for i in chosen if not 0 <= i < len(names)]
        if out_of_range or len(set(chosen)) != len(chosen) or len(chosen) < 2:
            raise ContextError(f"--pipeline.datamanager.context-views {' '.join(map(str, chosen))}: give two (or more) "
                               f"different indices of training images, 0 to {len(names) - 1}")
        return tuple(chosen)

    def sample_train_cameras(self) -> list[int]:
        """Target views for refinement: the training views other than the context (all of them when the
        context views are the only ones)."""
        indices = super().sample_train_cameras()
        targets = [i for i in indices if i not in self.context_indices]
        return targets or indices
