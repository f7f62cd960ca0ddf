"""Procedural RealEstate10k-like scenes, ray-traced on the CPU.

A scene is the inside of an axis-aligned room with a few boxes standing on its floor, every surface wearing a
procedural texture (checkers, stripes, tiles, noise or a plain colour) in per-scene random colours, lit by an
ambient term and a point light under the ceiling. A camera walks forward through the room along a smooth
path, turning a little, as in RealEstate10k's real-estate videos, and sees it through RealEstate10k-like
intrinsics (square pixels, fx about 0.5-0.58 of the width, centred principal point). Rendering is exact ray
casting (one ray per pixel centre, numpy float32, boxes only tested on the pixels their bounding rectangle
covers). Geometry is made at room scale; a random global scale then multiplies the stored camera positions
(the images do not change), so absolute depth cannot be read from a single image.

World axes: x across the room, y up, z along the room; cameras are OpenCV camera-to-world.
"""

import json
import logging
import multiprocessing
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np
import torch
from jaxtyping import Float

from pixelsplat_ns.core.atomic_files import undone_on_failure, write_text_atomically

from .cameras import encode_chunk_cameras
from .chunks import ChunkScene, ChunkWriter
from .images import encode_jpeg

LOGGER = logging.getLogger("pixelsplat_ns.data")

TEXTURE_SIZE = 64
TEXTURE_KINDS = ("checkers", "stripes", "tiles", "noise", "plain")
PHOTO_TEXTURE_SIZE = 512
PHOTO_TEXTURE_PERIOD = 4.0
"""World units over which a ``speckle_texture`` repeats."""
WORLD_UP = np.array([0.0, 1.0, 0.0])
FRAME_INTERVAL_US = 33_367  # 29.97 fps, as RealEstate10k's timestamps


@dataclass
class Texture:
    """A tileable texture: ``image`` [64, 64, 3] in [0, 1] repeated every ``period`` world units."""

    image: np.ndarray
    period: float


@dataclass
class Box:
    """A box standing in the room: centre, half extents (x, y, z in its own frame), rotation about y."""

    center: np.ndarray
    half_size: np.ndarray
    yaw: float
    texture: Texture

    def rotation(self) -> np.ndarray:
        """Box frame -> world rotation."""
        c, s = np.cos(self.yaw), np.sin(self.yaw)
        return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])

    def corners(self) -> np.ndarray:
        """The 8 corners in world coordinates, [8, 3]."""
        signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], dtype=np.float64)
        return self.center + (signs * self.half_size) @ self.rotation().T


@dataclass
class Room:
    """The scene at room scale: walls, floor and ceiling textures (order -x, +x, -y, +y, -z, +z), boxes and
    lighting. ``scale`` multiplies every stored camera position (and hence the world)."""

    low: np.ndarray
    high: np.ndarray
    wall_textures: list[Texture]
    boxes: list[Box] = field(default_factory=list)
    light: np.ndarray = field(default_factory=lambda: np.zeros(3))
    ambient: float = 0.45
    scale: float = 1.0


# ----------------------------------------------------------------------------------------------- textures


def random_colour(rng: np.random.Generator) -> np.ndarray:
    """A muted, interior-like colour (HSV with low to moderate saturation)."""
    hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.05, 0.6), rng.uniform(0.3, 0.95)
    k = (np.array([5.0, 3.0, 1.0]) + hue * 6) % 6
    return value - value * saturation * np.clip(np.minimum(k, 4 - k), 0, 1)


