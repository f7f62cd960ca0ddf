"""A Gaussian splat .ply mapped from nerfstudio's dataparser frame back into the input data's own frame
(the logic of ``pixelsplat-ply-to-input-frame``).

``ns-export gaussian-splat`` writes the standard 3DGS layout (x y z, nx ny nz, f_dc_*, f_rest_* channel-major,
opacity as a logit, scale_* as logs, rot_* as wxyz quaternions) in the frame the model was trained in: the
dataparser maps an input point p to ``s * (R p + t)``, with ``transform = [R | t]`` (3 x 4) and ``scale = s``
stored in the run's ``dataparser_transforms.json``. This script undoes that map:

- positions ``p = R^T (x / s - t)``; normals ``R^T n``;
- rotations: each quaternion is left-multiplied by R^T's and renormalized (``pixelsplat_ns.core.conventions``);
- log-scales minus ``log(s)``;
- SH coefficients of degree >= 1 rotated by R^T (``sh_rotation_matrix``, gsplat's basis = the 3DGS one), so
  every Gaussian shows the same colour from the same physical direction.

Opacities, the DC colour and every other property are copied unchanged, as are the file's format and
property order. The header comment "Vertical Axis: z" (true of the dataparser frame only) is dropped and a
comment recording the conversion is added; a converted file is refused as input. The input .ply is never
overwritten, an existing OUT only with ``--force``.
"""

import json
import math
from pathlib import Path

import numpy as np
import torch
from plyfile import PlyData

from pixelsplat_ns.core.atomic_files import check_writable, write_atomically
from pixelsplat_ns.core.camera_checks import CameraError, check_rotation
from pixelsplat_ns.core.conventions import matrix_to_quaternion, quaternion_multiply
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.render.spherical_harmonics import MAX_SH_DEGREE, num_sh_bases, sh_rotation_matrix

POSITION = ("x", "y", "z")
NORMAL = ("nx", "ny", "nz")
SCALE = ("scale_0", "scale_1", "scale_2")
QUATERNION = ("rot_0", "rot_1", "rot_2", "rot_3")  # w x y z
CONVERTED_COMMENT = "Mapped to the input data's frame by pixelsplat-ply-to-input-frame"
CONVERTED_COMMENTS = (
    CONVERTED_COMMENT,
    "Mapped to the input data's frame by pixelsplat-ns scripts/ply_to_input_frame.py",
)
"""The comment marks a converted file; the second is what version 0.1 wrote."""
DATAPARSER_ONLY_COMMENTS = ("Vertical Axis: z",)
ROTATION_TOLERANCE = 1e-4


class ConversionError(InputError):
    """A bad input: the message says which file and why."""


