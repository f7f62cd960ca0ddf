"""The models that two photos' matches are fitted with, and which of them the matches support: the epipolar
geometry of a scene with depth (fundamental or essential matrix, Sampson distance) or the homography of a flat
scene, whose relative pose comes from the homography's decomposition instead.

A flat scene makes the essential matrix ambiguous (a family of them explains the matches), and OpenCV then picks
one silently: on OpenCV's ``graf1.png``/``graf3.png`` (a painted wall) the essential matrix turns the camera 16
degrees with the wall edge-on to the first camera, where the true turn is 31 degrees. So the two models are
compared first, as COLMAP does (``max_H_inlier_ratio``): when the homography explains nearly as many matches as
the fundamental matrix, the pose comes from the homography. Its decomposition has up to two physical solutions;
only those that put every matched point of the plane in front of both cameras are kept (Malis and Vargas), and a
pair where two remain is refused: the pose is ambiguous.

Pixel coordinates put pixel centres at half-integers; ``x1 = R x0 + t`` maps the first camera's coordinates
(OpenCV axes) to the second's.
"""

import math
from dataclasses import dataclass
from typing import Optional

import cv2
import numpy as np
from jaxtyping import Bool, Float

MODEL_THRESHOLD_PX = 4.0
"""Inlier threshold (pixels) of both models when they are compared: COLMAP's default ``max_error``, the same for
both so that their inlier counts compare."""
PLANAR_INLIER_RATIO = 0.8
"""A pair is flat when the homography's inliers are more than this share of the fundamental matrix's: COLMAP's
``max_H_inlier_ratio``. Measured: 0.96 on graf1/graf3 (a wall), 0.45 on Middlebury's motorcycle, 0.43 on a webcam
stereo pair, 0.37 on renders of a room."""


def camera_matrix(focal_px: float, width: float, height: float) -> Float[np.ndarray, "3 3"]:
    """Pixel intrinsics with the principal point at the centre of a ``width`` x ``height`` image."""
    return np.array([[focal_px, 0.0, width / 2], [0.0, focal_px, height / 2], [0.0, 0.0, 1.0]])


def sampson_distances(
    points0: Float[np.ndarray, "n 2"],
    points1: Float[np.ndarray, "n 2"],
    focal: float,
    rotation: Float[np.ndarray, "3 3"],
    translation: Float[np.ndarray, " 3"],
    centre: Float[np.ndarray, " 2"],
) -> Float[np.ndarray, " n"]:
    """Signed Sampson distances (pixels) of the matches to the epipolar geometry of (focal, R, t), the principal
    point at ``centre``: the first-order distance of each match from the nearest pair of consistent points."""
    return sampson(points0, points1, focal, rotation, translation, centre)


def sampson(points0, points1, focal, rotation, translation, centre):
    """``sampson_distances`` without the annotations, which the tests check on every call: the fits call it
    thousands of times."""
    k_inv = np.linalg.inv(np.array([[focal, 0.0, centre[0]], [0.0, focal, centre[1]], [0.0, 0.0, 1.0]]))
    tx = np.array(
        [
            [0, -translation[2], translation[1]],
            [translation[2], 0, -translation[0]],
            [-translation[1], translation[0], 0],
        ]
    )
    fundamental = k_inv.T @ tx @ rotation @ k_inv
    x0 = np.c_[points0, np.ones(len(points0))]
    x1 = np.c_[points1, np.ones(len(points1))]
    f_x0, ft_x1 = x0 @ fundamental.T, x1 @ fundamental
    numerator = np.einsum("ni,ni->n", x1, f_x0)
    denominator = np.sqrt(f_x0[:, 0] ** 2 + f_x0[:, 1] ** 2 + ft_x1[:, 0] ** 2 + ft_x1[:, 1] ** 2)
    return numerator / np.maximum(denominator, 1e-12)


