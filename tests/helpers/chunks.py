"""Small scenes in the chunk format for the data tests: frames showing a marker at a known 3D point."""

from pathlib import Path

import numpy as np
import torch

from pixelsplat_ns.data.cameras import encode_chunk_cameras
from pixelsplat_ns.data.chunks import ChunkScene, ChunkWriter
from pixelsplat_ns.data.images import encode_jpeg

REFERENCE = Path(__file__).resolve().parents[3] / "shared/reference"


def reference_file(name: str) -> Path:
    path = REFERENCE / name
    assert path.is_file(), f"{path} is missing: the data tests need the paper's index files in ../shared/reference"
    return path


def rotation(yaw: float, pitch: float) -> np.ndarray:
    """OpenCV camera-to-world rotation turned by yaw (about y) then pitch (about x)."""
    cy, sy, cp, sp = np.cos(yaw), np.sin(yaw), np.cos(pitch), np.sin(pitch)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]])
    return r_yaw @ r_pitch


def walk(num_frames: int, step: float = 0.1, start=(0.3, -0.2, 0.1)) -> np.ndarray:
    """Camera-to-world poses moving along x and z while turning slowly."""
    c2w = np.tile(np.eye(4), (num_frames, 1, 1))
    for i in range(num_frames):
        c2w[i, :3, :3] = rotation(0.2 - 0.03 * i, -0.1)
        c2w[i, :3, 3] = np.array(start) + step * np.array([0.6 * i, 0.1 * i, 0.8 * i])
    return c2w


def project_pixels(point: np.ndarray, c2w: np.ndarray, k_norm: np.ndarray, width: int, height: int) -> np.ndarray:
    """Continuous pixel coordinates (pixel i spans [i, i+1]) of a world point, written out by hand."""
    camera = c2w[:3, :3].T @ (point - c2w[:3, 3])
    assert camera[2] > 0
    x, y = camera[0] / camera[2], camera[1] / camera[2]
    return np.array([(k_norm[0, 0] * x + k_norm[0, 2]) * width, (k_norm[1, 1] * y + k_norm[1, 2]) * height])


def marker_frame(width: int, height: int, centre: np.ndarray, radius: float = 5.0) -> np.ndarray:
    """A white disc (4x4 supersampled) on grey, centred at continuous pixel coordinates ``centre``."""
    sub = (np.arange(4) + 0.5) / 4
    xs = (np.arange(width)[:, None] + sub[None]).reshape(-1)
    ys = (np.arange(height)[:, None] + sub[None]).reshape(-1)
    inside = ((xs[None] - centre[0]) ** 2 + (ys[:, None] - centre[1]) ** 2) <= radius**2
    coverage = inside.reshape(height, 4, width, 4).mean(axis=(1, 3))
    grey = 0.2 + 0.8 * coverage
    return (np.repeat(grey[..., None], 3, axis=-1) * 255 + 0.5).astype(np.uint8)


def marker_centroid(image: torch.Tensor, background: float = 0.2) -> np.ndarray:
    """Continuous pixel coordinates of the marker's centre in a [3, H, W] image."""
    weight = (image.mean(0) - background).clamp(min=0).numpy()
    weight = np.where(weight > 0.1, weight, 0.0)
    ys, xs = np.mgrid[: weight.shape[0], : weight.shape[1]]
    return np.array([(weight * (xs + 0.5)).sum(), (weight * (ys + 0.5)).sum()]) / weight.sum()


def chunk_scene(key: str, c2w: np.ndarray, k_norm: np.ndarray, frames: list[np.ndarray]) -> ChunkScene:
    intrinsics = torch.tensor(k_norm, dtype=torch.float32).expand(len(frames), 3, 3)
    return ChunkScene(
        key,
        f"test://{key}",
        torch.arange(len(frames), dtype=torch.int64) * 1000,
        encode_chunk_cameras(torch.tensor(c2w), intrinsics),
        [encode_jpeg(f, quality=98) for f in frames],
    )


def marker_scene(key: str, point: np.ndarray, c2w: np.ndarray, k_norm: np.ndarray, width: int, height: int):
    frames = [marker_frame(width, height, project_pixels(point, pose, k_norm, width, height)) for pose in c2w]
    return chunk_scene(key, c2w, k_norm, frames)


def plain_scene(
    key: str, num_frames: int = 8, width: int = 64, height: int = 48, fx: float = 0.9, c2w: np.ndarray | None = None
) -> ChunkScene:
    """Noise frames with sensible cameras (for tests that only look at the plumbing)."""
    rng = np.random.default_rng(len(key))
    frames = [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(num_frames)]
    k_norm = np.array([[fx, 0, 0.5], [0, fx * width / height, 0.5], [0, 0, 1]])
    return chunk_scene(key, walk(num_frames) if c2w is None else c2w, k_norm, frames)


def write_split(root: Path, split: str, chunks: list[list[ChunkScene]]) -> Path:
    """Write each inner list as one chunk file."""
    with ChunkWriter(root / split, max_chunk_bytes=1 << 40) as writer:
        for scenes in chunks:
            for scene in scenes:
                writer.add(scene)
            writer.flush()
    return root
