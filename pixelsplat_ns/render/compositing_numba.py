"""Numba CPU kernels for the compositing stage, with a hand-written backward pass.

Same results as ``pixelsplat_ns.render.compositing.composite`` (gsplat 1.4.0's classic rules), computed the
way gsplat's CUDA kernels do: per 16x16 tile, a depth-sorted list of the Gaussians that can reach it, walked
front to back for every pixel; the backward pass walks it back to front from each pixel's last composited
Gaussian, recovering the transmittance by dividing by (1 - alpha).

Differences of layout, none of result beyond rounding:

* A tile's list holds the Gaussians whose pixel box (``compositing.footprints``: the part of the ellipse
  ``opacity * exp(-sigma) >= 1/255`` inside gsplat's tile rectangle) overlaps the tile, a subset of gsplat's
  list without any Gaussian that could pass the alpha test in that tile; per-pixel order is unchanged.
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

numba compiles the kernels on first use (``cache=True`` keeps them on disk, in ``__pycache__`` beside this
file); ``warm_up()`` compiles or loads them and says how long it took.
"""

import math
import time
from dataclasses import dataclass

import numba
import numpy as np
import torch
from jaxtyping import Float, Int
from numba import prange
from torch import Tensor

from pixelsplat_ns.render.compositing import (
    ALPHA_MAX,
    ALPHA_MIN,
    TILE_SIZE,
    TRANSMITTANCE_MIN,
)
from pixelsplat_ns.render.projection_numba import project_and_shade_numba
from pixelsplat_ns.render.untraced import untraced

RECURRENCE_MAX_SIGMA = 600.0  # exp(-600) ~ 1e-261: far from float64's underflow, whatever the steps after
GRAD_FIELDS = 6  # per entry: d/d means2d (2), d/d conics (3), d/d opacity (1), then d/d colour (D)


@dataclass
class TileLists:
    """Every (camera, tile)'s Gaussians in compositing order, as one flat array with offsets.

    Tiles are numbered ``camera * tiles_y * tiles_x + ty * tiles_x + tx``; the Gaussians of tile t are
    ``entries[offsets[t]:offsets[t + 1]]`` (ids into the flattened C*N), by depth with ties by index."""

    offsets: np.ndarray  # [C*TY*TX + 1] int64
    entries: np.ndarray  # [P] int64
    tiles_x: int
    tiles_y: int


@dataclass
class Boxes:
    """Per Gaussian (flattened C*N): the half-open pixel box it can reach and its sigma level, as numpy."""

    x0: np.ndarray  # [M] int64
    x1: np.ndarray
    y0: np.ndarray
    y1: np.ndarray
    level: np.ndarray  # [M] float64; sigma > level means alpha < 1/255