def make_texture(kind: str, colours: np.ndarray, period: float, rng: np.random.Generator) -> Texture:
    """A tileable texture of ``kind`` blending two colours ``colours`` [2, 3]."""
    n = TEXTURE_SIZE
    u, v = np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n, indexing="xy")
    if kind == "checkers":
        cells = rng.choice([2, 4])
        weight = ((np.floor(u * cells) + np.floor(v * cells)) % 2).astype(np.float64)
    elif kind == "stripes":
        stripes = rng.choice([2, 4, 8])
        weight = 0.5 + 0.5 * np.sin(2 * np.pi * stripes * u)
    elif kind == "tiles":
        cells = rng.choice([2, 4])
        grout = (np.minimum((u * cells) % 1, (v * cells) % 1) < 0.08).astype(np.float64)
        weight = (
            grout
            + (1 - grout) * 0.15 * rng.uniform(size=(cells, cells))[(v * cells).astype(int), (u * cells).astype(int)]
        )
    elif kind == "noise":
        weight = np.zeros_like(u)
        for octave, amplitude in ((4, 0.55), (8, 0.3), (16, 0.15)):
            grid = rng.uniform(size=(octave, octave))
            weight += amplitude * _tileable_upsample(grid, n)
    elif kind == "plain":
        weight = np.zeros_like(u)
    else:
        raise ValueError(f"unknown texture kind {kind!r}; choose from {TEXTURE_KINDS}")
    image = (1 - weight[..., None]) * colours[0] + weight[..., None] * colours[1]
    return Texture(image.astype(np.float32), float(period))


def _tileable_upsample(grid: np.ndarray, size: int) -> np.ndarray:
    """Bilinear upsampling of a periodic grid to ``size`` x ``size``."""
    cells = grid.shape[0]
    coordinate = (np.arange(size) + 0.5) / size * cells - 0.5
    i0 = np.floor(coordinate).astype(int)
    f = coordinate - i0
    i0, i1 = i0 % cells, (i0 + 1) % cells
    rows = grid[i0] * (1 - f)[:, None] + grid[i1] * f[:, None]
    return rows[:, i0] * (1 - f)[None] + rows[:, i1] * f[None]


def speckle_texture(
    rng: np.random.Generator, size: int = PHOTO_TEXTURE_SIZE, period: float = PHOTO_TEXTURE_PERIOD
) -> Texture:
    """Value noise of five octaves posterized into a random palette of eight colours: blobs and corners at
    every scale that do not repeat within ``period`` world units. Feature matchers (SIFT in the pair command
    and in COLMAP) find distinctive keypoints on it, which the tiled kinds, repeating every metre or so, do
    not give them. Not among ``TEXTURE_KINDS``: the training scenes keep their look."""
    weight = sum(
        (
            amplitude * _tileable_upsample(rng.uniform(size=(cells, cells)), size)
            for cells, amplitude in ((8, 0.4), (16, 0.25), (32, 0.15), (64, 0.12), (128, 0.08))
        ),
        np.zeros((size, size)),  # an array start, so that the sum is one (adding 0.0 changes no value)
    )
    levels = np.clip(((weight - weight.min()) / np.ptp(weight) * 8).astype(int), 0, 7)
    palette = np.stack([random_colour(rng) for _ in range(8)])
    return Texture(palette[levels].astype(np.float32), float(period))


def with_speckle_textures(room: Room, rng: np.random.Generator) -> Room:
    """``room`` with every wall and box wearing its own ``speckle_texture``: a capture that COLMAP and the pair
    command can register, standing in for a user's photos."""
    room.wall_textures = [speckle_texture(rng) for _ in room.wall_textures]
    for box in room.boxes:
        box.texture = speckle_texture(rng, period=2 * float(box.half_size.max()))
    return room


def random_texture(rng: np.random.Generator, kinds: tuple[str, ...] = TEXTURE_KINDS) -> Texture:
    colours = np.stack([random_colour(rng), random_colour(rng)])
    return make_texture(str(rng.choice(kinds)), colours, rng.uniform(0.3, 1.5), rng)


# ------------------------------------------------------------------------------------------ scene layout


