"""pixelsplat-process-data cameras: every camera description gives the poses nerfstudio reads back, the user's
files stay as they were, and each kind of bad input is refused with a reason."""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from pixelsplat_ns.cli import process_data
from pixelsplat_ns.process_data.cameras import CamerasError
from pixelsplat_ns.process_data.cameras import scene_from_cameras as make_transforms

COMMAND = Path(sys.executable).parent / "pixelsplat-process-data"

WIDTH, HEIGHT = 40, 30  # not square, so swapped width and height show
K = {"fx": 50.0, "fy": 52.5, "cx": 19.25, "cy": 16.0}  # off centre, fx != fy
GL_CV = np.diag([1.0, -1.0, -1.0, 1.0])  # written here again so that the test does not trust the script's


def opengl_poses(count: int) -> np.ndarray:
    """Camera-to-world OpenGL poses on a small arc, each turned differently about all three axes."""
    poses = np.tile(np.eye(4), (count, 1, 1))
    angles = np.stack([np.linspace(-20, 25, count), np.linspace(10, -35, count), np.linspace(5, 40, count)], -1)
    poses[:, :3, :3] = Rotation.from_euler("xyz", angles, degrees=True).as_matrix()
    poses[:, :3, 3] = np.stack([np.linspace(-1, 1, count), 0.3 * np.arange(count), np.full(count, 2.5)], -1)
    return poses


def describe(c2w_opengl: np.ndarray, convention: str, pose: str) -> np.ndarray:
    """The same cameras as a user with another convention would give them."""
    c2w = c2w_opengl @ GL_CV if convention == "opencv" else c2w_opengl
    return np.linalg.inv(c2w) if pose == "world_to_camera" else c2w


def photos(folder: Path, count: int, sizes=None) -> list[str]:
    """Small noisy images, PNG and JPEG alternating."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    names = []
    for i in range(count):
        width, height = sizes[i] if sizes else (WIDTH, HEIGHT)
        name = f"view_{i}.{'png' if i % 2 else 'jpg'}"
        Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(folder / name)
        names.append(name)
    return names


def spec_for(names, convention="opencv", pose="camera_to_world", three_by_four=False) -> dict:
    matrices = [describe(p, convention, pose) for p in opengl_poses(len(names))]
    return {
        "convention": convention,
        "pose": pose,
        "intrinsics": dict(K),
        "frames": [{"image": n, "matrix": (m[:3] if three_by_four else m).tolist()} for n, m in zip(names, matrices)],
    }


def write_spec(folder: Path, spec: dict, name="cameras.json") -> Path:
    path = folder / name
    path.write_text(json.dumps(spec))
    return path


def fingerprint(folder: Path) -> dict:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def parse(out: Path):
    """What `ns-train --data OUT` would see, with nerfstudio's own re-centring and scaling turned off."""
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    config = NerfstudioDataParserConfig(
        data=out, orientation_method="none", center_method="none", auto_scale_poses=False, eval_mode="all"
    )
    return config.setup().get_dataparser_outputs(split="train")


@pytest.fixture
def scene(tmp_path):
    """A folder of three photos; returns (folder, image names)."""
    folder = tmp_path / "photos"
    return folder, photos(folder, 3)


@pytest.mark.parametrize("convention", ["opencv", "opengl"])
@pytest.mark.parametrize("pose", ["camera_to_world", "world_to_camera"])
def test_nerfstudio_reads_back_the_cameras(scene, tmp_path, convention, pose):
    folder, names = scene
    cameras = write_spec(folder, spec_for(names, convention, pose, three_by_four=pose == "world_to_camera"))
    before = fingerprint(folder)
    out = tmp_path / "out"
    make_transforms(cameras, out)

    assert fingerprint(folder) == before  # nothing changed, added or removed among the user's files
    outputs = parse(out)
    assert [Path(p).name for p in outputs.image_filenames] == names
    for name in names:
        assert (out / "images" / name).read_bytes() == (folder / name).read_bytes()
    cameras_read = outputs.cameras
    expected = torch.tensor(opengl_poses(len(names))[:, :3], dtype=torch.float32)
    assert torch.allclose(cameras_read.camera_to_worlds, expected, atol=1e-6)
    for field, value in (("fx", K["fx"]), ("fy", K["fy"]), ("cx", K["cx"]), ("cy", K["cy"])):
        assert torch.all(getattr(cameras_read, field) == value), field
    assert torch.all(cameras_read.width == WIDTH) and torch.all(cameras_read.height == HEIGHT)
    assert outputs.dataparser_scale == 1 and torch.equal(outputs.dataparser_transform, torch.eye(4)[:3])