@numba.njit(parallel=True, cache=True)
def _pixel_boxes(means2d, conics, opacities, radii, width, height):
    """``compositing.footprints`` per Gaussian (float64, same formulas): the half-open pixel box of the
    ellipse sigma <= level (alpha >= 1/255, level widened for rounding) within its tile rectangle, empty
    (all 0) if none; and the level. The tile rectangle is ``compositing.tile_rects``'s, computed as there in
    the dtype of ``means2d`` (gsplat's float32), with ``radii`` given in that dtype."""
    n = len(opacities)
    tile_size = np.full(1, TILE_SIZE, dtype=means2d.dtype)[0]  # a scalar of means2d's dtype
    tiles_x, tiles_y = (width + TILE_SIZE - 1) // TILE_SIZE, (height + TILE_SIZE - 1) // TILE_SIZE
    x0, x1 = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    y0, y1 = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
    level = np.empty(n)
    limit = max(width, height) + 1.0
    for m in prange(n):
        if radii[m] <= 0:
            level[m] = 0.0
            continue  # not drawn: an empty box
        tile_radius = radii[m] / tile_size
        tile_x, tile_y = means2d[m, 0] / tile_size, means2d[m, 1] / tile_size
        # CUDA's float -> uint32 conversion saturates negatives at 0; the result is then capped at the grid size.
        tx0 = min(max(math.floor(tile_x - tile_radius), 0), tiles_x)
        tx1 = min(max(math.ceil(tile_x + tile_radius), 0), tiles_x)
        ty0 = min(max(math.floor(tile_y - tile_radius), 0), tiles_y)
        ty1 = min(max(math.ceil(tile_y + tile_radius), 0), tiles_y)
        a, b, c = np.float64(conics[m, 0]), np.float64(conics[m, 1]), np.float64(conics[m, 2])
        det = max(a * c - b * b, 1e-300)
        lv = math.log(255.0 * max(np.float64(opacities[m]), 1e-300))
        lv = lv + 1e-3 * abs(lv) + 1e-3
        level[m] = lv
        reach = 2.0 * max(lv, 0.0)
        half_x, half_y = math.sqrt(reach * max(c / det, 0.0)), math.sqrt(reach * max(a / det, 0.0))
        mx, my = np.float64(means2d[m, 0]), np.float64(means2d[m, 1])
        lo_x = int(min(max(math.ceil(mx - half_x - 0.5 - 1e-3), -1.0), limit))
        hi_x = int(min(max(math.floor(mx + half_x - 0.5 + 1e-3) + 1.0, -1.0), limit))
        lo_y = int(min(max(math.ceil(my - half_y - 0.5 - 1e-3), -1.0), limit))
        hi_y = int(min(max(math.floor(my + half_y - 0.5 + 1e-3) + 1.0, -1.0), limit))
        bx0, bx1 = max(lo_x, tx0 * TILE_SIZE, 0), min(hi_x, tx1 * TILE_SIZE, width)
        by0, by1 = max(lo_y, ty0 * TILE_SIZE, 0), min(hi_y, ty1 * TILE_SIZE, height)
        if bx1 > bx0 and by1 > by0 and lv >= 0.0:
            x0[m], x1[m], y0[m], y1[m] = bx0, bx1, by0, by1
    return x0, x1, y0, y1, level


RADIX_BITS = 11


@numba.njit(parallel=True, cache=True)
def _depth_order(bits, n_bits):
    """Each camera's Gaussians by depth, ties by index: ``torch.sort(depths, stable=True).indices`` as an LSD
    radix sort of the depths' IEEE bit patterns ``bits`` [C, N] (uint32 for float32, uint64 for float64, of
    ``n_bits`` bits), mapped to unsigned integers in the floats' order. (-0.0 sorts before +0.0, which torch
    takes as equal; neither is drawn, being closer than any near plane.)"""
    n_cameras, n = bits.shape
    order = np.empty((n_cameras, n), dtype=np.int64)
    sign = np.uint64(1) << np.uint64(n_bits - 1)
    mask = np.uint64((1 << RADIX_BITS) - 1)
    for c in prange(n_cameras):
        keys = np.empty(n, dtype=np.uint64)
        for i in range(n):
            key = np.uint64(bits[c, i])
            keys[i] = ~key & ((sign << np.uint64(1)) - np.uint64(1)) if key & sign else key | sign
        current, spare = np.arange(n), np.empty(n, dtype=np.int64)
        for shift in range(0, n_bits, RADIX_BITS):
            counts = np.zeros((1 << RADIX_BITS) + 1, dtype=np.int64)
            for i in range(n):
                counts[((keys[current[i]] >> np.uint64(shift)) & mask) + 1] += 1
            counts = np.cumsum(counts)
            for i in range(n):
                digit = (keys[current[i]] >> np.uint64(shift)) & mask
                spare[counts[digit]] = current[i]
                counts[digit] += 1
            current, spare = spare, current
        order[c] = current
    return order


def depth_order(depths: Float[Tensor, "C N"]) -> np.ndarray:
    """``_depth_order`` of float32 or float64 depths: [C, N] int64."""
    array = _numpy(depths)
    bits = array.view(np.uint32 if array.dtype == np.float32 else np.uint64)
    return _depth_order(bits, 8 * array.dtype.itemsize)


@numba.njit(inline="always")
def _gaussian_at(order, n, position):
    """The flattened id (camera * n + Gaussian) at ``position`` of the cameras' depth orders laid end to end."""
    camera = position // n
    return camera * n + order[camera, position - camera * n]


