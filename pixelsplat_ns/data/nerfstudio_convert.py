"""nerfstudio datasets <-> RealEstate10k chunks, so captures of one's own can be trained and evaluated on,
and chunk scenes can be used per scene.

Any dataset a nerfstudio dataparser reads (transforms.json, COLMAP, ...) is parsed with orientation, centring,
scaling and the train/eval split turned off, so the poses stay in the input's own world frame and every frame
is kept. JPEG frames are stored byte for byte; other formats are re-encoded as JPEG (alpha composited onto
black, pixelSplat's background), each frame at its own size.
"""

import dataclasses
import io
import json
import logging
from pathlib import Path

import torch
from PIL import Image

from pixelsplat_ns.core.atomic_files import undone_on_failure, write_bytes_atomically, write_text_atomically
from pixelsplat_ns.core.camera_checks import CameraError, check_intrinsics
from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv, denormalize_intrinsics, from_nerfstudio
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.images import ImageError, displayed_size, open_image
from pixelsplat_ns.nerfstudio_compat.dataparsers import NEUTRAL_DATAPARSER_SETTINGS, check_nerfstudio_transforms

from .cameras import decode_chunk_cameras, encode_chunk_cameras
from .chunks import ChunkScene, ChunkWriter, existing_chunk_files
from .images import encode_jpeg

LOGGER = logging.getLogger("pixelsplat_ns.data")


class ConversionError(InputError):
    """Input that the chunk format cannot represent, or that cannot be read."""


def dataparser_config(data: Path, dataparser: str = "auto"):
    """The nerfstudio dataparser config for ``data``; "auto" picks transforms.json or COLMAP."""
    from nerfstudio.configs.dataparser_configs import all_dataparsers

    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"{data} does not exist: give a nerfstudio dataset folder (or its transforms.json)")
    colmap_path = next((p for p in ("colmap/sparse/0", "sparse/0") if (data / p).is_dir()), None)
    if dataparser == "auto":
        if data.suffix == ".json" or (data / "transforms.json").is_file():
            dataparser = "nerfstudio-data"
        elif colmap_path is not None:
            dataparser = "colmap"
        else:
            raise ConversionError(
                f"{data} has neither transforms.json nor a COLMAP model (colmap/sparse/0 or sparse/0); "
                f"name the dataparser explicitly, one of {sorted(all_dataparsers)}"
            )
    if dataparser not in all_dataparsers:
        raise ConversionError(f"unknown dataparser {dataparser!r}; choose one of {sorted(all_dataparsers)}")
    base = all_dataparsers[dataparser]
    settings = {k: v for k, v in NEUTRAL_DATAPARSER_SETTINGS.items() if hasattr(base, k)}
    if dataparser == "colmap" and colmap_path is not None:
        settings["colmap_path"] = Path(colmap_path)
    return dataclasses.replace(base, data=data, **settings)


def read_nerfstudio_scene(data: Path, key: str, dataparser: str = "auto", split: str = "train") -> ChunkScene:
    """One nerfstudio dataset as one chunk scene (frames in the dataparser's order)."""
    from nerfstudio.cameras.cameras import CameraType
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    config = dataparser_config(data, dataparser)
    if isinstance(config, NerfstudioDataParserConfig):  # what nerfstudio-data would fail on obscurely
        check_nerfstudio_transforms(Path(data), "choose it with `--dataparser {dataparser}`")
    try:
        outputs = config.setup().get_dataparser_outputs(split=split)
    except Exception as error:  # dataparsers report bad input with asserts and assorted exceptions
        raise ConversionError(
            f"nerfstudio's {type(config).__name__} could not read {data}: {type(error).__name__}: {error}"
        ) from error
    cameras = outputs.cameras
    count = len(outputs.image_filenames)
    if count == 0:
        raise ConversionError(f"{data} has no frames")
    types = {CameraType(int(t)).name for t in cameras.camera_type.flatten().tolist()}
    if types != {"PERSPECTIVE"}:
        raise ConversionError(
            f"{data}: camera model {sorted(types)} cannot be stored; the chunk format is pinhole only. "
            "Undistort or reproject the images to a pinhole camera first."
        )
    if cameras.distortion_params is not None and cameras.distortion_params.abs().max() > 0:
        raise ConversionError(
            f"{data}: the cameras have lens distortion ({cameras.distortion_params[0].tolist()}), which the chunk "
            "format cannot represent. Undistort the images first (e.g. `colmap image_undistorter`, which "
            "writes a PINHOLE model) and convert the undistorted dataset."
        )
    width, height = cameras.width.flatten().float(), cameras.height.flatten().float()
    for i, path in enumerate(outputs.image_filenames):
        try:
            check_intrinsics(
                float(cameras.fx[i]),
                float(cameras.fy[i]),
                float(cameras.cx[i]),
                float(cameras.cy[i]),
                int(width[i]),
                int(height[i]),
                f"{data}: frame {Path(path).name}",
            )
        except CameraError as error:
            raise ConversionError(str(error)) from error
    c2w, intrinsics = from_nerfstudio(
        cameras.camera_to_worlds.double(), cameras.get_intrinsics_matrices(), width, height
    )
    c2w = c2w.float()
    if not torch.allclose(outputs.dataparser_transform, torch.eye(4)[:3]) or outputs.dataparser_scale != 1:
        LOGGER.warning(
            "%s: the dataparser moved the poses (transform %s, scale %s)",
            data,
            outputs.dataparser_transform.tolist(),
            outputs.dataparser_scale,
        )
    images = [_frame_bytes(Path(path), int(w), int(h)) for path, w, h in zip(outputs.image_filenames, width, height)]
    return ChunkScene(
        key,
        Path(data).resolve().as_uri(),
        torch.arange(count, dtype=torch.int64),
        encode_chunk_cameras(c2w, intrinsics),
        images,
    )


