"""``Views``, the one type for a set of posed images, and ``prepare_views``, the one way to make them.

Every caller of the encoder (the per-scene method, the chunk dataset, the evaluation) builds its views with
``prepare_views``, which applies the paper's input rules as the official code does across its dataset and
its encoder's data shim: the scene is scaled so that the context baseline is 1 (``make_baseline_1``), and
near/far come from the context views (the bounds shim) for every view, targets included.
"""

import math
from typing import NamedTuple, Optional, Sequence

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from pixelsplat_ns.encoder.bounds import at_one_position, max_baseline, near_far, normalize_baseline
from pixelsplat_ns.camera_checks import PRINCIPAL_POINT_MARGIN
from pixelsplat_ns.errors import InputError


class DegenerateBaseline(InputError):
    """Context views taken from one position: pixelSplat sees depth only between views that are apart."""

    def __init__(self, baseline: float) -> None:
        super().__init__(f"the context views are taken from the same position (baseline {baseline:.3g})")
        self.baseline = baseline


class Views(NamedTuple):
    """Posed images in the project's conventions (``pixelsplat_ns.conventions``), for one scene (``*batch``
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
    index: Optional[Int64[Tensor, "*batch view"]] = None
    """Frame index of each view in its source scene, where there is one (chunk data)."""

    @property
    def image_shape(self) -> tuple[int, int]:
        """(height, width) of the images."""
        return tuple(self.images.shape[-2:])

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
        return Views(*(None if tensor is None else function(tensor) for tensor in self))


def prepare_views(
    images: Float[Tensor, "view 3 height width"],
    extrinsics: Float[Tensor, "view 4 4"],
    intrinsics: Float[Tensor, "view 3 3"],
    context: Sequence[int] | Tensor | range,
    make_baseline_1: bool = True,
    index: Optional[Int64[Tensor, " view"]] = None,
) -> tuple[Views, float]:
    """One scene's views, context and targets alike, with the paper's input rules applied.

    ``images`` already at the encoder's input size (see ``pixelsplat_ns.encoder.crop``), ``extrinsics``
    camera-to-world OpenCV in any unit, ``intrinsics`` normalized; ``context`` the positions of the context
    views among them. With ``make_baseline_1`` the scene is scaled so that the context views' largest
    baseline is 1; near and far then come from the context views (``pixelsplat_ns.encoder.bounds.near_far``)
    and hold for every view. Returns the views and the scale: multiply lengths in the views' frame by it to
    return to the input's frame (1 without ``make_baseline_1``).

    Raises ``DegenerateBaseline`` when the scene is to be scaled but the context views are at one position
    (``bounds.at_one_position``: relative to their coordinates, whatever the unit) or their distance is not
    finite; without scaling, the near/far rule clamps the baseline as the official code does. Raises
    ``InputError`` for shapes that disagree, no views, context positions out of range, poses or intrinsics
    that are not finite, and intrinsics in pixels rather than normalized.
    """
    context = torch.as_tensor(list(context) if isinstance(context, range) else context, dtype=torch.int64)
    _check_scene(images, extrinsics, intrinsics, context)
    scale = 1.0
    if make_baseline_1:
        baseline = float(max_baseline(extrinsics[context]))
        if not math.isfinite(baseline) or at_one_position(baseline, extrinsics[context, :3, 3]):
            raise DegenerateBaseline(baseline)
        extrinsics, scale = normalize_baseline(extrinsics, context)
    near, far = near_far(extrinsics[context], intrinsics[context], tuple(images.shape[-2:]))
    views = len(images)
    return Views(images, extrinsics, intrinsics, near.expand(views).clone(), far.expand(views).clone(), index), scale


def _check_scene(images: Tensor, extrinsics: Tensor, intrinsics: Tensor, context: Tensor) -> None:
    """``prepare_views``'s input rules; raises ``InputError`` saying what is wrong and what to do."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise InputError(f"images must have shape [views, 3, height, width], got {list(images.shape)}")
    views = len(images)
    if views == 0:
        raise InputError("no views given")
    for name, tensor, shape in (("extrinsics", extrinsics, (views, 4, 4)), ("intrinsics", intrinsics, (views, 3, 3))):
        if tuple(tensor.shape) != shape:
            raise InputError(f"{name} must have shape {list(shape)} (one per image), got {list(tensor.shape)}")
        if not bool(torch.isfinite(tensor).all()):
            raise InputError(f"{name} contain NaN or infinite values")
    if context.dim() != 1 or len(context) == 0:
        raise InputError(f"context must be a list of view positions, got {context.tolist()}")
    if bool((context < -views).any() or (context >= views).any()):
        raise InputError(f"context positions {context.tolist()} out of range for {views} views")
    # camera_checks' rule for the principal point (within or near the image), in normalized units.
    principal = intrinsics[:, :2, 2]
    if bool((principal < -PRINCIPAL_POINT_MARGIN).any() or (principal > 1 + PRINCIPAL_POINT_MARGIN).any()):
        largest = float(principal.abs().max())
        raise InputError(
            f"principal points up to {largest:.4g} lie far outside the image: prepare_views takes intrinsics "
            "normalized by the image size" + (", and these look like pixels (pixelsplat_ns.conventions."
                                              "normalize_intrinsics converts them)" if largest > 2 else "")
        )
