"""Fusion of several context groups' Gaussians into one scene, without duplicates.

The paper names its first limitation: the Gaussians of the context views are concatenated, never fused. With
several context groups along a capture (``context_groups``), neighbouring groups see the same surfaces (they
even share a view), and concatenation would describe each surface once per group. The rule here:

- Within a group, nothing changes: the encoder was trained to predict its views' Gaussians to be concatenated.
- Each group's Gaussians are pixel-aligned: one ray per context pixel, ``samples`` Gaussians along it. The
  unit of fusion is the ray, seen as the surface it predicts: the opacity-weighted mean position of its
  Gaussians and their combined opacity. A new ray *duplicates* an earlier view's pixel when its surface
  projects into that view at a pixel whose surface depth agrees with it within a factor ``1 + tolerance``
  either way. Of a duplicate, the more confident ray is kept whole: the new ray if its opacity is higher
  than the pixel's (and all of the pixel's Gaussians are dropped), else all of the new ray's Gaussians are
  dropped (``ray_representatives``, ``add_group``). The tolerance has to cover how much the encoder's depth
  for one pixel varies between predictions from different partner views.
- An earlier pixel gives way only to a new ray that is itself kept: one that loses to any earlier view is
  dropped, and then every earlier pixel it beat stays (the result does not depend on the order the earlier
  views are visited in, and a surface is never dropped in favour of a ray that is dropped too).
- Where they disagree, both are kept: seen from the earlier view, a new ray whose surface is in front of the
  pixel's is what that view missed or mispredicted, and one behind it is hidden there (it fills what the
  earlier views did not see); rendering composites by depth, so the nearer opaque surface wins.

Groups are fused one at a time: only the kept Gaussians and, per context view, a depth and an opacity per
pixel and per group a kept flag per ray are held, so memory grows with what is new.
"""

from dataclasses import dataclass, field

import torch
from einops import rearrange
from jaxtyping import Bool, Float, Int
from torch import Tensor

from pixelsplat_ns.core.gaussians import Gaussians


@dataclass
class ViewDepth:
    """One fused context view, seen as a depth map: camera in the dataparser's frame, per-pixel depth."""

    world_to_camera: Float[Tensor, "4 4"]
    """OpenCV axes, the dataparser's frame and units."""
    intrinsics: Float[Tensor, "3 3"]
    """Pixels of the context image (``height`` x ``width``)."""
    height: int
    width: int
    depth: Float[Tensor, " hw"]
    """Camera z of each pixel ray's surface (``ray_representatives``)."""
    opacity: Float[Tensor, " hw"]
    """The ray's combined opacity."""
    group: int
    first_ray: int
    """Which group, and where its rays begin among the group's: pixel p is the group's ray ``first_ray + p``."""


@dataclass
class FusedScene:
    """The groups fused so far: each group's kept flag per pixel ray and the Gaussians of its kept rays."""

    tolerance: float
    kept_rays: list[Bool[Tensor, " r"]] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    """Gaussians per pixel ray of each group (the samples of a ray are consecutive)."""
    parts: list[Gaussians] = field(default_factory=list)
    """Each group's Gaussians of the rays kept when it was added."""
    part_rays: list[Int[Tensor, " k"]] = field(default_factory=list)
    """For each part, the group's rays it holds (later groups may drop some of them)."""
    views: list[ViewDepth] = field(default_factory=list)

    @property
    def keep(self) -> list[Bool[Tensor, " g"]]:
        """Each group's keep mask over its predicted Gaussians (a ray's samples kept or dropped together)."""
        return [rays.repeat_interleave(samples) for rays, samples in zip(self.kept_rays, self.samples)]

    def gaussians(self) -> Gaussians:
        """The fused scene: every group's Gaussians that are still kept, in group order."""
        kept = []
        for part, rays, group_rays, samples in zip(self.parts, self.part_rays, self.kept_rays, self.samples):
            kept.append(part.select(group_rays[rays].repeat_interleave(samples).nonzero()[:, 0]))
        return Gaussians.concatenate(kept)

    def counts(self) -> tuple[int, int]:
        """(kept, predicted) Gaussians."""
        return (
            sum(int(r.sum()) * s for r, s in zip(self.kept_rays, self.samples)),
            sum(len(r) * s for r, s in zip(self.kept_rays, self.samples)),
        )


def ray_representatives(gaussians: Gaussians, rays: int) -> tuple[Float[Tensor, "r 3"], Float[Tensor, " r"]]:
    """Each pixel ray's surface in a pixel-aligned prediction (batch of one, ``rays`` x samples Gaussians, the
    samples of a ray consecutive): the opacity-weighted mean of its Gaussians' positions (on the ray) and
    their combined opacity, 1 - prod(1 - opacity). The mean, not the most opaque sample: pixelSplat draws
    its samples at random depths (bins drawn from the predicted distribution), so the most opaque sample of
    the same pixel jumps between bins from one prediction to the next, while the mean stays put."""
    means = rearrange(gaussians.means[0], "(r s) xyz -> r s xyz", r=rays)
    opacities = rearrange(gaussians.opacities[0], "(r s) -> r s", r=rays)
    weights = opacities + 1e-12  # a ray of transparent Gaussians: their plain mean
    weights = weights / weights.sum(-1, keepdim=True)
    combined = 1 - (1 - opacities).prod(-1)
    return (weights[..., None] * means).sum(1), combined


