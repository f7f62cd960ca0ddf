"""Two photos with no camera information -> their cameras, from the pixels alone (the logic of
``pixelsplat-process-data pair``).

1. Each photo is read as displayed (``pixelsplat_ns.core.images``: EXIF orientation first).
2. Intrinsics: the focal length from EXIF when the photos carry it (35 mm-equivalent focal length, or focal
   length with the sensor's resolution); else estimated from the pair (the focal length whose essential matrix
   explains the most matches, refined with the relative pose by minimizing the matches' Sampson error, the
   first-order two-view bundle adjustment), when the matches determine it; else COLMAP's prior, 1.2 x the longer
   side. ``focal_px`` or ``fov_deg`` override all of it. The principal point is the image centre.
3. The relative pose: SIFT features (found on the photos scaled down to ``MATCH_SIDE``: larger photos only
   cost time), matches that pass Lowe's ratio test, a robust essential matrix (USAC MAGSAC) and the cheirality
   check (``cv2.recoverPose``); the baseline is 1 (pixelSplat normalizes it anyway). A flat scene, where a
   homography explains the matches about as well, takes its pose from the homography instead, or is refused
   when that is ambiguous (``two_view_models``). Matches that show lens distortion are warned about
   (``lens_distortion``); ``undistorted_pair`` removes it when its coefficients are known.

Each stage prints a line (``progress``): two 4000 x 3000 photos take about ten seconds.

A pair that cannot give cameras is refused with ``PairError``: not two images, unreadable files, photos of
different sizes or (by EXIF) zoom settings, an impossible given focal length, too few matches, no baseline (two
identical photos, or a camera turned or zoomed in place) and a relative rotation no real pair has (a mirrored
photo), a flat scene whose pose is ambiguous. An implausible EXIF focal length is ignored with a warning.
"""

import logging
import math
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator, Optional

import cv2
import numpy as np
import torch
from PIL import Image

from pixelsplat_ns.core.camera_checks import CameraError, check_intrinsics
from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.images import COMMON_PHOTO_SUFFIXES, ImageError, displayed_size, open_image, readable_suffixes
from pixelsplat_ns.core.progress import progress_bar, stage

from .lens_distortion import (
    DistortionError,
    check_distortion,
    distortion_vector,
    distortion_warning,
    fit_radial_distortion,
    undistorted,
)
from .scene_folder import Frame, write_scene_folder
from .two_view_models import (
    ModelComparison,
    camera_matrix,
    compare_models,
    planar_poses,
    rotation_degrees,
    sampson,
)

MATCH_SIDE = 2000
"""Features are found on the photos scaled down to this longer side (pixels), and every threshold below is in
those pixels: on 4000 x 3000 photos full-size SIFT found 60,000 features a photo, whose matching took two minutes
and 3.4 GB."""
MAX_FEATURES = 8192
"""SIFT keeps at most this many features a photo, those of the most contrast (COLMAP's default): matching costs
the product of the two counts."""
RATIO = 0.8
"""Lowe's ratio test: a match is kept when its distance is below this share of the second best's."""
MIN_INLIERS = 30
"""Fewer matches consistent with one relative pose than this cannot be trusted."""
INLIER_THRESHOLD_PX = 1.0
"""Largest distance (pixels) of a match from its epipolar line for the essential matrix's inliers."""
MAX_ROTATION_DEGREES = 120.0
"""Photos turned further apart than this cannot show the same surfaces from the front (one may be mirrored)."""
FOCAL_AGREEMENT = 0.02
"""Largest relative difference of the two photos' EXIF focal lengths: more is another zoom setting."""
SMALL_PHOTO_SIDE = 200
"""Below this shorter side (pixels), too few matches are blamed on the photos' size as well."""
MIN_PARALLAX_PX = 1.5
"""Median displacement, beyond what a pure rotation explains, below which the photos have no baseline."""
COLMAP_FOCAL_PRIOR = 1.2
"""COLMAP's default focal length without EXIF: this times the longer image side, in pixels."""
FOCAL_SEARCH_FOV = (20.0, 110.0)
"""Horizontal fields of view (degrees) over which the focal length is searched."""
FOCAL_STARTS = 4
"""The focal lengths with the most inliers from which the focal length is refined."""
PRIOR_REJECTION = 9.0
"""The estimated focal length replaces the prior when the matches' squared Sampson errors, in units of their
variance, grow by more than this with the prior (a likelihood-ratio test: 3 standard deviations)."""
FILM_DIAGONAL_MM = 43.27
"""The 35 mm film frame's diagonal, which 35 mm-equivalent focal lengths refer to."""
EXIF_TAGS = {
    "FocalLength": 0x920A,
    "FocalLengthIn35mmFilm": 0xA405,
    "FocalPlaneXResolution": 0xA20E,
    "FocalPlaneResolutionUnit": 0xA210,
    "PixelXDimension": 0xA002,
}
MM_PER_UNIT = {2: 25.4, 3: 10.0, 4: 1.0, 5: 1e-3}
"""FocalPlaneResolutionUnit: inch, centimetre, millimetre, micrometre."""


