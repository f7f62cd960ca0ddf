"""Camera geometry in the project's conventions (``pixelsplat_ns.core.conventions``): OpenCV camera-to-world
extrinsics and normalized intrinsics, so that image coordinates run from 0 to 1 across the image whatever its
size. Rays, projection, field of view, epipolar segments and triangulation, as the official pixelSplat code
computes them.
"""

import torch
from jaxtyping import Bool, Float
from torch import Tensor

FLOAT32_EPS = torch.finfo(torch.float32).eps


def image_grid(height: int, width: int, device=None, dtype=torch.float32) -> Float[Tensor, "height width 2"]:
    """Normalized (x, y) coordinates of pixel centres, (j + 0.5) / width and (i + 0.5) / height."""
    ys = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
    xs = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([x, y], dim=-1)


def pixel_size_at_unit_depth(
    intrinsics: Float[Tensor, "*batch 3 3"], height: int, width: int
) -> Float[Tensor, "*batch 2"]:
    """World size (x, y) of one pixel at depth 1: inv(K[:2, :2]) @ (1 / width, 1 / height)."""
    pixel = torch.tensor([1.0 / width, 1.0 / height], dtype=intrinsics.dtype, device=intrinsics.device)
    return torch.einsum("...ij,j->...i", torch.linalg.inv(intrinsics[..., :2, :2]), pixel)


def world_rays(
    xy: Float[Tensor, "*#batch 2"], extrinsics: Float[Tensor, "*#batch 4 4"], intrinsics: Float[Tensor, "*#batch 3 3"]
) -> tuple[Float[Tensor, "*batch 3"], Float[Tensor, "*batch 3"]]:
    """Origins and unit directions of the rays through normalized image points."""
    homogeneous = torch.cat([xy, torch.ones_like(xy[..., :1])], dim=-1)
    directions = torch.einsum("...ij,...j->...i", torch.linalg.inv(intrinsics), homogeneous)
    directions = directions / directions.norm(dim=-1, keepdim=True)
    directions = torch.einsum("...ij,...j->...i", extrinsics[..., :3, :3], directions)
    origins = extrinsics[..., :3, 3].broadcast_to(directions.shape)
    return origins, directions


def project_camera_points(
    points: Float[Tensor, "*#batch 3"], intrinsics: Float[Tensor, "*#batch 3 3"]
) -> Float[Tensor, "*batch 2"]:
    """Normalized image coordinates of camera-space points (pixelSplat's epsilon and clamping)."""
    points = points / (points[..., 2:] + FLOAT32_EPS)
    points = points.nan_to_num(posinf=1e8, neginf=-1e8)
    return torch.einsum("...ij,...j->...i", intrinsics, points)[..., :2]


def _in_image(xy: Tensor, eps: float = 1e-6) -> Tensor:
    return ((xy >= -eps) & (xy <= 1 + eps)).all(dim=-1)


