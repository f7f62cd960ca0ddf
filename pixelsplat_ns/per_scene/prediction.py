"""The prediction of one scene: the configured encoder bound to the groups of the run's context plan
(``context_plan``: one pair by default; several along a capture with ``--pipeline.datamanager.context-pairs``,
fused by ``fusion``), and what the plan needs measured first (the scene's depth, for ``context-pairs auto``)."""

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Optional, Sequence, Union

import numpy as np
import torch
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER, CheckpointError, build_encoder, read_encoder
from pixelsplat_ns.core.conventions import to_gsplat
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.core.progress import progress_bar
from pixelsplat_ns.core.views import Views
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.encoder.config import with_sh_convention

from . import scene_depth
from .context import ContextError, context_views, to_pil
from .context_groups import groups_along_path
from .context_plan import ContextPlan, SceneDepth, depth_probe_group, log_plan, plan_context
from .fusion import FusedScene, add_group, view_depths


class SceneEncoder(torch.nn.Module):
    """The encoder bound to one scene's context groups: calling it predicts the scene's Gaussians in the
    dataparser's frame (differentiably, with the same depth-bin draws every time). Each group is encoded as the
    paper encodes its context (its own baseline normalization and near/far); after ``fuse`` the groups'
    Gaussians are reduced to those the fusion kept, else concatenated."""

    def __init__(
        self,
        encoder: PixelSplatEncoder,
        contexts: Sequence[Views],
        scales: Sequence[float],
        deterministic: bool,
        seed: int,
    ):
        super().__init__()
        self.encoder, self.contexts, self.scales = encoder, list(contexts), list(scales)
        self.deterministic, self.seed = deterministic, seed
        self.keep: Optional[list[torch.Tensor]] = None

    @property
    def context(self) -> Views:
        """The first group's context views (the only ones by default)."""
        return self.contexts[0]

    def near_plane(self) -> float:
        """The nearest of the groups' near planes, in the dataparser's units."""
        return min(float(context.near.min()) * scale for context, scale in zip(self.contexts, self.scales))

    def predict_group(self, group: int) -> Gaussians:
        """One group's Gaussians (all of them), in the dataparser's frame; group g draws with seed + g."""
        generator = torch.Generator(self.contexts[group].images.device).manual_seed(self.seed + group)
        # The contexts come from prepare_views (context_views), which checked their values once.
        gaussians = self.encoder.encode_prepared(self.contexts[group], self.deterministic, generator)
        return gaussians.scaled(self.scales[group])

    def each_group(self, progress: bool = False) -> Iterable[int]:
        """The groups' indices; with ``progress`` and several groups, under a progress bar (a capture's groups take
        seconds each on a CPU)."""
        groups = range(len(self.contexts))
        if not progress or len(groups) < 2:
            return groups
        return progress_bar(groups, "pixelsplat: predicting context groups")

    def gaussian_count(self) -> int:
        """How many Gaussians the groups predict before any fusion: each context pixel's ``gaussians_per_pixel``."""
        per_pixel = self.encoder.config.gaussians_per_pixel
        return sum(context.images[..., 0, :, :].numel() * per_pixel for context in self.contexts)

    def forward(self, progress: bool = False) -> Gaussians:
        parts = [self.predict_group(g) for g in self.each_group(progress)]
        if self.keep is not None:
            parts = [part.select(keep.nonzero()[:, 0]) for part, keep in zip(parts, self.keep)]
        return parts[0] if len(parts) == 1 else Gaussians.concatenate(parts)

    def fuse(self, tolerance: float) -> FusedScene:
        """Predict the groups one at a time, under a progress bar, and fuse them (``fusion``); later calls keep the
        same Gaussians."""
        scene = FusedScene(tolerance)
        with torch.no_grad():
            for group in self.each_group(progress=True):
                add_group(scene, self.predict_group(group), *self.context_cameras(group))
        self.keep = scene.keep
        return scene

    def context_cameras(self, group: int) -> tuple[torch.Tensor, torch.Tensor, int, int]:
        """A group's context views as the fusion takes them: world-to-camera (OpenCV, the dataparser's frame),
        pixel intrinsics, and the context images' height and width."""
        context = self.contexts[group]
        height, width = context.image_shape
        c2w = context.extrinsics[0].clone()
        c2w[:, :3, 3] *= self.scales[group]
        return *to_gsplat(c2w, context.intrinsics[0], width, height), height, width

    def median_depth(self, group: int = 0) -> float:
        """The median depth of a group's predicted surfaces from its context views (the dataparser's units)."""
        with torch.no_grad():
            depths = view_depths(self.predict_group(group), *self.context_cameras(group), group=group)
        return float(torch.cat([d.depth for d in depths]).median())


