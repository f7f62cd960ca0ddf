"""The scene's depth seen from two posed views, by triangulating matched features: what ``context-pairs auto``
uses to space its groups, independently of the encoder's predicted depth (which a small or out-of-domain
encoder can get wrong by a factor of several).

Features are OpenCV SIFT matched mutually with Lowe's ratio test (``process_data.pair.match_features``, the
same matching that finds the cameras of a pair of photos); each match is triangulated with the given cameras
(``cv2.triangulatePoints``, linear) and kept only in front of both cameras and within ``MAX_REPROJECTION_PX`` of
both observations, with rays that meet at ``MIN_PARALLAX_DEGREES`` or more, so wrong matches and depths
that the baseline does not determine fall out.
"""

from pathlib import Path
from typing import Optional, Sequence

import cv2
import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv, homogeneous
from pixelsplat_ns.process_data.pair import Photo, match_features

MIN_POINTS = 10
"""Fewer triangulated points than this (in two views each) give no depth (the caller falls back to another
estimate)."""
MATCH_LONG_SIDE = 1024
"""Larger images are matched downscaled to this long side (pixels): SIFT's time and the brute-force matching's
(quadratic in the features) grow with the image, and a median depth needs no more."""
MAX_REPROJECTION_PX = 2.0
MIN_PARALLAX_DEGREES = 0.5
"""Points whose rays from the two cameras meet at a smaller angle have no usable depth (no baseline, or far)."""


def triangulate(
    images: list[np.ndarray], camera_to_worlds: Float[Tensor, "2 3 4"], intrinsics: Float[Tensor, "2 3 3"]
) -> tuple[Float[np.ndarray, "k 2"], Float[np.ndarray, "2 k"]]:
    """The features matched between two views that triangulate well: their pixel positions in the first view
    and their depths (camera z, the cameras' units) in each view.

    ``images``: two [h, w, 3] uint8 RGB images; ``camera_to_worlds``: nerfstudio's (OpenGL axes);
    ``intrinsics``: pixels, pixel centres at half-integers (nerfstudio's). Empty when nothing matches. Images
    with a long side over ``MATCH_LONG_SIDE`` are matched downscaled (the reprojection limit then holds at that
    scale); the positions are given at the images' own size."""
    scale = min(1.0, MATCH_LONG_SIDE / max(images[0].shape[:2]))
    if scale < 1:
        images, intrinsics, factors = downscaled(images, intrinsics, scale)
        found, depths = triangulate(images, camera_to_worlds, intrinsics)
        return found / factors, depths
    c2w = convert_c2w_opengl_opencv(homogeneous(camera_to_worlds.double().cpu()))
    w2c = torch.linalg.inv(c2w)[:, :3].numpy()
    projections = [intrinsics[i].double().cpu().numpy() @ w2c[i] for i in range(2)]
    points0, points1 = match_features(*(Photo(Path(f"view{i}"), image) for i, image in enumerate(images)))
    if len(points0) == 0:
        return np.zeros((0, 2)), np.zeros((2, 0))
    homogeneous_points = cv2.triangulatePoints(projections[0], projections[1], points0.T, points1.T).T
    with np.errstate(divide="ignore", invalid="ignore"):
        points = np.c_[homogeneous_points[:, :3] / homogeneous_points[:, 3:], np.ones(len(points0))]
        good = np.isfinite(points).all(-1)
        view_depths: list[np.ndarray] = []  # each view's depth of every point
        for projection, observed in zip(projections, (points0, points1)):
            seen = points @ projection.T
            depth = seen[:, 2]  # the intrinsics' last row is (0, 0, 1): this is the camera z
            pixels = seen[:, :2] / depth[:, None]
            good &= (depth > 0) & (np.linalg.norm(pixels - observed, axis=-1) <= MAX_REPROJECTION_PX)
            view_depths.append(depth)
        rays = [points[:, :3] - centre for centre in c2w[:, :3, 3].numpy()]
        cosine = (rays[0] * rays[1]).sum(-1) / (np.linalg.norm(rays[0], axis=-1) * np.linalg.norm(rays[1], axis=-1))
        good &= cosine < np.cos(np.radians(MIN_PARALLAX_DEGREES))
    return points0[good], np.stack(view_depths)[:, good]


def downscaled(
    images: list[np.ndarray], intrinsics: Float[Tensor, "2 3 3"], scale: float
) -> tuple[list[np.ndarray], Float[Tensor, "2 3 3"], np.ndarray]:
    """The images resized by about ``scale`` (area averaging), their intrinsics, and the exact (x, y) factors
    (with pixel centres at half-integers, a point at p in an image is at p * factor in the resized one)."""
    height, width = images[0].shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    factors = np.array([size[0] / width, size[1] / height])
    resized = [cv2.resize(image, size, interpolation=cv2.INTER_AREA) for image in images]
    intrinsics = intrinsics.double().clone()
    intrinsics[:, 0] *= factors[0]
    intrinsics[:, 1] *= factors[1]
    return resized, intrinsics, factors


def median_depth(
    pairs: Sequence[tuple[list[np.ndarray], Float[Tensor, "2 3 4"], Float[Tensor, "2 3 3"]]],
) -> Optional[float]:
    """The median triangulated depth over every given view pair (``triangulate``'s arguments), pooled, or None
    when fewer than ``MIN_POINTS`` points remain."""
    depths = np.concatenate([triangulate(*pair)[1].ravel() for pair in pairs] + [np.zeros(0)])
    return float(np.median(depths)) if len(depths) >= 2 * MIN_POINTS else None
