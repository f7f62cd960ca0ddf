"""Your own photos with known cameras -> a nerfstudio-data folder (images/ + transforms.json): the logic of
``pixelsplat-process-data cameras``.

    pixelsplat-process-data cameras --cameras photos/cameras.json --output-dir outputs/scenes/mine
    ns-train pixelsplat --data outputs/scenes/mine

For photos whose cameras are not known, let COLMAP find them instead:
``ns-process-data images --data PHOTOS --output-dir OUT``.

The cameras JSON (pinhole cameras, no lens distortion: undistort the photos first):

    {
      "convention": "opencv",            # camera axes: "opencv" (+x right, +y down, +z forward)
                                         #           or "opengl" (+x right, +y up, +z backward)
      "pose": "camera_to_world",         # what each matrix maps: "camera_to_world" or "world_to_camera"
      "intrinsics": {"fx": 1200.0, "fy": 1200.0, "cx": 960.0, "cy": 540.0},   # pixels, shared by all frames
      "frames": [
        {"image": "IMG_0001.jpg", "matrix": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]},
        {"image": "IMG_0002.jpg", "matrix": [[...], [...], [...]],                 # 3x4 works too
         "intrinsics": {"fx": 1210.0, "fy": 1210.0, "cx": 958.0, "cy": 541.0}}   # replaces the shared one
      ]
    }

Relative image paths are resolved against ``--images`` (default: the JSON's folder). Widths and heights are
read from the images as displayed (EXIF orientation applied). The photos are copied, never changed, to
``OUT/images/<file name>`` (file names must be unique). ``transforms.json`` gets ``fl_x, fl_y, cx, cy, w, h``
at the top when all frames agree (else per frame), ``camera_model: "OPENCV"`` and each frame's ``file_path``
and 4x4 OpenGL camera-to-world ``transform_matrix``, nerfstudio's convention. Nothing is written when any
input is wrong; an OUT that is not empty is written into only with ``--force``, and OUT may not hold the
inputs.

``CamerasError`` says what is wrong with an input and how to fix it.
"""

import json
import logging
import math
from pathlib import Path

import torch

from pixelsplat_ns.core.camera_checks import CameraError, check_intrinsics, check_rotation
from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv, homogeneous
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.images import ImageError, displayed_size, open_image

from .scene_folder import Frame, OutputFolderError, check_output_folder, write_scene_folder

LOGGER = logging.getLogger(__name__)
CONVENTIONS = ("opencv", "opengl")
POSES = ("camera_to_world", "world_to_camera")
INTRINSICS = ("fx", "fy", "cx", "cy")
ROTATION_TOLERANCE = 1e-3


class CamerasError(InputError):
    """Input that cannot become a nerfstudio dataset; the message says what is wrong and how to fix it."""


def _check_keys(item: object, required: tuple[str, ...], optional: tuple[str, ...], where: str) -> dict:
    """Catch typos and missing fields early: a misspelt key would otherwise be silently ignored."""
    if not isinstance(item, dict):
        raise CamerasError(f"{where} must be a JSON object, got {type(item).__name__}")
    missing = [k for k in required if k not in item]
    unknown = [k for k in item if k not in required + optional]
    if missing or unknown:
        raise CamerasError(
            f"{where}: missing {missing}, unknown {unknown}; the fields are "
            f"{list(required)} and optionally {list(optional)}"
        )
    return item


def _choice(value: object, choices: tuple[str, ...], field: str) -> str:
    if value not in choices:
        raise CamerasError(f"unknown {field} {value!r}; choose one of {list(choices)}")
    return value


def _intrinsics(item: object, where: str) -> tuple[float, ...]:
    """Pixel fx, fy, cx, cy; normalized ones (the project's internal convention) are refused, not guessed."""
    values = _check_keys(item, INTRINSICS, (), f"{where} intrinsics")
    numbers = [values[k] for k in INTRINSICS]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in numbers):
        raise CamerasError(f"{where} intrinsics must be finite numbers in pixels, got {values}")
    fx, fy, cx, cy = map(float, numbers)
    if fx <= 0 or fy <= 0:
        raise CamerasError(f"{where}: the focal length must be positive (fx={fx}, fy={fy} pixels)")
    if max(fx, fy, cx, cy) <= 2:
        raise CamerasError(
            f"{where}: intrinsics {values} look normalized; give pixels (multiply fx and cx by "
            "the image width, fy and cy by the height)"
        )
    return fx, fy, cx, cy


