"""Front-to-back alpha compositing of projected Gaussians, with gsplat 1.4.0's classic rules, on any device.

gsplat's CUDA kernel walks, for every pixel, the depth-sorted Gaussians of its 16x16 tile, skips those
with alpha < 1/255, caps alpha at 0.999 and stops before the Gaussian that would bring the transmittance
to 1e-4 or below. This module computes the same sums without a per-pixel loop:

1. A Gaussian can only reach the pixels of the tiles gsplat assigns it to (from its 3-sigma radius) whose
   centres lie inside the ellipse ``opacity * exp(-sigma) >= 1/255``. Each image row of that region is
   one span of pixels; every other pixel would be skipped by the kernel, so leaving it out changes nothing.
2. Gaussians are taken in gsplat's order (depth, ties by index) in slabs of bounded size. A slab's
   (Gaussian, pixel) pairs are stably sorted by pixel, so each pixel's pairs form a depth-ordered run.
3. Transmittance is a running sum of log(1 - alpha) in float64, carried from slab to slab; pixels that
   stopped are marked done, and later Gaussians whose footprint holds only done pixels are dropped before
   any per-pixel work (a summed-area table answers that per Gaussian).

The backward pass walks the same slabs again instead of keeping the pairs, so memory stays bounded by the
slab size whatever the scene.
"""

import math
from dataclasses import dataclass
from typing import Iterator, Optional

import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

TILE_SIZE = 16
ALPHA_MAX = 0.999
ALPHA_MIN = 1.0 / 255.0
TRANSMITTANCE_MIN = 1e-4
MAX_PAIRS_PER_SLAB = 1 << 21


@dataclass
class Footprints:
    """Per Gaussian (flattened over cameras): half-open pixel box it can reach, empty if x1 <= x0."""

    x0: Int[Tensor, " M"]
    x1: Int[Tensor, " M"]
    y0: Int[Tensor, " M"]
    y1: Int[Tensor, " M"]
    level: Float[Tensor, " M"]  # sigma <= level where alpha >= 1/255, widened for rounding (float64)


@dataclass
class Slab:
    """Consecutive Gaussians of one camera in gsplat's depth order (ids into the flattened C*N)."""

    camera: int
    splats: Int[Tensor, " S"]


@dataclass
class Pairs:
    """A slab's (Gaussian, pixel) pairs that gsplat composites, sorted by pixel then depth."""

    splats: Int[Tensor, " P"]
    pixels: Int[Tensor, " P"]  # row-major index in the camera's image
    dx: Float[Tensor, " P"]  # Gaussian centre minus pixel centre
    dy: Float[Tensor, " P"]
    alpha: Float[Tensor, " P"]
    falloff: Float[Tensor, " P"]  # exp(-sigma); alpha = min(0.999, opacity * falloff)
    transmittance: Float[Tensor, " P"]  # T in front of this Gaussian


@dataclass
class PixelState:
    """What compositing has reached in each pixel of one camera's image."""

    log_t: Float[Tensor, " HW"]  # log transmittance so far, float64
    done: Bool[Tensor, " HW"]  # stopped: no later Gaussian contributes


def tile_rects(
    means2d: Float[Tensor, "M 2"], radii: Int[Tensor, " M"], width: int, height: int, tile_size: int = TILE_SIZE
) -> tuple[Int[Tensor, " M"], Int[Tensor, " M"], Int[Tensor, " M"], Int[Tensor, " M"]]:
    """Half-open tile ranges (x0, x1, y0, y1) that gsplat's ``isect_tiles`` assigns each Gaussian."""
    tile_width, tile_height = math.ceil(width / tile_size), math.ceil(height / tile_size)
    tile_radius = radii.to(means2d.dtype) / tile_size
    tile_xy = means2d / tile_size
    # CUDA's float -> uint32 conversion saturates negatives at 0; the result is then capped at the grid size.
    x0 = torch.floor(tile_xy[:, 0] - tile_radius).clamp(0, tile_width).long()
    x1 = torch.ceil(tile_xy[:, 0] + tile_radius).clamp(0, tile_width).long()
    y0 = torch.floor(tile_xy[:, 1] - tile_radius).clamp(0, tile_height).long()
    y1 = torch.ceil(tile_xy[:, 1] + tile_radius).clamp(0, tile_height).long()
    visible = radii > 0
    return x0 * visible, x1 * visible, y0 * visible, y1 * visible


