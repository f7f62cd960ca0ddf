"""The per-scene datamanager: nerfstudio's full-image datamanager (so every dataparser works) plus the checks
of every frame and of the context flags; the context views themselves come from the run's context plan
(``context_plan``), which the pipeline hands over."""

from pathlib import Path

import torch
from nerfstudio.cameras.cameras import CameraType
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.core.camera_checks import CameraError, check_intrinsics, check_rotation
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.images import ImageError, displayed_size
from pixelsplat_ns.data.chunks import is_chunk_root
from pixelsplat_ns.nerfstudio_compat.dataparsers import (
    check_nerfstudio_transforms,
    parse_input_frame,
    without_dataparser_alpha,
)
from pixelsplat_ns.nerfstudio_compat.trainer_config import missing_data_message

from .context import check_cameras
from .context_plan import ContextOptions, ContextPlan
from .dataset import PixelSplatDataset


def check_training_cameras(dataparser_outputs, total: int | None = None) -> list[str]:
    """Check the training cameras a dataparser produced (``check_cameras``); returns the image names."""
    cameras = dataparser_outputs.cameras
    names = [Path(f).name for f in dataparser_outputs.image_filenames]
    check_cameras(
        cameras.camera_to_worlds, [CameraType(int(t)).name for t in cameras.camera_type.flatten()], names, total
    )
    return names


def check_frames(dataparser_outputs) -> None:
    """Check every frame as the input gives it, eval frames included: its rotation, its intrinsics and its
    image, which must be readable and, as displayed (EXIF orientation applied), of the camera's size."""
    cameras = dataparser_outputs.cameras
    kinds = sorted({CameraType(int(t)).name for t in cameras.camera_type.flatten()} - {"PERSPECTIVE"})
    if kinds:
        raise CameraError(
            f"pixelsplat needs pinhole (perspective) cameras for every frame, eval frames included; "
            f"this dataset has {', '.join(kinds)}: undistort the images first (e.g. COLMAP's "
            "image_undistorter) and give pinhole intrinsics"
        )
    not_finite = [
        Path(path).name
        for i, path in enumerate(dataparser_outputs.image_filenames)
        if not bool(torch.isfinite(cameras.camera_to_worlds[i]).all())
    ]
    if not_finite:  # an eval frame's bad pose would become every camera's in nerfstudio's auto-orientation
        raise CameraError(
            f"{len(not_finite)} frame(s) have NaN or infinite values in their pose (transform_matrix): "
            f"{', '.join(not_finite[:5])}; every frame is checked, eval frames too: fix or remove them"
        )
    mismatched = []
    for i, path in enumerate(dataparser_outputs.image_filenames):
        name = Path(path).name
        camera = cameras[i]
        check_rotation(camera.camera_to_worlds[:3, :3], f"frame {name}")
        width, height = int(camera.width), int(camera.height)
        check_intrinsics(
            float(camera.fx), float(camera.fy), float(camera.cx), float(camera.cy), width, height, f"frame {name}"
        )
        displayed, stored, orientation = displayed_size(path, name)
        if displayed != (width, height):
            turned = (
                f" (EXIF orientation {orientation} turns its stored {stored[0]}x{stored[1]} pixels)"
                if orientation != 1
                else ""
            )
            mismatched.append(f"{name} is {displayed[0]}x{displayed[1]}{turned}, its camera {width}x{height}")
        elif orientation != 1:
            CONSOLE.print(
                f"[yellow]{name} has EXIF orientation {orientation}: pixelsplat uses it as displayed; its "
                "camera must describe the displayed picture (cameras computed on the stored pixels, as "
                "COLMAP's, would not)"
            )
    if mismatched:
        raise ImageError(
            f"{len(mismatched)} image(s) do not have the size their camera says, e.g. "
            f"{'; '.join(mismatched[:5])}. Images are used as displayed (EXIF orientation applied): "
            "give each frame the width, height and intrinsics of its image as displayed (scale "
            "fl_x, cx by the width ratio and fl_y, cy by the height ratio for a resized image), or "
            "give the images the cameras were made for"
        )