@dataclass
class ModelComparison:
    """How many matches each model explains within ``MODEL_THRESHOLD_PX``."""

    homography: Optional[Float[np.ndarray, "3 3"]]
    """Maps the first photo's pixels to the second's; None when it could not be fitted."""
    homography_inliers: Bool[np.ndarray, " n"]
    fundamental_inliers: int

    @property
    def ratio(self) -> float:
        """The homography's inliers over the fundamental matrix's (COLMAP's H/F inlier ratio)."""
        return int(self.homography_inliers.sum()) / max(self.fundamental_inliers, 1)

    @property
    def planar(self) -> bool:
        """Whether the homography explains the matches about as well: a flat scene (or a camera turned in place,
        which is refused before as having no baseline)."""
        return self.homography is not None and self.ratio > PLANAR_INLIER_RATIO


def compare_models(points0: Float[np.ndarray, "n 2"], points1: Float[np.ndarray, "n 2"]) -> ModelComparison:
    """Fit a homography and a fundamental matrix (USAC MAGSAC, the same threshold) to the matches (pixels)."""
    homography, h_mask = cv2.findHomography(points0, points1, cv2.USAC_MAGSAC, MODEL_THRESHOLD_PX, confidence=0.9999)
    # The fundamental matrix, not the essential one: the comparison needs no focal length, which may be unknown.
    fundamental, f_mask = cv2.findFundamentalMat(points0, points1, cv2.USAC_MAGSAC, MODEL_THRESHOLD_PX, 0.9999)
    if homography is None or h_mask is None:
        return ModelComparison(None, np.zeros(len(points0), dtype=bool), 0)
    f_count = int(f_mask.sum()) if fundamental is not None and f_mask is not None else 0
    return ModelComparison(homography, h_mask[:, 0].astype(bool), f_count)


@dataclass
class PlanarPose:
    """The relative pose of a flat scene's pair from its homography."""

    rotation: Float[np.ndarray, "3 3"]
    """R of x1 = R x0 + t."""
    translation: Float[np.ndarray, " 3"]
    """t of x1 = R x0 + t, unit length."""
    normal: Float[np.ndarray, " 3"]
    """The plane's unit normal in the first camera's frame, pointing away from it."""
    rejected_degrees: list[float]
    """The rotation angles of the decompositions dropped because part of the plane would lie behind a camera."""


def planar_poses(
    homography: Float[np.ndarray, "3 3"],
    points0: Float[np.ndarray, "n 2"],
    points1: Float[np.ndarray, "n 2"],
    intrinsics: Float[np.ndarray, "3 3"],
) -> tuple[list[PlanarPose], list[float]]:
    """The decompositions of ``homography`` (pixels to pixels, both photos with ``intrinsics``) with every one
    of the plane's matched points (its inliers, ``points0``/``points1``) in front of both cameras, and the
    rotation angles (degrees) of all the decompositions. A plane seen edge-on cannot hold points spread over
    the image in front of the camera, which rules out the wrong one of the two physical solutions when it
    turns the plane away from a camera; when both remain, the pose is ambiguous."""
    # Refit on the inliers by least squares (LM): the robust fit's sample-based estimate is noisier.
    refined, _ = cv2.findHomography(points0, points1, 0)
    if refined is not None:
        homography = refined
    _, rotations, translations, normals = cv2.decomposeHomographyMat(homography, intrinsics)
    # The visibility test wants normalized image coordinates, float32.
    rays0, rays1 = (
        cv2.undistortPoints(p[:, None], intrinsics, np.zeros(5)).astype(np.float32) for p in (points0, points1)
    )
    kept = cv2.filterHomographyDecompByVisibleRefpoints(rotations, normals, rays0, rays1)
    kept_indices = [] if kept is None else [int(i) for i in np.asarray(kept).ravel()]
    angles = [rotation_degrees(r) for r in rotations]
    poses = []
    for index in kept_indices:
        translation = translations[index][:, 0]
        norm = float(np.linalg.norm(translation))
        if norm < 1e-9:  # no baseline: refused elsewhere
            continue
        rejected = [a for i, a in enumerate(angles) if i not in kept_indices]
        poses.append(PlanarPose(rotations[index], translation / norm, normals[index][:, 0], rejected))
    return poses, angles


def rotation_degrees(rotation: Float[np.ndarray, "3 3"]) -> float:
    """The angle (degrees) of a rotation matrix."""
    return math.degrees(float(np.linalg.norm(cv2.Rodrigues(rotation)[0])))
