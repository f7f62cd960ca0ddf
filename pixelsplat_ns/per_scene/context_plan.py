"""The context plan of an ``ns-train pixelsplat`` run: which training views the encoder sees, in which groups.

``plan_context`` is the one place where the context flags (``--pipeline.datamanager.context-views``,
``context-pairs``, ``max-context-angle``, ``max-baseline-to-depth``) become views: a pure function of the
training cameras, the flags (``ContextOptions``), the encoder's views per group and, for ``context-pairs auto``,
the scene's depth, which the caller measures first (``prediction.measure_scene_depth``) and passes in. The
geometry it calls on (the widest-baseline pair, groups along the capture) is ``context_groups``'s. The
pipeline makes the plan once, when training starts, and hands it to the datamanager (the refinement targets are
the other training views) and to the prediction (the groups it encodes). The tools that load a finished run
(viewer, ns-eval, ns-render, ns-export) make none: they read the predicted Gaussians from the checkpoint.
"""

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from jaxtyping import Float
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor

from .capture_path import capture_order
from .context import ContextError
from .context_groups import ContextCount, all_usable, choose_context_groups, choose_context_views, groups_along_path


@dataclass(frozen=True)
class ContextOptions:
    """The datamanager's context flags (``PixelSplatDataManagerConfig``), checked on construction: raises
    ``ContextError`` for values no scene can have (the views themselves are checked against the training
    views by ``plan_context``)."""

    context_views: Optional[tuple[int, ...]]
    """Given views (indices into the training views, in the dataparser's order) of the one group, or None."""
    context_pairs: ContextCount
    """1 (one group: the given views, or the automatic pair), N groups along the capture, or ``"auto"``."""
    max_context_angle: float
    """Degrees: the largest angle between the viewing directions of automatically chosen views of a group."""
    max_baseline_to_depth: float
    """With ``"auto"``: the largest distance between a group's views, as a share of the scene's median depth."""

    def __post_init__(self) -> None:
        count, ratio = self.context_pairs, self.max_baseline_to_depth
        if count != "auto" and count < 1:
            raise ContextError(
                f"--pipeline.datamanager.context-pairs {count}: give 1 or more context pairs (groups, "
                "for a 3-view model), or auto"
            )
        if self.context_views is not None and count != 1:
            raise ContextError(
                "give --pipeline.datamanager.context-views (one group) or "
                "--pipeline.datamanager.context-pairs (groups along the capture), not both"
            )
        if not (math.isfinite(ratio) and ratio > 0):
            raise ContextError(
                f"--pipeline.datamanager.max-baseline-to-depth {ratio:g}: give a positive share of the "
                "scene's depth (default 0.3)"
            )

    @classmethod
    def from_config(cls, config) -> "ContextOptions":
        """The options of a ``PixelSplatDataManagerConfig`` (the only place its context flags are read)."""
        views = None if config.context_views is None else tuple(config.context_views)
        return cls(views, config.context_pairs, config.max_context_angle, config.max_baseline_to_depth)

    @property
    def needs_scene_depth(self) -> bool:
        """Whether ``plan_context`` needs the scene's depth (``context-pairs auto`` spaces its groups by it)."""
        return self.context_pairs == "auto"


@dataclass(frozen=True)
class SceneDepth:
    """The scene's median depth (the dataparser's units), as ``context-pairs auto`` spaces its groups by it."""

    median: float
    triangulated: bool
    """True: triangulated from features matched along the capture (``scene_depth``); False: predicted by the
    encoder from ``depth_probe_group``, where too few features triangulate."""


@dataclass(frozen=True)
class PlanMessage:
    """A line the choice logs: plain (``CONSOLE.log``) or a warning (bold yellow)."""

    text: str
    warning: bool = False


@dataclass(frozen=True)
class ContextPlan:
    """Which training views the encoder sees: ``plan_context``'s result."""

    groups: tuple[tuple[int, ...], ...]
    """Each group's views (indices into the training views, in the dataparser's order), in the order the
    groups are encoded and fused; a group's views in the order the encoder takes them."""
    given: bool
    """Whether the views were given (``--pipeline.datamanager.context-views``) rather than chosen."""
    messages: tuple[PlanMessage, ...]
    """What the choice logs, in order (``log_plan``)."""

    @property
    def views(self) -> tuple[int, ...]:
        """Every group's views, once each, in increasing order: the context; the other training views are the
        refinement's targets."""
        return tuple(sorted({i for group in self.groups for i in group}))