def view_depths(
    gaussians: Gaussians,
    world_to_cameras: Float[Tensor, "v 4 4"],
    intrinsics: Float[Tensor, "v 3 3"],
    height: int,
    width: int,
    group: int,
) -> list[ViewDepth]:
    """Each context view of one group's prediction (``gaussians``: batch of one, the dataparser's frame) as a
    depth map of its own pixel-aligned Gaussians."""
    points, opacity = ray_representatives(gaussians, len(world_to_cameras) * height * width)
    return depth_maps(points, opacity, world_to_cameras, intrinsics, height, width, group)


def depth_maps(
    points: Float[Tensor, "r 3"],
    opacity: Float[Tensor, " r"],
    world_to_cameras: Float[Tensor, "v 4 4"],
    intrinsics: Float[Tensor, "v 3 3"],
    height: int,
    width: int,
    group: int,
) -> list[ViewDepth]:
    """``view_depths`` from the group's ray surfaces and opacities (``ray_representatives``), view after view."""
    pixels = height * width
    return [
        ViewDepth(
            world_to_cameras[v],
            intrinsics[v],
            height,
            width,
            camera_points(points[v * pixels : (v + 1) * pixels], world_to_cameras[v])[:, 2],
            opacity[v * pixels : (v + 1) * pixels],
            group,
            v * pixels,
        )
        for v in range(len(world_to_cameras))
    ]


def camera_points(points: Float[Tensor, "n 3"], world_to_camera: Float[Tensor, "4 4"]) -> Float[Tensor, "n 3"]:
    return points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]


def add_group(
    scene: FusedScene,
    gaussians: Gaussians,
    world_to_cameras: Float[Tensor, "v 4 4"],
    intrinsics: Float[Tensor, "v 3 3"],
    height: int,
    width: int,
) -> None:
    """Fuse one more group's prediction into ``scene`` (the module's rule). ``gaussians`` is the group's
    prediction in the dataparser's frame (batch of one); its context views' world-to-camera matrices (OpenCV)
    and pixel intrinsics at the context images' ``height`` x ``width``."""
    gaussians = gaussians.detach()
    group = len(scene.kept_rays)
    rays = len(world_to_cameras) * height * width
    samples = gaussians.means.shape[1] // rays
    points, opacity = ray_representatives(gaussians, rays)
    keep_ray = torch.ones(rays, dtype=torch.bool, device=points.device)
    beaten = []  # (earlier group, its rays, the new rays that beat them): applied once the new rays are settled
    for earlier in scene.views:
        candidates = keep_ray.nonzero()[:, 0]
        if len(candidates) == 0:
            break
        local = camera_points(points[candidates], earlier.world_to_camera)
        z = local[:, 2]
        in_front = z > 0
        u = earlier.intrinsics[0, 0] * local[:, 0] / z.where(in_front, 1) + earlier.intrinsics[0, 2]
        v = earlier.intrinsics[1, 1] * local[:, 1] / z.where(in_front, 1) + earlier.intrinsics[1, 2]
        inside = in_front & (u >= 0) & (u < earlier.width) & (v >= 0) & (v < earlier.height)
        candidates, z, u, v = candidates[inside], z[inside], u[inside], v[inside]
        pixel = v.long() * earlier.width + u.long()
        earlier_rays = earlier.first_ray + pixel
        depth = earlier.depth[pixel]
        # Within a factor 1 + tolerance either way (z and depth are positive here).
        duplicate = scene.kept_rays[earlier.group][earlier_rays] & (
            torch.maximum(z / depth, depth / z) <= 1 + scene.tolerance
        )
        new_wins = opacity[candidates] > earlier.opacity[pixel]
        keep_ray[candidates[duplicate & ~new_wins]] = False
        beaten.append((earlier.group, earlier_rays[duplicate & new_wins], candidates[duplicate & new_wins]))
    for earlier_group, earlier_rays, winners in beaten:
        scene.kept_rays[earlier_group][earlier_rays[keep_ray[winners]]] = False
    scene.kept_rays.append(keep_ray)
    scene.samples.append(samples)
    scene.parts.append(gaussians.select(keep_ray.repeat_interleave(samples).nonzero()[:, 0]))
    scene.part_rays.append(keep_ray.nonzero()[:, 0])
    scene.views.extend(depth_maps(points, opacity, world_to_cameras, intrinsics, height, width, group))
