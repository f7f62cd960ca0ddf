"""``Views``, the one type for a set of posed images, and ``prepare_views``, the one way to make them.

Every caller of the encoder (the per-scene method, the chunk dataset, the evaluation) builds its views with
``prepare_views``, which applies the paper's input rules as the official code does across its dataset and
its encoder's data shim: the scene is scaled so that the context baseline is 1 (``make_baseline_1``), and
near/far come from the context views (the bounds shim) for every view, targets included.

``prepare_views`` checks the values the encoder needs (context images finite and in [0, 1], cameras finite);
``PixelSplatEncoder.encode`` checks them again for views made any other way, while the library's own callers,
whose views come from ``prepare_views``, use ``encode_prepared``, which leaves those passes out (it checks
shapes, dtypes, sizes and near/far): the passes over the images run once.
"""

import math
from typing import NamedTuple, Optional, Sequence

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from pixelsplat_ns.core.bounds import at_one_position, max_baseline, near_far, normalize_baseline
from pixelsplat_ns.core.camera_checks import PRINCIPAL_POINT_MARGIN
from pixelsplat_ns.core.errors import InputError

IMAGE_RANGE_SLACK = 1e-3
"""How far outside [0, 1] image values may stray (resampling overshoot) before the encoder refuses them."""


class DegenerateBaseline(InputError):
    """Context views taken from one position: pixelSplat sees depth only between views that are apart."""

    def __init__(self, baseline: float) -> None:
        super().__init__(
            f"the context views are taken from the same position (baseline {baseline:.3g}): choose "
            "context views taken from different places (and no view twice)"
        )
        self.baseline = baseline


class Views(NamedTuple):
    """Posed images in the project's conventions (``pixelsplat_ns.core.conventions``), for one scene (``*batch``
    empty) or a batch of scenes (``*batch`` = b). The encoder takes its context views in this form (batched);
    targets to render come in the same form. A named tuple, so that a ``DataLoader`` batches it as it is."""

    images: Float[Tensor, "*batch view 3 height width"]
    """Colours in [0, 1]."""
    extrinsics: Float[Tensor, "*batch view 4 4"]
    """Camera-to-world, OpenCV axes; in the encoder's frame the context baseline is 1."""
    intrinsics: Float[Tensor, "*batch view 3 3"]
    """Normalized: fx, cx divided by the image width; fy, cy by its height."""
    near: Float[Tensor, "*batch view"]
    """Depth range of the context views, for every view (the paper's rule; see ``prepare_views``)."""
    far: Float[Tensor, "*batch view"]
    index: Optional[Int64[Tensor, "*batch view"]] = None  # type: ignore[assignment]  # shadows tuple.index
    """Frame index of each view in its source scene, where there is one (chunk data)."""

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of the images."""
        return self.images.shape[-2], self.images.shape[-1]

    def batched(self) -> "Views":
        """One scene's views as a batch of one."""
        return self._map(lambda tensor: tensor[None])

    def select(self, positions) -> "Views":
        """The views at ``positions`` (a slice, indices or a mask) of one scene."""
        return self._map(lambda tensor: tensor[positions])

    def to(self, device_or_dtype) -> "Views":
        """The views on another device, or with their floating-point tensors in another dtype (``index``
        stays int64)."""
        if isinstance(device_or_dtype, torch.dtype):
            return self._map(lambda tensor: tensor.to(device_or_dtype) if tensor.is_floating_point() else tensor)
        return self._map(lambda tensor: tensor.to(device_or_dtype))

    def _map(self, function) -> "Views":
        return Views._make(None if tensor is None else function(tensor) for tensor in self)


def prepare_views(
    images: Float[Tensor, "view 3 height width"],
    extrinsics: Float[Tensor, "view 4 4"],
    intrinsics: Float[Tensor, "view 3 3"],
    context: Sequence[int] | Tensor | range,
    make_baseline_1: bool = True,
    index: Optional[Int64[Tensor, " view"]] = None,
) -> tuple[Views, float]:
    """One scene's views, context and targets alike, with the paper's input rules applied.

    ``images`` already at the encoder's input size (see ``pixelsplat_ns.core.crop``), ``extrinsics``
    camera-to-world OpenCV in any unit, ``intrinsics`` normalized; ``context`` the positions of the context
    views among them. With ``make_baseline_1`` the scene is scaled so that the context views' largest
    baseline is 1; near and far then come from the context views (``pixelsplat_ns.core.bounds.near_far``)
    and hold for every view. Returns the views and the scale: multiply lengths in the views' frame by it to
    return to the input's frame (1 without ``make_baseline_1``).

    Raises ``DegenerateBaseline`` when the scene is to be scaled but the context views are at one position
    (``bounds.at_one_position``: relative to their coordinates, whatever the unit) or their distance is not
    finite; without scaling, the near/far rule clamps the baseline as the official code does. Raises
    ``InputError`` for inputs that are not floating-point tensors, shapes that disagree, no views or empty
    images, context positions that are not integers or a mask, or out of range, poses or intrinsics that are
    not finite, focal lengths that are not positive, intrinsics in pixels rather than normalized, and context
    images that are not finite or not in [0, 1] (within ``IMAGE_RANGE_SLACK``), as ``encode`` would: the
    encoder's rules, checked here once (``PixelSplatEncoder.encode_prepared`` relies on them).
    """
    _check_scene(images, extrinsics, intrinsics, index)
    context = _context_positions(context, len(images))
    problem = image_range_error(*image_range(images[context]))
    if problem is not None:
        raise InputError(problem)
    scale = 1.0
    if make_baseline_1:
        baseline = float(max_baseline(extrinsics[context]))
        if not math.isfinite(baseline) or at_one_position(baseline, extrinsics[context, :3, 3]):
            raise DegenerateBaseline(baseline)
        extrinsics, scale = normalize_baseline(extrinsics, context)
    near, far = near_far(extrinsics[context], intrinsics[context], (images.shape[-2], images.shape[-1]))
    views = len(images)
    return Views(images, extrinsics, intrinsics, near.expand(views).clone(), far.expand(views).clone(), index), scale


