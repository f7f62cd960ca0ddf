"""One scene's views as the encoder wants them, and ``load_scene`` for reading a scene by key."""

from pathlib import Path
from typing import Sequence

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from .bounds import near_far, normalize_baseline
from .cameras import decode_chunk_cameras
from .chunks import ChunkScene, read_chunk, read_index
from .images import CropIntrinsics, FrameDecodeError, decode_frame, resize_and_crop
from .skips import SkipReason, SkipScene


def scene_cameras(scene: ChunkScene) -> tuple[Float[Tensor, "frame 4 4"], Float[Tensor, "frame 3 3"]]:
    """Camera-to-world OpenCV and normalized intrinsics of every frame; raises ``SkipScene`` when a
    camera is not finite or not invertible."""
    if not torch.isfinite(scene.cameras).all():
        raise SkipScene(SkipReason.INVALID_CAMERAS, scene.key, "non-finite camera values")
    try:
        c2w, intrinsics = decode_chunk_cameras(scene.cameras)
    except torch.linalg.LinAlgError as error:
        raise SkipScene(SkipReason.INVALID_CAMERAS, scene.key, f"singular world-to-camera matrix ({error})")
    if not torch.isfinite(c2w).all():
        raise SkipScene(SkipReason.INVALID_CAMERAS, scene.key, "singular world-to-camera matrix")
    return c2w, intrinsics


def load_views(
    scene: ChunkScene,
    indices: Int64[Tensor, " view"],
    c2w: Float[Tensor, "frame 4 4"],
    intrinsics: Float[Tensor, "frame 3 3"],
    image_shape: tuple[int, int],
    crop_intrinsics: CropIntrinsics = "exact",
) -> dict[str, Tensor]:
    """Decode, resize and crop the chosen frames: ``image`` [V,3,H,W] in [0,1], ``extrinsics`` [V,4,4],
    ``intrinsics`` [V,3,3] normalized, ``index`` [V]."""
    images, cropped = [], []
    for index in indices.tolist():
        try:
            frame = decode_frame(scene.images[index])
        except FrameDecodeError as error:
            raise SkipScene(SkipReason.UNDECODABLE_FRAME, scene.key, f"frame {index}: {error}") from error
        image, k = resize_and_crop(frame, intrinsics[index], image_shape, crop_intrinsics)
        images.append(image)
        cropped.append(k)
    return {
        "image": torch.stack(images),
        "extrinsics": c2w[indices],
        "intrinsics": torch.stack(cropped),
        "index": indices,
    }


def read_scene(root: Path, split: str, key: str) -> ChunkScene:
    """The raw chunk scene ``key`` of ``<root>/<split>``, found through index.json."""
    split_dir = Path(root) / split
    index = read_index(split_dir)
    if key not in index:
        raise KeyError(f"scene {key!r} is not in {split_dir / 'index.json'} ({len(index)} scenes there)")
    matches = [scene for scene in read_chunk(index[key]) if scene.key == key]
    if not matches:
        raise KeyError(f"{split_dir / 'index.json'} lists scene {key!r} in {index[key].name}, which lacks it")
    return matches[0]


def load_scene(
    root: Path,
    split: str,
    key: str,
    views: Sequence[int],
    image_shape: tuple[int, int] = (256, 256),
    make_baseline_1: bool = False,
    crop_intrinsics: CropIntrinsics = "exact",
    context: Sequence[int] | None = None,
) -> dict[str, Tensor]:
    """Read frames ``views`` of scene ``key`` from ``<root>/<split>`` through its index.json.

    Returns ``image`` [V,3,H,W] float in [0,1], ``extrinsics`` [V,4,4] camera-to-world OpenCV,
    ``intrinsics`` [V,3,3] normalized, ``near`` and ``far`` [V] from the paper's rule, and ``index`` [V].
    ``context`` (positions in ``views``; default: all of them) are the context views, as in the official
    code: their largest baseline sets the scale when ``make_baseline_1`` (it becomes 1) and the near/far
    planes of every returned view. Raises ``KeyError`` for an unknown key, ``IndexError`` for out-of-range
    views and a ``ValueError`` for an undecodable frame, each saying what is wrong.
    """
    scene = read_scene(root, split, key)
    indices = torch.tensor(list(views), dtype=torch.int64)
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(scene):
        raise IndexError(f"views {list(views)} out of range: scene {key!r} has {len(scene)} frames")
    positions = torch.arange(len(indices)) if context is None else torch.tensor(list(context), dtype=torch.int64)
    if len(positions) == 0 or positions.min() < 0 or positions.max() >= len(indices):
        raise IndexError(f"context positions {list(positions.tolist())} must index the {len(indices)} requested views")
    c2w, intrinsics = scene_cameras(scene)
    if make_baseline_1:
        c2w, _ = normalize_baseline(c2w, indices[positions])
    result = load_views(scene, indices, c2w, intrinsics, image_shape, crop_intrinsics)
    near, far = near_far(result["extrinsics"][positions], result["intrinsics"][positions], image_shape)
    result["near"] = near.expand(len(indices)).clone()
    result["far"] = far.expand(len(indices)).clone()
    return result