def footprints(
    means2d: Float[Tensor, "M 2"],
    conics: Float[Tensor, "M 3"],
    opacities: Float[Tensor, " M"],
    radii: Int[Tensor, " M"],
    width: int,
    height: int,
) -> Footprints:
    """Per Gaussian of the M = C*N projected ones (``project_gaussians``' outputs flattened over cameras), the
    half-open box of pixels [x0, x1) x [y0, y1) gsplat's kernel can composite it into, for an image of
    ``width`` x ``height`` pixels.

    ``means2d`` in pixels (pixel i's centre at i + 0.5), ``conics`` the upper triangle (a, b, c) of the
    inverse 2D covariance, ``opacities`` linear, ``radii`` in pixels (0: culled). The box is the bounding box
    of the pixel centres inside the ellipse ``opacity * exp(-sigma) >= 1/255`` (``sigma`` half the conic's
    quadratic form, ``level = log(255 * opacity)`` its bound, widened slightly so float rounding never drops a
    pixel), within the tiles gsplat's ``isect_tiles`` assigns from the radius (``tile_rects``) and the image.
    Where no pixel can be reached (culled, opacity below 1/255 so ``level`` < 0, or the ellipse off its tiles
    or the image) the box is empty, all four bounds 0. Computed in float64, ``level`` returned so. Raises
    nothing.
    """
    tx0, tx1, ty0, ty1 = tile_rects(means2d, radii, width, height)
    # Bounding box of the ellipse sigma <= level, widened slightly so float rounding never drops a pixel.
    mean = means2d.double()
    a, b, c = conics.double().unbind(-1)
    det = (a * c - b * b).clamp(min=1e-300)
    level = torch.log(255.0 * opacities.double().clamp(min=1e-300))
    level = level + 1e-3 * level.abs() + 1e-3
    reach = 2.0 * level.clamp(min=0)
    half = torch.stack([torch.sqrt(reach * (c / det).clamp(min=0)), torch.sqrt(reach * (a / det).clamp(min=0))], -1)
    limit = max(width, height) + 1.0
    lo = torch.ceil(mean - half - 0.5 - 1e-3).clamp(-1, limit).long()
    hi = (torch.floor(mean + half - 0.5 + 1e-3) + 1).clamp(-1, limit).long()
    x0 = torch.maximum(lo[:, 0], tx0 * TILE_SIZE).clamp(min=0)
    x1 = torch.minimum(hi[:, 0], (tx1 * TILE_SIZE).clamp(max=width))
    y0 = torch.maximum(lo[:, 1], ty0 * TILE_SIZE).clamp(min=0)
    y1 = torch.minimum(hi[:, 1], (ty1 * TILE_SIZE).clamp(max=height))
    nonempty = (x1 > x0) & (y1 > y0) & (level >= 0)
    return Footprints(x0=x0 * nonempty, x1=x1 * nonempty, y0=y0 * nonempty, y1=y1 * nonempty, level=level)


def plan_slabs(fp: Footprints, depths: Float[Tensor, "C N"], max_pairs: int = MAX_PAIRS_PER_SLAB) -> list[Slab]:
    """Each camera's reachable Gaussians in depth order (ties by index), cut into slabs of about
    ``max_pairs`` box pixels (a slab holds at least one Gaussian, whatever its size)."""
    n_cameras, n = depths.shape
    areas = ((fp.x1 - fp.x0) * (fp.y1 - fp.y0)).view(n_cameras, n)
    slabs = []
    for camera in range(n_cameras):
        order = torch.sort(depths[camera], stable=True).indices
        order = order[areas[camera][order] > 0]
        if len(order) == 0:
            continue
        bins = torch.div(torch.cumsum(areas[camera][order], 0) - 1, max_pairs, rounding_mode="floor")
        counts = torch.unique_consecutive(bins, return_counts=True)[1].tolist()
        slabs += [Slab(camera, part + camera * n) for part in torch.split(order, counts)]
    return slabs