LOGGER = logging.getLogger(__name__)


class PairError(InputError):
    """Two photos that cannot give two cameras; the message says why and what to do."""


@dataclass
class Photo:
    path: Path
    pixels: np.ndarray
    """[h, w, 3] uint8, RGB, as displayed."""
    undistorted: bool = False
    """The pixels are the photo's with its lens distortion removed: the scene gets them, not the file."""

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]


@dataclass
class PairCameras:
    """Both cameras: the first at the origin, the second at ``rotation``, ``centre`` (OpenCV axes)."""

    width: int
    height: int
    focal_px: float
    focal_source: str
    rotation: np.ndarray
    """Camera-to-world rotation of the second camera (the first camera's frame is the world)."""
    centre: np.ndarray
    """The second camera's centre, at distance 1."""
    matches: int
    inliers: int
    pose_from: str = "the essential matrix"
    """Which model gave the pose, and why, for the summary."""

    @property
    def rotation_degrees(self) -> float:
        return math.degrees(np.linalg.norm(cv2.Rodrigues(self.rotation)[0]))

    def intrinsics(self) -> np.ndarray:
        return camera_matrix(self.focal_px, self.width, self.height)

    @classmethod
    def from_relative_pose(cls, rotation: np.ndarray, translation: np.ndarray, **fields) -> "PairCameras":
        """The cameras of a relative pose x1 = R x0 + t (OpenCV axes, |t| = 1): the second camera's camera-to-world
        rotation is R^T and its centre -R^T t; ``fields`` are the others."""
        return cls(rotation=rotation.T, centre=-rotation.T @ translation, **fields)

    def camera_to_worlds(self) -> np.ndarray:
        """[2, 4, 4] camera-to-world, OpenCV axes."""
        second = np.eye(4)
        second[:3, :3], second[:3, 3] = self.rotation, self.centre
        return np.stack([np.eye(4), second])


def read_pair(folder: Path) -> list[Photo]:
    """The two photos of ``folder`` (by name), as displayed; refused unless there are exactly two."""
    folder = Path(folder)
    if not folder.is_dir():
        raise PairError(f"{folder} is not a folder: give the folder that holds your two photos")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    suffixes = readable_suffixes()
    paths = [p for p in files if p.suffix.lower() in suffixes]
    if len(paths) != 2:
        listed = ", ".join(p.name for p in paths[:6]) or "none"
        others = [p.name for p in files if p not in paths]
        common = " ".join(s for s in COMMON_PHOTO_SUFFIXES if s in suffixes)
        skipped = (
            f" (not read: {', '.join(others[:6])}; photos are image files that Pillow reads: {common} and others)"
            if others
            else ""
        )
        advice = (
            " For more photos use COLMAP: ns-process-data images --data FOLDER --output-dir SCENE "
            "--camera-type pinhole --matching-method exhaustive"
            if len(paths) > 2
            else ""
        )
        raise PairError(
            f"{folder} holds {len(paths)} image(s) ({listed}){skipped}; the pair command takes exactly two.{advice}"
        )
    try:
        photos = [Photo(path, np.asarray(open_image(path).convert("RGB"))) for path in paths]
    except ImageError as error:
        raise PairError(str(error)) from error
    if photos[0].size != photos[1].size:
        (w0, h0), (w1, h1) = photos[0].size, photos[1].size
        turned = [
            f"{path.name} is stored {stored[0]}x{stored[1]} with EXIF orientation {orientation}"
            for path in paths
            for _, stored, orientation in [displayed_size(path)]
            if orientation != 1
        ]
        note = f" (as displayed: {'; '.join(turned)})" if turned else ""
        raise PairError(
            f"the photos are {w0}x{h0} ({paths[0].name}) and {w1}x{h1} ({paths[1].name}){note}: "
            "pixelSplat encodes two views of one size, and one camera's intrinsics here serve both; take "
            "both photos with the same camera and settings, or crop and resize them to one size first"
        )
    return photos


