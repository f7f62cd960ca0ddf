"""Projection of 3D Gaussians into pinhole cameras, as gsplat 1.4.0's CUDA kernel does it.

Every constant and comparison here mirrors ``fully_fused_projection_fwd.cu`` (classic mode): the
Jacobian's clamp to 1.3x the field of view, the 0.3 pixel blur, the 3-sigma radius with its 0.01 floor
and the culling rules. Written in plain torch so that autograd gives the backward pass.
"""

from dataclasses import dataclass

import torch
from einops import rearrange
from jaxtyping import Float, Int
from torch import Tensor

from pixelsplat_ns.core.conventions import quaternion_to_matrix


@dataclass
class Projection:
    """Per camera and Gaussian screen-space quantities; a Gaussian with radius 0 is culled."""

    radii: Int[Tensor, "C N"]
    means2d: Float[Tensor, "C N 2"]
    depths: Float[Tensor, "C N"]
    conics: Float[Tensor, "C N 3"]  # upper triangle (a, b, c) of the inverse 2D covariance


def quat_scale_to_covar(quats: Float[Tensor, "N 4"], scales: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3 3"]:
    """R S S^T R^T from wxyz quaternions (normalized here, as gsplat does) and linear scales."""
    rotation = quaternion_to_matrix(torch.nn.functional.normalize(quats, dim=-1))
    m = rotation * scales[:, None, :]
    return m @ m.transpose(-1, -2)


def project_gaussians(
    means: Float[Tensor, "N 3"],
    covars: Float[Tensor, "N 3 3"],
    viewmats: Float[Tensor, "C 4 4"],
    Ks: Float[Tensor, "C 3 3"],
    width: int,
    height: int,
    eps2d: float,
    near_plane: float,
    far_plane: float,
) -> Projection:
    """N world-space Gaussians projected into C pinhole cameras, as gsplat 1.4.0's classic
    ``fully_fused_projection`` (``fully_fused_projection_fwd.cu``) does it.

    ``means`` and ``covars`` (3D covariances, ``quat_scale_to_covar``) in world units; ``viewmats``
    world-to-camera in OpenCV axes (x right, y down, z forward, gsplat's convention); ``Ks`` pixel intrinsics
    for images of ``width`` x ``height`` pixels. The 2D covariance is the EWA approximation, its Jacobian taken
    at the mean clamped to 1.3x the field of view, plus ``eps2d`` (gsplat's 0.3-pixel blur) on its diagonal.

    Returns, per camera and Gaussian: ``means2d`` in pixels (``K`` applied to x/z, y/z), ``depths`` the camera
    z (world units), ``conics`` the upper triangle (a, b, c) of the inverse 2D covariance, and ``radii`` in
    pixels (int32; 3 sigma of the larger eigenvalue, rounded up). A Gaussian is culled (radius 0) when its
    z is outside [``near_plane``, ``far_plane``], its 2D covariance is not positive definite, or its
    3-sigma square lies wholly off the image; culled entries get finite placeholder values, so no NaN reaches
    autograd. Differentiable in ``means``, ``covars``, ``viewmats`` and ``Ks`` (not through ``radii``);
    raises nothing of its own: shapes are the caller's (``rasterize`` checks them).
    """
    rotations, translations = viewmats[:, :3, :3], viewmats[:, :3, 3]
    means_c = torch.einsum("cij,nj->cni", rotations, means) + translations[:, None]
    covars_c = torch.einsum("cij,njk,clk->cnil", rotations, covars, rotations)
    x, y, z = means_c.unbind(-1)

    # gsplat keeps near_plane <= z <= far_plane; culled Gaussians get a harmless z so no NaN reaches autograd.
    in_depth = (z >= near_plane) & (z <= far_plane)
    z_safe = torch.where(in_depth, z, torch.ones_like(z))
    rz = 1.0 / z_safe

    fx, fy = Ks[:, 0, 0, None], Ks[:, 1, 1, None]
    cx, cy = Ks[:, 0, 2, None], Ks[:, 1, 2, None]
    tan_fovx, tan_fovy = 0.5 * width / fx, 0.5 * height / fy
    lim_x_pos, lim_x_neg = (width - cx) / fx + 0.3 * tan_fovx, cx / fx + 0.3 * tan_fovx
    lim_y_pos, lim_y_neg = (height - cy) / fy + 0.3 * tan_fovy, cy / fy + 0.3 * tan_fovy
    tx = z_safe * torch.minimum(lim_x_pos, torch.maximum(-lim_x_neg, x * rz))
    ty = z_safe * torch.minimum(lim_y_pos, torch.maximum(-lim_y_neg, y * rz))

    zeros = torch.zeros_like(rz)
    jacobian = rearrange(
        torch.stack([fx * rz, zeros, -fx * tx * rz * rz, zeros, fy * rz, -fy * ty * rz * rz], dim=-1),
        "c n (i j) -> c n i j",
        i=2,
    )
    covars2d = jacobian @ covars_c @ jacobian.transpose(-1, -2)
    means2d = torch.stack([fx * x * rz + cx, fy * y * rz + cy], dim=-1)

    a = covars2d[..., 0, 0] + eps2d
    b = covars2d[..., 0, 1]
    c = covars2d[..., 1, 1] + eps2d
    det = a * c - b * b
    valid = in_depth & (det > 0)
    det_safe = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det_safe, -b / det_safe, a / det_safe], dim=-1)

    with torch.no_grad():
        half_trace = 0.5 * (a + c)
        v1 = half_trace + torch.sqrt(torch.clamp(half_trace * half_trace - det, min=0.01))
        radius = torch.ceil(3.0 * torch.sqrt(v1))
        mx, my = means2d.unbind(-1)
        on_screen = (mx + radius > 0) & (mx - radius < width) & (my + radius > 0) & (my - radius < height)
        radii = torch.where(valid & on_screen & (radius > 0), radius, torch.zeros_like(radius)).int()
    return Projection(radii=radii, means2d=means2d, depths=z, conics=conics)