@dataclass(frozen=True)
class ConfiguredEncoder:
    """The configured encoder (``--pipeline.model.encoder-checkpoint``, the bundled one by default) on its
    device, with what binding it to a scene needs."""

    encoder: PixelSplatEncoder
    path: Path
    """Its checkpoint, named in errors."""
    trained_shape: tuple[int, int]
    """The (height, width) it was trained at: its context images' short side by default."""
    device: Union[str, torch.device]

    @property
    def views_per_group(self) -> int:
        """The context views it encodes together."""
        return self.encoder.config.num_context_views


def configured_encoder(model_config, device) -> ConfiguredEncoder:
    """The configured encoder, on ``device``. Raises ``CheckpointError`` naming the flag for a missing or
    wrong checkpoint."""
    path = model_config.encoder_checkpoint or BUNDLED_TINY_ENCODER
    try:
        encoder_file = read_encoder(path)
    except (FileNotFoundError, CheckpointError) as error:
        raise CheckpointError(
            f"--pipeline.model.encoder-checkpoint {path}: {error}. Give an official .ckpt, a "
            "converted .pt or a pixelsplat-pretrain run's config.yml or step-*.ckpt"
        ) from error
    CONSOLE.log(f"encoder: {path}: {encoder_file.summary()}")
    encoder_config = with_sh_convention(encoder_file.config, model_config.sh_rotation, model_config.sh_coefficient_14)
    encoder = build_encoder(encoder_config, encoder_file.state_dict, device, model_config.encoder_compute)
    return ConfiguredEncoder(encoder, path, encoder_file.image_shape, device)


def plan_scene_context(encoder: ConfiguredEncoder, datamanager, model_config) -> ContextPlan:
    """The run's context plan (``plan_context``) from the datamanager's training cameras and context options,
    with the scene's depth measured first where the options need it (``measure_scene_depth``); logged."""
    options = datamanager.context_options
    depth = measure_scene_depth(encoder, datamanager, model_config) if options.needs_scene_depth else None
    names = [Path(f).name for f in datamanager.train_dataparser_outputs.image_filenames]
    plan = plan_context(
        datamanager.train_dataset.cameras.camera_to_worlds, names, options, encoder.views_per_group, depth
    )
    log_plan(plan)
    return plan


def measure_scene_depth(encoder: ConfiguredEncoder, datamanager, model_config) -> SceneDepth:
    """The scene's median depth for ``context-pairs auto``: triangulated from features matched along the capture
    (``features_depth``), else predicted by the encoder from ``depth_probe_group``."""
    depth = features_depth(datamanager, model_config)
    if depth is not None:
        return SceneDepth(depth, triangulated=True)
    cameras = datamanager.train_dataset.cameras.camera_to_worlds
    probe = depth_probe_group(cameras, datamanager.context_options, encoder.views_per_group)
    return SceneDepth(bind_groups(encoder, [probe], datamanager, model_config).median_depth(), triangulated=False)


def bind_scene_encoder(encoder: ConfiguredEncoder, plan: ContextPlan, datamanager, model_config) -> SceneEncoder:
    """The encoder bound to the plan's groups. Raises ``ContextError`` for groups of another size than the
    encoder takes."""
    for group in plan.groups:
        check_group_size(group, encoder.views_per_group, encoder.path, plan.given)
    return bind_groups(encoder, plan.groups, datamanager, model_config)


def bind_groups(
    encoder: ConfiguredEncoder, groups: Sequence[tuple[int, ...]], datamanager, model_config
) -> SceneEncoder:
    """The encoder bound to ``groups`` of training views (each of the encoder's views per group)."""
    built = [group_views(group, datamanager, model_config, encoder.trained_shape, encoder.encoder) for group in groups]
    return SceneEncoder(
        encoder.encoder,
        [c.to(encoder.device) for c, _ in built],
        [s for _, s in built],
        model_config.deterministic,
        model_config.prediction_seed,
    )


def check_fusion_options(model_config) -> None:
    """The fusion flags, before anything is loaded (the tolerance is only read when fusing)."""
    tolerance = model_config.fusion_depth_tolerance
    if model_config.context_fusion == "deduplicate" and not (math.isfinite(tolerance) and tolerance > 0):
        raise ContextError(
            f"--pipeline.model.fusion-depth-tolerance {tolerance:g}: give a finite positive "
            "tolerance (depths within a factor 1 + it either way are one surface; default 1.0); "
            "--pipeline.model.context-fusion concatenate keeps every Gaussian"
        )


def context_background(model_config) -> torch.Tensor:
    """What RGBA context images are composited onto: white for a white model background, else black (pixelSplat's)."""
    return torch.ones(3) if model_config.background_color == "white" else torch.zeros(3)


