"""Every convention conversion of the project, each written once: cameras, quaternions, splat parameters.

The project's own conventions, used by every module above this one:
- extrinsics: camera-to-world ``[..., 4, 4]``, OpenCV axes (+x right, +y down, +z forward);
- intrinsics: normalized ``[..., 3, 3]`` (fx, cx divided by the image width; fy, cy by its height), so image
  coordinates run from 0 to 1 across the image and pixel ``i`` has its centre at ``(i + 0.5) / width``;
- quaternions: wxyz (real part first), as gsplat and splatfacto store them.

The other conventions it meets, converted here and nowhere else:
- nerfstudio: camera-to-world ``[..., 3, 4]`` in OpenGL axes (+y up, +z backward), pixel intrinsics with the
  same pixel-centre convention;
- gsplat (``rasterize``): world-to-camera ``viewmats`` in OpenCV axes, pixel intrinsics ``Ks``;
- official pixelSplat: the same cameras as ours, xyzw quaternions from its network;
- splatfacto's parameters: log scales and logit opacities.
"""

import torch
from einops import rearrange
from jaxtyping import Float
from torch import Tensor

_OPENGL_TO_OPENCV = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))


# Cameras.


def homogeneous(matrix: Float[Tensor, "*batch 3 4"]) -> Float[Tensor, "*batch 4 4"]:
    """Append the ``[0, 0, 0, 1]`` row to ``[R | t]``."""
    bottom = torch.zeros_like(matrix[..., :1, :])
    bottom[..., 0, 3] = 1.0
    return torch.cat([matrix, bottom], dim=-2)


def convert_c2w_opengl_opencv(c2w: Float[Tensor, "*batch 4 4"]) -> Float[Tensor, "*batch 4 4"]:
    """OpenGL <-> OpenCV camera-to-world (flips the camera's y and z axes); the map is its own inverse."""
    return c2w @ _OPENGL_TO_OPENCV.to(c2w)


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


def from_nerfstudio(
    camera_to_worlds: Float[Tensor, "*batch 3 4"], pixel_intrinsics: Float[Tensor, "*batch 3 3"], width, height
) -> tuple[Float[Tensor, "*batch 4 4"], Float[Tensor, "*batch 3 3"]]:
    """nerfstudio cameras (OpenGL camera-to-world, pixel intrinsics of a ``width`` x ``height`` image) -> the
    project's (OpenCV camera-to-world, normalized intrinsics)."""
    extrinsics = convert_c2w_opengl_opencv(homogeneous(camera_to_worlds))
    return extrinsics, normalize_intrinsics(pixel_intrinsics, width, height)


def to_gsplat(
    extrinsics: Float[Tensor, "*batch 4 4"], intrinsics: Float[Tensor, "*batch 3 3"], width: int, height: int
) -> tuple[Float[Tensor, "*batch 4 4"], Float[Tensor, "*batch 3 3"]]:
    """The project's cameras -> gsplat's ``(viewmats, Ks)``: world-to-camera OpenCV, pixel intrinsics."""
    return torch.linalg.inv(extrinsics), denormalize_intrinsics(intrinsics, width, height)


# Quaternions.


def xyzw_to_wxyz(quaternions: Float[Tensor, "*batch 4"]) -> Float[Tensor, "*batch 4"]:
    """pixelSplat's component order (real part last) -> the project's (real part first)."""
    return quaternions.roll(1, dims=-1)


def quaternion_to_matrix(quaternions: Float[Tensor, "*batch 4"], eps: float = 1e-8) -> Float[Tensor, "*batch 3 3"]:
    """Rotation matrices of wxyz quaternions of any length: the unit quaternion's matrix, with
    ``2 / (|q|^2 + eps)`` in place of 2, as the official pixelSplat code computes it (gsplat normalizes first:
    the two agree to float rounding)."""
    r, i, j, k = quaternions.unbind(-1)
    two_s = 2 / ((quaternions * quaternions).sum(-1) + eps)
    matrix = torch.stack(
        [
            1 - two_s * (j * j + k * k),
            two_s * (i * j - k * r),
            two_s * (i * k + j * r),
            two_s * (i * j + k * r),
            1 - two_s * (i * i + k * k),
            two_s * (j * k - i * r),
            two_s * (i * k - j * r),
            two_s * (j * k + i * r),
            1 - two_s * (i * i + j * j),
        ],
        dim=-1,
    )
    return rearrange(matrix, "... (i j) -> ... i j", i=3)


def matrix_to_quaternion(rotations: Float[Tensor, "*batch 3 3"]) -> Float[Tensor, "*batch 4"]:
    """Unit wxyz quaternions of rotation matrices (scipy's ``Rotation``, computed in float64)."""
    from scipy.spatial.transform import Rotation

    flat = rotations.detach().double().reshape(-1, 3, 3).cpu().numpy()
    if len(flat) == 0:  # scipy < 1.11 refuses an empty Rotation
        return rotations.new_zeros(*rotations.shape[:-2], 4)
    xyzw = Rotation.from_matrix(flat).as_quat()  # scipy's order; scalar_first= needs scipy 1.14
    quaternions = torch.from_numpy(xyzw[:, [3, 0, 1, 2]])
    return quaternions.reshape(*rotations.shape[:-2], 4).to(rotations)


def quaternion_multiply(a: Float[Tensor, "*#batch 4"], b: Float[Tensor, "*#batch 4"]) -> Float[Tensor, "*#batch 4"]:
    """Hamilton product of wxyz quaternions: the rotation ``a`` after ``b`` (neither normalized here); the batch
    dimensions broadcast."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack(
        [
            aw * bw - ax * bx - ay * by - az * bz,
            aw * bx + ax * bw + ay * bz - az * by,
            aw * by - ax * bz + ay * bw + az * bx,
            aw * bz + ax * by - ay * bx + az * bw,
        ],
        dim=-1,
    )


# Splat parameters (splatfacto's storage of scales and opacities).

OPACITY_EPS = 1e-6
"""Opacities are clamped to [eps, 1 - eps] before the logit, so that 0 and 1 stay finite."""
MIN_RELATIVE_SCALE = 1e-12
"""Smallest standard deviation kept before the log, relative to the Gaussian's largest (eigenvalues can round
to zero or just below): relative, so that it is the same at any scene scale."""


def opacity_to_logit(opacities: Float[Tensor, "*batch"]) -> Float[Tensor, "*batch"]:
    """Linear opacities -> splatfacto's logits (``sigmoid`` inverts it)."""
    return torch.logit(opacities.clamp(OPACITY_EPS, 1 - OPACITY_EPS))


def variance_to_log_scale(variances: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3"]:
    """A Gaussian's variances (its covariance's eigenvalues) -> splatfacto's log standard deviations (``exp``
    gives the scale)."""
    largest = variances.max(dim=-1, keepdim=True).values.clamp(min=torch.finfo(variances.dtype).tiny)
    return 0.5 * torch.maximum(variances, MIN_RELATIVE_SCALE**2 * largest).log()
