"""Lens distortion in a pair of photos: removed when its coefficients are given (``--distortion``), and looked
for in the matches when they are not.

pixelSplat, like the pose fit, assumes pinhole cameras. A webcam's barrel distortion (k1 about -0.26 on OpenCV's
calibrated stereo pair ``left01.jpg``/``right01.jpg``) bends the matches near the borders, and the essential
matrix absorbs that into a wrong pose: 6.2 degrees off there, where the truth is 0.3 degrees.

Given coefficients are OpenCV's (``k1 k2 p1 p2 [k3]``, of ``cv2.calibrateCamera``) for the camera matrix of the
given focal length with the principal point at the image centre; both photos are undistorted onto that same
pinhole camera (``cv2.undistort``) before anything else, and the scene gets the undistorted photos.

Without coefficients, the matches are fitted twice, with and without a one-parameter radial distortion
(Fitzgibbon's division model about the image centre): when that parameter explains the matches much better and
moves the corners by more than a few pixels, the pair is warned about.
"""

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
from jaxtyping import Float, UInt8

from .two_view_models import camera_matrix, sampson, sampson_distances

DISTORTION_EVIDENCE = 25.0
"""The division model is believed when the matches' robust squared Sampson errors, in units of their variance
(from their median), drop by more than this with it (a likelihood-ratio test: 5 standard deviations).
Measured: 122 on left01/right01 and 30 on left02/right02 (a webcam, k1 -0.26), 6 on Middlebury's motorcycle and
21 on Middlebury's aloe (undistorted), 68 on OpenCV's leuvenA/leuvenB, 0.2 on renders."""
MIN_CORNER_SHIFT = 0.04
"""... and when it moves the image corners by more than this share of the half-diagonal: 9.4% on left01/right01,
10.9% on left02/right02, 1.7% on leuvenA/leuvenB, 0.7% on the motorcycle, 0.5% on aloe. Smaller distortions bend
the pose less."""
CHECK_THRESHOLD_PX = 3.0
"""Matches within this Sampson distance (pixels) of the fitted pose enter the check: looser than the pose's inlier
threshold, since distortion pushes the matches near the borders further off."""
MAX_PARAMETER = 0.5
"""The division parameter is sought within +-this: a corner shift up to a third of the half-diagonal."""
CHECK_MATCHES = 600
"""The check fits at most this many matches."""
ROUND_TRIP_PX = 0.5
"""Given coefficients must map the image's border back onto itself within this (pixels) when undistorted and
distorted again: more means the model folds over inside the image (coefficients of another camera or focal
length)."""


class DistortionError(ValueError):
    """Distortion coefficients that cannot be used; the message says why."""


def distortion_vector(coefficients: tuple[float, ...]) -> Float[np.ndarray, " 5"]:
    """OpenCV's ``k1 k2 p1 p2 [k3]`` as the 5-vector ``cv2.undistort`` takes. Raises ``DistortionError`` for
    another count or a value that is not finite."""
    if len(coefficients) not in (4, 5):
        raise DistortionError(
            f"--distortion takes 4 or 5 numbers, OpenCV's k1 k2 p1 p2 [k3] (cv2.calibrateCamera's distCoeffs); "
            f"{len(coefficients)} given"
        )
    if not all(math.isfinite(c) for c in coefficients):
        raise DistortionError(
            f"--distortion {' '.join(f'{c:g}' for c in coefficients)}: every coefficient must be finite"
        )
    return np.array(list(coefficients) + [0.0] * (5 - len(coefficients)), dtype=np.float64)


def check_distortion(coefficients: Float[np.ndarray, " 5"], focal_px: float, width: int, height: int) -> None:
    """Raise ``DistortionError`` unless undistorting and distorting again returns the image's border (corners
    and edge midpoints) to where it was: a distortion model that folds over inside the image cannot be
    inverted there."""
    intrinsics = camera_matrix(focal_px, width, height)
    xs, ys = (0.0, width / 2, float(width)), (0.0, height / 2, float(height))
    border = np.array([[x, y] for x in xs for y in ys if (x, y) != (width / 2, height / 2)])
    rays = cv2.undistortPoints(border[:, None], intrinsics, coefficients)
    back, _ = cv2.projectPoints(
        np.c_[rays[:, 0], np.ones(len(border))], np.zeros(3), np.zeros(3), intrinsics, coefficients
    )
    worst = float(np.abs(back[:, 0] - border).max()) if np.isfinite(back).all() else math.inf
    if worst > ROUND_TRIP_PX:
        raise DistortionError(
            f"--distortion {' '.join(f'{c:g}' for c in coefficients)} cannot be undone over a {width}x{height} "
            f"photo with a focal length of {focal_px:.1f} px (it folds the image over: the border comes back "
            f"{worst:.0f} px off); give the coefficients and the focal length (fx) of one calibration of this camera "
            "at this image size"
        )


def undistorted(
    pixels: UInt8[np.ndarray, "h w 3"], coefficients: Float[np.ndarray, " 5"], focal_px: float
) -> UInt8[np.ndarray, "h w 3"]:
    """The photo as the pinhole camera of ``focal_px`` (principal point at the centre) sees it: the same size
    and camera matrix, the distortion removed (bilinear resampling; parts of the view that fall outside are
    black)."""
    height, width = pixels.shape[:2]
    intrinsics = camera_matrix(focal_px, width, height)
    # OpenCV puts pixel centres at integers, and the camera here at half-integers: the principal point
    # w/2 is (w - 1)/2 in OpenCV's pixels.
    opencv_intrinsics = intrinsics.copy()
    opencv_intrinsics[:2, 2] -= 0.5
    return cv2.undistort(pixels, opencv_intrinsics, coefficients, None, opencv_intrinsics)


