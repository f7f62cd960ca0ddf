"""The compositing's tile layout as numba CPU kernels: which Gaussians each 16x16 tile walks, in which order.

Per Gaussian the pixel box it can reach (``_pixel_boxes``), per camera the depth order (``depth_order``, a
radix sort equal to torch's stable sort) and per tile the Gaussians whose box overlaps it, in that order
(``_tile_lists``): ``build_layout`` makes them for ``compositing``'s kernels, which walk the lists in parallel
blocks of tiles (``_tile_bounds``, ``_block_of``, ``_n_blocks``). No gradient flows through the layout.

Differences of layout, none of result beyond rounding:

* A tile's list holds the Gaussians whose pixel box (the torch backend's ``compositing.footprints``: the part
  of the ellipse ``opacity * exp(-sigma) >= 1/255`` inside gsplat's tile rectangle) overlaps the tile, a
  subset of gsplat's list without any Gaussian that could pass the alpha test in that tile; per-pixel order
  is unchanged.
"""

import math
from dataclasses import dataclass

import numba
import numpy as np
from jaxtyping import Float, Int
from numba import prange
from torch import Tensor

from pixelsplat_ns.render.compositing import TILE_SIZE


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


def _n_blocks(n_tiles: int) -> int:
    """How many blocks of tiles the kernels run in parallel: one per thread. numba's OpenMP and workqueue
    layers split a prange into equal contiguous parts, one per thread, so the blocks' tiles are interleaved
    instead (``_block_of``, a checkerboard for two threads): a scene busier on one side, or in one row or one
    column of tiles, still loads every thread alike."""
    return max(1, min(n_tiles, numba.get_num_threads()))


def _numpy(t: Tensor) -> np.ndarray:
    """A tensor as the contiguous numpy array the kernels take (no copy when already contiguous), for every
    stage's kernels (``projection`` and ``compositing`` import it from here)."""
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
    boxes = Boxes(
        *_pixel_boxes(
            _numpy(means2d), _numpy(conics), _numpy(opacities), _numpy(radii.to(means2d.dtype)), width, height
        )
    )
    order = depth_order(depths)
    tiles_x, tiles_y = math.ceil(width / TILE_SIZE), math.ceil(height / TILE_SIZE)
    offsets, entries = _tile_lists(
        order,
        boxes.x0,
        boxes.x1,
        boxes.y0,
        boxes.y1,
        depths.shape[0],
        depths.shape[1],
        tiles_x,
        tiles_y,
        4 * numba.get_num_threads(),
    )
    return boxes, TileLists(offsets, entries, tiles_x, tiles_y)