def camera_path(room: Room, num_frames: int, rng: np.random.Generator) -> Float[np.ndarray, "frame 4 4"]:
    """A smooth forward walk: position and gaze sway slowly (sinusoids) around a straight heading."""
    width, height, length = room.high - room.low
    t = np.linspace(0.0, 1.0, num_frames)
    heading = rng.uniform(-0.35, 0.35)
    travel = rng.uniform(1.2, min(3.0, length - 2.5))
    start = np.array([rng.uniform(-0.2, 0.2) * width, rng.uniform(1.2, 1.7), room.low[2] + rng.uniform(0.7, 1.2)])
    sway = rng.uniform(0.05, 0.25) * np.sin(np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi))
    direction = np.array([np.sin(heading), 0.0, np.cos(heading)])
    side = np.array([np.cos(heading), 0.0, -np.sin(heading)])
    positions = start + t[:, None] * travel * direction + sway[:, None] * side
    positions[:, 1] += 0.05 * np.sin(2 * np.pi * t + rng.uniform(0, 2 * np.pi))
    margin = 0.4
    positions = np.clip(positions, room.low + margin, room.high - margin)

    yaw = heading + rng.uniform(-0.3, 0.3) * np.sin(np.pi * rng.uniform(0.5, 1.5) * t + rng.uniform(0, 2 * np.pi))
    yaw += rng.uniform(-0.3, 0.3) * t
    pitch = rng.uniform(-0.15, 0.05) + 0.05 * np.sin(np.pi * t + rng.uniform(0, 2 * np.pi))
    forward = np.stack([np.sin(yaw) * np.cos(pitch), np.sin(pitch), np.cos(yaw) * np.cos(pitch)], axis=-1)
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    for i in range(num_frames):
        c2w[i, :3, :3] = look_direction(forward[i])
        c2w[i, :3, 3] = positions[i]
    return c2w


def sideways_path(room: Room, num_frames: int, rng: np.random.Generator) -> Float[np.ndarray, "frame 4 4"]:
    """A photographer's capture rather than a video's walk: steps sideways across the room's near end, turning
    to keep one point in the middle of the room in view (the camera motion COLMAP and the pair command like)."""
    width, height, length = room.high - room.low
    target = np.array(
        [rng.uniform(-0.1, 0.1) * width, rng.uniform(0.8, 1.2), room.low[2] + rng.uniform(0.5, 0.7) * length]
    )
    positions = np.zeros((num_frames, 3))
    positions[:, 0] = np.linspace(-0.3, 0.3, num_frames) * width
    positions[:, 1] = rng.uniform(1.3, 1.7) + rng.uniform(-0.05, 0.05, num_frames)
    positions[:, 2] = room.low[2] + rng.uniform(0.8, 1.2)
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    for i, position in enumerate(positions):
        c2w[i, :3, :3], c2w[i, :3, 3] = look_direction(target - position), position
    return c2w


def look_direction(forward: np.ndarray) -> np.ndarray:
    """OpenCV camera-to-world rotation (columns right, down, forward) for a gaze with the world's y up."""
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, WORLD_UP)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(forward, right), forward], axis=1)


def random_boxes(room: Room, path: np.ndarray, rng: np.random.Generator, count: int) -> list[Box]:
    """Boxes on the floor, away from the camera path and from each other (rejection sampling)."""
    boxes: list[Box] = []
    path_xz = path[:, [0, 2], 3]
    for _ in range(40 * count):
        if len(boxes) == count:
            break
        half = np.array([rng.uniform(0.2, 0.7), rng.uniform(0.2, 0.9), rng.uniform(0.2, 0.7)])
        radius = np.linalg.norm(half[[0, 2]])
        low, high = room.low + radius, room.high - radius
        if np.any(low[[0, 2]] >= high[[0, 2]]):
            continue
        center = np.array([rng.uniform(low[0], high[0]), room.low[1] + half[1], rng.uniform(low[2], high[2])])
        clear_of_path = np.min(np.linalg.norm(path_xz - center[[0, 2]], axis=1)) > radius + 0.5
        clear_of_boxes = all(
            np.linalg.norm(center[[0, 2]] - b.center[[0, 2]]) > radius + np.linalg.norm(b.half_size[[0, 2]])
            for b in boxes
        )
        if clear_of_path and clear_of_boxes:
            boxes.append(Box(center, half, rng.uniform(-np.pi, np.pi), random_texture(rng)))
    return boxes


def random_room(rng: np.random.Generator) -> Room:
    width, height, length = rng.uniform(3.5, 6.0), rng.uniform(2.4, 3.2), rng.uniform(6.0, 10.0)
    walls = [random_texture(rng) for _ in range(6)]
    walls[3] = random_texture(rng, ("plain", "noise"))  # ceilings are rarely patterned
    room = Room(np.array([-width / 2, 0.0, 0.0]), np.array([width / 2, height, length]), walls)
    room.light = np.array([rng.uniform(-0.3, 0.3) * width, height - 0.3, rng.uniform(0.3, 0.7) * length])
    room.ambient = rng.uniform(0.35, 0.55)
    room.scale = float(np.exp(rng.uniform(np.log(0.25), np.log(4.0))))
    return room