@dataclass
class RadialDistortion:
    """The one-parameter division model that best explains the matches: undistorted = c + (p - c) / (1 + l r^2),
    r the distance from the image centre c over the half-diagonal."""

    parameter: float
    """l: negative for barrel distortion (the corners pulled in), positive for pincushion."""
    corner_shift_px: float
    """How far the model moves the image corners (pixels)."""
    evidence: float
    """The drop of the robust squared Sampson errors, in units of their variance, with the model."""
    half_diagonal: float
    """Of the image (pixels): the unit of r."""

    @property
    def kind(self) -> str:
        return "barrel" if self.parameter < 0 else "pincushion"

    @property
    def significant(self) -> bool:
        """Whether the matches show the distortion clearly, and enough of it to bend the pose; a parameter at
        the end of its range is a degenerate fit (a moving scene, say), not a distortion found."""
        return (
            self.evidence > DISTORTION_EVIDENCE
            and self.corner_shift_px > MIN_CORNER_SHIFT * self.half_diagonal
            and abs(self.parameter) < 0.99 * MAX_PARAMETER
        )


def fit_radial_distortion(
    points0: Float[np.ndarray, "n 2"],
    points1: Float[np.ndarray, "n 2"],
    focal: float,
    rotation: Float[np.ndarray, "3 3"],
    translation: Float[np.ndarray, " 3"],
    width: float,
    height: float,
    free_focal: bool,
) -> Optional[RadialDistortion]:
    """Fit the relative pose (and, with ``free_focal``, the focal length) to the matches (pixels) with and
    without a division-model distortion, starting from the pose (x1 = R x0 + t) found without it; None with
    too few matches near that pose to tell. A wrong focal length is not mistaken for distortion only when the
    focal length is free: it is held only when known."""
    from scipy.optimize import least_squares

    centre = np.array([width / 2, height / 2])
    half_diagonal = math.hypot(width, height) / 2
    near = np.abs(sampson_distances(points0, points1, focal, rotation, translation, centre)) < CHECK_THRESHOLD_PX
    # At most CHECK_MATCHES, spread over the list (it is in no spatial order): the check costs no more than that.
    chosen = np.flatnonzero(near)[:: max(1, -(-int(near.sum()) // CHECK_MATCHES))]
    points0, points1 = points0[chosen], points1[chosen]
    if len(points0) < 20:
        return None

    def corrected(points, parameter):  # unannotated: called thousands of times by the fits
        offsets = (points - centre) / half_diagonal
        factor = 1 + parameter * (offsets**2).sum(axis=1)
        return centre + half_diagonal * offsets / factor[:, None], factor

    def residuals(x, with_model):
        f = focal * math.exp(x[0]) if free_focal else focal
        rot = cv2.Rodrigues(x[1:4])[0] @ rotation
        direction = translation + x[4:7]
        (corrected0, factor0), (corrected1, factor1) = (
            corrected(p, x[7] if with_model else 0.0) for p in (points0, points1)
        )
        distances = sampson(corrected0, corrected1, f, rot, direction / np.linalg.norm(direction), centre)
        # In the photos' pixels, not the corrected ones: the model shrinks (or grows) the image around the centre
        # by about the factor, which would otherwise shrink the errors with it.
        return distances * (factor0 + factor1) / 2

    # The focal length within a factor 3 of the start: where the matches do not determine it, it would drift
    # for many iterations to degenerate values.
    # The division parameter within +-MAX_PARAMETER: beyond, it folds the image or shrinks it to its centre.
    bounds = (
        np.r_[-math.log(3), np.full(6, -np.inf), -MAX_PARAMETER],
        np.r_[math.log(3), np.full(6, np.inf), MAX_PARAMETER],
    )
    without = least_squares(residuals, np.zeros(8), args=(False,), loss="cauchy", f_scale=1.0, bounds=bounds)
    with_model = least_squares(residuals, without.x, args=(True,), loss="cauchy", f_scale=1.0, bounds=bounds)
    # The errors' variance from their median (the mismatches near the pose would inflate a mean).
    variance = (1.4826 * float(np.median(np.abs(with_model.fun)))) ** 2
    parameter = float(with_model.x[7])
    shift = half_diagonal * abs(parameter / (1 + parameter)) if parameter > -1 else math.inf
    evidence = 2 * float(without.cost - with_model.cost) / max(variance, 1e-12)
    return RadialDistortion(parameter, shift, evidence, half_diagonal)


def distortion_warning(first: str, second: str, found: RadialDistortion, pixels_per_unit: float = 1.0) -> str:
    """The warning for a pair whose matches show ``found`` (its pixels times ``pixels_per_unit`` are the photos'):
    what it means and what to do."""
    return (
        f"{first} and {second} look {found.kind}-distorted: the matches fit far better with a radial lens "
        f"distortion that moves the corners by about {found.corner_shift_px * pixels_per_unit:.0f} px, so the "
        "cameras found may be off by degrees. Undistort: give --distortion K1 K2 P1 P2 [K3] with --focal-px F "
        "(OpenCV's order; cv2.calibrateCamera on photos of a chessboard gives both, as does COLMAP's OPENCV "
        "camera model), or undistort the photos first"
    )