def exif_focal_px(path: Path, width: int, height: int) -> Optional[tuple[float, str]]:
    """The focal length in pixels of the displayed image from EXIF, and how it was found; None without it."""
    with Image.open(path) as image:
        exif = image.getexif()
        details = exif.get_ifd(0x8769) if hasattr(exif, "get_ifd") else {}
    tags = {name: details.get(tag, exif.get(tag)) for name, tag in EXIF_TAGS.items()}
    focal_35 = tags["FocalLengthIn35mmFilm"]
    if focal_35:
        return float(focal_35) / FILM_DIAGONAL_MM * math.hypot(
            width, height
        ), f"EXIF (35 mm-equivalent focal length {float(focal_35):g} mm)"
    focal_mm, resolution, unit = tags["FocalLength"], tags["FocalPlaneXResolution"], tags["FocalPlaneResolutionUnit"]
    if focal_mm and resolution and unit in MM_PER_UNIT:
        pixels_per_mm = float(resolution) / MM_PER_UNIT[unit]  # on the sensor, at the captured width
        captured_width = float(tags["PixelXDimension"] or max(width, height))
        scale = max(width, height) / captured_width  # the image may have been resized since
        return float(
            focal_mm
        ) * pixels_per_mm * scale, f"EXIF (focal length {float(focal_mm):g} mm and sensor resolution)"
    return None


def working_scale(width: int, height: int) -> float:
    """The factor from the photos' pixels to those the features are found in (``MATCH_SIDE``), at most 1."""
    return min(1.0, MATCH_SIDE / max(width, height))


def match_features(first: Photo, second: Photo) -> tuple[np.ndarray, np.ndarray]:
    """Matched pixel positions [n, 2] in each photo (pixel centres at half-integers): SIFT on the photos scaled
    down to ``MATCH_SIDE`` (area averaging), at most ``MAX_FEATURES`` a photo, mutual nearest neighbours passing
    Lowe's ratio test."""
    sift = cv2.SIFT.create(MAX_FEATURES, contrastThreshold=0.02)  # SIFT_create's typed spelling (OpenCV >= 4.4)
    width, height = first.size
    scale = working_scale(width, height)
    grey = [cv2.cvtColor(p.pixels, cv2.COLOR_RGB2GRAY) for p in (first, second)]
    if scale < 1:
        size = (round(width * scale), round(height * scale))
        grey = [cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in grey]
    # Each axis's own factor back to the photo's pixels (the scaled size is rounded).
    back = np.array([width / grey[0].shape[1], height / grey[0].shape[0]])
    (k0, d0), (k1, d1) = (
        sift.detectAndCompute(g, None)  # type: ignore[call-overload]  # None = no mask; OpenCV's stubs omit it
        for g in grey
    )
    if d0 is None or d1 is None or len(k0) < 2 or len(k1) < 2:
        return np.zeros((0, 2)), np.zeros((0, 2))
    matcher = cv2.BFMatcher(cv2.NORM_L2)
    forward = [m for m, n in matcher.knnMatch(d0, d1, k=2) if m.distance < RATIO * n.distance]
    backward = {m.queryIdx: m.trainIdx for m, n in matcher.knnMatch(d1, d0, k=2) if m.distance < RATIO * n.distance}
    mutual = [m for m in forward if backward.get(m.trainIdx) == m.queryIdx]
    # OpenCV puts pixel centres at integers; the cameras here (nerfstudio's, pixelSplat's) at half-integers.
    points0 = (np.array([k0[m.queryIdx].pt for m in mutual], dtype=np.float64).reshape(-1, 2) + 0.5) * back
    points1 = (np.array([k1[m.trainIdx].pt for m in mutual], dtype=np.float64).reshape(-1, 2) + 0.5) * back
    return points0, points1


