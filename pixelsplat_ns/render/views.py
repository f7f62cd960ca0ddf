"""The renderer in the project's camera conventions: the one adapter between them and ``rasterize``.

Cameras come as the encoder sees them (``pixelsplat_ns.core.conventions``): camera-to-world extrinsics in OpenCV
axes and normalized intrinsics. ``render_views`` draws any Gaussians into such cameras; ``render_gaussians``
draws a batch of encoder outputs as the paper's training loss and evaluation do.
"""

from typing import Optional

import torch
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.conventions import to_gsplat
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.core.torch_versions import autocast_off
from pixelsplat_ns.render.rasterize import RenderMode, rasterize

RENDERED_SH_DEGREE = 3
"""The official (Inria-based) renderer evaluates degrees 0-3 of the predicted 4."""
OFFICIAL_NEAR_FRACTION = 0.2
"""The official renderer rescales the scene so that near is 1 and culls Gaussians closer than 0.2: in the
scene's own units, the near plane is 0.2 x near."""


def render_views(
    means: Float[Tensor, "n 3"],
    quats: Optional[Float[Tensor, "n 4"]],
    scales: Optional[Float[Tensor, "n 3"]],
    opacities: Float[Tensor, " n"],
    colors: Tensor,  # [n, d], or SH [n, k, 3] with sh_degree
    extrinsics: Float[Tensor, "c 4 4"],
    intrinsics: Float[Tensor, "c 3 3"],
    width: int,
    height: int,
    near_plane: float,
    sh_degree: Optional[int] = None,
    covars: Optional[Float[Tensor, "n 3 3"]] = None,
    backgrounds: Optional[Float[Tensor, "c d"]] = None,
    render_mode: RenderMode = "RGB",
) -> tuple[Tensor, Float[Tensor, "c height width 1"], dict]:
    """``rasterize`` (which see for the Gaussians' arguments and the results) into ``c`` cameras given as
    camera-to-world OpenCV ``extrinsics`` and normalized ``intrinsics``, at ``width`` x ``height`` pixels.

    Always in float32 and outside autocast: under mixed precision (nerfstudio's ``--mixed-precision``, bf16
    autocast) the Gaussians may arrive in half precision, which gsplat's kernels do not take and in which the
    compositing's transmittance would lose its 1e-4 stopping rule."""
    means, opacities, colors, extrinsics, intrinsics = (
        t.float() for t in (means, opacities, colors, extrinsics, intrinsics)
    )
    quats, scales, covars, backgrounds = (
        None if t is None else t.float() for t in (quats, scales, covars, backgrounds)
    )
    viewmats, Ks = to_gsplat(extrinsics, intrinsics, width, height)
    with autocast_off(means.device):
        return rasterize(
            means,
            quats,
            scales,
            opacities,
            colors,
            viewmats,
            Ks,
            width,
            height,
            near_plane=near_plane,
            sh_degree=sh_degree,
            backgrounds=backgrounds,
            render_mode=render_mode,
            covars=covars,
        )


def render_gaussians(
    gaussians: Gaussians,
    extrinsics: Float[Tensor, "b v 4 4"],
    intrinsics: Float[Tensor, "b v 3 3"],
    near: Float[Tensor, "b v"],
    image_shape: tuple[int, int],
    background: tuple[float, float, float] = (0.0, 0.0, 0.0),
) -> Float[Tensor, "b v 3 h w"]:
    """Each scene of an encoder batch rendered into its views (``image_shape`` = (h, w)), as the official
    renderer draws them: SH degrees 0-3, Gaussians closer than ``OFFICIAL_NEAR_FRACTION`` x near culled."""
    if extrinsics.dim() != 4 or intrinsics.dim() != 4 or near.dim() != 2:
        raise ValueError(
            f"render_gaussians takes a batch of scenes' views: extrinsics [b, v, 4, 4], intrinsics "
            f"[b, v, 3, 3], near [b, v] (got {list(extrinsics.shape)}, {list(intrinsics.shape)}, "
            f"{list(near.shape)}; Views.batched() makes one scene a batch)"
        )
    h, w = image_shape
    views = extrinsics.shape[1]
    backgrounds = torch.tensor(background, device=extrinsics.device).expand(views, 3)
    images = []
    for i in range(extrinsics.shape[0]):
        color, _, _ = render_views(
            gaussians.means[i],
            None,
            None,
            gaussians.opacities[i],
            gaussians.harmonics[i],
            extrinsics[i],
            intrinsics[i],
            w,
            h,
            near_plane=OFFICIAL_NEAR_FRACTION * float(near[i].min()),
            sh_degree=RENDERED_SH_DEGREE,
            covars=gaussians.covariances[i],
            backgrounds=backgrounds,
        )
        images.append(color.permute(0, 3, 1, 2))
    return torch.stack(images)