SURVEY_PAIRS = 8
"""View pairs along the capture whose matched features give the scene's depth for context-pairs auto."""


def features_depth(datamanager, model_config) -> Optional[float]:
    """The median depth (the dataparser's units) of the features matched and triangulated (``scene_depth``)
    between the two end views of each of ``SURVEY_PAIRS`` equal stretches of the capture (neighbouring views
    see near and far surfaces alike, where one wide pair matches mostly the far ones); None when too few."""
    cameras = datamanager.train_dataset.cameras
    stretches = groups_along_path(cameras.camera_to_worlds, min(SURVEY_PAIRS, len(cameras) - 1), 2)
    background = context_background(model_config)
    intrinsics = cameras.get_intrinsics_matrices()
    # Neighbouring stretches share their end view: each view is converted once.
    images = {
        i: np.asarray(to_pil(datamanager.cached_train[i]["image"], background))
        for i in sorted({i for pair in stretches for i in pair})
    }
    pairs = [
        ([images[i] for i in pair], cameras.camera_to_worlds[list(pair)], intrinsics[list(pair)]) for pair in stretches
    ]
    return scene_depth.median_depth(pairs)


def check_group_size(group: tuple[int, ...], wanted: int, path, given: bool) -> None:
    """Refuse a group of another size than the encoder in ``path`` takes (``wanted`` views); ``given``: whether
    the views were given with --pipeline.datamanager.context-views (else the automatic pair)."""
    if len(group) == wanted:
        return
    how = (
        "were given with --pipeline.datamanager.context-views"
        if given
        else "were chosen automatically (the automatic choice picks a pair)"
    )
    example = " ".join(str(i) for i in range(wanted))
    raise ContextError(
        f"the encoder in {path} takes {wanted} context views; {len(group)} {how}: give {wanted} indices "
        f"of training images, e.g. --pipeline.datamanager.context-views {example}, or groups of "
        f"{wanted} along the capture with --pipeline.datamanager.context-pairs N (or auto)"
    )


def group_views(group: tuple[int, ...], datamanager, model_config, trained_shape, encoder) -> tuple[Views, float]:
    """One group's context views for the encoder, and the scale back to the dataparser's frame."""
    indices = list(group)
    cameras = datamanager.train_dataset.cameras
    return context_views(
        [datamanager.cached_train[i]["image"] for i in indices],
        cameras.camera_to_worlds[indices],
        cameras.get_intrinsics_matrices()[indices],
        model_config.context_short_side or min(trained_shape),
        background=context_background(model_config),
        names=[Path(datamanager.train_dataparser_outputs.image_filenames[i]).name for i in indices],
        multiple=encoder.size_multiple,
    )


BYTES_PER_PREDICTED_GAUSSIAN = 1000
"""About what one predicted Gaussian adds to a per-scene run's peak memory (the encoder's activations, the
Gaussians, splatfacto's parameters): 0.86 kB measured on a CPU for the sample scene at three context sizes
(docs/benchmarks.md), rounded up."""

MAX_CONTEXT_ASPECT = 4.0
"""Context views wider than this (longer side over shorter) are far from anything pixelSplat was trained on (the
paper's 256 x 256, the bundled encoder's 144 x 256)."""


def prediction_size_warning(
    count: int, image_shape: tuple[int, int], short_side: int, free_bytes: float
) -> Optional[str]:
    """What to say before predicting ``count`` Gaussians from context views of ``image_shape`` (h, w) when it may
    not fit (the estimate over half of ``free_bytes``) or the views are far wider than the encoder's training
    views (``MAX_CONTEXT_ASPECT``); None otherwise. The message gives the count, the estimate (bytes of
    ``BYTES_PER_PREDICTED_GAUSSIAN`` each) and what shrinks it."""
    height, width = image_shape
    aspect = max(height, width) / min(height, width)
    estimate = count * BYTES_PER_PREDICTED_GAUSSIAN
    if estimate <= 0.5 * free_bytes and aspect <= MAX_CONTEXT_ASPECT:
        return None
    fits = "more than" if estimate > free_bytes else "against"
    wide = (
        "; photos far wider than tall (panoramas) are better cropped to a few views of ordinary shape"
        if aspect > MAX_CONTEXT_ASPECT
        else ""
    )
    return (
        f"pixelsplat will predict {count / 1e6:.1f} M Gaussians from {width}x{height} context views (aspect "
        f"{aspect:.0f}:1), about {estimate / 1e9:.1f} GB, {fits} the {free_bytes / 1e9:.1f} GB free here: a smaller "
        f"--pipeline.model.context-short-side (now {short_side}) shrinks it with the side's square{wide}"
    )