def relative_pose(points0: np.ndarray, points1: np.ndarray, intrinsics: np.ndarray):
    """(R, t, inlier mask) with x1 = R x0 + t (OpenCV camera coordinates), |t| = 1: a USAC MAGSAC essential
    matrix and the cheirality check, which picks the decomposition with the points in front of both cameras."""
    essential, mask = cv2.findEssentialMat(
        points0, points1, intrinsics, method=cv2.USAC_MAGSAC, prob=0.9999, threshold=INLIER_THRESHOLD_PX
    )
    if essential is None or essential.shape != (3, 3):
        return None, None, np.zeros(len(points0), dtype=bool)
    count, rotation, translation, mask = cv2.recoverPose(essential, points0, points1, intrinsics, mask=mask)
    return rotation, translation[:, 0], mask[:, 0].astype(bool)


@dataclass
class PoseFit:
    focal: float
    focal_error: float
    """Standard error of the focal length (pixels); 0 when it was held fixed."""
    rotation: np.ndarray
    translation: np.ndarray
    squared_error: float
    """Sum of the matches' squared Sampson errors (pixels^2)."""
    cost: float
    """The same sum under Cauchy's robust loss, which the fit minimizes."""


def refine_pose(
    points0: np.ndarray,
    points1: np.ndarray,
    focal: float,
    rotation: np.ndarray,
    translation: np.ndarray,
    width: float,
    height: float,
    free_focal: bool,
) -> PoseFit:
    """The two-view bundle adjustment, to first order: the rotation, the translation's direction and, with
    ``free_focal``, the focal length that minimize the matches' Sampson errors (Levenberg-Marquardt, from the
    given pose)."""
    from scipy.optimize import least_squares

    centre = np.array([width / 2, height / 2])
    unknowns = 7 if free_focal else 6

    def unpack(x):
        rot = cv2.Rodrigues(x[-6:-3])[0] @ rotation
        direction = translation + x[-3:]
        return (math.exp(x[0]) if free_focal else 1.0) * focal, rot, direction / np.linalg.norm(direction)

    def residuals(x):
        return sampson(points0, points1, *unpack(x), centre)

    # Cauchy's robust loss at the inlier threshold: a few mismatches among the inliers must not decide the fit.
    fit = least_squares(residuals, np.zeros(unknowns), loss="cauchy", f_scale=INLIER_THRESHOLD_PX)
    f, rot, t = unpack(fit.x)
    squared_error = float(fit.fun @ fit.fun)
    cost = 2 * float(fit.cost)
    error = 0.0
    if free_focal:  # the Gauss-Newton covariance of log f (pinv: the translation's length is not observable)
        covariance = np.linalg.pinv(fit.jac.T @ fit.jac) * squared_error / max(len(points0) - 6, 1)
        error = f * math.sqrt(max(covariance[0, 0], 0.0))
    return PoseFit(f, error, rot, t, squared_error, cost)


def focal_from_fov(fov_deg: float, width: float) -> float:
    """The focal length (pixels) of a horizontal field of view ``fov_deg`` across ``width`` pixels."""
    return width / (2 * math.tan(math.radians(fov_deg) / 2))


def focal_candidates(width: float) -> np.ndarray:
    """Focal lengths (pixels) spaced evenly in ratio over the fields of view ``FOCAL_SEARCH_FOV``."""
    low, high = (focal_from_fov(fov, width) for fov in FOCAL_SEARCH_FOV[::-1])
    return np.geomspace(low, high, 24)


def estimate_focal(
    points0: np.ndarray, points1: np.ndarray, width: float, height: float, prior: float
) -> Optional[PoseFit]:
    """The focal length (pixels) whose essential matrix has the most inliers, refined with the pose, when the
    matches reject the ``prior`` focal length (a likelihood-ratio test on the Sampson errors, ``PRIOR_REJECTION``);
    None when they do not, as for a camera moved sideways without turning, where every focal length explains
    the matches alike."""
    candidates = focal_candidates(width)
    poses = [
        relative_pose(points0, points1, camera_matrix(f, width, height))
        for f in progress_bar(list(candidates), "trying focal lengths")
    ]
    counts = np.array([inliers.sum() for _, _, inliers in poses])
    if counts.max() < MIN_INLIERS:
        return None
    inliers = poses[int(np.argmax(counts))][2]
    points0, points1 = points0[inliers], points1[inliers]
    # Several starts: on a weakly determined pair the fit has local minima.
    starts = [i for i in np.argsort(-counts)[:FOCAL_STARTS] if poses[i][0] is not None]
    fits = [
        refine_pose(points0, points1, candidates[i], poses[i][0], poses[i][1], width, height, free_focal=True)
        for i in starts
    ]
    fits = [fit for fit in fits if candidates[0] / 2 <= fit.focal <= candidates[-1] * 2]  # not collapsed
    if not fits:
        return None
    free = min(fits, key=lambda fit: fit.cost)
    # The prior's best explanation of the same matches, from the free fits' poses and its own essential matrix.
    starts = [(fit.rotation, fit.translation) for fit in fits]
    starts.append(relative_pose(points0, points1, camera_matrix(prior, width, height))[:2])
    held = min(
        (
            refine_pose(points0, points1, prior, r, t, width, height, free_focal=False)
            for r, t in starts
            if r is not None
        ),
        key=lambda fit: fit.cost,
    )
    variance = free.squared_error / max(len(points0) - 7, 1)
    return free if (held.cost - free.cost) / variance > PRIOR_REJECTION else None


