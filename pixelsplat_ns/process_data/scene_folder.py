"""A nerfstudio-data scene written from photos and their cameras: the photos copied (never modified) to
``OUT/images/<name>``, ``OUT/transforms.json`` with each frame's pixel intrinsics and OpenGL camera-to-world
``transform_matrix`` (nerfstudio's convention), which ``ns-train pixelsplat --data OUT`` takes unchanged."""

import json
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import torch

from pixelsplat_ns.core.atomic_files import (
    check_writable,
    copy_atomically,
    undone_on_failure,
    write_text_atomically,
)
from pixelsplat_ns.core.errors import InputError


class OutputFolderError(InputError):
    """An output folder that would overwrite, or sit among, the user's own files."""


@dataclass(frozen=True)
class Frame:
    source: Path
    name: str
    """File name under OUT/images."""
    c2w_opengl: torch.Tensor
    camera: dict
    """fl_x, fl_y, cx, cy, w, h as transforms.json names them (pixels, the image as displayed)."""


def check_output_folder(out: Path, inputs: list[Path], force: bool, force_flag: str = "--force") -> None:
    """Never write over or next to the user's own files: OUT may not hold the inputs, and a folder that is not
    empty is written into only with ``force`` (the command's ``force_flag``, named in the message). A place that
    cannot be written (read-only, beneath a file) raises ``CannotWrite``, before any work."""
    out = Path(out).resolve()
    for path in inputs:
        if Path(path).resolve().is_relative_to(out):
            raise OutputFolderError(
                f"the output folder {out} is or contains the input {path}; choose an output folder outside your photos"
            )
    if out.exists() and not out.is_dir():
        raise OutputFolderError(f"{out} exists and is not a folder")
    if out.exists() and any(out.iterdir()) and not force:
        raise OutputFolderError(
            f"{out} is not empty; choose another folder or pass {force_flag} (files of the "
            "same names are then replaced)"
        )
    check_writable(out / "transforms.json")  # a read-only place, or a file above it: before the work


@contextmanager
def writing_into(out: Path) -> Iterator[None]:
    """Write into the folder ``out`` all or nothing (``core.atomic_files.undone_on_failure``). A failed write (no
    permission, a read-only or virtual file system, a full disk) raises ``OutputFolderError`` naming the output
    folder, or ``CannotWrite`` naming the file."""
    try:
        with undone_on_failure(out):
            yield
    except OSError as error:
        where = f" ({error.filename})" if error.filename else ""
        raise OutputFolderError(
            f"could not write the scene to {out}: {error.strerror or error}{where}; choose an "
            "output folder you can write to"
        ) from error


def check_targets(frames: list[Frame], out: Path) -> None:
    """Before anything is written: every path the scene takes must be free for a file, and none may be one of
    the photos themselves (an ``images`` link back to the photos' folder)."""
    out = Path(out)
    blocked = [path for path in (out / "images",) if path.exists() and not path.is_dir()]
    blocked += [path for path in [out / "transforms.json"] + [out / "images" / f.name for f in frames] if path.is_dir()]
    if blocked:
        raise OutputFolderError(
            f"{', '.join(map(str, blocked))} in the output folder is in the way of the scene's "
            "files (a file where a folder goes, or a folder where a file goes); move it or "
            "choose an empty output folder"
        )
    for frame in frames:
        target = out / "images" / frame.name
        if target.exists() and target.samefile(frame.source):
            raise OutputFolderError(
                f"{target} is the photo {frame.source} itself (through a link): writing the scene "
                "there would overwrite it; choose an output folder outside your photos"
            )


def write_scene_folder(frames: list[Frame], out: Path) -> dict:
    """Copy the photos and write transforms.json (returned): intrinsics at the top when all frames agree.
    Raises ``OutputFolderError`` before writing anything when the output folder is in the way (``check_targets``),
    and ``OutputFolderError`` or ``CannotWrite`` when a write fails; the files and folders it made are then
    removed (each file is written whole or not at all: ``core.atomic_files``)."""
    check_targets(frames, out)
    transforms: dict[str, Any] = {"camera_model": "OPENCV"}
    entries: list[dict[str, Any]] = [
        {"file_path": f"images/{f.name}", "transform_matrix": f.c2w_opengl.tolist()} for f in frames
    ]
    for key in frames[0].camera:
        values = [f.camera[key] for f in frames]
        if len(set(values)) == 1:
            transforms[key] = values[0]
        else:
            for entry, value in zip(entries, values):
                entry[key] = value
    transforms["frames"] = entries
    text = json.dumps(transforms, indent=1)
    # The whole scene's size, before anything is written: a full disk is told what the scene needs, not one file.
    check_writable(Path(out) / "transforms.json", sum(Path(f.source).stat().st_size for f in frames) + len(text))
    with writing_into(out):
        for frame in frames:
            target = Path(out) / "images" / frame.name
            target.parent.mkdir(parents=True, exist_ok=True)
            copy_atomically(frame.source, target)
        write_text_atomically(Path(out) / "transforms.json", text)
    return transforms


def copy_sample_scene(out: Path, force: bool) -> int:
    """Copy the sample scene that ships inside the package (``pixelsplat_ns/sample_scene``: transforms.json and
    its images) to ``out``, where a user can see and use it; returns the number of images. Raises
    ``OutputFolderError`` as ``check_output_folder`` does, or when ``out`` cannot be written."""
    check_output_folder(out, [], force)
    sample = resources.files("pixelsplat_ns") / "sample_scene"
    with resources.as_file(sample) as folder:
        check_writable(Path(out) / "transforms.json", sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()))
    with writing_into(out), resources.as_file(sample) as folder:
        shutil.copytree(folder, out, dirs_exist_ok=True, copy_function=copy_atomically)
    return len(list((Path(out) / "images").iterdir()))
