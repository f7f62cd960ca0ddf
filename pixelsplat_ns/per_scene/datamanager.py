"""The per-scene datamanager: nerfstudio's full-image datamanager (so every dataparser works) plus the choice
and checks of the context views the encoder sees."""

from pathlib import Path

import torch
from nerfstudio.cameras.cameras import CameraType
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.nerfstudio_workarounds import parse_input_frame, without_dataparser_alpha

from .context import ContextError, check_cameras, choose_context_views


def check_training_cameras(dataparser_outputs) -> list[str]:
    """Check the training cameras a dataparser produced (``check_cameras``); returns the image names."""
    cameras = dataparser_outputs.cameras
    names = [Path(f).name for f in dataparser_outputs.image_filenames]
    check_cameras(cameras.camera_to_worlds, [CameraType(int(t)).name for t in cameras.camera_type.flatten()], names)
    return names


class PixelSplatDataManager(FullImageDatamanager):
    """Full images of the dataparser's splits, with ``context_indices`` (into the training images): the views
    the encoder sees. The other training views are the targets for refinement; the eval split is for ns-eval
    (when it is empty, the training views are evaluated, with a warning). RGBA images reach the model as they
    are: it composites context views, targets and renders onto its own background."""

    def __init__(self, config, device="cpu", test_mode="val", world_size=1, local_rank=0, **kwargs) -> None:
        self.context_indices: tuple[int, ...] = ()
        # The input's own cameras first: nerfstudio's normalization would hide what is wrong with them.
        check_training_cameras(parse_input_frame(config.dataparser, config.data))
        rgba_config = without_dataparser_alpha(config)
        if rgba_config is not config:
            CONSOLE.log(f"pixelsplat composites RGBA images onto the model's background, not the dataparser's alpha "
                        f"color ({config.dataparser.alpha_color})")
        super().__init__(rgba_config, device, test_mode, world_size, local_rank, **kwargs)
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