def plan_context(
    camera_to_worlds: Float[Tensor, "n 3 4"],
    names: Sequence[str],
    options: ContextOptions,
    views_per_group: int,
    scene_depth: Optional[SceneDepth] = None,
) -> ContextPlan:
    """The context plan of a scene: the given views (one group); or, with ``context_pairs`` 1, the automatic
    pair (``choose_context_views``); or ``context_pairs`` groups of ``views_per_group`` views along the capture;
    or for ``"auto"`` the fewest usable such groups whose views are at most ``max_baseline_to_depth`` times
    ``scene_depth`` apart (``choose_context_groups``; the densest split, with a warning, when none is usable).

    ``camera_to_worlds``: the training cameras as nerfstudio has them (OpenGL axes, the dataparser's frame and
    order); ``names``: their image names, for the log. ``views_per_group``: the encoder's context views (a group
    of given views or the automatic pair is not fitted to it: the prediction refuses a mismatch).
    ``scene_depth`` is read only for ``"auto"``, which needs it.

    Raises ``ContextError`` for given views that are not two or more different indices of training views, or
    for a capture with fewer views than N groups take; ``ValueError`` for ``"auto"`` without a scene depth."""
    if len(camera_to_worlds) != len(names):
        raise ValueError(f"{len(camera_to_worlds)} cameras and {len(names)} names: give one name per camera")
    angle = options.max_context_angle
    messages: list[PlanMessage] = []
    if options.context_views is None and options.context_pairs != 1:
        messages.extend(order_messages(camera_to_worlds, names))
    if options.context_views is not None:  # one group (ContextOptions refuses it with several)
        groups = [given_views(options.context_views, len(names))]
    elif options.context_pairs == 1:
        groups = [choose_context_views(camera_to_worlds, angle)]
    elif options.context_pairs == "auto":
        if scene_depth is None:
            raise ValueError(
                "context-pairs auto spaces its groups by the scene's depth: measure it first "
                "(prediction.measure_scene_depth) and pass it as scene_depth"
            )
        ratio = options.max_baseline_to_depth
        max_baseline = ratio * scene_depth.median
        groups = choose_context_groups(camera_to_worlds, "auto", views_per_group, angle, max_baseline)
        if not all_usable(camera_to_worlds, groups, angle, max_baseline):
            messages.append(
                PlanMessage(
                    f"context-pairs auto: no split of the capture keeps every group's views within {angle:g} degrees "
                    f"and {max_baseline:.3g} apart; using the densest, {len(groups)} groups of neighbouring views. "
                    "Give --pipeline.datamanager.context-pairs N to choose",
                    warning=True,
                )
            )
        source = (
            "triangulated from features matched along the capture"
            if scene_depth.triangulated
            else "predicted by the encoder: too few features to triangulate"
        )
        messages.append(
            PlanMessage(
                f"pixelsplat context-pairs auto: the scene's median depth is {scene_depth.median:.3g} ({source}), so "
                f"groups at most {max_baseline:.3g} apart (max-baseline-to-depth {ratio:g}): {len(groups)} group(s)"
            )
        )
    else:
        groups = choose_context_groups(camera_to_worlds, options.context_pairs, views_per_group, angle)
    plan_groups = tuple(tuple(int(i) for i in group) for group in groups)
    if options.context_pairs == 1:  # one group, named by its images
        messages.append(PlanMessage(f"pixelsplat context views: {', '.join(names[i] for i in plan_groups[0])}"))
    else:
        listed = ", ".join("(" + " ".join(map(str, group)) + ")" for group in plan_groups)
        views = sorted({i for group in plan_groups for i in group})
        messages.append(
            PlanMessage(
                f"pixelsplat context groups: {listed} (of the training views; {', '.join(names[i] for i in views)})"
            )
        )
    return ContextPlan(plan_groups, options.context_views is not None, tuple(messages))


def order_messages(camera_to_worlds: Float[Tensor, "n 3 4"], names: Sequence[str]) -> list[PlanMessage]:
    """A warning when the training views' order (their names') is not the path their cameras took, which the
    groups follow instead (``capture_path``)."""
    capture = capture_order(camera_to_worlds)
    if capture.follows_given:
        return []
    given = ", ".join(names[:4])
    found = ", ".join(names[i] for i in capture.order[:4])
    return [
        PlanMessage(
            f"the training images' order ({given}, ...) is not the path their cameras took (a path in that order "
            f"is {capture.given_cost / capture.path_cost:.1f} times as long): the context groups follow the "
            f"cameras' path ({found}, ...)",
            warning=True,
        )
    ]


def given_views(views: Sequence[int], count: int) -> tuple[int, ...]:
    """Given context views, checked against the ``count`` training views: two or more different indices."""
    out_of_range = [i for i in views if not 0 <= i < count]
    if out_of_range or len(set(views)) != len(views) or len(views) < 2:
        raise ContextError(
            f"--pipeline.datamanager.context-views {' '.join(map(str, views))}: give two (or more) "
            f"different indices of training images, 0 to {count - 1}"
        )
    return tuple(views)


def depth_probe_group(
    camera_to_worlds: Float[Tensor, "n 3 4"], options: ContextOptions, views_per_group: int
) -> tuple[int, ...]:
    """The views the encoder predicts the scene's depth from for ``context-pairs auto`` where too few features
    triangulate: the automatic pair for a 2-view encoder, else one group of ``views_per_group`` views along the
    whole capture. An input of the depth measurement, not a plan."""
    if views_per_group == 2:
        return choose_context_views(camera_to_worlds, options.max_context_angle)
    return groups_along_path(camera_to_worlds, 1, views_per_group)[0]


def log_plan(plan: ContextPlan) -> None:
    """Log the plan's messages, in order."""
    for message in plan.messages:
        if message.warning:
            CONSOLE.print(f"[bold yellow]{message.text}")
        else:
            CONSOLE.log(message.text)