@numba.njit(parallel=True, cache=True)
def _tile_lists(order, x0, x1, y0, y1, n_cameras, n, tiles_x, tiles_y, n_chunks):
    """Counting sort of (tile, Gaussian) entries by tile, filled in depth order so each tile's run is
    depth-sorted (``order`` [C, N]: each camera's Gaussians by depth, ties by index).

    The tile rectangles are gathered into depth order first, once: the depth order visits the boxes at
    random, and the two passes after it then read them in sequence. The passes run in parallel over
    ``n_chunks`` consecutive parts of the depth order: each part counts its entries per tile, and writes
    them after those of the parts before it, so the lists are the serial ones."""
    tiles_per_camera = tiles_x * tiles_y
    n_tiles = n_cameras * tiles_per_camera
    total = n_cameras * n
    rects = np.zeros((total, 4), dtype=np.int32)  # per position: tile columns [0, 1), rows [2, 3); empty: 0s
    for position in prange(total):
        m = _gaussian_at(order, n, position)
        if x1[m] > x0[m] and y1[m] > y0[m]:
            rects[position, 0], rects[position, 1] = x0[m] // TILE_SIZE, (x1[m] - 1) // TILE_SIZE + 1
            rects[position, 2], rects[position, 3] = y0[m] // TILE_SIZE, (y1[m] - 1) // TILE_SIZE + 1
    per_chunk = (total + n_chunks - 1) // n_chunks
    counts = np.zeros((n_chunks, n_tiles), dtype=np.int64)
    for chunk in prange(n_chunks):
        for position in range(chunk * per_chunk, min(total, (chunk + 1) * per_chunk)):
            base = (position // n) * tiles_per_camera
            for ty in range(rects[position, 2], rects[position, 3]):
                for tx in range(rects[position, 0], rects[position, 1]):
                    counts[chunk, base + ty * tiles_x + tx] += 1
    offsets = np.zeros(n_tiles + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(counts.sum(axis=0))
    cursor = np.empty((n_chunks, n_tiles), dtype=np.int64)
    for t in prange(n_tiles):
        start = offsets[t]
        for chunk in range(n_chunks):
            cursor[chunk, t] = start
            start += counts[chunk, t]
    entries = np.empty(offsets[-1], dtype=np.int64)
    for chunk in prange(n_chunks):
        for position in range(chunk * per_chunk, min(total, (chunk + 1) * per_chunk)):
            base = (position // n) * tiles_per_camera
            m = _gaussian_at(order, n, position)
            for ty in range(rects[position, 2], rects[position, 3]):
                for tx in range(rects[position, 0], rects[position, 1]):
                    t = base + ty * tiles_x + tx
                    entries[cursor[chunk, t]] = m
                    cursor[chunk, t] += 1
    return offsets, entries


@numba.njit(inline="always")
def _tile_bounds(tile, tiles_x, tiles_y, width, height):
    """(camera, px0, px1, py0, py1) of a flat tile number."""
    camera = tile // (tiles_x * tiles_y)
    local = tile - camera * tiles_x * tiles_y
    ty, tx = local // tiles_x, local % tiles_x
    px0, py0 = tx * TILE_SIZE, ty * TILE_SIZE
    return camera, px0, min(px0 + TILE_SIZE, width), py0, min(py0 + TILE_SIZE, height)


@numba.njit(inline="always")
def _block_of(tile, tiles_x, tiles_y, n_blocks):
    """The parallel block that composites a flat tile number: ``(camera + ty + tx) mod n_blocks``, so that
    neighbouring tiles, whose loads are alike, go to different blocks along rows and along columns."""
    camera, local = tile // (tiles_x * tiles_y), tile % (tiles_x * tiles_y)
    return (camera + local // tiles_x + local % tiles_x) % n_blocks


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
    worst = max(max(_sigma(dx0, dy0, a, b, c), _sigma(dx1, dy0, a, b, c)),
                max(_sigma(dx0, dy1, a, b, c), _sigma(dx1, dy1, a, b, c)))
    if worst > RECURRENCE_MAX_SIGMA or max(abs(a), abs(b), abs(c)) > RECURRENCE_MAX_SIGMA:
        return False, 0.0, 0.0, 0.0, 0.0, 0.0
    # sigma(px + 1) - sigma(px) = a / 2 - a dx - b dy (dx decreases by one); likewise down: c / 2 - c dy - b dx
    return (True, math.exp(-_sigma(dx0, dy0, a, b, c)), math.exp(-(0.5 * a - a * dx0 - b * dy0)),
            math.exp(-(0.5 * c - c * dy0 - b * dx0)), math.exp(-b), math.exp(-c))


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
        quadratic, row_falloff, row_across, down, across_down, down_down = _box_start(mx, my, a, b, c, lo, hi,
                                                                                      top, bottom)
    return (mx, my, a, b, c, level[m], lo, hi, top, bottom, quadratic, step, row_falloff, row_across, down,
            across_down, down_down)


@numba.njit(cache=True)
def _forward_tile(tile, offsets, entries, means2d, conics, opacities, colors, bx0, bx1, by0, by1, level,
                  width, height, tiles_x, tiles_y, out, final_t, last):
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
        (mx, my, a, b, c, lv, lo, hi, top, bottom, quadratic, step, row_falloff, row_across, down, across_down,
         down_down) = _entry_start(means2d, conics, bx0, bx1, by0, by1, level, m, px0, px1, py0, py1)
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
def _forward_kernel(offsets, entries, means2d, conics, opacities, colors, bx0, bx1, by0, by1, level,
                    n_cameras, width, height, tiles_x, tiles_y, n_blocks):
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
            _forward_tile(tile, offsets, entries, means2d, conics, opacities, colors, bx0, bx1, by0, by1, level,
                          width, height, tiles_x, tiles_y, out, final_t, last)
    return out, final_t, last


@numba.njit(cache=True)
def _backward_tile(tile, offsets, entries, means2d, conics, opacities, colors, bx0, bx1, by0, by1, level,
                   final_t, last, grad_colors, grad_alphas, width, height, tiles_x, tiles_y, partial):
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
        (mx, my, a, b, c, lv, lo, hi, top, bottom, quadratic, step, row_falloff, row_across, down, across_down,
         down_down) = _entry_start(means2d, conics, bx0, bx1, by0, by1, level, m, px0, px1, py0, py1)
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
def _backward_kernel(offsets, entries, means2d, conics, opacities, colors, bx0, bx1, by0, by1, level,
                     final_t, last, grad_colors, grad_alphas, width, height, tiles_x, tiles_y, n_blocks, partial):
    """Back-to-front walk of every tile from each pixel's last composited Gaussian, writing the partial
    gradient of every list entry into ``partial`` [P, 6 + D] (zeros on entry): d/d (mean x, mean y, conic a,
    b, c, opacity, colour); entries behind every pixel's stop stay zero."""
    n_tiles = len(offsets) - 1
    for block in prange(n_blocks):
        for tile in range(n_tiles):
            if _block_of(tile, tiles_x, tiles_y, n_blocks) != block:
                continue
            _backward_tile(tile, offsets, entries, means2d, conics, opacities, colors, bx0, bx1, by0, by1, level,
                           final_t, last, grad_colors, grad_alphas, width, height, tiles_x, tiles_y, partial)


@numba.njit(cache=True)
def _sum_entries(entries, partial, total):
    """Adds each entry's partial gradient to its Gaussian's row of ``total`` [M, 6 + D], in entry order."""
    for k in range(len(entries)):
        for f in range(partial.shape[1]):
            total[entries[k], f] += partial[k, f]


def _n_blocks(n_tiles: int) -> int:
    """How many blocks of tiles the kernels run in parallel: one per thread. numba's OpenMP and workqueue
    layers split a prange into equal contiguous parts, one per thread, so the blocks' tiles are interleaved
    instead (``_block_of``, a checkerboard for two threads): a scene busier on one side, or in one row or one
    column of tiles, still loads every thread alike."""
    return max(1, min(n_tiles, numba.get_num_threads()))


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().contiguous().numpy()


def build_layout(
    means2d: Float[Tensor, "M 2"],
    conics: Float[Tensor, "M 3"],
    opacities: Float[Tensor, " M"],
    depths: Float[Tensor, "C N"],
    radii: Int[Tensor, " M"],
    width: int,
    height: int,
) -> tuple[Boxes, TileLists]:
    """Pixel boxes and per-tile lists of the flattened (C*N) Gaussians."""
    boxes = Boxes(*_pixel_boxes(_numpy(means2d), _numpy(conics), _numpy(opacities), _numpy(radii.to(means2d.dtype)),
                                width, height))
    order = depth_order(depths)
    tiles_x, tiles_y = math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)
    offsets, entries = _tile_lists(order, boxes.x0, boxes.x1, boxes.y0, boxes.y1, depths.shape[0], depths.shape[1],
                                   tiles_x, tiles_y, 4 * numba.get_num_threads())
    return boxes, TileLists(offsets, entries, tiles_x, tiles_y)


class _CompositeNumba(torch.autograd.Function):
    @staticmethod
    def forward(ctx, means2d, conics, opacities, colors, boxes, lists, width, height, n_cameras):
        arrays = [_numpy(t) for t in (means2d, conics, opacities, colors)]
        out, final_t, last = _forward_kernel(
            lists.offsets, lists.entries, *arrays, boxes.x0, boxes.x1, boxes.y0, boxes.y1, boxes.level,
            n_cameras, width, height, lists.tiles_x, lists.tiles_y, _n_blocks(len(lists.offsets) - 1),
        )
        ctx.save_for_backward(means2d, conics, opacities, colors)
        ctx.layout = (boxes, lists, width, height, final_t, last)
        dtype = colors.dtype
        color_out = torch.from_numpy(out).view(n_cameras, height, width, -1)
        alpha_out = torch.from_numpy(1.0 - final_t).to(dtype).view(n_cameras, height, width, 1)
        return color_out, alpha_out

    @staticmethod
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
            lists.offsets, lists.entries, *arrays, boxes.x0, boxes.x1, boxes.y0, boxes.y1, boxes.level,
            final_t, last, g_colors, g_alphas, width, height, lists.tiles_x, lists.tiles_y,
            _n_blocks(len(lists.offsets) - 1), partial,
        )
        total = np.zeros((means2d.shape[0], partial.shape[1]), dtype=dtype)
        _sum_entries(lists.entries, partial, total)
        del partial
        total = torch.from_numpy(total).to(colors.dtype)
        v_means2d, v_conics, v_opacities = total[:, 0:2], total[:, 2:5], total[:, 5]
        v_colors = total[:, GRAD_FIELDS:]
        return v_means2d, v_conics, v_opacities, v_colors, None, None, None, None, None


@untraced  # the viewer's interrupts must not land inside a kernel (see untraced.py)
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
        boxes, lists = build_layout(flat[0].detach(), flat[1].detach(), flat[2].detach(), depths.detach(),
                                    radii.flatten(), width, height)
    return _CompositeNumba.apply(*flat, boxes, lists, width, height, n_cameras)


def warm_up(dtypes: tuple[torch.dtype, ...] = (torch.float32,)) -> float:
    """Compile (or load from numba's disk cache) every kernel of the numba backend (these and
    ``projection_numba``'s) for the given dtypes by running a tiny scene forward and backward; returns the
    seconds it took."""
    start = time.perf_counter()
    for dtype in dtypes:
        means2d = torch.tensor([[[8.0, 8.0]]], dtype=dtype, requires_grad=True)
        conics = torch.tensor([[[0.5, 0.0, 0.5]]], dtype=dtype, requires_grad=True)
        opacities = torch.tensor([[0.9]], dtype=dtype, requires_grad=True)
        colors = torch.ones(1, 1, 3, dtype=dtype, requires_grad=True)
        image, alpha = composite_numba(means2d, conics, opacities, colors, torch.ones(1, 1, dtype=dtype),
                                       torch.full((1, 1), 4, dtype=torch.int32), 16, 16)
        (image.sum() + alpha.sum()).backward()
        means = torch.tensor([[0.0, 0.0, 2.0]], dtype=dtype, requires_grad=True)
        covars = (0.01 * torch.eye(3, dtype=dtype))[None].requires_grad_()
        coeffs = torch.zeros(1, 4, 3, dtype=dtype, requires_grad=True)
        camera = torch.eye(4, dtype=dtype)[None]
        Ks = torch.tensor([[[16.0, 0, 8], [0, 16.0, 8], [0, 0, 1]]], dtype=dtype)
        _, means2d, depths, conics, colors = project_and_shade_numba(means, covars, coeffs, camera, Ks, 16, 16, 0.3,
                                                                     0.01, 1e10, 1)
        (means2d.sum() + depths.sum() + conics.sum() + colors.sum()).backward()
    return time.perf_counter() - start
