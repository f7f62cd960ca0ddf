"""Numba CPU kernels for the compositing stage, with a hand-written backward pass.

Same results as ``pixelsplat_ns.render.compositing.composite`` (gsplat 1.4.0's classic rules), computed the
way gsplat's CUDA kernels do: per 16x16 tile, a depth-sorted list of the Gaussians that can reach it (made by
``tiles.build_layout``, whose module says how it differs from gsplat's), walked front to back for every
pixel; the backward pass walks it back to front from each pixel's last composited Gaussian, recovering the
transmittance by dividing by (1 - alpha).

Differences of layout, none of result beyond rounding:

* Each tile loops over its Gaussians and, for each, over the pixels of its box only (the pixel state of the
  tile lives in small arrays), so small Gaussians cost a few pixels rather than the whole tile.
* Over a Gaussian's box in a tile, exp(-sigma) is carried from pixel to pixel and from row to row by a
  recurrence (``_box_start``: sigma is quadratic in x and y), which differs from a fresh exp by rounding
  (about 1e-15 relative per step). For a positive-definite conic sigma >= 0, so gsplat's ``sigma < 0`` skip
  is checked only for the others, evaluated pixel by pixel (``_pixel_falloff``), as are boxes where the
  recurrence could underflow.
* Transmittance, colours and gradients are accumulated in float64 whatever the input dtype.
* The backward pass writes one partial gradient per (tile, Gaussian) entry and sums them per Gaussian
  afterwards, in a fixed order (deterministic, no atomics); memory grows with the number of entries, not
  with the number of (Gaussian, pixel) pairs.
"""

import math

import numba
import numpy as np
import torch
from jaxtyping import Float, Int
from numba import prange
from torch import Tensor

from pixelsplat_ns.render.compositing import ALPHA_MAX, ALPHA_MIN, TRANSMITTANCE_MIN
from pixelsplat_ns.render.numba_compilation import RENDERER, announces_compilation
from pixelsplat_ns.render.numba_kernels.tiles import _block_of, _n_blocks, _numpy, _tile_bounds, build_layout
from pixelsplat_ns.render.untraced import untraced

RECURRENCE_MAX_SIGMA = 600.0  # exp(-600) ~ 1e-261: far from float64's underflow, whatever the steps after
GRAD_FIELDS = 6  # per entry: d/d means2d (2), d/d conics (3), d/d opacity (1), then d/d colour (D)


@numba.njit(inline="always")
def _falloff_step(a, b, c):
    """(whether the conic is positive definite, exp(-a)): ``_box_start``'s recurrence holds for such a conic,
    and exp(-a) is the constant factor its pixel-to-pixel ratio changes by along any row."""
    quadratic = a > 0.0 and a * c - b * b > 0.0
    return quadratic, (math.exp(-a) if quadratic else 0.0)


@numba.njit(inline="always")
def _sigma(dx, dy, a, b, c):
    return 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy


@numba.njit(inline="always")
def _box_start(mx, my, a, b, c, x0, x1, y0, y1):
    """The falloff recurrence over the pixel box [x0, x1) x [y0, y1) of a positive-definite conic: whether it
    is safe, and its state at the box's first pixel (x0, y0): ``(safe, falloff, across, down, across_down,
    down_down)``.

    sigma is quadratic in both pixel coordinates, so moving one pixel right multiplies the falloff
    exp(-sigma) by ``across``, which itself is multiplied by exp(-a) (``_falloff_step``) at each step right
    and by ``across_down`` = exp(-b) at each row down; moving one row down multiplies the row's first
    falloff by ``down``, itself multiplied by ``down_down`` = exp(-c) per row. Six exponentials per (tile,
    Gaussian) instead of one or two per row or pixel; about 1e-15 relative error per step (in float64,
    whatever the inputs' dtype) over at most 16 + 16 steps. Unsafe (use ``_pixel_falloff``) where some
    corner of the box has sigma > ``RECURRENCE_MAX_SIGMA`` (a falloff there could underflow, and a zero would
    stay zero along the recurrence) or where a conic entry exceeds it in size (its factor exp(-a), exp(-b) or
    exp(-c) could overflow or underflow, although the falloffs they step between would not)."""
    dx0, dy0 = mx - (x0 + 0.5), my - (y0 + 0.5)
    dx1, dy1 = mx - (x1 - 0.5), my - (y1 - 0.5)
    worst = max(
        max(_sigma(dx0, dy0, a, b, c), _sigma(dx1, dy0, a, b, c)),
        max(_sigma(dx0, dy1, a, b, c), _sigma(dx1, dy1, a, b, c)),
    )
    if worst > RECURRENCE_MAX_SIGMA or max(abs(a), abs(b), abs(c)) > RECURRENCE_MAX_SIGMA:
        return False, 0.0, 0.0, 0.0, 0.0, 0.0
    # sigma(px + 1) - sigma(px) = a / 2 - a dx - b dy (dx decreases by one); likewise down: c / 2 - c dy - b dx
    return (
        True,
        math.exp(-_sigma(dx0, dy0, a, b, c)),
        math.exp(-(0.5 * a - a * dx0 - b * dy0)),
        math.exp(-(0.5 * c - c * dy0 - b * dx0)),
        math.exp(-b),
        math.exp(-c),
    )