def project_segments(
    origins: Float[Tensor, "*#batch 3"],
    directions: Float[Tensor, "*#batch 3"],
    extrinsics: Float[Tensor, "*#batch 4 4"],
    intrinsics: Float[Tensor, "*#batch 3 3"],
    near: Float[Tensor, "*#batch"],
    far: Float[Tensor, "*#batch"],
    eps: float = 1e-6,
) -> tuple[Float[Tensor, "*batch 2"], Float[Tensor, "*batch 2"], Bool[Tensor, " *batch"]]:
    """Project the ray segments [near, far] into another camera, clipped to its image.

    Returns the segment's endpoints in normalized image coordinates and whether any of it is visible. An
    endpoint behind the camera or outside the image is replaced by the segment's nearest (for the start) or
    farthest (for the end) intersection with an image border, exactly as pixelSplat's ``project_rays``.
    """
    world_to_camera = torch.linalg.inv(extrinsics)
    o = torch.einsum("...ij,...j->...i", world_to_camera[..., :3, :3], origins) + world_to_camera[..., :3, 3]
    d = torch.einsum("...ij,...j->...i", world_to_camera[..., :3, :3], directions)

    def endpoint(t):
        point = o + t[..., None] * d
        xy = project_camera_points(point, intrinsics)
        return xy, _in_image(xy, eps) & (point[..., 2] > -eps) & (t > -eps)

    shape = torch.broadcast_shapes(o.shape[:-1], near.shape, far.shape)
    near_xy, near_ok = endpoint(near.broadcast_to(shape))
    far_xy, far_ok = endpoint(far.broadcast_to(shape))

    # Where the projected line crosses x = 0, x = 1, y = 0 and y = 1 (t may be infinite: that is fine).
    ts, xys, oks = [], [], []
    for axis, value in ((0, 0.0), (0, 1.0), (1, 0.0), (1, 1.0)):
        other = 1 - axis
        f_same, f_other = intrinsics[..., axis, axis], intrinsics[..., other, other]
        c_same, c_other = intrinsics[..., axis, 2], intrinsics[..., other, 2]
        slope = (value - c_same) / f_same
        t = (slope * o[..., 2] - o[..., axis]) / (d[..., axis] - slope * d[..., 2])
        numerator = f_other * (
            o[..., other] * (slope * d[..., 2] - d[..., axis]) + d[..., other] * (o[..., axis] - slope * o[..., 2])
        )
        coordinate = c_other + numerator / (d[..., 2] * o[..., axis] - d[..., axis] * o[..., 2])
        fixed = torch.full_like(coordinate, value)
        xy = torch.stack([fixed, coordinate] if axis == 0 else [coordinate, fixed], dim=-1)
        point = o + t[..., None] * d
        ts.append(t)
        xys.append(xy)
        oks.append(_in_image(xy, eps) & (point[..., 2] > -eps) & (t > -eps))
    t, xy, ok = torch.stack(ts), torch.stack(xys), torch.stack(oks)
    first = torch.where(ok, t, torch.inf).argmin(dim=0, keepdim=True)
    last = torch.where(ok, t, -torch.inf).argmax(dim=0, keepdim=True)
    border_start_xy, border_start_ok = _select(xy, first), _select(ok, first)
    border_end_xy, border_end_ok = _select(xy, last), _select(ok, last)

    start_xy = torch.where(near_ok[..., None], near_xy, border_start_xy)
    end_xy = torch.where(far_ok[..., None], far_xy, border_end_xy)
    visible = torch.where(near_ok, True, border_start_ok) & torch.where(far_ok, True, border_end_ok)
    return start_xy, end_xy, visible


def _select(stacked: Tensor, index: Tensor) -> Tensor:
    """``stacked[index[b], b, ...]`` for a stack along dim 0 and an index of shape [1, *batch]."""
    index = index.view(*index.shape, *([1] * (stacked.dim() - index.dim())))
    return stacked.gather(0, index.expand(1, *stacked.shape[1:]))[0]


def triangulate_depth(
    origins: Float[Tensor, "*#batch 3"],
    directions: Float[Tensor, "*#batch 3"],
    other_origins: Float[Tensor, "*#batch 3"],
    other_directions: Float[Tensor, "*#batch 3"],
    parallel_eps: float = 1e-5,
) -> Float[Tensor, " *batch"]:
    """Distance from ``origins`` to the least-squares intersection (the midpoint of the common perpendicular)
    of two rays with unit directions; infinite where the rays point the same way, as in pixelSplat."""
    w = origins - other_origins
    b = (directions * other_directions).sum(-1)
    d1, d2 = (directions * w).sum(-1), (other_directions * w).sum(-1)
    parallel = b > 1 - parallel_eps
    # Opposite directions (b = -1) have no unique closest points either; keep them finite.
    denominator = torch.where(parallel, torch.ones_like(b), (1.0 - b * b).clamp(min=1e-12))
    t = (b * d2 - d1) / denominator  # closest point on the first ray
    s = (d2 - b * d1) / denominator  # closest point on the second ray
    midpoint = 0.5 * (origins + t[..., None] * directions + other_origins + s[..., None] * other_directions)
    depth = (midpoint - origins).norm(dim=-1)
    return torch.where(parallel, torch.full_like(depth, torch.inf), depth)


def field_of_view(intrinsics: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch 2"]:
    """Horizontal and vertical field of view in radians: the angle between the rays through the middles of
    opposite image borders (the official ``get_fov``; exact for off-centre principal points too)."""
    inverse = torch.linalg.inv(intrinsics.double())

    def ray(x: float, y: float) -> Tensor:
        direction = inverse @ torch.tensor([x, y, 1.0], dtype=torch.float64, device=inverse.device)
        return torch.nn.functional.normalize(direction, dim=-1)

    fov_x = (ray(0, 0.5) * ray(1, 0.5)).sum(-1).clamp(-1, 1).acos()
    fov_y = (ray(0.5, 0) * ray(0.5, 1)).sum(-1).clamp(-1, 1).acos()
    return torch.stack([fov_x, fov_y], dim=-1).to(intrinsics.dtype)