def walk_pairs(
    slabs: list[Slab],
    fp: Footprints,
    means2d: Float[Tensor, "M 2"],
    conics: Float[Tensor, "M 3"],
    opacities: Float[Tensor, " M"],
    width: int,
    height: int,
) -> Iterator[tuple[int, Pairs]]:
    """Every (camera, pairs of one slab) in compositing order, with transmittance carried across slabs."""
    state: PixelState | None = None
    camera: int | None = None
    for slab in slabs:
        if state is None or slab.camera != camera:
            camera = slab.camera
            state = PixelState(
                log_t=torch.zeros(height * width, dtype=torch.float64, device=means2d.device),
                done=torch.zeros(height * width, dtype=torch.bool, device=means2d.device),
            )
        splats = _drop_hidden(slab.splats, fp, state.done, width, height)
        yield slab.camera, _slab_pairs(splats, fp, means2d, conics, opacities, width, state)


def _drop_hidden(splats: Int[Tensor, " S"], fp: Footprints, done: Bool[Tensor, " HW"], width: int, height: int):
    """Keep the Gaussians whose box holds at least one pixel that has not stopped."""
    if not bool(done.any()):
        return splats
    active = (~done).view(height, width).int()
    table = torch.nn.functional.pad(active.cumsum(0).cumsum(1), (1, 0, 1, 0))
    x0, x1, y0, y1 = fp.x0[splats], fp.x1[splats], fp.y0[splats], fp.y1[splats]
    count = table[y1, x1] - table[y0, x1] - table[y1, x0] + table[y0, x0]
    return splats[count > 0]


