"""From per-pixel network outputs and sampled depths to world-space Gaussians, as pixelSplat does it, with
the colours converted once to gsplat's SH basis (``official_sh``) so that ``rasterize`` renders them directly."""

import torch
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.conventions import quaternion_to_matrix, xyzw_to_wxyz
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.core.geometry import pixel_size_at_unit_depth, world_rays
from pixelsplat_ns.encoder.official_sh import Coefficient14, ShRotation, official_sh_to_gsplat
from pixelsplat_ns.render.spherical_harmonics import num_sh_bases


def sh_mask(degree: int) -> Float[Tensor, " k"]:
    """1 for the DC term and 0.1 * 0.25^l for degree l: colours start out nearly view-independent."""
    return torch.cat(
        [torch.full((2 * order + 1,), 1.0 if order == 0 else 0.1 * 0.25**order) for order in range(degree + 1)]
    )


def pixel_footprint(intrinsics: Float[Tensor, "*batch 3 3"], height: int, width: int) -> Float[Tensor, " *batch"]:
    """0.1 x (1 / (w fx) + 1 / (h fy)) for skew-free intrinsics: the world size of a pixel at depth 1 that
    pixelSplat multiplies into its scales."""
    return 0.1 * pixel_size_at_unit_depth(intrinsics, height, width).sum(-1)


def to_gaussians(
    raw: Float[Tensor, "b v r p"],
    depths: Float[Tensor, "b v r s"],
    opacities: Float[Tensor, "b v r s"],
    extrinsics: Float[Tensor, "b v 4 4"],
    intrinsics: Float[Tensor, "b v 3 3"],
    pixel_xy: Float[Tensor, "r 2"],
    image_shape: tuple[int, int],
    scale_range: tuple[float, float],
    sh_degree: int,
    sh_rotation: ShRotation = "official",
    sh_coefficient_14: Coefficient14 = "consistent",
) -> Gaussians:
    """``raw`` holds per pixel: 2 offset, 3 scale, 4 quaternion (xyzw), 3 x K SH channel-major; the 82 after
    the offset are shared by the pixel's samples. The SH convention: ``official_sh.official_sh_to_gsplat``."""
    h, w = image_shape
    b, v, r, s = depths.shape
    offset, scales, quaternions, sh = raw.split((2, 3, 4, 3 * num_sh_bases(sh_degree)), dim=-1)

    xy = pixel_xy + (torch.sigmoid(offset) - 0.5) / torch.tensor([w, h], dtype=raw.dtype, device=raw.device)
    origins, directions = world_rays(xy, extrinsics[:, :, None], intrinsics[:, :, None])
    means = origins[..., None, :] + directions[..., None, :] * depths[..., None]

    low, high = scale_range
    scales = low + (high - low) * torch.sigmoid(scales)
    scales = scales[..., None, :] * (depths * pixel_footprint(intrinsics, h, w)[:, :, None, None])[..., None]
    quaternions = quaternions / (quaternions.norm(dim=-1, keepdim=True) + 1e-8)
    rotation = quaternion_to_matrix(xyzw_to_wxyz(quaternions))[..., None, :, :]  # shared by the samples
    camera_covariances = rotation @ torch.diag_embed(scales * scales) @ rotation.transpose(-1, -2)
    c2w = extrinsics[:, :, None, None, :3, :3]
    covariances = c2w @ camera_covariances @ c2w.transpose(-1, -2)

    sh = rearrange(sh, "... (c k) -> ... c k", c=3) * sh_mask(sh_degree).to(sh)
    conversion = official_sh_to_gsplat(sh_degree, extrinsics[..., :3, :3], sh_rotation, sh_coefficient_14)  # [b v k k]
    harmonics = torch.einsum("bvkj,bvrcj->bvrkc", conversion, sh)

    flat = "b v r s ... -> b (v r s) ..."
    return Gaussians(
        means=rearrange(means, flat),
        covariances=rearrange(covariances, flat),
        opacities=rearrange(opacities, flat),
        harmonics=rearrange(harmonics[:, :, :, None].expand(-1, -1, -1, s, -1, -1), flat),
    )
