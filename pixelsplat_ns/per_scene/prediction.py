"""The prediction of one scene: the configured encoder bound to the datamanager's context groups (one pair by
default; several along a capture with ``--pipeline.datamanager.context-pairs``, fused by ``fusion``)."""

import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import torch
from nerfstudio.utils.rich_utils import CONSOLE

from pixelsplat_ns.core.conventions import to_gsplat
from pixelsplat_ns.encoder import PixelSplatEncoder
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.core.views import Views
from pixelsplat_ns.checkpoints import BUNDLED_TINY_ENCODER, CheckpointError, build_encoder, read_encoder
from pixelsplat_ns.encoder.config import with_sh_convention

from . import scene_depth
from .context import ContextError, context_views, to_pil
from .context_groups import groups_along_path
from .fusion import FusedScene, add_group, view_depths


class SceneEncoder(torch.nn.Module):
    """The encoder bound to one scene's context groups: calling it predicts the scene's Gaussians in the
    dataparser's frame (differentiably, with the same depth-bin draws every time). Each group is encoded as the
    paper encodes its context (its own baseline normalization and near/far); after ``fuse`` the groups'
    Gaussians are reduced to those the fusion kept, else concatenated."""

    def __init__(self, encoder: PixelSplatEncoder, contexts: Sequence[Views], scales: Sequence[float],
                 deterministic: bool, seed: int):
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
        return self.encoder.encode(self.contexts[group], self.deterministic, generator).scaled(self.scales[group])

    def forward(self) -> Gaussians:
        parts = [self.predict_group(g) for g in range(len(self.contexts))]
        if self.keep is not None:
            parts = [part.select(keep.nonzero()[:, 0]) for part, keep in zip(parts, self.keep)]
        return parts[0] if len(parts) == 1 else Gaussians.concatenate(parts)

    def fuse(self, tolerance: float) -> FusedScene:
        """Predict the groups one at a time and fuse them (``fusion``); later calls keep the same Gaussians."""
        scene = FusedScene(tolerance)
        with torch.no_grad():
            for group in range(len(self.contexts)):
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


def load_scene_encoder(model_config, datamanager, device) -> SceneEncoder:
    """The configured encoder (the bundled one by default) and the datamanager's context groups, on ``device``."""
    path = model_config.encoder_checkpoint or BUNDLED_TINY_ENCODER
    try:
        encoder_config, state_dict, trained_shape = read_encoder(path)
    except (FileNotFoundError, CheckpointError) as error:
        raise CheckpointError(f"--pipeline.model.encoder-checkpoint {path}: {error}. Give an official .ckpt, a "
                              "converted .pt or a pixelsplat-pretrain run's config.yml or step-*.ckpt") from error
    encoder_config = with_sh_convention(encoder_config, model_config.sh_rotation, model_config.sh_coefficient_14)
    wanted = encoder_config.num_context_views
    encoder = build_encoder(encoder_config, state_dict, device)

    def bind(groups: list[tuple[int, ...]]) -> SceneEncoder:
        for group in groups:
            check_group_size(group, wanted, path, datamanager.config)
        built = [group_views(group, datamanager, model_config, trained_shape, encoder) for group in groups]
        return SceneEncoder(encoder, [c.to(device) for c, _ in built], [s for _, s in built],
                            model_config.deterministic, model_config.prediction_seed)

    if datamanager.config.context_pairs == "auto":
        # The groups' views may be apart by a share of the scene's depth: triangulated from features matched
        # along the capture, else predicted by the encoder from the automatic pair.
        depth = features_depth(datamanager, model_config)
        source = "triangulated from features matched along the capture"
        if depth is None:
            depth = bind(datamanager.context_groups(wanted, count=1)).median_depth()
            source = "predicted by the encoder: too few features to triangulate"
        max_baseline = datamanager.config.max_baseline_to_depth * depth
        groups = datamanager.context_groups(wanted, max_baseline=max_baseline)
        CONSOLE.log(f"pixelsplat context-pairs auto: the scene's median depth is {depth:.3g} ({source}), so "
                    f"groups at most {max_baseline:.3g} apart (max-baseline-to-depth {datamanager.config.max_baseline_to_depth:g}): "
                    f"{len(groups)} group(s)")
    else:
        groups = datamanager.context_groups(wanted)
    if len(groups) > 1 or datamanager.config.context_pairs != 1:
        names = [Path(f).name for f in datamanager.train_dataparser_outputs.image_filenames]
        listed = ", ".join("(" + " ".join(map(str, g)) + ")" for g in groups)
        views = sorted({i for group in groups for i in group})
        CONSOLE.log(f"pixelsplat context groups: {listed} (of the training views; {', '.join(names[i] for i in views)})")
    return bind(groups)


def check_fusion_options(model_config) -> None:
    """The fusion flags, before anything is loaded (the tolerance is only read when fusing)."""
    tolerance = model_config.fusion_depth_tolerance
    if model_config.context_fusion == "deduplicate" and not (math.isfinite(tolerance) and tolerance > 0):
        raise ContextError(f"--pipeline.model.fusion-depth-tolerance {tolerance:g}: give a finite positive "
                           "tolerance (depths within a factor 1 + it either way are one surface; default 1.0); "
                           "--pipeline.model.context-fusion concatenate keeps every Gaussian")


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
    images = {i: np.asarray(to_pil(datamanager.cached_train[i]["image"], background))
              for i in sorted({i for pair in stretches for i in pair})}
    pairs = [([images[i] for i in pair], cameras.camera_to_worlds[list(pair)], intrinsics[list(pair)])
             for pair in stretches]
    return scene_depth.median_depth(pairs)


def check_group_size(group: tuple[int, ...], wanted: int, path, datamanager_config) -> None:
    if len(group) == wanted:
        return
    how = ("were given with --pipeline.datamanager.context-views" if datamanager_config.context_views
           else "were chosen automatically (the automatic choice picks a pair)")
    example = " ".join(str(i) for i in range(wanted))
    raise ContextError(f"the encoder in {path} takes {wanted} context views; {len(group)} {how}: give {wanted} indices "
                       f"of training images, e.g. --pipeline.datamanager.context-views {example}, or groups of "
                       f"{wanted} along the capture with --pipeline.datamanager.context-pairs N (or auto)")


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