@numba.njit(inline="always")
def _pixel_falloff(dx, dy, a, b, c, level):
    """exp(-sigma) at one pixel (offset ``dx``, ``dy`` from the Gaussian's centre) for a conic that is not
    positive definite, or a box where ``_box_start``'s recurrence is unsafe: 0 where the alpha test fails anyway
    (sigma > level) and where sigma < 0 (skipped by gsplat's rules)."""
    sigma = 0.5 * (a * dx * dx + c * dy * dy) + b * dx * dy
    if sigma < 0.0 or sigma > level:
        return 0.0
    return math.exp(-sigma)


@numba.njit(inline="always")
def _entry_start(means2d, conics, bx0, bx1, by0, by1, level, m, px0, px1, py0, py1):
    """What both kernels need of Gaussian m in the tile [px0, px1) x [py0, py1), in float64 whatever the
    inputs' dtype (the recurrence's factors are reused hundreds of times): its centre and conic, its level,
    its box in the tile, whether its falloff is stepped by the recurrence, exp(-a), and ``_box_start``'s state
    (zeros where the falloff is evaluated pixel by pixel)."""
    mx, my = np.float64(means2d[m, 0]), np.float64(means2d[m, 1])
    a, b, c = np.float64(conics[m, 0]), np.float64(conics[m, 1]), np.float64(conics[m, 2])
    quadratic, step = _falloff_step(a, b, c)
    lo, hi = max(px0, bx0[m]), min(px1, bx1[m])
    top, bottom = max(py0, by0[m]), min(py1, by1[m])
    row_falloff = row_across = down = across_down = down_down = 0.0
    if quadratic:
        quadratic, row_falloff, row_across, down, across_down, down_down = _box_start(
            mx, my, a, b, c, lo, hi, top, bottom
        )
    return (
        mx,
        my,
        a,
        b,
        c,
        level[m],
        lo,
        hi,
        top,
        bottom,
        quadratic,
        step,
        row_falloff,
        row_across,
        down,
        across_down,
        down_down,
    )