def test_all_descriptions_give_the_same_transforms(tmp_path):
    folder = tmp_path / "photos"
    names = photos(folder, 4)
    results = []
    for convention in ("opencv", "opengl"):
        for pose in ("camera_to_world", "world_to_camera"):
            cameras = write_spec(folder, spec_for(names, convention, pose), f"{convention}_{pose}.json")
            make_transforms(cameras, tmp_path / f"{convention}_{pose}")
            results.append(json.loads((tmp_path / f"{convention}_{pose}" / "transforms.json").read_text()))
    reference = results[0]
    assert reference["camera_model"] == "OPENCV"
    assert {k: reference[k] for k in ("fl_x", "fl_y", "cx", "cy", "w", "h")} == {
        "fl_x": K["fx"],
        "fl_y": K["fy"],
        "cx": K["cx"],
        "cy": K["cy"],
        "w": WIDTH,
        "h": HEIGHT,
    }
    assert [f["file_path"] for f in reference["frames"]] == [f"images/{n}" for n in names]
    assert np.allclose([f["transform_matrix"] for f in reference["frames"]], opengl_poses(4), atol=1e-12)
    for other in results[1:]:
        matrices = [f.pop("transform_matrix") for f in other["frames"]]
        assert np.allclose(matrices, [f["transform_matrix"] for f in reference["frames"]], atol=1e-12)
        assert other == {**reference, "frames": [{"file_path": f["file_path"]} for f in reference["frames"]]}


def test_frames_that_differ_get_their_own_intrinsics_and_size(tmp_path):
    folder = tmp_path / "photos"
    names = photos(folder, 3, sizes=[(40, 30), (40, 30), (32, 48)])
    spec = spec_for(names)
    own = {"fx": 61.0, "fy": 60.0, "cx": 16.5, "cy": 24.0}
    spec["frames"][2]["intrinsics"] = own
    transforms = make_transforms(write_spec(folder, spec), tmp_path / "out")
    assert "fl_x" not in transforms and "w" not in transforms and "h" not in transforms
    assert transforms["frames"][2] | {"transform_matrix": None} == {
        "file_path": "images/view_2.jpg",
        "transform_matrix": None,
        "fl_x": 61.0,
        "fl_y": 60.0,
        "cx": 16.5,
        "cy": 24.0,
        "w": 32,
        "h": 48,
    }
    cameras = parse(tmp_path / "out").cameras
    assert cameras.fx.flatten().tolist() == [K["fx"], K["fx"], 61.0]
    assert cameras.cy.flatten().tolist() == [K["cy"], K["cy"], 24.0]
    assert cameras.width.flatten().tolist() == [40, 40, 32] and cameras.height.flatten().tolist() == [30, 30, 48]


def test_images_folder_and_absolute_paths(tmp_path):
    photo_dir = tmp_path / "photos"
    names = photos(photo_dir, 2)
    spec = spec_for(names)
    spec["frames"][1]["image"] = str(photo_dir / names[1])  # absolute paths need no --images
    (tmp_path / "elsewhere").mkdir()
    cameras = write_spec(tmp_path / "elsewhere", spec)
    with pytest.raises(CamerasError, match=r"frame 0 \(view_0.jpg\): image .*view_0.jpg not found.*--images"):
        make_transforms(cameras, tmp_path / "out")
    transforms = make_transforms(cameras, tmp_path / "out", images=photo_dir)
    assert [f["file_path"] for f in transforms["frames"]] == ["images/view_0.jpg", "images/view_1.png"]