def pair_cameras(photos: list[Photo], focal_px: Optional[float] = None, fov_deg: Optional[float] = None) -> PairCameras:
    """The two photos' cameras (see the module's docstring), printing a line per stage. Raises ``PairError``
    saying why a pair cannot; warns (``LOGGER``) when the matches show lens distortion."""
    first, second = photos
    width, height = first.size
    given = given_focal(focal_px, fov_deg, width, height)
    with stage("matching SIFT features") as found:
        points0, points1 = match_features(first, second)
        found.text = f"{len(points0):,} matches"
        if working_scale(width, height) < 1:
            found.text += f" (found with the photos scaled to {MATCH_SIDE} px on the longer side)"
    if len(points0) < MIN_INLIERS:
        small = (
            f" (the photos are only {width}x{height}: larger photos give more features)"
            if min(width, height) < SMALL_PHOTO_SIDE
            else ""
        )
        raise PairError(
            f"only {len(points0)} features of {first.path.name} and {second.path.name} match{small}: the "
            "photos must show the same scene, overlapping, with texture (plain walls and sky give no "
            "matches)"
        )
    exif = None if given is not None else exif_focal(photos)
    known = given or exif
    # From here on, pixels are those of the photos scaled to MATCH_SIDE (focal lengths included), so that every
    # threshold means what it means for a photo of that size; the focal length is scaled back at the end.
    scale = working_scale(width, height)
    matches = len(points0)
    points0, points1 = points0 * scale, points1 * scale
    work_width, work_height = width * scale, height * scale
    known_focal = known[0] * scale if known is not None else None
    prior = COLMAP_FOCAL_PRIOR * max(work_width, work_height)
    focals = [known_focal] if known_focal else list(focal_candidates(work_width)) + [prior]
    if np.median(np.linalg.norm(points1 - points0, axis=1)) < MIN_PARALLAX_PX or turned_in_place(
        points0, points1, focals, work_width, work_height
    ):
        raise PairError(no_baseline(first, second))
    with stage("comparing a flat scene's homography with the epipolar geometry") as found:
        models = compare_models(points0, points1)
        found.text = (
            f"the homography explains {int(models.homography_inliers.sum()):,} matches, the epipolar geometry "
            f"{models.fundamental_inliers:,} (ratio {models.ratio:.2f}: "
            f"{'a flat scene' if models.planar else 'a scene with depth'})"
        )
    if models.planar:
        return planar_pair_cameras(photos, models, points0, points1, known, scale, matches)
    if known is not None:
        focal, source = known[0] * scale, known[1]
    else:
        with stage("estimating the focal length", spinner=False) as found:
            estimated = estimate_focal(points0, points1, work_width, work_height, prior)
            found.text = f"{estimated.focal / scale:.1f} px" if estimated is not None else "not determined by the pair"
        focal, source = (
            (estimated.focal, f"estimated from the pair (standard error {estimated.focal_error / scale:.1f} px)")
            if estimated is not None
            else (
                prior,
                f"COLMAP's prior, {COLMAP_FOCAL_PRIOR:g} x the longer side (no usable focal length in EXIF, and "
                "the pair does not determine it: give --focal-px or --fov-deg if you know it)",
            )
        )
    with stage("fitting the relative pose") as found:
        intrinsics = camera_matrix(focal, work_width, work_height)
        rotation, translation, inliers = relative_pose(points0, points1, intrinsics)
        if rotation is None or inliers.sum() < MIN_INLIERS:
            raise PairError(
                f"only {int(inliers.sum())} of {len(points0)} matches agree on one relative pose: the photos "
                "may show a moving scene, or too little of the same surfaces"
            )
        fit = refine_pose(
            points0[inliers], points1[inliers], focal, rotation, translation, work_width, work_height, free_focal=False
        )
        cameras = PairCameras.from_relative_pose(
            fit.rotation,
            fit.translation,
            width=width,
            height=height,
            focal_px=focal / scale,
            focal_source=source,
            matches=matches,
            inliers=int(inliers.sum()),
        )
        found.text = f"{cameras.inliers:,} inliers, turned {cameras.rotation_degrees:.1f} degrees"
    check_rotation(first, second, cameras)
    if not any(photo.undistorted for photo in photos):
        with stage("looking for lens distortion in the matches") as found:
            distortion = fit_radial_distortion(
                points0, points1, focal, fit.rotation, fit.translation, work_width, work_height, known is None
            )
            if distortion is None:
                found.text = "too few matches to tell"
            elif distortion.significant:
                found.text = (
                    f"{distortion.kind} distortion, about {distortion.corner_shift_px / scale:.0f} px at the corners"
                )
            else:
                found.text = (
                    f"none to speak of (the best fit moves the corners {distortion.corner_shift_px / scale:.0f} px; "
                    f"evidence {distortion.evidence:.0f})"
                )
        if distortion is not None and distortion.significant:
            LOGGER.warning("warning: %s", distortion_warning(first.path.name, second.path.name, distortion, 1 / scale))
    return cameras


