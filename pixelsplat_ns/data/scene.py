"""Frames of a chunk scene as the encoder's ``Views``, and ``load_scene`` for reading a scene by key."""

from pathlib import Path
from typing import Sequence

import torch
from jaxtyping import Float, Int64
from torch import Tensor

from pixelsplat_ns.core.crop import CropIntrinsics, resize_and_crop
from pixelsplat_ns.core.views import Views, prepare_views

from .cameras import decode_chunk_cameras
from .chunks import ChunkScene, read_chunk, read_index
from .images import FrameDecodeError, decode_frame
from .skips import SkipReason, SkipScene


def scene_cameras(scene: ChunkScene) -> tuple[Float[Tensor, "frame 4 4"], Float[Tensor, "frame 3 3"]]:
    """Camera-to-world OpenCV and normalized intrinsics of every frame; raises ``SkipScene`` when a
    camera is not finite or not invertible."""
    if not torch.isfinite(scene.cameras).all():
        raise SkipScene(SkipReason.INVALID_CAMERAS, scene.key, "non-finite camera values")
    try:
        c2w, intrinsics = decode_chunk_cameras(scene.cameras)
    except torch.linalg.LinAlgError as error:
        raise SkipScene(SkipReason.INVALID_CAMERAS, scene.key, f"singular world-to-camera matrix ({error})") from error
    if not torch.isfinite(c2w).all():
        raise SkipScene(SkipReason.INVALID_CAMERAS, scene.key, "singular world-to-camera matrix")
    return c2w, intrinsics


def load_frames(
    scene: ChunkScene,
    indices: Int64[Tensor, " view"],
    intrinsics: Float[Tensor, "frame 3 3"],
    image_shape: tuple[int, int],
    crop_intrinsics: CropIntrinsics = "exact",
) -> tuple[Float[Tensor, "view 3 h w"], Float[Tensor, "view 3 3"]]:
    """Decode, resize and crop the chosen frames (the crop shim): images in [0, 1] and their normalized
    intrinsics. Raises ``SkipScene`` for a frame that does not decode."""
    images, cropped = [], []
    for index in indices.tolist():
        try:
            frame = decode_frame(scene.images[index])
        except FrameDecodeError as error:
            raise SkipScene(SkipReason.UNDECODABLE_FRAME, scene.key, f"frame {index}: {error}") from error
        image, k = resize_and_crop(frame, intrinsics[index], image_shape, crop_intrinsics)
        images.append(image)
        cropped.append(k)
    return torch.stack(images), torch.stack(cropped)


def read_scene(root: Path, split: str, key: str) -> ChunkScene:
    """The raw chunk scene ``key`` of ``<root>/<split>``, found through index.json."""
    split_dir = Path(root) / split
    index = read_index(split_dir)
    if key not in index:
        raise KeyError(f"scene {key!r} is not in {split_dir / 'index.json'} ({len(index)} listed)")
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
) -> Views:
    """Read frames ``views`` of scene ``key`` from ``<root>/<split>`` through its index.json: ``scene_views``
    of ``read_scene``. Raises ``KeyError`` for an unknown key, and what ``scene_views`` raises."""
    return scene_views(read_scene(root, split, key), views, image_shape, make_baseline_1, crop_intrinsics, context)


def scene_views(
    scene: ChunkScene,
    views: Sequence[int],
    image_shape: tuple[int, int] = (256, 256),
    make_baseline_1: bool = False,
    crop_intrinsics: CropIntrinsics = "exact",
    context: Sequence[int] | None = None,
) -> Views:
    """Frames ``views`` of a chunk scene as ``Views`` of one scene (``prepare_views``), with ``index`` the
    frame numbers, at ``image_shape`` (h, w) after the crop shim.

    ``context`` (positions in ``views``; default: all of them) are the context views, as in the official
    code: their largest baseline sets the scale when ``make_baseline_1`` (it becomes 1) and the near/far
    planes of every returned view. Raises ``IndexError`` for out-of-range views and a ``ValueError`` for an
    undecodable frame or context views at one position, each saying what is wrong.
    """
    indices = torch.tensor(list(views), dtype=torch.int64)
    if len(indices) == 0 or indices.min() < 0 or indices.max() >= len(scene):
        raise IndexError(f"views {list(views)} out of range: scene {scene.key!r} has {len(scene)} frames")
    positions = torch.arange(len(indices)) if context is None else torch.tensor(list(context), dtype=torch.int64)
    if len(positions) == 0 or positions.min() < 0 or positions.max() >= len(indices):
        raise IndexError(f"context positions {list(positions.tolist())} must index the {len(indices)} requested views")
    c2w, intrinsics = scene_cameras(scene)
    images, cropped = load_frames(scene, indices, intrinsics, image_shape, crop_intrinsics)
    return prepare_views(images, c2w[indices], cropped, positions, make_baseline_1, index=indices)[0]
