"""The geometric choice of which training views go together as the encoder's context: pure functions of the
cameras, called by ``context_plan`` (which turns the flags into one plan per run).

One pair (``choose_context_views``): the widest baseline among the pairs whose viewing directions differ by
at most ``max_context_angle`` (``viewing_angles``).

Several groups along a capture (``--pipeline.datamanager.context-pairs N|auto``): pixelSplat sees two views
(the official 3-view model three); a capture of many views is covered by encoding several groups of them and
fusing the Gaussians (``pixelsplat_ns.per_scene.fusion``).

The groups follow the capture: the training views in the order of the cameras' path (``capture_path``: the
dataparser's order where that is the path, as for a video's frames; never the string order of names that is
not) are cut into N stretches of equal camera path length, and each stretch's group is its two end
views (for three views per group, also the view nearest the stretch's middle). Consecutive groups share their
end view, so every training view lies between the views of some group. ``auto`` takes the fewest stretches for
which every group is usable: its viewing directions differ by at most ``max_context_angle`` (today's rule for
one pair) and its views are at most ``max_baseline`` apart (the pipeline sets it from the scene's depth,
triangulated by ``scene_depth``, so that a group's views overlap as the paper's training pairs do).
"""

import math
from typing import Literal, Optional, Sequence, Union

import torch
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.bounds import at_one_position

from .capture_path import capture_order
from .context import ContextError

ContextCount = Union[int, Literal["auto"]]


def viewing_angles(camera_to_worlds: Float[Tensor, "n 3 4"]) -> Float[Tensor, "n n"]:
    """Degrees between every two views' viewing directions (nerfstudio's OpenGL cameras look along -z)."""
    forward = -camera_to_worlds[:, :3, 2].double()
    forward = forward / forward.norm(dim=-1, keepdim=True)
    return torch.rad2deg(torch.acos((forward @ forward.T).clamp(-1, 1)))


def choose_context_views(camera_to_worlds: Float[Tensor, "n 3 4"], max_angle_degrees: float) -> tuple[int, int]:
    """The pair with the widest baseline among pairs whose viewing directions differ by at most
    ``max_angle_degrees`` (so that the two views still see the same part of the scene, as pixelSplat's
    training pairs do). When no pair is that close, the pair with the smallest angle; pairs at one position
    only when there is nothing else (the encoder then refuses them)."""
    angles = viewing_angles(camera_to_worlds)
    origins = camera_to_worlds[:, :3, 3].double()
    distances = torch.cdist(origins, origins)
    pairs = torch.triu(torch.ones_like(angles, dtype=torch.bool), diagonal=1)
    apart = pairs & ~at_one_position(distances, origins)
    close = apart & (angles <= max_angle_degrees)
    if close.any():
        score = torch.where(close, distances, torch.full_like(distances, -1.0))
    else:
        score = torch.where(apart if apart.any() else pairs, -angles, torch.full_like(angles, -math.inf))
    i, j = divmod(int(score.argmax()), score.shape[1])
    return i, j


def path_lengths(camera_to_worlds: Float[Tensor, "n 3 4"]) -> Float[Tensor, " n"]:
    """Distance travelled along the camera centres, in the given order, up to each view (0 at the first)."""
    steps = (camera_to_worlds[1:, :3, 3] - camera_to_worlds[:-1, :3, 3]).double().norm(dim=-1)
    return torch.cat([steps.new_zeros(1), torch.cumsum(steps, 0)])


def groups_along_path(
    camera_to_worlds: Float[Tensor, "n 3 4"],
    count: int,
    views_per_group: int,
    order: Optional[Sequence[int]] = None,
) -> list[tuple[int, ...]]:
    """``count`` groups of ``views_per_group`` views at equal path-length spacing along the capture's path
    (``capture_path.capture_order``; see the module's docstring), as indices in the dataparser's order. Raises
    ``ContextError`` when the capture has too few views. ``order``: the capture's order when the caller has it
    (``capture_order(camera_to_worlds).order``; found here otherwise)."""
    if count < 1:  # the flag itself is checked, with its own message, by the datamanager's options
        raise ContextError(f"{count} context groups asked for: at least 1 is needed")
    anchors_needed = count * (views_per_group - 1) + 1
    n = len(camera_to_worlds)
    if anchors_needed > n:
        raise ContextError(
            f"{count} context group(s) of {views_per_group} views take {anchors_needed} training views "
            f"along the capture; the dataset has {n}: ask for fewer with "
            "--pipeline.datamanager.context-pairs"
        )
    order = capture_order(camera_to_worlds).order if order is None else order
    lengths = path_lengths(camera_to_worlds[list(order)])
    targets = torch.linspace(0, float(lengths[-1]), anchors_needed, dtype=torch.float64)
    anchors: list[int] = []
    for k, target in enumerate(targets):
        nearest = int((lengths - target).abs().argmin())
        # Strictly increasing, leaving room for the anchors still to come; the last is the last view.
        lowest = anchors[-1] + 1 if anchors else 0
        highest = n - anchors_needed + k
        anchors.append(min(max(nearest, lowest), highest))
    step = views_per_group - 1
    return [tuple(order[a] for a in anchors[g * step : g * step + views_per_group]) for g in range(count)]


def group_is_usable(
    camera_to_worlds: Float[Tensor, "n 3 4"],
    group: Sequence[int],
    max_angle_degrees: float,
    max_baseline: Optional[float] = None,
) -> bool:
    """Whether a group's views can be encoded together: pairwise viewing directions within
    ``max_angle_degrees``, not at one position, and at most ``max_baseline`` apart (when given)."""
    c2w = camera_to_worlds[list(group)].double()
    angles = viewing_angles(c2w)
    origins = c2w[:, :3, 3]
    widest = float(torch.cdist(origins, origins).max())
    if at_one_position(widest, origins) or float(angles.max()) > max_angle_degrees:
        return False
    return max_baseline is None or widest <= max_baseline


def choose_context_groups(
    camera_to_worlds: Float[Tensor, "n 3 4"],
    count: ContextCount,
    views_per_group: int,
    max_angle_degrees: float,
    max_baseline: Optional[float] = None,
) -> list[tuple[int, ...]]:
    """The context groups for ``count`` (a number, or ``"auto"``: the fewest usable groups that cover the
    capture; the densest possible when none is usable, which ``all_usable`` tells the caller)."""
    if count != "auto":
        return groups_along_path(camera_to_worlds, int(count), views_per_group)
    order = capture_order(camera_to_worlds).order  # once: every split below cuts the same path
    most = max(1, (len(camera_to_worlds) - 1) // (views_per_group - 1))
    for n in range(1, most + 1):
        groups = groups_along_path(camera_to_worlds, n, views_per_group, order)
        if all_usable(camera_to_worlds, groups, max_angle_degrees, max_baseline):
            return groups
    return groups_along_path(camera_to_worlds, most, views_per_group, order)


def all_usable(
    camera_to_worlds: Float[Tensor, "n 3 4"],
    groups: Sequence[tuple[int, ...]],
    max_angle_degrees: float,
    max_baseline: Optional[float] = None,
) -> bool:
    return all(group_is_usable(camera_to_worlds, g, max_angle_degrees, max_baseline) for g in groups)