@numba.njit(cache=True)
def _forward_tile(
    tile,
    offsets,
    entries,
    means2d,
    conics,
    opacities,
    colors,
    bx0,
    bx1,
    by0,
    by1,
    level,
    width,
    height,
    tiles_x,
    tiles_y,
    out,
    final_t,
    last,
):
    """Composite one tile front to back, writing its pixels of ``out``, ``final_t`` and ``last``."""
    n_channels = colors.shape[1]
    camera, px0, px1, py0, py1 = _tile_bounds(tile, tiles_x, tiles_y, width, height)
    tw = px1 - px0
    n_pixels = (py1 - py0) * tw
    trans = np.ones(n_pixels)
    done = np.zeros(n_pixels, dtype=np.bool_)
    last_here = np.full(n_pixels, -1, dtype=np.int32)
    accum = np.zeros((n_pixels, n_channels))
    color = np.empty(n_channels)
    running = n_pixels
    start = offsets[tile]
    for k in range(start, offsets[tile + 1]):
        if running == 0:
            break  # every pixel of the tile has stopped
        m = entries[k]
        opacity = opacities[m]
        for d in range(n_channels):
            color[d] = colors[m, d]
        here = k - start
        (
            mx,
            my,
            a,
            b,
            c,
            lv,
            lo,
            hi,
            top,
            bottom,
            quadratic,
            step,
            row_falloff,
            row_across,
            down,
            across_down,
            down_down,
        ) = _entry_start(means2d, conics, bx0, bx1, by0, by1, level, m, px0, px1, py0, py1)
        for py in range(top, bottom):
            dy = my - (py + 0.5)
            row = (py - py0) * tw - px0
            falloff, across = row_falloff, row_across
            row_falloff, down, row_across = row_falloff * down, down * down_down, row_across * across_down
            for px in range(lo, hi):
                if quadratic:
                    alpha = min(ALPHA_MAX, opacity * falloff)
                    falloff, across = falloff * across, across * step
                else:
                    alpha = min(ALPHA_MAX, opacity * _pixel_falloff(mx - (px + 0.5), dy, a, b, c, lv))
                p = row + px
                if alpha < ALPHA_MIN or done[p]:  # alpha is 0 where the falloff is
                    continue
                next_t = trans[p] * (1.0 - alpha)
                if next_t <= TRANSMITTANCE_MIN:
                    done[p] = True  # this Gaussian is not composited, nor any after it
                    running -= 1
                    continue
                weight = alpha * trans[p]
                for d in range(n_channels):
                    accum[p, d] += weight * color[d]
                trans[p] = next_t
                last_here[p] = here
    for py in range(py0, py1):
        for px in range(px0, px1):
            p, q = (py - py0) * tw + px - px0, py * width + px
            final_t[camera, q] = trans[p]
            last[camera, q] = last_here[p]
            for d in range(n_channels):
                out[camera, q, d] = accum[p, d]


@numba.njit(parallel=True, cache=True)
def _forward_kernel(
    offsets,
    entries,
    means2d,
    conics,
    opacities,
    colors,
    bx0,
    bx1,
    by0,
    by1,
    level,
    n_cameras,
    width,
    height,
    tiles_x,
    tiles_y,
    n_blocks,
):
    """Front-to-back compositing of every tile. Returns colours [C, H*W, D] (accumulated in float64, returned
    in the colours' dtype), final transmittance [C, H*W] (float64) and, per pixel, the position in its
    tile's list of the last composited Gaussian (-1 if none) [C, H*W] int32. Block b of ``n_blocks`` takes
    the tiles ``_block_of`` gives it (``_n_blocks``). Every pixel lies in one tile, which writes all three
    outputs for it: they start uninitialized (filling fresh memory first would only cost time)."""
    out = np.empty((n_cameras, height * width, colors.shape[1]), dtype=colors.dtype)
    final_t = np.empty((n_cameras, height * width))
    last = np.empty((n_cameras, height * width), dtype=np.int32)
    n_tiles = len(offsets) - 1
    for block in prange(n_blocks):
        for tile in range(n_tiles):
            if _block_of(tile, tiles_x, tiles_y, n_blocks) != block:
                continue
            _forward_tile(
                tile,
                offsets,
                entries,
                means2d,
                conics,
                opacities,
                colors,
                bx0,
                bx1,
                by0,
                by1,
                level,
                width,
                height,
                tiles_x,
                tiles_y,
                out,
                final_t,
                last,
            )
    return out, final_t, last