def _slab_pairs(
    splats: Int[Tensor, " S"],
    fp: Footprints,
    means2d: Float[Tensor, "M 2"],
    conics: Float[Tensor, "M 3"],
    opacities: Float[Tensor, " M"],
    width: int,
    state: PixelState,
) -> Pairs:
    device = splats.device
    # One span per (Gaussian, row): the row's pixels inside the ellipse, within the Gaussian's box.
    y0, y1 = fp.y0.index_select(0, splats), fp.y1.index_select(0, splats)
    row_owner = torch.repeat_interleave(torch.arange(len(splats), device=device), y1 - y0)
    row_first = torch.cumsum(y1 - y0, 0) - (y1 - y0)
    ys = (
        y0.index_select(0, row_owner)
        + torch.arange(len(row_owner), device=device)
        - row_first.index_select(0, row_owner)
    )
    row_splats = splats.index_select(0, row_owner)
    mean = means2d.index_select(0, row_splats)
    conic = conics.index_select(0, row_splats)
    a, b, c = conic.double().unbind(-1)
    dy64 = mean[:, 1].double() - (ys + 0.5)
    # sigma(dx) = 0.5 a dx^2 + b dy dx + 0.5 c dy^2 <= level, solved for dx = mean_x - pixel centre.
    disc = (b * dy64) ** 2 - a * (c * dy64 * dy64 - 2.0 * fp.level.index_select(0, row_splats))
    root = torch.sqrt(disc.clamp(min=0))
    centre = mean[:, 0].double() - 0.5
    lo = torch.ceil(centre - (root - b * dy64) / a - 1e-3).clamp(-1, width + 1).long()
    hi = (torch.floor(centre + (root + b * dy64) / a + 1e-3) + 1).clamp(-1, width + 1).long()
    x0 = torch.maximum(lo, fp.x0.index_select(0, row_splats))
    lengths = (torch.minimum(hi, fp.x1.index_select(0, row_splats)) - x0).clamp(min=0) * (disc >= 0)

    # Pairs: the pixels of every span, still in depth order.
    span = torch.repeat_interleave(torch.arange(len(lengths), device=device), lengths)
    step = torch.arange(len(span), device=device) - (torch.cumsum(lengths, 0) - lengths).index_select(0, span)
    pixels = (ys * width + x0).index_select(0, span) + step
    dx = (mean[:, 0] - (x0.to(mean.dtype) + 0.5)).index_select(0, span) - step.to(mean.dtype)
    dy = (mean[:, 1] - (ys.to(mean.dtype) + 0.5)).index_select(0, span)
    conic = conic.index_select(0, span)
    sigma = 0.5 * (conic[:, 0] * dx * dx + conic[:, 2] * dy * dy) + conic[:, 1] * dx * dy
    falloff = torch.exp(-sigma)
    pair_splats = row_splats.index_select(0, span)
    alpha = (opacities.index_select(0, pair_splats) * falloff).clamp(max=ALPHA_MAX)
    hit = (sigma >= 0) & (alpha >= ALPHA_MIN) & ~state.done.index_select(0, pixels)

    # Group by pixel (stable: depth order within a pixel), then gsplat's transmittance and early stop.
    hits = torch.nonzero(hit).squeeze(1)
    order = hits.index_select(0, torch.sort(pixels.index_select(0, hits).int(), stable=True).indices)
    pixels, alpha = pixels.index_select(0, order), alpha.index_select(0, order)
    log_keep = torch.log1p(-alpha.double())
    inclusive = state.log_t.index_select(0, pixels) + segmented_cumsum(log_keep, segment_ids(pixels))
    alive = inclusive > math.log(TRANSMITTANCE_MIN)
    state.done[pixels[~alive]] = True
    keep = torch.nonzero(alive).squeeze(1)
    pixels, alpha, log_keep, inclusive = (t.index_select(0, keep) for t in (pixels, alpha, log_keep, inclusive))
    state.log_t.index_add_(0, pixels, log_keep)
    order = order.index_select(0, keep)
    return Pairs(
        splats=pair_splats.index_select(0, order),
        pixels=pixels,
        dx=dx.index_select(0, order),
        dy=dy.index_select(0, order),
        alpha=alpha,
        falloff=falloff.index_select(0, order),
        transmittance=torch.exp(inclusive - log_keep).to(alpha.dtype),
    )


def segment_ids(keys: Int[Tensor, " P"]) -> Int[Tensor, " P"]:
    """0, 1, 2, ... numbering of the runs of equal values in the sorted ``keys``."""
    starts = torch.ones_like(keys, dtype=torch.bool)
    starts[1:] = keys[1:] != keys[:-1]
    return torch.cumsum(starts, 0) - 1


def segmented_cumsum(values: Tensor, segments: Int[Tensor, " P"]) -> Tensor:
    """Inclusive cumulative sum along dim 0, restarting with each segment (``segment_ids`` numbering)."""
    total = torch.cumsum(values, 0)
    starts = torch.ones_like(segments, dtype=torch.bool)
    starts[1:] = segments[1:] != segments[:-1]
    return total - (total - values)[starts].index_select(0, segments)


