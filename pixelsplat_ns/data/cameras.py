"""Cameras of RealEstate10k / ACID chunks, and their horizontal flip (the paper's training augmentation).

Chunk cameras are ``[N, 18]`` rows: fx, fy, cx, cy normalized (fx, cx by width; fy, cy by height), two
unused zeros, then the row-major 3x4 world-to-camera matrix in OpenCV axes. Decoded, they are the project's
conventions (``pixelsplat_ns.core.conventions``): camera-to-world OpenCV and normalized intrinsics.
"""

import torch
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

from pixelsplat_ns.core.conventions import homogeneous

_MIRROR_X = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))


def decode_chunk_cameras(
    cameras: Float[Tensor, "frame 18"],
) -> tuple[Float[Tensor, "frame 4 4"], Float[Tensor, "frame 3 3"]]:
    """Chunk camera rows -> (camera-to-world OpenCV, normalized intrinsics)."""
    fx, fy, cx, cy = cameras[:, :4].T
    intrinsics = torch.eye(3, dtype=torch.float32).repeat(cameras.shape[0], 1, 1)
    intrinsics[:, 0, 0], intrinsics[:, 1, 1] = fx, fy
    intrinsics[:, 0, 2], intrinsics[:, 1, 2] = cx, cy
    w2c = homogeneous(rearrange(cameras[:, 6:].double(), "n (r c) -> n r c", r=3, c=4))
    return torch.linalg.inv(w2c).float(), intrinsics


def encode_chunk_cameras(
    c2w: Float[Tensor, "frame 4 4"], intrinsics: Float[Tensor, "frame 3 3"]
) -> Float[Tensor, "frame 18"]:
    """(camera-to-world OpenCV, normalized intrinsics) -> chunk camera rows."""
    w2c = torch.linalg.inv(c2w.double())[:, :3].float()
    rows = torch.zeros(c2w.shape[0], 18, dtype=torch.float32)
    rows[:, 0], rows[:, 1] = intrinsics[:, 0, 0], intrinsics[:, 1, 1]
    rows[:, 2], rows[:, 3] = intrinsics[:, 0, 2], intrinsics[:, 1, 2]
    rows[:, 6:] = rearrange(w2c, "n r c -> n (r c)")
    return rows


def mirror_cameras(
    c2w: Float[Tensor, "*batch 4 4"], intrinsics: Float[Tensor, "*batch 3 3"]
) -> tuple[Float[Tensor, "*batch 4 4"], Float[Tensor, "*batch 3 3"]]:
    """Cameras of the horizontally flipped images: the world and each camera are mirrored in x
    (``F c2w F``, F = diag(-1, 1, 1, 1), as the official augmentation does) and cx becomes 1 - cx, which
    the official code leaves out because its principal points are centred."""
    mirror = _MIRROR_X.to(c2w)
    intrinsics = intrinsics.clone()
    intrinsics[..., 0, 2] = 1.0 - intrinsics[..., 0, 2]
    return mirror @ c2w @ mirror, intrinsics
