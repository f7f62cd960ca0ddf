"""Procedural Gaussian scenes shaped like pixelSplat's output, for the render benchmark and rendering checks.

Every pixel of each context view emits ``per_pixel`` Gaussians along its ray near a wavy "room" surface,
with pixelSplat's scale rule (depth times pixel footprint times 0.5..15), random rotations, opacities of
a few drawn depth bins and degree-3 SH colours from a smooth texture. Cameras are OpenCV camera-to-world
with pixel intrinsics, as ``rasterize`` expects after inverting them.
"""

import math
from dataclasses import dataclass

import torch
from einops import rearrange, repeat
from jaxtyping import Float
from torch import Tensor

SH_C0 = 0.28209479177387814


@dataclass
class GaussianScene:
    means: Float[Tensor, "N 3"]
    quats: Float[Tensor, "N 4"]  # wxyz
    scales: Float[Tensor, "N 3"]
    opacities: Float[Tensor, " N"]
    sh: Float[Tensor, "N 16 3"]  # degree 3, gsplat basis
    context_c2w: Float[Tensor, "V 4 4"]
    K: Float[Tensor, "3 3"]
    width: int
    height: int


def look_at_c2w(eye: Float[Tensor, "3"], target: Float[Tensor, "3"]) -> Float[Tensor, "4 4"]:
    """OpenCV camera-to-world looking from ``eye`` at ``target`` with world -y up."""
    forward = torch.nn.functional.normalize(target - eye, dim=0)
    right = torch.nn.functional.normalize(torch.linalg.cross(forward, torch.tensor([0.0, -1.0, 0.0])), dim=0)
    down = torch.linalg.cross(forward, right)
    c2w = torch.eye(4)
    c2w[:3, :3] = torch.stack([right, down, forward], dim=1)
    c2w[:3, 3] = eye
    return c2w


def surface_depth(u: Tensor, v: Tensor) -> Tensor:
    """Depth of the procedural room along each ray: a back wall with bumps and a tilted floor."""
    wall = 3.0 + 0.3 * torch.sin(4.0 * u) * torch.cos(3.0 * v)
    floor = 1.2 / (v - 0.1).clamp(min=1e-3)
    return torch.where(v > 0.1, torch.minimum(wall, floor), wall)


def pixel_aligned_scene(
    size: int = 256, views: int = 2, per_pixel: int = 3, baseline: float = 0.3, seed: int = 0
) -> GaussianScene:
    """A scene like pixelSplat's output from ``views`` context views of ``size`` x ``size`` pixels: N = views x
    size^2 x ``per_pixel`` Gaussians, flattened in pixelSplat's order (view, pixel row-major, sample).

    The context cameras (``context_c2w``, OpenCV camera-to-world) stand on the x axis, ``baseline`` apart and
    centred on the origin, all looking at (0, 0, 3), with world -y up; ``K`` holds their pixel intrinsics
    (focal length 0.86 x ``size``, RealEstate10k-like; principal point at the centre). Each pixel's Gaussians
    lie along its ray near the procedural room (``surface_depth``: a bumpy wall at depth about 3, a tilted
    floor), their depths jittered (3 % standard deviation); scales follow pixelSplat's rule (depth x 0.1 x
    the pixel footprint x 0.5..15 per axis), quaternions (wxyz) are random unit vectors, opacities linear in
    [0, 1 / ``per_pixel``], SH degree 3 in gsplat's basis (DC from a checkered texture, the other coefficients
    small noise). Lengths are in the scene's own units (the room is 3 units away). Deterministic for a
    ``seed``: draws from its own generator, never torch's global one. Raises nothing: meant for benchmarks
    and checks, not user input.
    """
    generator = torch.Generator().manual_seed(seed)
    focal = 0.86 * size  # RealEstate10k-like normalized focal length 0.86
    K = torch.tensor([[focal, 0.0, size / 2], [0.0, focal, size / 2], [0.0, 0.0, 1.0]])
    eyes = [torch.tensor([baseline * (i - (views - 1) / 2), 0.0, 0.0]) for i in range(views)]
    context_c2w = torch.stack([look_at_c2w(eye, torch.tensor([0.0, 0.0, 3.0])) for eye in eyes])

    pixels = torch.stack(torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="xy"), -1)
    rays_cam = torch.cat([(pixels - size / 2) / focal, torch.ones(size, size, 1)], -1)  # z = 1
    rays_cam = rearrange(rays_cam, "h w c -> (h w) c")
    rays_world = torch.einsum("vij,pj->vpi", context_c2w[:, :3, :3], rays_cam)
    origins = context_c2w[:, None, :3, 3]
    u, v = rays_world[..., 0] / rays_world[..., 2], rays_world[..., 1] / rays_world[..., 2]
    depth = surface_depth(u, v)

    shape = (views, size * size, per_pixel)
    jitter = 1.0 + 0.03 * torch.randn(shape, generator=generator)
    z = depth[..., None] * jitter
    means = origins[..., None, :] + rays_world[..., None, :] * z[..., None]
    footprint = 2.0 / focal  # pixelSplat: depth * 0.1 * (1/(w fx_n) + 1/(h fy_n)) * (0.5 .. 15)
    multiplier = 0.5 + 14.5 * torch.sigmoid(torch.randn(*shape, 3, generator=generator))
    scales = z[..., None] * 0.1 * footprint * multiplier
    quats = torch.nn.functional.normalize(torch.randn(*shape, 4, generator=generator), dim=-1)
    opacities = torch.rand(shape, generator=generator) ** 0.5 / per_pixel

    checker = 0.6 + 0.4 * ((torch.floor(6 * u) + torch.floor(6 * v)) % 2)
    texture = checker[..., None] * (
        0.5 + 0.4 * torch.stack([torch.sin(3 * u), torch.cos(4 * v), torch.sin(2 * (u + v))], -1)
    )
    sh = 0.05 * torch.randn(*shape, 16, 3, generator=generator)
    sh[..., 0, :] = repeat((texture - 0.5) / SH_C0, "v p c -> v p s c", s=per_pixel)
    # Flattened in pixelSplat's order: view, pixel (row-major), sample.
    return GaussianScene(
        means=rearrange(means, "v p s c -> (v p s) c"),
        quats=rearrange(quats, "v p s c -> (v p s) c"),
        scales=rearrange(scales, "v p s c -> (v p s) c"),
        opacities=rearrange(opacities, "v p s -> (v p s)"),
        sh=rearrange(sh, "v p s k c -> (v p s) k c"),
        context_c2w=context_c2w,
        K=K,
        width=size,
        height=size,
    )


def orbit_c2w(scene: GaussianScene, count: int, radius: float = 0.25) -> Float[Tensor, "count 4 4"]:
    """Novel views on a small circle around the context cameras, all looking at the scene centre."""
    center = scene.context_c2w[:, :3, 3].mean(0)
    angles = torch.arange(count) * (2 * math.pi / count)
    eyes = center + radius * torch.stack([torch.cos(angles), 0.4 * torch.sin(angles), 0.5 * torch.sin(angles)], -1)
    return torch.stack([look_at_c2w(eye, torch.tensor([0.0, 0.0, 3.0])) for eye in eyes])
