"""Scene scale: the context baseline and the paper's near/far rule (official ``make_baseline_1`` and bounds
shim). ``prepare_views`` (``pixelsplat_ns.core.views``) applies them; nothing else should."""

from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.geometry import pixel_size_at_unit_depth

NEAR_DISPARITY = 3.0
"""Near plane disparity in multiples of the image's shorter side in pixels (official encoder config)."""
FAR_DISPARITY = 0.5
"""Far plane disparity in pixels (hard-coded in the official encoder)."""
NEAR_FAR_MIN_BASELINE = 1e-6
"""The official bounds shim clamps the baseline at this before the near/far rule (after ``make_baseline_1``
the baseline is 1, so it only matters for views left at their own scale)."""
SAME_POSITION = 1e-6
"""Cameras closer than this fraction of their largest coordinate are at one position: float32 coordinates
(epsilon 1.2e-7) cannot tell them apart, and no depth can be seen between them. Relative, so that a scene
in millimetres or kilometres is judged alike."""


def at_one_position(distance: Tensor | float, origins: Float[Tensor, "*batch 3"]) -> Tensor | bool:
    """Whether cameras ``distance`` apart, among ``origins``, are at one position (``SAME_POSITION``)."""
    tolerance = SAME_POSITION * float(origins.abs().max()) if origins.numel() else 0.0
    return distance <= tolerance


def max_baseline(extrinsics: Float[Tensor, "*batch view 4 4"]) -> Float[Tensor, " *batch"]:
    """Largest distance between two camera centres (camera-to-world input)."""
    origins = extrinsics[..., :3, 3]
    return (origins[..., :, None, :] - origins[..., None, :, :]).norm(dim=-1).flatten(-2).max(dim=-1).values


def normalize_baseline(
    extrinsics: Float[Tensor, "view 4 4"], context: Tensor
) -> tuple[Float[Tensor, "view 4 4"], float]:
    """Scale the scene so the context cameras' baseline is 1 (official ``make_baseline_1``: with two
    context views it divides by their distance; with more, this uses the largest pairwise distance, where
    the official code leaves the scale alone). Returns the scaled extrinsics and the divisor."""
    scale = max_baseline(extrinsics[context]).item()
    extrinsics = extrinsics.clone()
    extrinsics[:, :3, 3] /= scale
    return extrinsics, scale


def near_far(
    extrinsics: Float[Tensor, "*batch view 4 4"],
    intrinsics: Float[Tensor, "*batch view 3 3"],
    image_shape: tuple[int, int],
    near_disparity: float = NEAR_DISPARITY,
    far_disparity: float = FAR_DISPARITY,
) -> tuple[Float[Tensor, " *batch"], Float[Tensor, " *batch"]]:
    """Near and far depth for a set of context views, as the paper computes them: the depths at which the
    views' largest baseline spans ``near_disparity * min(h, w)`` and ``far_disparity`` pixels:
    ``depth(d) = baseline / (d * mean pixel size at depth 1)``, the mean taken over x, y and the views.

    ``extrinsics`` camera-to-world, ``intrinsics`` normalized, ``image_shape`` (h, w) of the images the
    encoder sees. The baseline is clamped at ``NEAR_FAR_MIN_BASELINE`` as in the official code.
    """
    h, w = image_shape
    baseline = max_baseline(extrinsics).clamp(min=NEAR_FAR_MIN_BASELINE)
    mean_pixel_size = pixel_size_at_unit_depth(intrinsics, h, w).flatten(-2).mean(dim=-1)
    near = baseline / (near_disparity * min(h, w) * mean_pixel_size)
    far = baseline / (far_disparity * mean_pixel_size)
    return near, far
