"""A slow, literal oracle for the torch rasterizer: gsplat's own pure-torch projection and SH
(``gsplat.cuda._torch_impl``) followed by the CUDA kernel's per-pixel loop written out in Python.

It shares no code with ``pixelsplat_ns.render``; tests compare the two on small random scenes.
"""

import math

import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics


def reference_rasterize(
    means,
    quats,
    scales,
    opacities,
    colors,
    viewmats,
    Ks,
    width,
    height,
    near_plane=0.01,
    far_plane=1e10,
    eps2d=0.3,
    sh_degree=None,
    backgrounds=None,
    render_mode="RGB",
    tile_size=16,
):
    n_cameras = viewmats.shape[0]
    covars, _ = _quat_scale_to_covar_preci(quats, scales, compute_preci=False, triu=False)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        means, covars, viewmats, Ks, width, height, eps2d=eps2d, near_plane=near_plane, far_plane=far_plane
    )
    if sh_degree is not None:
        centers = torch.linalg.inv(viewmats)[:, :3, 3]
        dirs = means[None] - centers[:, None]
        coeffs = colors if colors.dim() == 4 else colors.expand(n_cameras, -1, -1, -1)
        colors = torch.clamp_min(_spherical_harmonics(sh_degree, dirs, coeffs) + 0.5, 0.0)
    elif colors.dim() == 2:
        colors = colors.expand(n_cameras, -1, -1)
    if render_mode in ("D", "ED"):
        colors = depths[..., None]
        backgrounds = None
    elif render_mode in ("RGB+D", "RGB+ED"):
        colors = torch.cat([colors, depths[..., None]], -1)
        if backgrounds is not None:
            backgrounds = torch.cat([backgrounds, backgrounds.new_zeros(n_cameras, 1)], -1)

    channels = colors.shape[-1]
    out = torch.zeros(n_cameras, height, width, channels, dtype=means.dtype)
    out_alpha = torch.zeros(n_cameras, height, width, 1, dtype=means.dtype)
    tiles_x, tiles_y = math.ceil(width / tile_size), math.ceil(height / tile_size)
    for cam in range(n_cameras):
        # isect_tiles: each visible Gaussian's tile rectangle, then per tile a (depth, index) order.
        per_tile = {(tx, ty): [] for tx in range(tiles_x) for ty in range(tiles_y)}
        for g in range(means.shape[0]):
            r = int(radii[cam, g])
            if r <= 0:
                continue
            mx, my = (float(v) for v in means2d[cam, g])
            x0 = min(max(0, math.floor(mx / tile_size - r / tile_size)), tiles_x)
            x1 = min(max(0, math.ceil(mx / tile_size + r / tile_size)), tiles_x)
            y0 = min(max(0, math.floor(my / tile_size - r / tile_size)), tiles_y)
            y1 = min(max(0, math.ceil(my / tile_size + r / tile_size)), tiles_y)
            for ty in range(y0, y1):
                for tx in range(x0, x1):
                    per_tile[(tx, ty)].append((float(depths[cam, g]), g))
        for (tx, ty), entries in per_tile.items():
            ys = torch.arange(ty * tile_size, min((ty + 1) * tile_size, height))
            xs = torch.arange(tx * tile_size, min((tx + 1) * tile_size, width))
            py, px = torch.meshgrid(ys.to(means.dtype) + 0.5, xs.to(means.dtype) + 0.5, indexing="ij")
            transmittance = torch.ones_like(px)
            done = torch.zeros_like(px, dtype=torch.bool)
            pixel = torch.zeros(*px.shape, channels, dtype=means.dtype)
            # The kernel's loop, run for all pixels of the tile at once, one Gaussian at a time.
            for _, g in sorted(entries):
                a, b, c = conics[cam, g]
                dx = means2d[cam, g, 0] - px
                dy = means2d[cam, g, 1] - py
                sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
                alpha = torch.clamp(opacities[g] * torch.exp(-sigma), max=0.999)
                active = ~done & (sigma >= 0) & (alpha >= 1.0 / 255.0)
                next_t = transmittance * (1.0 - alpha)
                stop = active & (next_t <= 1e-4)
                done = done | stop
                active = active & ~stop
                pixel = pixel + torch.where(active[..., None], colors[cam, g] * (alpha * transmittance)[..., None], 0)
                transmittance = torch.where(active, next_t, transmittance)
            if backgrounds is not None:
                pixel = pixel + transmittance[..., None] * backgrounds[cam]
            out[cam, ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] = pixel
            out_alpha[cam, ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1, 0] = 1.0 - transmittance
    if render_mode in ("ED", "RGB+ED"):
        out = torch.cat([out[..., :-1], out[..., -1:] / out_alpha.clamp(min=1e-10)], -1)
    return out, out_alpha