def read_dataparser_transform(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """R [3, 3], t [3] and s from a run's ``dataparser_transforms.json``."""
    if not path.is_file():
        raise ConversionError(f"no dataparser transforms file at {path}")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConversionError(f"{path} is not a JSON file: {error}") from error
    if not isinstance(data, dict) or "transform" not in data or "scale" not in data:
        raise ConversionError(f"{path} has no 'transform' and 'scale': it is not a run's dataparser_transforms.json")
    try:
        matrix = np.asarray(data["transform"], dtype=np.float64)
        scale = float(data["scale"])
    except (TypeError, ValueError) as error:
        raise ConversionError(f"{path}: 'transform' must be a 3 x 4 matrix and 'scale' a number ({error})") from error
    if matrix.shape == (4, 4) and np.array_equal(matrix[3], [0, 0, 0, 1]):
        matrix = matrix[:3]
    if matrix.shape != (3, 4) or not np.isfinite(matrix).all():
        raise ConversionError(
            f"{path}: 'transform' must be a 3 x 4 matrix [R | t] of finite numbers, got shape {list(matrix.shape)}"
        )
    if not (math.isfinite(scale) and scale > 0):
        raise ConversionError(f"{path}: 'scale' must be a positive number, got {data['scale']!r}")
    rotation, translation = matrix[:, :3], matrix[:, 3]
    try:
        check_rotation(torch.from_numpy(rotation), str(path), tolerance=ROTATION_TOLERANCE)
    except CameraError as refused:  # this command's own error type and wording, with the measured values
        raise ConversionError(
            f"{path}: the 3 x 3 part of 'transform' is not a rotation (|R R^T - I| = "
            f"{refused.orthogonality:.3g}, det R = {refused.determinant:.6g}); nerfstudio's dataparser writes a "
            "rotation and puts any scaling in 'scale'"
        ) from None
    return rotation, translation, scale


def read_splat(path: Path) -> tuple[PlyData, int]:
    """The .ply and its SH degree, after checking the 3DGS fields this conversion needs."""
    if not path.is_file():
        raise ConversionError(f"no .ply file at {path}")
    try:
        ply = PlyData.read(str(path))
    except Exception as error:  # plyfile raises several types for files that are not PLY
        raise ConversionError(f"{path} is not a readable .ply file: {error}") from error
    if "vertex" not in ply:
        raise ConversionError(f"{path} has no 'vertex' element: it is not a Gaussian splat .ply")
    if set(CONVERTED_COMMENTS) & set(ply.comments):
        raise ConversionError(f"{path} was already mapped to the input frame; converting it again would be wrong")
    names = set(ply["vertex"].data.dtype.names)
    missing = [name for name in POSITION + SCALE + QUATERNION if name not in names]
    if missing:
        raise ConversionError(
            f"{path} lacks the 3DGS fields {', '.join(missing)}: it is not a Gaussian splat .ply "
            "(ns-export gaussian-splat writes x y z, scale_0..2, rot_0..3)"
        )
    partial_normal = [name for name in NORMAL if name not in names]
    if partial_normal and len(partial_normal) < len(NORMAL):
        raise ConversionError(
            f"{path} has only some of the normal fields nx ny nz (missing {', '.join(partial_normal)})"
        )
    rest = sum(name.startswith("f_rest_") for name in names)
    degrees = {3 * (num_sh_bases(degree) - 1): degree for degree in range(MAX_SH_DEGREE + 1)}
    if rest not in degrees or any(f"f_rest_{i}" not in names for i in range(rest)):
        valid = ", ".join(str(count) for count in degrees)
        raise ConversionError(
            f"{path} has {rest} f_rest_* fields; a 3DGS .ply has f_rest_0 .. f_rest_(n - 1) "
            f"with n one of {valid} (SH degrees 0-{MAX_SH_DEGREE})"
        )
    return ply, degrees[rest]


def to_input_frame(
    vertices: np.ndarray, degree: int, rotation: np.ndarray, translation: np.ndarray, scale: float
) -> np.ndarray:
    """A copy of the structured vertex array mapped from the dataparser frame to the input frame."""
    out = vertices.copy()
    count = len(vertices)

    def read(names):
        return np.stack([vertices[name].astype(np.float64) for name in names], axis=-1)

    def write(names, values):
        for name, column in zip(names, np.moveaxis(values, -1, 0)):
            out[name] = column  # cast back to the property's own type

    # Rows: R^T v is v @ R.
    write(POSITION, (read(POSITION) / scale - translation) @ rotation)
    if NORMAL[0] in (vertices.dtype.names or ()):
        write(NORMAL, read(NORMAL) @ rotation)
    write(SCALE, read(SCALE) - math.log(scale))
    inverse = matrix_to_quaternion(torch.from_numpy(rotation.T.copy()))
    quats = quaternion_multiply(inverse, torch.from_numpy(read(QUATERNION))).numpy()
    norms = np.linalg.norm(quats, axis=-1, keepdims=True)
    write(QUATERNION, np.divide(quats, norms, out=np.zeros_like(quats), where=norms > 0))
    if degree > 0:
        # The colour seen along d in the input frame is the one seen along R d in the dataparser frame:
        # d -> c . basis(R d) has coefficients M^T c, with basis(R d) = M basis(d).
        names = [f"f_rest_{i}" for i in range(3 * (num_sh_bases(degree) - 1))]
        rest = read(names).reshape(count, 3, -1)  # channel-major, as the 3DGS layout stores them
        matrix = sh_rotation_matrix(degree, torch.from_numpy(rotation)).numpy()[1:, 1:]
        write(names, np.einsum("jk,ncj->nck", matrix, rest).reshape(count, -1))
    return out


def convert(input_path: Path, transforms_path: Path, output_path: Path, force: bool = False) -> tuple[int, int]:
    """Read, map and write; returns the number of Gaussians and their SH degree. Writes nothing on error: the
    output is written whole or not at all, and a place that cannot take it raises ``CannotWrite`` (an
    ``InputError``) before the work where it can be told then (a read-only folder, a disk with less free space
    than the input's size)."""
    if not input_path.is_file():
        raise ConversionError(f"no .ply file at {input_path}")
    if output_path.resolve() == input_path.resolve() or (output_path.exists() and output_path.samefile(input_path)):
        raise ConversionError(f"the output {output_path} is the input: write the converted splat to another file")
    if output_path.exists() and not force:
        raise ConversionError(f"{output_path} exists; pass --force to overwrite it")
    check_writable(output_path, input_path.stat().st_size)  # before the work: the output is about the input's size
    rotation, translation, scale = read_dataparser_transform(transforms_path)
    ply, degree = read_splat(input_path)
    vertex = ply["vertex"]
    vertex.data = to_input_frame(vertex.data, degree, rotation, translation, scale)
    ply.comments = [c for c in ply.comments if c not in DATAPARSER_ONLY_COMMENTS] + [CONVERTED_COMMENT]
    output_path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(output_path, ply.write, size_hint=vertex.data.nbytes)
    return len(vertex.data), degree