def _pose(matrix: object, convention: str, pose: str, where: str) -> torch.Tensor:
    """The 4x4 OpenGL camera-to-world matrix, after checking that the input is a rigid pose."""
    try:
        m = torch.tensor(matrix, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError):
        raise CamerasError(f"{where}: the matrix must be a 3x4 or 4x4 nested list of numbers") from None
    if m.shape not in ((3, 4), (4, 4)):
        raise CamerasError(f"{where}: the matrix is {'x'.join(map(str, m.shape))}; give 3x4 or 4x4 (rows first)")
    if not torch.isfinite(m).all():
        raise CamerasError(f"{where}: the matrix has non-finite entries (NaN or infinity)")
    if m.shape == (4, 4) and not torch.allclose(m[3], torch.tensor([0.0, 0, 0, 1], dtype=m.dtype), atol=1e-6):
        raise CamerasError(
            f"{where}: the last row is {m[3].tolist()}, not [0, 0, 0, 1]; give a rigid camera "
            "pose (rotation and translation), not a projection matrix"
        )
    try:
        check_rotation(m[:3, :3], where, tolerance=ROTATION_TOLERANCE)
    except CameraError as refused:  # this command's own error type and wording, with the measured values
        raise CamerasError(
            f"{where}: the 3x3 rotation part is not a rotation (determinant {refused.determinant:.6g}, "
            f"|R R^T - I| up to {refused.orthogonality:.3g}; both must be within {ROTATION_TOLERANCE} of a "
            "rotation). Remove scale from the pose; a determinant of -1 means mirrored (left-handed) axes: flip "
            "one axis of the world frame"
        ) from None
    m = homogeneous(m[:3])
    c2w = torch.linalg.inv(m) if pose == "world_to_camera" else m
    return convert_c2w_opengl_opencv(c2w) if convention == "opencv" else c2w


def _image_size(path: Path, where: str) -> tuple[int, int]:
    """Width and height as displayed (EXIF orientation applied), which is how pixelsplat reads the image and
    what its intrinsics must describe (``pixelsplat_ns.core.images``)."""
    if path.is_dir():
        raise CamerasError(f"{where}: image {path} is a folder; give the image file's path")
    if not path.is_file():
        raise CamerasError(
            f"{where}: image {path} not found; relative paths are resolved against the images "
            "folder (--images, default: the cameras JSON's folder)"
        )
    try:
        size = open_image(path, f"{where}: {path}").size  # fully decoded, so that truncation is caught here
        _, stored, orientation = displayed_size(path)
    except ImageError as error:
        raise CamerasError(str(error)) from error
    if orientation != 1:
        LOGGER.warning(
            "%s: %s has EXIF orientation %s: pixelsplat uses it as displayed, %dx%d (the stored pixels "
            "are %dx%d), so its intrinsics must describe the displayed picture",
            where,
            path,
            orientation,
            *size,
            *stored,
        )
    return size


def read_frames(cameras: Path, images: Path | None = None) -> list[Frame]:
    """Parse and check the cameras JSON and its images; raises CamerasError naming the first problem."""
    cameras = Path(cameras)
    if cameras.is_dir():
        raise CamerasError(f"{cameras} is a folder; --cameras takes the cameras JSON file itself")
    if not cameras.is_file():
        raise CamerasError(f"cameras file {cameras} not found")
    try:
        spec = json.loads(cameras.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CamerasError(f"{cameras} is not valid JSON ({error})") from error
    _check_keys(spec, ("convention", "pose", "frames"), ("intrinsics",), str(cameras))
    convention = _choice(spec["convention"], CONVENTIONS, "convention")
    pose = _choice(spec["pose"], POSES, "pose")
    shared = _intrinsics(spec["intrinsics"], "shared") if "intrinsics" in spec else None
    if not isinstance(spec["frames"], list) or len(spec["frames"]) < 2:
        raise CamerasError('pixelSplat needs at least two frames; list them under "frames"')
    root = Path(images if images is not None else cameras.parent).resolve()
    frames: list[Frame] = []
    sources: dict[Path, int] = {}  # image -> the frame that uses it
    names: dict[str, int] = {}  # file name under images/ -> the frame copied there
    for i, item in enumerate(spec["frames"]):
        where = f"frame {i}"
        _check_keys(item, ("image", "matrix"), ("intrinsics",), where)
        if not isinstance(item["image"], str) or not item["image"]:
            raise CamerasError(f'{where}: "image" must be a file path')
        where = f"frame {i} ({item['image']})"
        if "intrinsics" in item:
            fx, fy, cx, cy = _intrinsics(item["intrinsics"], where)
        elif shared is not None:
            fx, fy, cx, cy = shared
        else:
            raise CamerasError(f'{where} has no intrinsics; give shared "intrinsics" or the frame\'s own')
        c2w = _pose(item["matrix"], convention, pose, where)
        source = (root / item["image"]).resolve()
        if source in sources:
            raise CamerasError(f"{where} uses the same image as frame {sources[source]}; each frame needs its own")
        name = source.name  # flat, as nerfstudio's downscaled copies (images_2/<name>) expect
        if name in names:
            raise CamerasError(f"{where} and frame {names[name]} would both be copied to images/{name}; rename one")
        sources[source], names[name] = i, i
        width, height = _image_size(source, where)
        try:
            check_intrinsics(fx, fy, cx, cy, width, height, where)
        except CameraError as error:
            raise CamerasError(str(error)) from error
        camera = {"fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": width, "h": height}
        frames.append(Frame(source, name, c2w, camera))
    return frames


def scene_from_cameras(cameras: Path, out: Path, images: Path | None = None, force: bool = False) -> dict:
    """Check everything, then copy the images into OUT/images and write OUT/transforms.json (returned)."""
    frames = read_frames(cameras, images)
    root = Path(images if images is not None else Path(cameras).parent)
    try:
        check_output_folder(Path(out), [Path(cameras), root, *(f.source for f in frames)], force)
    except OutputFolderError as error:
        raise CamerasError(str(error)) from error
    return write_scene_folder(frames, out)