# --------------------------------------------------------------------------------------------- rendering


def render(
    room: Room, c2w: np.ndarray, intrinsics: np.ndarray, height: int, width: int, band_pixels: int = 16384
) -> tuple[Float[np.ndarray, "h w 3"], Float[np.ndarray, "h w"]]:
    """Ray-trace one view at room scale. ``c2w`` OpenCV [4, 4] at room scale, ``intrinsics`` normalized.
    Returns the colour in [0, 1] and the camera depth z of each pixel centre.

    Works in bands of rows: small temporaries stay in the cache and off the kernel's page-fault path, where
    whole-image temporaries would each be faulted in and evicted from the cache."""
    rows = max(1, band_pixels // width)
    bands = [
        _render_rows(room, c2w, intrinsics, height, width, top, min(top + rows, height))
        for top in range(0, height, rows)
    ]
    return np.concatenate([b[0] for b in bands]), np.concatenate([b[1] for b in bands])


def _render_rows(
    room: Room, c2w: np.ndarray, intrinsics: np.ndarray, height: int, width: int, top: int, bottom: int
) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``top:bottom`` of the view. Arrays are kept one per coordinate axis (numpy reduces over a
    trailing axis of 3 slowly)."""
    fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
    x = ((np.arange(width, dtype=np.float32) + 0.5) / width - cx) / fx
    y = ((np.arange(top, bottom, dtype=np.float32) + 0.5) / height - cy) / fy
    rotation = c2w[:3, :3].astype(np.float32)
    # Camera z is 1 along every direction, so the ray parameter t is the camera depth.
    directions = [rotation[a, 0] * x[None, :] + rotation[a, 1] * y[:, None] + rotation[a, 2] for a in range(3)]
    origin = c2w[:3, 3].astype(np.float32)
    shape = (bottom - top, width)

    # The room from the inside: the nearest exit through one of its six faces (order -x, +x, -y, +y, -z, +z).
    depth = np.full(shape, np.inf, np.float32)
    axis = np.zeros(shape, np.int64)
    positive = np.zeros(shape, bool)
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(3):
            forward = directions[a] > 0
            exit_ = (np.where(forward, np.float32(room.high[a]), np.float32(room.low[a])) - origin[a]) / directions[a]
            exit_[directions[a] == 0] = np.inf  # parallel to this axis's faces (x / 0 would give -inf behind)
            nearer = exit_ < depth
            depth = np.where(nearer, exit_, depth)
            axis = np.where(nearer, a, axis)
            positive = np.where(nearer, forward, positive)
    surface = (2 * axis + positive).astype(np.int64)
    inward = np.where(positive, np.float32(-1), np.float32(1))
    normals = [np.where(axis == a, inward, np.float32(0)) for a in range(3)]
    points = [origin[a] + depth * directions[a] for a in range(3)]
    u = np.where(axis == 0, points[2], points[0])
    v = np.where(axis == 1, points[2], points[1])

    w2c = np.linalg.inv(c2w)
    for index, box in enumerate(room.boxes):
        window = _screen_window(box, w2c, intrinsics, height, width)
        if window is not None and window[0].start < bottom and window[0].stop > top:
            rows = slice(max(window[0].start, top) - top, min(window[0].stop, bottom) - top)
            views = [array[rows, window[1]] for array in (depth, surface, *normals, u, v, *directions)]
            _hit_box(box, 6 + index, origin, *views)

    textures = np.stack([t.image for t in room.wall_textures] + [b.texture.image for b in room.boxes])
    periods = np.array([t.period for t in room.wall_textures] + [b.texture.period for b in room.boxes], np.float32)
    albedo = _sample_textures(textures, surface, u / periods[surface], v / periods[surface])

    to_light = [np.float32(room.light[a]) - (origin[a] + depth * directions[a]) for a in range(3)]
    distance_sq = to_light[0] ** 2 + to_light[1] ** 2 + to_light[2] ** 2
    facing = normals[0] * to_light[0] + normals[1] * to_light[1] + normals[2] * to_light[2]
    lambert = np.clip(facing / np.sqrt(distance_sq), 0.0, None)
    light = room.ambient + (1.0 - room.ambient) * lambert * 9.0 / (9.0 + distance_sq)
    return np.clip(albedo * light[..., None], 0.0, 1.0), depth


def _screen_window(
    box: Box, w2c: np.ndarray, intrinsics: np.ndarray, height: int, width: int
) -> tuple[slice, slice] | None:
    """The pixel rectangle that can see the box, or None when it is off screen (the whole image when a
    corner is behind the camera)."""
    corners = box.corners() @ w2c[:3, :3].T + w2c[:3, 3]
    if np.all(corners[:, 2] <= 0):
        return None
    if np.any(corners[:, 2] <= 1e-3):
        return slice(0, height), slice(0, width)
    pixels = (corners[:, :2] / corners[:, 2:]) @ intrinsics[:2, :2].T + intrinsics[:2, 2]
    x0, y0 = np.floor(pixels.min(0) * (width, height)).astype(int) - 1
    x1, y1 = np.ceil(pixels.max(0) * (width, height)).astype(int) + 1
    x0, x1, y0, y1 = max(x0, 0), min(x1, width), max(y0, 0), min(y1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return slice(y0, y1), slice(x0, x1)


def _hit_box(box, surface_id, origin, depth, surface, nx, ny, nz, u, v, dx, dy, dz) -> None:
    """Slab test of the rays against the box; writes into the (view) arrays where the box is nearer."""
    rotation = box.rotation().astype(np.float32)
    local_origin = (origin - box.center.astype(np.float32)) @ rotation
    local_dirs = [rotation[0, a] * dx + rotation[1, a] * dy + rotation[2, a] * dz for a in range(3)]
    enter = np.full(depth.shape, -np.inf, np.float32)
    leave = np.full(depth.shape, np.inf, np.float32)
    axis = np.zeros(depth.shape, np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        for a in range(3):
            t_low = (-np.float32(box.half_size[a]) - local_origin[a]) / local_dirs[a]
            t_high = (np.float32(box.half_size[a]) - local_origin[a]) / local_dirs[a]
            near, far = np.fmin(t_low, t_high), np.fmax(t_low, t_high)
            later = near > enter
            enter = np.where(later, near, enter)
            axis = np.where(later, a, axis)
            leave = np.fmin(leave, far)
    hit = (enter <= leave) & (enter > 0) & (enter < depth)
    if not hit.any():
        return
    t, axis = enter[hit], axis[hit]
    local_point = [local_origin[a] + t * local_dirs[a][hit] for a in range(3)]
    sign = -np.sign(np.choose(axis, [local_dirs[a][hit] for a in range(3)]))
    local_normal = [np.where(axis == a, sign, np.float32(0)) for a in range(3)]
    depth[hit] = t
    surface[hit] = surface_id
    for world, array in enumerate((nx, ny, nz)):
        array[hit] = sum(rotation[world, a] * local_normal[a] for a in range(3))
    u[hit] = np.where(axis == 0, local_point[2], local_point[0])
    v[hit] = np.where(axis == 1, local_point[2], local_point[1])


def _sample_textures(textures: np.ndarray, surface: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear, wrapping lookup of each pixel's surface texture at texture coordinates (u, v) in tiles."""
    count, n = textures.shape[:2]
    flat = textures.reshape(count * n * n, 3)
    x, y = u * n - 0.5, v * n - 0.5
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = (x - x0)[..., None], (y - y0)[..., None]
    x0, y0 = x0.astype(np.int64) % n, y0.astype(np.int64) % n
    x1, y1 = (x0 + 1) % n, (y0 + 1) % n
    base = surface * (n * n)
    y0, y1 = base + y0 * n, base + y1 * n
    top = np.take(flat, y0 + x0, axis=0) * (1 - fx) + np.take(flat, y0 + x1, axis=0) * fx
    bottom = np.take(flat, y1 + x0, axis=0) * (1 - fx) + np.take(flat, y1 + x1, axis=0) * fx
    return top * (1 - fy) + bottom * fy


# ---------------------------------------------------------------------------------------------- datasets


@dataclass
class SyntheticConfig:
    height: int = 360
    """Frame height in pixels (RealEstate10k: 360)."""
    width: int = 640
    """Frame width in pixels (RealEstate10k: 640)."""
    min_frames: int = 48
    """Fewest frames per scene; the paper's training gap reaches 45 frames, so keep this above 46."""
    max_frames: int = 64
    """Most frames per scene."""
    min_boxes: int = 2
    """Fewest boxes per room."""
    max_boxes: int = 5
    """Most boxes per room."""
    jpeg_quality: int = 90
    """JPEG quality of the stored frames."""


def check_config(config: SyntheticConfig) -> None:
    """Refuse settings that would fail halfway through writing a dataset."""
    if config.min_frames < 5 or config.min_frames > config.max_frames:
        raise ValueError(f"need 5 <= min_frames <= max_frames, got {config.min_frames} and {config.max_frames}")
    if config.min_boxes < 0 or config.min_boxes > config.max_boxes:
        raise ValueError(f"need 0 <= min_boxes <= max_boxes, got {config.min_boxes} and {config.max_boxes}")
    if config.height < 2 or config.width < 2:
        raise ValueError(f"frames must be at least 2x2 pixels, got {config.height}x{config.width}")


def random_scene(seed: int, index: int, config: SyntheticConfig) -> tuple[Room, np.ndarray, np.ndarray]:
    """Scene ``index`` of dataset ``seed``: (room, c2w [N, 4, 4] at room scale, normalized intrinsics)."""
    rng = np.random.default_rng([seed, index])
    room = random_room(rng)
    num_frames = int(rng.integers(config.min_frames, config.max_frames + 1))
    c2w = camera_path(room, num_frames, rng)
    room.boxes = random_boxes(room, c2w, rng, int(rng.integers(config.min_boxes, config.max_boxes + 1)))
    fx = rng.uniform(0.5, 0.58)
    intrinsics = np.array([[fx, 0.0, 0.5], [0.0, fx * config.width / config.height, 0.5], [0.0, 0.0, 1.0]])
    return room, c2w, intrinsics


def render_scene(
    key: str, room: Room, c2w: np.ndarray, intrinsics: np.ndarray, config: SyntheticConfig, start_us: int = 0
) -> ChunkScene:
    """Render every frame and package the scene in the chunk format (camera positions times room.scale)."""
    images = [
        encode_jpeg(
            (render(room, pose, intrinsics, config.height, config.width)[0] * 255 + 0.5).astype(np.uint8),
            config.jpeg_quality,
        )
        for pose in c2w
    ]
    scaled = torch.tensor(c2w, dtype=torch.float64)
    scaled[:, :3, 3] *= room.scale
    cameras = encode_chunk_cameras(scaled, torch.tensor(intrinsics, dtype=torch.float32).expand(len(c2w), 3, 3))
    timestamps = start_us + FRAME_INTERVAL_US * torch.arange(len(c2w), dtype=torch.int64)
    return ChunkScene(key, f"synthetic://{key}", timestamps, cameras, images)


def synthetic_scene(seed: int, index: int, config: SyntheticConfig) -> ChunkScene:
    """Scene ``index`` of dataset ``seed``, rendered; the same arguments always give the same scene."""
    rng = np.random.default_rng([seed, index, 1])
    key = f"{int(rng.integers(2**63)):016x}"[-16:]
    room, c2w, intrinsics = random_scene(seed, index, config)
    return render_scene(key, room, c2w, intrinsics, config, int(rng.integers(10**9)) * 1000)


def photo_capture(
    seed: int, num_frames: int, height: int, width: int
) -> tuple[list[np.ndarray], Float[np.ndarray, "frame 4 4"], Float[np.ndarray, "3 3"]]:
    """Photos of a room with ``with_speckle_textures``, taken along a ``sideways_path``: a stand-in for a user's
    own capture. Returns the images ([h, w, 3] uint8 RGB), their OpenCV camera-to-world at room scale and the
    normalized intrinsics they share."""
    rng = np.random.default_rng([seed, 2])
    room = random_room(rng)
    c2w = sideways_path(room, num_frames, rng)
    room.boxes = random_boxes(room, c2w, rng, int(rng.integers(2, 5)))
    with_speckle_textures(room, rng)
    fx = rng.uniform(0.5, 0.58)
    intrinsics = np.array([[fx, 0.0, 0.5], [0.0, fx * width / height, 0.5], [0.0, 0.0, 1.0]])
    images = [(render(room, pose, intrinsics, height, width)[0] * 255 + 0.5).astype(np.uint8) for pose in c2w]
    return images, c2w, intrinsics


def evaluation_entry(num_frames: int, rng: np.random.Generator, num_targets: int = 3) -> dict:
    """An official-format index entry: a context pair up to 45 frames apart (closer for short scenes) and
    ``num_targets`` distinct target frames strictly between them."""
    gap = int(rng.integers(min(45, num_frames - 1) * 2 // 3, min(45, num_frames - 1) + 1))
    gap = max(gap, num_targets + 1)
    left = int(rng.integers(0, num_frames - gap))
    targets = sorted(int(i) for i in left + 1 + rng.choice(gap - 1, num_targets, replace=False))
    return {"context": [left, left + gap], "target": targets}


def _render_for_pool(job: tuple[int, int, SyntheticConfig]) -> dict:
    # Worker processes return plain data: pickled tensors would travel through shared-memory handles.
    scene = synthetic_scene(*job)
    return {
        "key": scene.key,
        "url": scene.url,
        "timestamps": scene.timestamps.numpy(),
        "cameras": scene.cameras.numpy(),
        "images": [image.numpy().tobytes() for image in scene.images],
    }


def write_synthetic_dataset(
    out: Path,
    num_scenes: int,
    seed: int,
    config: Optional[SyntheticConfig] = None,
    test_fraction: float = 0.1,
    workers: int = 1,
    overwrite: bool = False,
    max_chunk_bytes: int = 100_000_000,
    progress: Optional[Callable[[Iterable], Iterable]] = None,
) -> dict[str, int]:
    """Write ``num_scenes`` scenes as ``out/{train,test}`` chunks with index.json, plus
    ``out/evaluation_index.json`` (official format) for the test scenes. Scene i is the same for a given
    seed whatever ``num_scenes`` and ``workers`` are; scenes are test scenes by a seeded draw (at least one
    when there are two or more scenes). ``progress`` wraps the stream of rendered scenes (e.g. a tqdm bar).
    Returns the number of scenes per split; ``config`` defaults to ``SyntheticConfig()``."""
    config = SyntheticConfig() if config is None else config
    check_config(config)
    out = Path(out)
    index_path = out / "evaluation_index.json"
    if index_path.exists() and not overwrite:
        raise FileExistsError(f"{index_path} exists; choose another output folder or pass --overwrite")
    rng = np.random.default_rng([seed, 2**32 - 1])
    is_test = rng.uniform(size=num_scenes) < test_fraction
    if num_scenes >= 2 and test_fraction > 0 and not is_test.any():
        is_test[-1] = True
    with undone_on_failure(out):  # a failed run (a full disk) leaves the folder as it was: the rerun works
        writers = {split: ChunkWriter(out / split, max_chunk_bytes, overwrite) for split in ("train", "test")}
        evaluation: dict[str, dict] = {}
        jobs = [(seed, i, config) for i in range(num_scenes)]
        with multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else nullcontext() as pool:
            render = pool.imap if pool is not None else map
            results: Iterable[dict] = render(_render_for_pool, jobs)
            if progress is not None:
                results = progress(results)
            for i, item in enumerate(results):
                scene = ChunkScene(
                    item["key"],
                    item["url"],
                    torch.from_numpy(item["timestamps"]),
                    torch.from_numpy(item["cameras"]),
                    [torch.frombuffer(bytearray(data), dtype=torch.uint8) for data in item["images"]],
                )
                writers["test" if is_test[i] else "train"].add(scene)
                if is_test[i]:
                    evaluation[scene.key] = evaluation_entry(len(scene), np.random.default_rng([seed, i, 2]))
                LOGGER.info("scene %d/%d (%s, %d frames)", i + 1, num_scenes, scene.key, len(scene))
        for writer in writers.values():
            writer.close()
        write_text_atomically(index_path, json.dumps(evaluation))
        return {split: len(writer.index) for split, writer in writers.items()}