def planar_pair_cameras(
    photos: list[Photo],
    models: ModelComparison,
    points0: np.ndarray,
    points1: np.ndarray,
    known: Optional[tuple[float, str]],
    scale: float,
    matches: int,
) -> PairCameras:
    """The cameras of a flat scene's pair from the homography of ``models`` (``points0``/``points1``: the
    matches, in the pixels of the photos times ``scale``), or ``PairError`` when its pose is ambiguous."""
    first, second = photos
    width, height = first.size
    work_width, work_height = width * scale, height * scale
    homography = models.homography
    assert homography is not None  # planar models have one
    inliers = models.homography_inliers
    if np.linalg.det(homography) < 0:  # a real plane, in front of both cameras, keeps the image's orientation
        raise PairError(
            f"{first.path.name} and {second.path.name} are mirror images of each other by their matches (they map "
            "onto each other turned over): is one photo mirrored?"
        )
    if inliers.sum() < MIN_INLIERS:
        raise PairError(
            f"only {int(inliers.sum())} of {matches} matches agree on the homography of a flat scene: the photos "
            "may show a moving scene, or too little of the same surfaces"
        )
    if known is not None:
        focal, source = known[0] * scale, known[1]
    else:
        focal = COLMAP_FOCAL_PRIOR * max(work_width, work_height)
        source = (
            f"COLMAP's prior, {COLMAP_FOCAL_PRIOR:g} x the longer side (no usable focal length in EXIF, and a flat "
            "scene does not determine it: give --focal-px or --fov-deg if you know it)"
        )
    with stage("taking the pose from the homography") as found:
        intrinsics = camera_matrix(focal, work_width, work_height)
        poses, angles = planar_poses(homography, points0[inliers], points1[inliers], intrinsics)
        if len(poses) != 1:
            raise PairError(flat_scene(first, second, models.ratio, angles, len(poses)))
        pose = poses[0]
        kept = rotation_degrees(pose.rotation)
        dropped = " or ".join(
            f"{a:.1f}" for a in sorted({round(a, 1) for a in pose.rejected_degrees if abs(a - kept) > 0.05})
        )
        behind = f" (its other decomposition, turned {dropped} degrees, puts part of the plane behind a camera)"
        other = behind if dropped else ""
        cameras = PairCameras.from_relative_pose(
            pose.rotation,
            pose.translation,
            width=width,
            height=height,
            focal_px=focal / scale,
            focal_source=source,
            matches=matches,
            inliers=int(inliers.sum()),
            pose_from=f"the homography of a flat scene{other}",
        )
        found.text = f"{cameras.inliers:,} inliers, turned {cameras.rotation_degrees:.1f} degrees"
    check_rotation(first, second, cameras)
    return cameras