class _Composite(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, fp, slabs, width, height, n_cameras):
        accum = torch.zeros(n_cameras, height * width, colors.shape[-1], dtype=torch.float64, device=colors.device)
        log_t = torch.zeros(n_cameras, height * width, dtype=torch.float64, device=colors.device)
        for camera, pairs in walk_pairs(slabs, fp, means2d, conics, opacities, width, height):
            weights = (pairs.alpha * pairs.transmittance)[:, None]
            accum[camera].index_add_(0, pairs.pixels, (weights * colors.index_select(0, pairs.splats)).double())
            log_t[camera].index_add_(0, pairs.pixels, torch.log1p(-pairs.alpha.double()))
        final_t = torch.exp(log_t).to(colors.dtype)
        ctx.save_for_backward(means2d, conics, opacities, colors, accum, final_t)
        ctx.layout = (fp, slabs, width, height)
        color_out = accum.to(colors.dtype).view(n_cameras, height, width, -1)
        return color_out, (1.0 - final_t).view(n_cameras, height, width, 1)

    @staticmethod
    def backward(ctx, grad_colors, grad_alphas):
        means2d, conics, opacities, colors, accum, final_t = ctx.saved_tensors
        fp, slabs, width, height = ctx.layout
        n_cameras = final_t.shape[0]
        grad_colors = grad_colors.reshape(n_cameras, height * width, -1)
        grad_alphas = grad_alphas.reshape(n_cameras, height * width)
        v_means2d, v_conics = torch.zeros_like(means2d), torch.zeros_like(conics)
        v_opacities, v_colors = torch.zeros_like(opacities), torch.zeros_like(colors)
        # Colour composited so far in each pixel, to know what lies behind every pair.
        in_front = torch.zeros_like(accum)
        for camera, pairs in walk_pairs(slabs, fp, means2d, conics, opacities, width, height):
            pix, splats = pairs.pixels, pairs.splats
            g_color = grad_colors[camera].index_select(0, pix)
            weights = pairs.alpha * pairs.transmittance
            splat_colors = colors.index_select(0, splats)
            v_colors.index_add_(0, splats, weights[:, None] * g_color)

            weighted = (weights[:, None] * splat_colors).double()
            through = in_front[camera].index_select(0, pix) + segmented_cumsum(weighted, segment_ids(pix))
            behind = (accum[camera].index_select(0, pix) - through).to(colors.dtype)
            in_front[camera].index_add_(0, pix, weighted)
            g_alpha = grad_alphas[camera].index_select(0, pix) * final_t[camera].index_select(0, pix)
            v_alpha = pairs.transmittance * (g_color * splat_colors).sum(-1)
            v_alpha = v_alpha + (g_alpha - (g_color * behind).sum(-1)) / (1.0 - pairs.alpha)

            # alpha = opacity * falloff unless capped (gsplat's backward: opacity * falloff <= 0.999).
            opacity = opacities.index_select(0, splats)
            v_alpha = v_alpha * (opacity * pairs.falloff <= ALPHA_MAX)
            v_opacities.index_add_(0, splats, v_alpha * pairs.falloff)
            v_sigma = -v_alpha * opacity * pairs.falloff
            dx, dy = pairs.dx, pairs.dy
            conic = conics.index_select(0, splats)
            v_conics.index_add_(0, splats, v_sigma[:, None] * torch.stack([0.5 * dx * dx, dx * dy, 0.5 * dy * dy], -1))
            v_mean = torch.stack([conic[:, 0] * dx + conic[:, 1] * dy, conic[:, 1] * dx + conic[:, 2] * dy], -1)
            v_means2d.index_add_(0, splats, v_sigma[:, None] * v_mean)
        return v_means2d, v_conics, v_opacities, v_colors, None, None, None, None, None


def composite(
    means2d: Float[Tensor, "C N 2"],
    conics: Float[Tensor, "C N 3"],
    opacities: Float[Tensor, "C N"],
    colors: Float[Tensor, "C N D"],
    depths: Float[Tensor, "C N"],
    radii: Int[Tensor, "C N"],
    width: int,
    height: int,
    max_pairs_per_slab: Optional[int] = None,
) -> tuple[Float[Tensor, "C H W D"], Float[Tensor, "C H W 1"]]:
    """Accumulated colours (no background) and alphas (1 - final transmittance) of every pixel.

    ``max_pairs_per_slab`` (default ``MAX_PAIRS_PER_SLAB``) trades memory for per-slab overhead."""
    n_cameras = means2d.shape[0]
    flat = [t.flatten(0, 1) for t in (means2d, conics, opacities, colors)]
    with torch.no_grad():
        fp = footprints(flat[0].detach(), flat[1].detach(), flat[2].detach(), radii.flatten(), width, height)
        slabs = plan_slabs(fp, depths.detach(), max_pairs_per_slab or MAX_PAIRS_PER_SLAB)
    return _Composite.apply(*flat, fp, slabs, width, height, n_cameras)