def test_output_folder_rules(scene, tmp_path):
    folder, names = scene
    cameras = write_spec(folder, spec_for(names))
    before = fingerprint(folder)
    with pytest.raises(CamerasError, match="is or contains the input"):  # OUT is the photos' folder
        make_transforms(cameras, folder, force=True)
    with pytest.raises(CamerasError, match="is or contains the input"):  # OUT above it
        make_transforms(cameras, tmp_path, force=True)
    assert fingerprint(folder) == before
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(CamerasError, match="not empty.*--force"):
        make_transforms(cameras, out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    make_transforms(cameras, out, force=True)
    assert (out / "transforms.json").is_file() and (out / "notes.txt").read_text() == "mine"
    (tmp_path / "file").write_text("")
    with pytest.raises(CamerasError, match="not a folder"):
        make_transforms(cameras, tmp_path / "file", force=True)


def _set(path, value):
    """An edit of the valid spec: path is a tuple of keys/indices; value None deletes."""

    def edit(spec):
        *parents, last = path
        target = spec
        for key in parents:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value(target[last]) if callable(value) else value

    return edit


def _scaled(matrix, factor=2.0):
    m = np.array(matrix)
    m[:3, :3] *= factor
    return m.tolist()


def _mirrored(matrix):
    m = np.array(matrix)
    m[:3, 0] *= -1
    return m.tolist()


def _sheared(amount):
    def shear(matrix):
        m = np.array(matrix)
        m[:3, :3] = m[:3, :3] @ np.array([[1, amount, 0], [0, 1, 0], [0, 0, 1]])
        return m.tolist()

    return shear


BAD_INPUTS = {
    "unknown convention": (_set(("convention",), "colmap"), r"unknown convention 'colmap'.*'opencv', 'opengl'"),
    "unknown pose": (_set(("pose",), "c2w"), r"unknown pose 'c2w'.*'camera_to_world'"),
    "missing convention": (_set(("convention",), None), r"missing \['convention'\]"),
    "misspelt key": (lambda s: s.update(intrinsic=s.pop("intrinsics")), r"unknown \['intrinsic'\]"),
    "3x3 matrix": (
        _set(("frames", 1, "matrix"), lambda m: np.array(m)[:3, :3].tolist()),
        r"frame 1 \(view_1.png\): the matrix is 3x3; give 3x4 or 4x4",
    ),
    "ragged matrix": (_set(("frames", 1, "matrix"), [[1, 0, 0], [0, 1]]), r"frame 1 .*nested list of numbers"),
    "text in matrix": (_set(("frames", 1, "matrix"), "identity"), r"frame 1 .*nested list of numbers"),
    "not finite": (
        _set(("frames", 2, "matrix"), lambda m: [[float("nan")] + m[0][1:]] + m[1:]),
        r"frame 2 \(view_2.jpg\): .*non-finite",
    ),
    "projection row": (_set(("frames", 1, "matrix", 3), [0, 0, 1, 0]), r"frame 1 .*last row.*not \[0, 0, 0, 1\]"),
    "scaled rotation": (_set(("frames", 1, "matrix"), _scaled), r"frame 1 \(view_1.png\): .*not a rotation"),
    "reflection": (_set(("frames", 0, "matrix"), _mirrored), r"frame 0 .*not a rotation \(determinant -1\b"),
    "shear": (_set(("frames", 2, "matrix"), _sheared(0.01)), r"frame 2 .*not a rotation"),
    "one frame": (lambda s: s.update(frames=s["frames"][:1]), r"at least two frames"),
    "no frames list": (_set(("frames",), {"image": "view_0.jpg"}), r"at least two frames"),
    "same image twice": (_set(("frames", 2, "image"), "./view_0.jpg"), r"frame 2 .*same image as frame 0"),
    "zero focal length": (_set(("intrinsics", "fx"), 0), r"shared: the focal length must be positive"),
    "negative focal length": (
        _set(("frames", 1, "intrinsics"), {**K, "fy": -50.0}),
        r"frame 1 .*focal length must be positive",
    ),
    "normalized intrinsics": (
        _set(("intrinsics",), {"fx": 1.2, "fy": 1.6, "cx": 0.5, "cy": 0.5}),
        r"look normalized; give pixels",
    ),
    "no intrinsics": (_set(("intrinsics",), None), r"frame 0 \(view_0.jpg\) has no intrinsics"),
    "incomplete intrinsics": (_set(("intrinsics", "cy"), None), r"shared intrinsics: missing \['cy'\]"),
    "text intrinsics": (_set(("intrinsics", "cx"), "20"), r"finite numbers in pixels"),
    "missing image": (_set(("frames", 1, "image"), "gone.jpg"), r"frame 1 \(gone.jpg\): image .*gone.jpg not found"),
    "image is a folder": (_set(("frames", 1, "image"), "sub"), r"frame 1 \(sub\): image .*sub is a folder"),
    "focal length in another unit": (
        _set(("intrinsics",), {"fx": 1e9, "fy": 1e9, "cx": 19.25, "cy": 16.0}),
        r"narrower than any lens",
    ),
    "focal lengths far apart": (_set(("intrinsics", "fx"), 500.0), r"fl_x=500 and fl_y=52.5 differ 9.52-fold"),
    "unreadable image": (_set(("frames", 1, "image"), "notes.png"), r"frame 1 \(notes.png\): .*not a readable image"),
    "truncated image": (_set(("frames", 1, "image"), "cut.jpg"), r"frame 1 \(cut.jpg\): .*not a readable image"),
    "same file name": (_set(("frames", 1, "image"), "sub/view_0.jpg"), r"frame 1 .*frame 0 would both be copied"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_is_refused_with_a_reason(scene, tmp_path, case):
    folder, names = scene
    (folder / "notes.png").write_text("not an image")
    data = (folder / names[0]).read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    (folder / "sub").mkdir()
    (folder / "sub" / "view_0.jpg").write_bytes(data)
    spec = spec_for(names)
    spec["frames"][1]["intrinsics"] = dict(K)
    edit, message = BAD_INPUTS[case]
    edit(spec)
    cameras = write_spec(folder, spec)
    with pytest.raises(CamerasError, match=message):
        make_transforms(cameras, tmp_path / "out")
    assert not (tmp_path / "out").exists()  # checked before anything is written


def test_small_rounding_in_rotations_is_accepted(scene, tmp_path):
    folder, names = scene
    spec = spec_for(names)
    _set(("frames", 1, "matrix"), _sheared(2e-4))(spec)
    make_transforms(write_spec(folder, spec), tmp_path / "out")


def test_bad_files_are_refused(tmp_path):
    with pytest.raises(CamerasError, match=r"cameras file .*nothing.json not found"):
        make_transforms(tmp_path / "nothing.json", tmp_path / "out")
    with pytest.raises(CamerasError, match=r"is a folder; --cameras takes the cameras JSON file itself"):
        make_transforms(tmp_path, tmp_path / "out")
    (tmp_path / "broken.json").write_text('{"convention": ')
    with pytest.raises(CamerasError, match="is not valid JSON"):
        make_transforms(tmp_path / "broken.json", tmp_path / "out")


def test_exif_rotation_is_pointed_out(tmp_path, caplog):
    folder = tmp_path / "photos"
    names = photos(folder, 2)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees to display"
    with Image.open(folder / names[0]) as image:
        image.save(folder / "turned.jpg", exif=exif)
    spec = spec_for(["turned.jpg", names[1]])
    with caplog.at_level("WARNING"):
        make_transforms(write_spec(folder, spec), tmp_path / "out")
    assert "EXIF orientation 6" in caplog.text and "40x30" in caplog.text


@pytest.mark.e2e
def test_command_line(scene, tmp_path):
    folder, names = scene
    spec = spec_for(names)
    spec["convention"] = "OpenCV"
    cameras = write_spec(folder, spec)
    refused = subprocess.run(
        [str(COMMAND), "cameras", "--cameras", str(cameras), "--output-dir", str(tmp_path / "out")],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0
    assert "error: unknown convention 'OpenCV'" in refused.stderr and "Traceback" not in refused.stderr
    process_data.main(
        ["cameras", "--cameras", str(write_spec(folder, spec_for(names))), "--output-dir", str(tmp_path / "out")]
    )
    assert len(json.loads((tmp_path / "out" / "transforms.json").read_text())["frames"]) == 3
