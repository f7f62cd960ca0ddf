"""Camera conventions of the data, each conversion written once.

- Chunk cameras (RealEstate10k / ACID): ``[N, 18]`` = fx, fy, cx, cy normalized (fx, cx by width; fy, cy by
  height), two unused zeros, then the row-major 3x4 world-to-camera matrix in OpenCV axes.
- The project inside: camera-to-world ``[..., 4, 4]`` in OpenCV axes (+x right, +y down, +z forward) and
  normalized intrinsics ``[..., 3, 3]``. Normalized image coordinates run from 0 to 1 across the image, so
  pixel ``i`` has its centre at ``(i + 0.5) / width``.
- nerfstudio: camera-to-world in OpenGL axes (+y up, +z back) and pixel intrinsics with the same
  pixel-centre convention.
"""

import torch
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

_GL_CV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))
_MIRROR_X = torch.diag(torch.tensor([-1.0, 1.0, 1.0, 1.0]))


def homogeneous(matrix: Float[Tensor, "*batch 3 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Append the ``[0, 0, 0, 1]`` row."""
    bottom = torch.zeros_like(matrix[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([matrix, bottom], dim=-2)


def convert_c2w_opengl_opencv(c2w: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """OpenGL <-> OpenCV camera-to-world (flips the camera's y and z axes); the map is its own inverse."""
    return c2w @ _GL_CV.to(c2w)


def normalize_intrinsics(
    intrinsics: Float[Tensor, "*batch 3 3"], width: Tensor | float, height: Tensor | float
) -> Float[Tensor, "*batch 3 3"]:
    """Pixel intrinsics -> normalized (row 0 divided by the width, row 1 by the height)."""
    scale = torch.ones_like(intrinsics[..., :, 0])
    scale[..., 0] = 1.0 / torch.as_tensor(width, dtype=intrinsics.dtype)
    scale[..., 1] = 1.0 / torch.as_tensor(height, dtype=intrinsics.dtype)
    return intrinsics * scale[..., :, None]


def denormalize_intrinsics(
    intrinsics: Float[Tensor, "*batch 3 3"], width: Tensor | float, height: Tensor | float
) -> Float[Tensor, "*batch 3 3"]:
    """Normalized intrinsics -> pixels."""
    scale = torch.ones_like(intrinsics[..., :, 0])
    scale[..., 0] = torch.as_tensor(width, dtype=intrinsics.dtype)
    scale[..., 1] = torch.as_tensor(height, dtype=intrinsics.dtype)
    return intrinsics * scale[..., :, None]


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


def field_of_view(intrinsics: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch 2"]:
    """Horizontal and vertical field of view in radians: the angle between the rays through the middles of
    opposite image borders (the official ``get_fov``; exact for off-centre principal points too)."""
    inverse = torch.linalg.inv(intrinsics.double())

    def ray(x: float, y: float) -> Tensor:
        direction = inverse @ torch.tensor([x, y, 1.0], dtype=torch.float64)
        return torch.nn.functional.normalize(direction, dim=-1)

    fov_x = (ray(0, 0.5) * ray(1, 0.5)).sum(-1).clamp(-1, 1).acos()
    fov_y = (ray(0.5, 0) * ray(0.5, 1)).sum(-1).clamp(-1, 1).acos()
    return torch.stack([fov_x, fov_y], dim=-1).to(intrinsics.dtype)


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