def flat_scene(first: Photo, second: Photo, ratio: float, angles: list[float], kept: int) -> str:
    """Why a flat scene's pair is refused (``kept``: its decompositions with the plane in front of both
    cameras), and what to do."""
    turns = " or ".join(f"{a:.0f}" for a in sorted(set(round(a) for a in angles)))
    why = (
        f"its homography's two decompositions (turned {turns} degrees) both put the plane in front of both "
        "cameras, so the pose is ambiguous"
        if kept > 1
        else "no decomposition of its homography puts all of the plane in front of both cameras (a moving scene?)"
    )
    return (
        f"{first.path.name} and {second.path.name} show a flat scene (a homography explains {ratio:.0%} as many "
        f"matches as the epipolar geometry) and {why}: photograph a scene with depth (things at different "
        "distances), or give the cameras with `pixelsplat-process-data cameras`"
    )


def check_rotation(first: Photo, second: Photo, cameras: PairCameras) -> None:
    """Refuse a relative rotation no real pair has (``MAX_ROTATION_DEGREES``)."""
    if cameras.rotation_degrees > MAX_ROTATION_DEGREES:
        raise PairError(
            f"{first.path.name} and {second.path.name} come out turned {cameras.rotation_degrees:.0f} "
            "degrees from each other: two photos that far apart cannot show the same surfaces, so the "
            "matches are wrong (is one photo mirrored?). pixelSplat's pairs are turned a few tens of "
            "degrees at most"
        )


def given_focal(
    focal_px: Optional[float], fov_deg: Optional[float], width: int, height: int
) -> Optional[tuple[float, str]]:
    """The focal length (pixels) and its source from ``--focal-px`` or ``--fov-deg`` (horizontal, degrees);
    None when neither is given. Raises ``PairError`` for both or for values no camera has."""
    if focal_px is not None and fov_deg is not None:
        raise PairError("give --focal-px or --fov-deg, not both")
    if fov_deg is not None:
        if not (math.isfinite(fov_deg) and 0 < fov_deg < 180):
            raise PairError(
                f"--fov-deg {fov_deg:g}: a horizontal field of view is between 0 and 180 degrees "
                "(a phone's main camera: about 65-75)"
            )
        focal_px, source = focal_from_fov(fov_deg, width), f"given (--fov-deg {fov_deg:g})"
    elif focal_px is not None:
        source = "given (--focal-px)"
    else:
        return None
    flag = f"--focal-px {focal_px:g}" if source == "given (--focal-px)" else f"--fov-deg {fov_deg:g}"
    try:
        check_intrinsics(focal_px, focal_px, width / 2, height / 2, width, height, flag)
    except CameraError as error:
        raise PairError(str(error)) from error
    return float(focal_px), source


def exif_focal(photos: list[Photo]) -> Optional[tuple[float, str]]:
    """The photos' focal length (pixels) and its source from EXIF; None without a usable one (missing, or one
    no camera of this image size has, which is then logged and ignored). Raises ``PairError`` when the photos'
    focal lengths differ (another zoom setting: one camera matrix cannot serve both)."""
    found = [exif_focal_px(photo.path, *photo.size) for photo in photos]
    usable = []
    for photo, result in zip(photos, found):
        if result is None:
            continue
        try:
            check_intrinsics(
                result[0],
                result[0],
                photo.size[0] / 2,
                photo.size[1] / 2,
                *photo.size,
                f"{photo.path.name}: {result[1]}",
            )
        except CameraError as error:
            LOGGER.warning("ignored: %s", error)
            continue
        usable.append(result)
    if len(usable) == 2 and abs(usable[0][0] - usable[1][0]) > FOCAL_AGREEMENT * max(usable[0][0], usable[1][0]):
        (f0, s0), (f1, s1) = usable
        raise PairError(
            f"the photos were taken at different focal lengths ({photos[0].path.name}: {f0:.0f} px from "
            f"{s0}; {photos[1].path.name}: {f1:.0f} px from {s1}): the pair command needs one zoom setting "
            "for both; take them again at one zoom"
        )
    return usable[0] if usable else None