def image_range(images: Tensor) -> tuple[float, float]:
    """The smallest and largest value of ``images`` (not empty), in one pass: NaN propagates to both and an
    infinity shows in one, so both are finite exactly when every value is."""
    low, high = torch.aminmax(images.detach())
    return float(low), float(high)


def image_range_error(low: float, high: float) -> Optional[str]:
    """What is wrong with images whose values span [``low``, ``high``] (``image_range``), as the encoder says
    it: values that are not finite, or outside [0, 1] by more than ``IMAGE_RANGE_SLACK``; None if nothing."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return "images contains NaN or infinite values"
    if low < -IMAGE_RANGE_SLACK or high > 1 + IMAGE_RANGE_SLACK:
        return f"images must be in [0, 1] (within {IMAGE_RANGE_SLACK:g}), got values in [{low!r}, {high!r}]: " + (
            "8-bit values? divide them by 255" if high > 2 else "clip them to [0, 1]"
        )
    return None


def _check_scene(images: Tensor, extrinsics: Tensor, intrinsics: Tensor, index: Optional[Tensor]) -> None:
    """``prepare_views``'s input rules; raises ``InputError`` saying what is wrong and what to do."""
    for name, tensor in (("images", images), ("extrinsics", extrinsics), ("intrinsics", intrinsics)):
        if not isinstance(tensor, Tensor):
            raise InputError(f"{name} must be a torch tensor, got {type(tensor).__name__} (torch.as_tensor converts)")
        if not tensor.is_floating_point():
            raise InputError(f"{name} must be floating point, got {tensor.dtype}")
    if images.dim() != 4 or images.shape[1] != 3 or 0 in images.shape[2:]:
        raise InputError(f"images must have shape [views, 3, height, width], not empty, got {list(images.shape)}")
    views = len(images)
    if views == 0:
        raise InputError("no views given")
    for name, tensor, shape in (("extrinsics", extrinsics, (views, 4, 4)), ("intrinsics", intrinsics, (views, 3, 3))):
        if tuple(tensor.shape) != shape:
            raise InputError(f"{name} must have shape {list(shape)} (one per image), got {list(tensor.shape)}")
        if not bool(torch.isfinite(tensor).all()):
            raise InputError(f"{name} contain NaN or infinite values")
    if index is not None and tuple(index.shape) != (views,):
        raise InputError(f"index must hold one frame number per image ({views}), got shape {list(index.shape)}")
    if bool((intrinsics[:, 0, 0] <= 0).any() or (intrinsics[:, 1, 1] <= 0).any()):
        raise InputError("the focal lengths (intrinsics [0, 0] and [1, 1]) must be positive")
    # camera_checks' rule for the principal point (within or near the image), in normalized units.
    principal = intrinsics[:, :2, 2]
    if bool((principal < -PRINCIPAL_POINT_MARGIN).any() or (principal > 1 + PRINCIPAL_POINT_MARGIN).any()):
        largest = float(principal.abs().max())
        raise InputError(
            f"principal points up to {largest:.4g} lie far outside the image: prepare_views takes intrinsics "
            "normalized by the image size"
            + (
                ", and these look like pixels (pixelsplat_ns.core.conventions.normalize_intrinsics converts them)"
                if largest > 2
                else ""
            )
        )


def _context_positions(context, views: int) -> Tensor:
    """``context`` (positions, negative from the end, or a boolean mask over the views) as int64 positions;
    raises ``InputError`` for anything else, empty or out of range."""
    usage = "context must be a list, range or tensor of view positions, or a boolean mask over the views"
    try:
        positions = torch.as_tensor(list(context) if isinstance(context, (range, tuple)) else context)
    except (TypeError, ValueError, RuntimeError, OverflowError) as error:
        raise InputError(f"{usage}, got {context!r} ({error})") from None
    if positions.dtype == torch.bool:
        if tuple(positions.shape) != (views,):
            raise InputError(f"a context mask needs one entry per view ({views}), got shape {list(positions.shape)}")
        positions = positions.nonzero().flatten()
    if positions.is_floating_point() or positions.is_complex() or positions.dim() != 1 or len(positions) == 0:
        raise InputError(f"{usage}, got {context!r}")
    positions = positions.to(torch.int64)
    if bool((positions < -views).any() or (positions >= views).any()):
        raise InputError(f"context positions {positions.tolist()} out of range for {views} views")
    return positions


def to_device(batch, device):
    """A batch (dicts, ``Views`` and tensors, nested; other values as they are) on ``device``; from pinned memory
    the copies overlap with the GPU's work (``non_blocking``)."""
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, Views):
        return Views(*(to_device(t, device) for t in batch))
    return batch.to(device, non_blocking=True) if isinstance(batch, Tensor) else batch
