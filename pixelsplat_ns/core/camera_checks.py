"""Plausibility of cameras, wherever they enter: a camera that cannot be what the user meant is refused, with
what is wrong and what was expected, instead of rendering black.

- Intrinsics in pixels: positive finite focal lengths, a field of view that a pinhole camera can have (0.5
  to 160 degrees), pixels not far from square, and a principal point within or near the image. The two common
  mistakes get their own message: normalized intrinsics (divided by the image size, pixelSplat's own format)
  and intrinsics of another resolution.
- Rotations: orthonormal with determinant +1 (a scaled or mirrored "rotation" is a different camera).
"""

import math
from typing import Optional

import torch
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.errors import InputError

MAX_FIELD_OF_VIEW = 160.0
"""Degrees, in x or y: wider than this is no pinhole camera (normalized intrinsics read as pixels give ~179)."""
MIN_FIELD_OF_VIEW = 0.5
"""Degrees, across the image's wider side: narrower than a 4000 mm lens on a full-frame camera (0.52) is a
focal length in the wrong unit."""
MAX_PIXEL_ASPECT = 3.0
"""Largest fl_x / fl_y or fl_y / fl_x: anamorphic lenses squeeze 2x at most; more is a typing mistake."""
PRINCIPAL_POINT_MARGIN = 0.5
"""The principal point may lie this fraction of the image size outside the image, no further."""
ROTATION_TOLERANCE = 1e-3
"""Largest |R R^T - I| and |det R - 1| of a rotation."""


class CameraError(InputError):
    """A camera that cannot be what was meant; the message says what is wrong and what is expected.

    ``check_rotation``'s refusal also carries what it measured (``orthogonality`` = max |R R^T - I|,
    ``determinant`` = det R; None otherwise), so that a caller with its own error type can word its own message.
    Carried here, not by a subclass: the ``ns-*`` commands print the class name, which stays ``CameraError``."""

    def __init__(
        self, message: str, *, orthogonality: Optional[float] = None, determinant: Optional[float] = None
    ) -> None:
        super().__init__(message)
        self.orthogonality = orthogonality
        self.determinant = determinant


def check_intrinsics(fx: float, fy: float, cx: float, cy: float, width: int, height: int, where: str) -> None:
    """Refuse pixel intrinsics that no camera of a ``width`` x ``height`` image has, naming ``where``.
    The expected format: focal lengths and principal point in pixels of that image (nerfstudio's fl_x, fl_y,
    cx, cy), pixel centres at +0.5."""
    values = (fx, fy, cx, cy)
    if not all(math.isfinite(v) for v in values) or fx <= 0 or fy <= 0:
        raise CameraError(f"{where}: the focal lengths must be positive and finite, got fl_x={fx:g}, fl_y={fy:g}")
    fov_x = math.degrees(2 * math.atan(width / (2 * fx)))
    fov_y = math.degrees(2 * math.atan(height / (2 * fy)))
    if max(fov_x, fov_y) > MAX_FIELD_OF_VIEW:
        looks_normalized = max(values) <= 2
        hint = (
            f" These look normalized (divided by the image size, as pixelSplat stores them): give pixels, "
            f"fl_x and cx times the width ({width}), fl_y and cy times the height ({height})"
            if looks_normalized
            else " Check that the focal lengths are in pixels of this image"
        )
        raise CameraError(
            f"{where}: fl_x={fx:g}, fl_y={fy:g} for a {width}x{height} image give a {fov_x:.0f} x "
            f"{fov_y:.0f} degree field of view, which no pinhole camera has.{hint}"
        )
    if max(fov_x, fov_y) < MIN_FIELD_OF_VIEW:
        raise CameraError(
            f"{where}: fl_x={fx:g}, fl_y={fy:g} for a {width}x{height} image give a {fov_x:.2g} x "
            f"{fov_y:.2g} degree field of view, narrower than any lens: check that the focal lengths "
            "are in pixels of this image (not micrometres or another unit)"
        )
    if max(fx / fy, fy / fx) > MAX_PIXEL_ASPECT:
        raise CameraError(
            f"{where}: fl_x={fx:g} and fl_y={fy:g} differ {max(fx / fy, fy / fx):.3g}-fold; a camera's "
            f"pixels are square or nearly so (at most {MAX_PIXEL_ASPECT:g}-fold for anamorphic lenses): "
            "check both values"
        )
    low_x, high_x = -PRINCIPAL_POINT_MARGIN * width, (1 + PRINCIPAL_POINT_MARGIN) * width
    low_y, high_y = -PRINCIPAL_POINT_MARGIN * height, (1 + PRINCIPAL_POINT_MARGIN) * height
    if not (low_x <= cx <= high_x and low_y <= cy <= high_y):
        implied = (round(2 * cx), round(2 * cy))
        raise CameraError(
            f"{where}: the principal point ({cx:g}, {cy:g}) lies far outside the {width}x{height} image. "
            f"These intrinsics probably belong to another resolution (about {implied[0]}x{implied[1]}, if the "
            f"principal point is central): scale fl_x and cx by {width}/<that width>, fl_y and cy by "
            f"{height}/<that height>, or give the images they were made for"
        )


def check_rotation(rotation: Float[Tensor, "3 3"], where: str, tolerance: float = ROTATION_TOLERANCE) -> None:
    """Refuse a camera "rotation" that is scaled, sheared or mirrored, naming ``where``.

    Measured in float64: max |R R^T - I| and |det R - 1| must both be at most ``tolerance`` (unitless; NaN
    fails). Raises ``CameraError`` with both measures attached (``orthogonality``, ``determinant``)."""
    r = rotation.double()
    error = float((r @ r.T - torch.eye(3, dtype=torch.float64)).abs().max())
    determinant = float(torch.linalg.det(r))
    if not (error <= tolerance and abs(determinant - 1) <= tolerance):
        raise CameraError(
            f"{where}: the camera's 3x3 rotation is not a rotation (|R R^T - I| = {error:.3g}, det R = "
            f"{determinant:.4g}): remove any scale from the pose (a determinant of -1 means mirrored axes)",
            orthogonality=error,
            determinant=determinant,
        )