def turned_in_place(points0: np.ndarray, points1: np.ndarray, focals: list[float], width: float, height: float) -> bool:
    """Whether the matches are the view of a camera turned about its centre: a homography moves them within
    ``MIN_PARALLAX_PX`` and, for one of ``focals``, it is a rotation (K R K^-1). A plane seen from two places
    is also a homography, but not a rotation's: that pair has a baseline."""
    homography, _ = cv2.findHomography(points0, points1, cv2.USAC_MAGSAC, 2.0)
    if homography is None:
        return False
    warped = cv2.perspectiveTransform(points0[:, None], homography)[:, 0]
    if float(np.median(np.linalg.norm(warped - points1, axis=1))) >= MIN_PARALLAX_PX:
        return False
    for focal in focals:
        intrinsics = camera_matrix(focal, width, height)
        # A camera turned and zoomed about its centre maps pixels by K diag(s, s, 1) R K^-1 (s = 1 without zoom).
        turn = np.linalg.inv(intrinsics) @ homography @ intrinsics
        turn /= np.linalg.norm(turn[2]) * np.sign(np.linalg.det(turn))
        rotation = turn / np.linalg.norm(turn, axis=1, keepdims=True)
        zoom = np.linalg.norm(turn[0]) / np.linalg.norm(turn[1])
        if np.abs(rotation @ rotation.T - np.eye(3)).max() < 0.05 and abs(zoom - 1) < 0.05:
            return True
    return False


def no_baseline(first: Photo, second: Photo) -> str:
    return (
        f"{first.path.name} and {second.path.name} show no baseline: they were taken from the same place "
        "(the same photo twice, or the camera turned or zoomed without moving). pixelSplat sees depth from the "
        "camera's movement: take the second photo a step to the side"
    )


def pair_frames(photos: list[Photo], cameras: PairCameras) -> list[Frame]:
    """The scene's two frames: each photo with its camera, in nerfstudio's conventions."""
    c2w = convert_c2w_opengl_opencv(torch.from_numpy(cameras.camera_to_worlds()))
    camera = {
        "fl_x": cameras.focal_px,
        "fl_y": cameras.focal_px,
        "cx": cameras.width / 2,
        "cy": cameras.height / 2,
        "w": cameras.width,
        "h": cameras.height,
    }
    return [Frame(photo.path, photo.path.name, matrix, camera) for photo, matrix in zip(photos, c2w)]


def undistorted_pair(
    photos: list[Photo],
    coefficients: tuple[float, ...],
    focal_px: Optional[float] = None,
    fov_deg: Optional[float] = None,
) -> list[Photo]:
    """Both photos with the lens distortion of OpenCV's ``coefficients`` (k1 k2 p1 p2 [k3]) removed, onto the
    pinhole camera of their focal length (``focal_px`` or ``fov_deg``, else EXIF: the coefficients belong to
    one) with the principal point at the centre. Raises ``PairError`` without a focal length, or for
    coefficients that cannot be used."""
    width, height = photos[0].size
    known = given_focal(focal_px, fov_deg, width, height) or exif_focal(photos)
    if known is None:
        raise PairError(
            "--distortion needs the focal length its coefficients were calibrated with: give --focal-px F "
            "(cv2.calibrateCamera's fx, for photos of this size) or --fov-deg"
        )
    try:
        vector = distortion_vector(coefficients)
        check_distortion(vector, known[0], width, height)
    except DistortionError as error:
        raise PairError(str(error)) from error
    return [Photo(photo.path, undistorted(photo.pixels, vector, known[0]), undistorted=True) for photo in photos]


def write_pair_scene(photos: list[Photo], cameras: PairCameras, out: Path) -> dict:
    """Write the scene (``scene_folder.write_scene_folder``): the photos copied, or, where their distortion was
    removed, their undistorted pixels as PNG (lossless) under the photo's name with the suffix .png."""
    frames = pair_frames(photos, cameras)
    if not any(photo.undistorted for photo in photos):
        return write_scene_folder(frames, out)
    names = [photo.path.stem + ".png" for photo in photos]
    if len(set(names)) < len(names):  # a.jpg and a.png
        names = [photo.path.name + ".png" for photo in photos]
    with _temporary_folder() as folder:
        sources = []
        for photo, name in zip(photos, names):
            Image.fromarray(photo.pixels).save(folder / name)
            sources.append(folder / name)
        return write_scene_folder(
            [replace(frame, source=source, name=name) for frame, source, name in zip(frames, sources, names)], out
        )


@contextmanager
def _temporary_folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="pixelsplat-pair-") as folder:
        yield Path(folder)