class PixelSplatDataManager(FullImageDatamanager[PixelSplatDataset]):
    """Full images of the dataparser's splits, with ``context_indices`` (into the training images): the views
    the encoder sees, from the run's context plan (``use_context_plan``; the pipeline makes it from
    ``context_options`` when training starts). The other training views are the targets for refinement; the
    eval split is for ns-eval (when it is empty, the training views are evaluated, with a warning). RGBA images
    reach the model as they are: it composites context views, targets and renders onto its own background."""

    def __init__(self, config, device="cpu", test_mode="val", world_size=1, local_rank=0, **kwargs) -> None:
        self.context_indices: tuple[int, ...] = ()
        # The context flags, checked before anything is loaded.
        self.context_options = ContextOptions.from_config(config)
        data = Path(config.data if config.data is not None else config.dataparser.data)
        if not data.exists():
            raise InputError(missing_data_message(data, per_scene=True))
        if config.data is not None and is_chunk_root(Path(config.data)):
            raise InputError(
                f"{config.data} is a RealEstate10k-format dataset of many scenes, not a nerfstudio "
                f"scene: take one scene out with `pixelsplat-process-data re10k --data {config.data} "
                "--key KEY --output-dir SCENE` and predict that"
            )
        # The input's own cameras and images first: nerfstudio's normalization would hide what is wrong with
        # them, and its image loader would fail on a mismatch with an assertion in a worker thread.
        if isinstance(config.dataparser, NerfstudioDataParserConfig):  # the default, and the usual mix-ups
            check_nerfstudio_transforms(data)
        try:
            every_frame = parse_input_frame(config.dataparser, config.data, every_frame=True)
        except FileNotFoundError as error:  # the dataparser's own message is a traceback through nerfstudio
            dataparser = type(config.dataparser).__name__.removesuffix("Config")
            raise InputError(
                f"--data {data} is not a scene that nerfstudio's {dataparser} reads: "
                f"{error.strerror or error}: {error.filename}. A nerfstudio scene folder holds transforms.json and "
                "its images; two photos become one with `pixelsplat-process-data pair --data PHOTOS --output-dir "
                "SCENE`, many with nerfstudio's `ns-process-data images --data PHOTOS --output-dir SCENE`"
            ) from error
        check_training_cameras(parse_input_frame(config.dataparser, config.data), len(every_frame.image_filenames))
        check_frames(every_frame)
        rgba_config = without_dataparser_alpha(config)
        if rgba_config is not config:
            CONSOLE.log(
                f"pixelsplat composites RGBA images onto the model's background, not the dataparser's alpha "
                f"color ({config.dataparser.alpha_color})"
            )
        super().__init__(rgba_config, device, test_mode, world_size, local_rank, **kwargs)
        check_training_cameras(self.train_dataparser_outputs)
        # nerfstudio draws a new target order at each call: with this draw (the plan's is the next) a refinement
        # visits its targets in the order earlier versions' runs of the same flags did.
        self.train_unseen_cameras = self.sample_train_cameras()
        if len(self.eval_dataset) == 0:
            CONSOLE.print(
                f"[bold yellow]The dataset has no eval images: ns-eval and the eval logs score the "
                f"{len(self.train_dataset)} training views instead (these include the context views, so "
                "the scores are optimistic)."
            )
            self.eval_dataset = self.train_dataset
            self.eval_unseen_cameras = list(range(len(self.eval_dataset)))

    def _load_images(self, split, cache_images_device):
        """Works around: nerfstudio keeps the image cache in pinned memory when told to cache on the CPU (by
        ``--pipeline.datamanager.cache-images cpu``, or by itself for over 500 training images), and pinning
        needs an NVIDIA driver: without one it fails with "Found no NVIDIA driver". Pinned memory only speeds up
        copies to a GPU; on a run that computes elsewhere the cache is kept on the run's device (its "gpu"
        cache, which is the same CPU memory, unpinned)."""
        if cache_images_device == "cpu" and torch.device(self.device).type != "cuda":
            cache_images_device = "gpu"
        return super()._load_images(split, cache_images_device)

    def use_context_plan(self, plan: ContextPlan) -> None:
        """Take the run's context plan: its views are the context, the other training views the targets."""
        self.context_indices = plan.views
        self.train_unseen_cameras = self.sample_train_cameras()

    def sample_train_cameras(self) -> list[int]:
        """Target views for refinement: the training views other than the context (all of them when the
        context views are the only ones)."""
        indices = super().sample_train_cameras()
        targets = [i for i in indices if i not in self.context_indices]
        return targets or indices