def _frame_bytes(path: Path, width: int, height: int) -> torch.Tensor:
    """A frame's JPEG bytes: the file itself when it is a JPEG (its EXIF orientation kept, which the chunk
    reader applies), else the image as displayed, re-encoded (alpha composited onto black)."""
    data = path.read_bytes()
    try:
        (displayed, stored, orientation) = displayed_size(data, str(path))
        if displayed != (width, height):
            turned = f" as displayed (EXIF orientation {orientation})" if orientation != 1 else ""
            raise ConversionError(
                f"{path} is {displayed[0]}x{displayed[1]}{turned} but its camera says "
                f"{width}x{height}; fix the intrinsics or the image"
            )
        with Image.open(io.BytesIO(data)) as image:
            is_jpeg = image.format == "JPEG"
        image = open_image(data, str(path))  # fully decoded: a truncated file is refused here
    except ImageError as error:
        raise ConversionError(str(error)) from error
    if is_jpeg:
        return torch.frombuffer(bytearray(data), dtype=torch.uint8)
    if image.mode == "RGBA":
        image = Image.alpha_composite(Image.new("RGBA", image.size, (0, 0, 0, 255)), image)
    return encode_jpeg(image)


def nerfstudio_to_chunks(
    datasets: list[Path],
    out: Path,
    split: str = "test",
    keys: list[str] | None = None,
    dataparser: str = "auto",
    overwrite: bool = False,
) -> dict[str, str]:
    """Convert each dataset to one scene of ``out/<split>``; keys default to the folder names.
    Returns the written index.json."""
    keys = keys or [
        Path(d).resolve().name if Path(d).suffix != ".json" else Path(d).resolve().parent.name for d in datasets
    ]
    if len(keys) != len(datasets):
        raise ValueError(f"{len(keys)} keys for {len(datasets)} datasets")
    if len(set(keys)) != len(keys):
        raise ValueError(f"scene keys must be unique, got {keys}; give them with --keys")
    existing_chunk_files(Path(out) / split, overwrite)  # fail before the slow part
    scenes = [read_nerfstudio_scene(Path(d), k, dataparser) for d, k in zip(datasets, keys)]
    with undone_on_failure(Path(out)):
        with ChunkWriter(Path(out) / split, overwrite=overwrite) as writer:
            for scene in scenes:
                writer.add(scene)
    return writer.index


def write_nerfstudio_scene(scene: ChunkScene, out: Path, overwrite: bool = False) -> Path:
    """Write a chunk scene as a nerfstudio-data folder: ``images/frame_NNNNN.jpg`` (the stored bytes) and
    ``transforms.json`` with per-frame pixel intrinsics and OpenGL camera-to-world matrices."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} is not empty; choose another folder or pass --overwrite")
    c2w, intrinsics = decode_chunk_cameras(scene.cameras)
    c2w_gl = convert_c2w_opengl_opencv(c2w.double())
    with undone_on_failure(out):
        (out / "images").mkdir(parents=True, exist_ok=True)
        frames = []
        for i, data in enumerate(scene.images):
            raw = data.numpy().tobytes()
            try:
                with Image.open(io.BytesIO(raw)) as image:
                    width, height = image.size
            except (OSError, SyntaxError) as error:
                raise ConversionError(
                    f"scene {scene.key!r}: frame {i} is not a readable image ({error}): the chunk is damaged; "
                    "write it again from its source, or leave the scene out"
                ) from error
            name = f"images/frame_{i:05d}.jpg"
            write_bytes_atomically(out / name, raw)
            k = denormalize_intrinsics(intrinsics[i].double(), width, height)
            frames.append(
                {
                    "file_path": name,
                    "transform_matrix": c2w_gl[i].tolist(),
                    "fl_x": k[0, 0].item(),
                    "fl_y": k[1, 1].item(),
                    "cx": k[0, 2].item(),
                    "cy": k[1, 2].item(),
                    "w": width,
                    "h": height,
                }
            )
        transforms = {"camera_model": "OPENCV", "frames": frames}
        write_text_atomically(out / "transforms.json", json.dumps(transforms, indent=1))
    return out