@numba.njit(cache=True)
def _backward_tile(
    tile,
    offsets,
    entries,
    means2d,
    conics,
    opacities,
    colors,
    bx0,
    bx1,
    by0,
    by1,
    level,
    final_t,
    last,
    grad_colors,
    grad_alphas,
    width,
    height,
    tiles_x,
    tiles_y,
    partial,
):
    """Walk one tile back to front, writing the partial gradients of its list entries into ``partial``."""
    n_channels = colors.shape[1]
    camera, px0, px1, py0, py1 = _tile_bounds(tile, tiles_x, tiles_y, width, height)
    tw = px1 - px0
    n_pixels = (py1 - py0) * tw
    trans = np.empty(n_pixels)  # T behind the Gaussians walked so far, then in front of them
    behind = np.zeros((n_pixels, n_channels))  # colour composited behind the current Gaussian
    g_color = np.empty((n_pixels, n_channels))
    g_final = np.empty(n_pixels)  # dL/d(final T) * final T = -grad_alpha * final T
    last_here = np.empty(n_pixels, dtype=np.int32)
    color = np.empty(n_channels)
    v_color = np.empty(n_channels)
    deepest = -1
    for py in range(py0, py1):
        for px in range(px0, px1):
            p, q = (py - py0) * tw + px - px0, py * width + px
            trans[p] = final_t[camera, q]
            g_final[p] = -grad_alphas[camera, q] * final_t[camera, q]
            last_here[p] = last[camera, q]
            deepest = max(deepest, last[camera, q])
            for d in range(n_channels):
                g_color[p, d] = grad_colors[camera, q, d]
    start = offsets[tile]
    for k in range(start + deepest, start - 1, -1):
        m = entries[k]
        opacity = opacities[m]
        for d in range(n_channels):
            color[d] = colors[m, d]
            v_color[d] = 0.0
        v_mx = v_my = v_a = v_b = v_c = v_opacity = 0.0
        (
            mx,
            my,
            a,
            b,
            c,
            lv,
            lo,
            hi,
            top,
            bottom,
            quadratic,
            step,
            row_falloff,
            row_across,
            down,
            across_down,
            down_down,
        ) = _entry_start(means2d, conics, bx0, bx1, by0, by1, level, m, px0, px1, py0, py1)
        for py in range(top, bottom):
            dy = my - (py + 0.5)
            next_falloff, across = row_falloff, row_across
            row_falloff, down, row_across = row_falloff * down, down * down_down, row_across * across_down
            for px in range(lo, hi):
                # Stepped at every pixel of the box, even those skipped below, as in the forward pass (the
                # same alphas bit for bit).
                if quadratic:
                    falloff = next_falloff
                    next_falloff, across = falloff * across, across * step
                else:
                    falloff = _pixel_falloff(mx - (px + 0.5), dy, a, b, c, lv)
                p = (py - py0) * tw + px - px0
                if k - start > last_here[p]:
                    continue  # behind this pixel's stop
                alpha = min(ALPHA_MAX, opacity * falloff)
                if alpha < ALPHA_MIN:
                    continue
                inv_keep = 1.0 / (1.0 - alpha)
                t_front = trans[p] * inv_keep  # T in front of this Gaussian
                trans[p] = t_front
                weight = alpha * t_front
                # dL/dalpha = sum_d g_d (T c_d - behind_d / (1 - alpha)) - g_final / (1 - alpha)
                v_alpha = -g_final[p] * inv_keep
                for d in range(n_channels):
                    g = g_color[p, d]
                    v_color[d] += weight * g
                    v_alpha += g * (t_front * color[d] - behind[p, d] * inv_keep)
                    behind[p, d] += weight * color[d]
                if opacity * falloff > ALPHA_MAX:
                    continue  # a capped alpha depends on neither opacity nor position
                v_opacity += v_alpha * falloff
                v_sigma = -v_alpha * opacity * falloff
                dx = mx - (px + 0.5)
                v_mx += v_sigma * (a * dx + b * dy)
                v_my += v_sigma * (b * dx + c * dy)
                v_a += v_sigma * 0.5 * dx * dx
                v_b += v_sigma * dx * dy
                v_c += v_sigma * 0.5 * dy * dy
        out = partial[k]
        out[0], out[1], out[2], out[3], out[4], out[5] = v_mx, v_my, v_a, v_b, v_c, v_opacity
        for d in range(n_channels):
            out[GRAD_FIELDS + d] = v_color[d]


@numba.njit(parallel=True, cache=True)
def _backward_kernel(
    offsets,
    entries,
    means2d,
    conics,
    opacities,
    colors,
    bx0,
    bx1,
    by0,
    by1,
    level,
    final_t,
    last,
    grad_colors,
    grad_alphas,
    width,
    height,
    tiles_x,
    tiles_y,
    n_blocks,
    partial,
):
    """Back-to-front walk of every tile from each pixel's last composited Gaussian, writing the partial
    gradient of every list entry into ``partial`` [P, 6 + D] (zeros on entry): d/d (mean x, mean y, conic a,
    b, c, opacity, colour); entries behind every pixel's stop stay zero."""
    n_tiles = len(offsets) - 1
    for block in prange(n_blocks):
        for tile in range(n_tiles):
            if _block_of(tile, tiles_x, tiles_y, n_blocks) != block:
                continue
            _backward_tile(
                tile,
                offsets,
                entries,
                means2d,
                conics,
                opacities,
                colors,
                bx0,
                bx1,
                by0,
                by1,
                level,
                final_t,
                last,
                grad_colors,
                grad_alphas,
                width,
                height,
                tiles_x,
                tiles_y,
                partial,
            )


@numba.njit(cache=True)
def _sum_entries(entries, partial, total):
    """Adds each entry's partial gradient to its Gaussian's row of ``total`` [M, 6 + D], in entry order."""
    for k in range(len(entries)):
        for f in range(partial.shape[1]):
            total[entries[k], f] += partial[k, f]


class _CompositeNumba(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, boxes, lists, width, height, n_cameras):
        arrays = [_numpy(t) for t in (means2d, conics, opacities, colors)]
        out, final_t, last = _forward_kernel(
            lists.offsets,
            lists.entries,
            *arrays,
            boxes.x0,
            boxes.x1,
            boxes.y0,
            boxes.y1,
            boxes.level,
            n_cameras,
            width,
            height,
            lists.tiles_x,
            lists.tiles_y,
            _n_blocks(len(lists.offsets) - 1),
        )
        ctx.save_for_backward(means2d, conics, opacities, colors)
        ctx.layout = (boxes, lists, width, height, final_t, last)
        dtype = colors.dtype
        color_out = torch.from_numpy(out).view(n_cameras, height, width, -1)
        alpha_out = torch.from_numpy(1.0 - final_t).to(dtype).view(n_cameras, height, width, 1)
        return color_out, alpha_out

    @staticmethod
    @announces_compilation(RENDERER)
    def backward(ctx, grad_colors, grad_alphas):
        means2d, conics, opacities, colors = ctx.saved_tensors
        boxes, lists, width, height, final_t, last = ctx.layout
        n_cameras = final_t.shape[0]
        g_colors = _numpy(grad_colors.reshape(n_cameras, height * width, -1))
        g_alphas = _numpy(grad_alphas.reshape(n_cameras, height * width))
        arrays = [_numpy(t) for t in (means2d, conics, opacities, colors)]
        # Per-entry sums are over at most one tile's pixels (in float64); storing them in a float32 input's
        # dtype halves the largest buffer of the backward pass at no loss that matters.
        dtype = np.float32 if colors.dtype == torch.float32 else np.float64
        partial = np.zeros((len(lists.entries), GRAD_FIELDS + colors.shape[1]), dtype=dtype)
        _backward_kernel(
            lists.offsets,
            lists.entries,
            *arrays,
            boxes.x0,
            boxes.x1,
            boxes.y0,
            boxes.y1,
            boxes.level,
            final_t,
            last,
            g_colors,
            g_alphas,
            width,
            height,
            lists.tiles_x,
            lists.tiles_y,
            _n_blocks(len(lists.offsets) - 1),
            partial,
        )
        total = np.zeros((means2d.shape[0], partial.shape[1]), dtype=dtype)
        _sum_entries(lists.entries, partial, total)
        del partial
        total = torch.from_numpy(total).to(colors.dtype)
        v_means2d, v_conics, v_opacities = total[:, 0:2], total[:, 2:5], total[:, 5]
        v_colors = total[:, GRAD_FIELDS:]
        return v_means2d, v_conics, v_opacities, v_colors, None, None, None, None, None


@untraced  # the viewer's interrupts must not land inside a kernel (see untraced.py)
@announces_compilation(RENDERER)
def composite_numba(
    means2d: Float[Tensor, "C N 2"],
    conics: Float[Tensor, "C N 3"],
    opacities: Float[Tensor, "C N"],
    colors: Float[Tensor, "C N D"],
    depths: Float[Tensor, "C N"],
    radii: Int[Tensor, "C N"],
    width: int,
    height: int,
) -> tuple[Float[Tensor, "C H W D"], Float[Tensor, "C H W 1"]]:
    """``compositing.composite`` on CPU tensors with numba kernels: accumulated colours (no background) and
    alphas (1 - final transmittance), differentiable w.r.t. means2d, conics, opacities and colors."""
    if means2d.device.type != "cpu":
        raise ValueError(f"composite_numba needs CPU tensors, got {means2d.device}")
    n_cameras = means2d.shape[0]
    flat = [t.flatten(0, 1) for t in (means2d, conics, opacities, colors)]
    with torch.no_grad():
        boxes, lists = build_layout(
            flat[0].detach(), flat[1].detach(), flat[2].detach(), depths.detach(), radii.flatten(), width, height
        )
    return _CompositeNumba.apply(*flat, boxes, lists, width, height, n_cameras)
