"""pixelsplat-process-data pair: two photos, no cameras. On a real calibrated stereo pair (Middlebury's
motorcycle, shipped with scikit-image) the relative pose comes out of the pixels alone and ns-train pixelsplat
and ns-export run on the scene; on renders of a turning camera the focal length is estimated and matters; EXIF
orientation and focal length are read; each kind of bad pair is refused with a reason and nothing written."""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from plyfile import PlyData
from scipy.spatial.transform import Rotation
from skimage import data as skimage_data

from helpers.cli import ns, train
from pixelsplat_ns.cli import process_data
from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv
from pixelsplat_ns.data.synthetic import photo_capture
from pixelsplat_ns.process_data.pair import COLMAP_FOCAL_PRIOR, FILM_DIAGONAL_MM, exif_focal_px

COMMAND = Path(sys.executable).parent / "pixelsplat-process-data"
# Middlebury 2014 "Motorcycle" at scikit-image's quarter resolution: the right camera sits 0.193 m along the
# left camera's +x, not turned (rectified pair).
MOTORCYCLE_FOCAL_PX = 994.978
EXIF_IFD = 0x8769
"""The Exif sub-IFD, written as a dict (Pillow < 10.4 drops entries set through ``get_ifd`` when saving)."""


def angle_degrees(rotation: np.ndarray) -> float:
    return float(np.degrees(np.linalg.norm(Rotation.from_matrix(rotation).as_rotvec())))


def relative_pose(scene: Path) -> tuple[np.ndarray, np.ndarray, dict]:
    """The second camera's rotation and unit centre in the first camera's frame (OpenCV), and transforms.json."""
    transforms = json.loads((scene / "transforms.json").read_text())
    c2w = convert_c2w_opengl_opencv(
        torch.tensor([f["transform_matrix"] for f in transforms["frames"]], dtype=torch.float64)
    ).numpy()
    relative = np.linalg.inv(c2w[0]) @ c2w[1]
    return relative[:3, :3], relative[:3, 3] / np.linalg.norm(relative[:3, 3]), transforms


def direction_error_degrees(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))


def refused(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exit_info:
        process_data.main(argv)
    message = str(exit_info.value.code)
    assert message.startswith("error: ") and "Traceback" not in capsys.readouterr().err
    return message


@pytest.fixture(scope="module")
def motorcycle(tmp_path_factory) -> Path:
    left, right, _ = skimage_data.stereo_motorcycle()
    folder = tmp_path_factory.mktemp("motorcycle")
    Image.fromarray(left).save(folder / "left.png")
    Image.fromarray(right).save(folder / "right.png")
    return folder


@pytest.fixture(scope="module")
def motorcycle_scene(motorcycle, tmp_path_factory) -> tuple[Path, str]:
    scene = tmp_path_factory.mktemp("scenes") / "motorcycle"
    result = subprocess.run(
        [str(COMMAND), "pair", "--data", str(motorcycle), "--output-dir", str(scene)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return scene, result.stdout


@pytest.mark.e2e
@pytest.mark.smoke
def test_a_real_stereo_pair_gives_its_calibrated_pose(motorcycle, motorcycle_scene):
    scene, printed = motorcycle_scene
    rotation, centre, transforms = relative_pose(scene)
    # The limits leave room over the errors found (docs/benchmarks.md).
    assert angle_degrees(rotation) < 1.0
    assert direction_error_degrees(centre, np.array([1.0, 0.0, 0.0])) < 3.0
    # A camera moved sideways without turning does not determine the focal length: COLMAP's prior, said so.
    assert transforms["fl_x"] == pytest.approx(COLMAP_FOCAL_PRIOR * 741) and (transforms["w"], transforms["h"]) == (
        741,
        500,
    )
    assert re.search(r"\d+ matches, \d+ inliers", printed) and "turned 0.0 degrees" in printed and "prior" in printed
    for frame, name in zip(transforms["frames"], ("left.png", "right.png")):  # copied byte for byte
        assert (scene / frame["file_path"]).read_bytes() == (motorcycle / name).read_bytes()


@pytest.mark.e2e
def test_ns_train_and_ns_export_run_on_the_pair(motorcycle_scene, tmp_path):
    scene, _ = motorcycle_scene
    config = train(scene, tmp_path / "outputs")
    ns("ns-export", "gaussian-splat", "--load-config", config, "--output-dir", tmp_path / "export", cwd=tmp_path)
    splat = PlyData.read(str(tmp_path / "export" / "splat.ply"))["vertex"]
    assert len(splat) > 1000 and np.isfinite(np.asarray(splat["x"])).all()


def test_exif_orientation_is_applied_and_exif_focal_length_is_used(motorcycle, tmp_path, capsys):
    """The photos stored on their side with an EXIF orientation tag, as phones write them, and the camera's
    35 mm-equivalent focal length: the pose and the focal length are those of the upright photos."""
    folder = tmp_path / "phone"
    folder.mkdir()
    diagonal = math.hypot(741, 500)
    focal_35mm = round(MOTORCYCLE_FOCAL_PX / diagonal * FILM_DIAGONAL_MM)  # 48 mm
    for name in ("left", "right"):
        upright = np.asarray(Image.open(motorcycle / f"{name}.png"))
        exif = Image.Exif()
        exif[0x0112] = 6  # displayed turned 90 degrees clockwise: store the pixels turned the other way
        exif[EXIF_IFD] = {0xA405: focal_35mm}
        Image.fromarray(np.rot90(upright).copy()).save(folder / f"{name}.jpg", exif=exif, quality=95)
    scene = tmp_path / "scene"
    process_data.main(["pair", "--data", str(folder), "--output-dir", str(scene)])
    assert f"EXIF (35 mm-equivalent focal length {focal_35mm} mm)" in capsys.readouterr().out
    rotation, centre, transforms = relative_pose(scene)
    assert (transforms["w"], transforms["h"]) == (741, 500)
    assert transforms["fl_x"] == pytest.approx(focal_35mm / FILM_DIAGONAL_MM * diagonal)
    assert angle_degrees(rotation) < 1.0 and direction_error_degrees(centre, np.array([1.0, 0.0, 0.0])) < 3.0


def test_exif_focal_length_with_the_sensor_resolution(tmp_path):
    exif = Image.Exif()
    exif[EXIF_IFD] = {0x920A: 4.0, 0xA20E: 2000.0, 0xA210: 3, 0xA002: 800}  # 4 mm, 200 px/mm, 800 px wide
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(tmp_path / "photo.jpg", exif=exif)
    focal, source = exif_focal_px(tmp_path / "photo.jpg", 400, 300)
    assert focal == pytest.approx(4.0 * 200 * 400 / 800) and "sensor" in source  # resized from 800 to 400 wide
    Image.fromarray(np.zeros((300, 400, 3), np.uint8)).save(tmp_path / "bare.jpg")
    assert exif_focal_px(tmp_path / "bare.jpg", 400, 300) is None


@pytest.fixture(scope="module")
def turning_pair(tmp_path_factory) -> tuple[Path, np.ndarray, float]:
    """Two renders 9.5 degrees apart of a room with feature-rich textures, and their true relative pose."""
    images, c2w, intrinsics = photo_capture(0, 12, 360, 640)
    folder = tmp_path_factory.mktemp("turning")
    for index in (0, 4):
        Image.fromarray(images[index]).save(folder / f"{index:02d}.png")
    return folder, np.linalg.inv(c2w[0]) @ c2w[4], float(intrinsics[0, 0] * 640)


def test_the_focal_length_is_estimated_from_a_turning_pair_and_matters(turning_pair, tmp_path, capsys):
    folder, truth, true_focal = turning_pair
    process_data.main(["pair", "--data", str(folder), "--output-dir", str(tmp_path / "estimated")])
    assert "estimated from the pair" in capsys.readouterr().out
    rotation, centre, transforms = relative_pose(tmp_path / "estimated")
    # The limits leave room over the errors found (docs/benchmarks.md).
    assert transforms["fl_x"] == pytest.approx(true_focal, rel=0.03)
    error = angle_degrees(truth[:3, :3].T @ rotation)
    assert error < 0.5 and direction_error_degrees(centre, truth[:3, 3]) < 2.0
    # COLMAP's prior instead of the estimate bends the rotation far from the truth (docs/benchmarks.md).
    prior = COLMAP_FOCAL_PRIOR * 640
    process_data.main(
        ["pair", "--data", str(folder), "--output-dir", str(tmp_path / "prior"), "--focal-px", str(prior)]
    )
    assert "given (--focal-px)" in capsys.readouterr().out
    rotation_with_prior, _, transforms = relative_pose(tmp_path / "prior")
    assert transforms["fl_x"] == prior and angle_degrees(truth[:3, :3].T @ rotation_with_prior) > 5.0


def test_a_field_of_view_sets_the_focal_length(turning_pair, tmp_path):
    folder, _, _ = turning_pair
    process_data.main(["pair", "--data", str(folder), "--output-dir", str(tmp_path / "scene"), "--fov-deg", "90"])
    assert json.loads((tmp_path / "scene" / "transforms.json").read_text())["fl_x"] == pytest.approx(320.0)


# ------------------------------------------------------------------------------------------------ bad pairs


def photos(folder: Path, *images: np.ndarray, suffix: str = ".png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(images):
        Image.fromarray(image).save(folder / f"{index}{suffix}")
    return folder


def turned_in_place(image: np.ndarray, degrees: float) -> np.ndarray:
    """The view of a camera turned about its centre: a homography K R K^-1 of the image, no parallax."""
    h, w = image.shape[:2]
    k = np.array([[MOTORCYCLE_FOCAL_PX, 0, w / 2], [0, MOTORCYCLE_FOCAL_PX, h / 2], [0, 0, 1]])
    rotation = Rotation.from_euler("y", degrees, degrees=True).as_matrix()
    return cv2.warpPerspective(image, k @ rotation @ np.linalg.inv(k), (w, h))


def test_not_two_images_is_refused(motorcycle, tmp_path, capsys):
    left = np.asarray(Image.open(motorcycle / "left.png"))
    one = photos(tmp_path / "one", left)
    assert "holds 1 image(s)" in refused(["pair", "--data", str(one), "--output-dir", str(tmp_path / "o1")], capsys)
    three = photos(tmp_path / "three", left, left, left)
    message = refused(["pair", "--data", str(three), "--output-dir", str(tmp_path / "o3")], capsys)
    assert "exactly two" in message and "ns-process-data images" in message
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o3").exists()


def test_pair_and_cameras_read_the_same_formats(motorcycle, tmp_path, capsys):
    """One list of formats (``core.images.readable_suffixes``): what Pillow opens, AVIF included where it can."""
    from PIL import features

    if not features.check("avif"):
        pytest.skip(f"this Pillow ({Image.__version__}) has no AVIF plugin: AVIF photos are refused by both routes")
    folder = tmp_path / "avif"
    folder.mkdir()
    for name in ("left", "right"):
        Image.open(motorcycle / f"{name}.png").save(folder / f"{name}.avif", quality=95)
    process_data.main(["pair", "--data", str(folder), "--output-dir", str(tmp_path / "scene")])
    out = " ".join(capsys.readouterr().out.split())
    assert "the viewer then stays open until Ctrl+C" in out, "every subcommand says what ns-train then does"
    transforms = json.loads((tmp_path / "scene" / "transforms.json").read_text())
    assert sorted(Path(f["file_path"]).suffix for f in transforms["frames"]) == [".avif", ".avif"]


def exif_jpeg(path: Path, image: np.ndarray, orientation: int = 1, focal_35mm: int = 0) -> None:
    exif = Image.Exif()
    if orientation != 1:
        exif[0x0112] = orientation
    if focal_35mm:
        exif[EXIF_IFD] = {0xA405: focal_35mm}
    Image.fromarray(image).save(path, exif=exif, quality=95)


@pytest.mark.parametrize(
    "case",
    [
        "unreadable",
        "different sizes",
        "different sizes by EXIF",
        "different zoom by EXIF",
        "identical",
        "turned in place",
        "zoomed in place",
        "mirrored",
        "no texture",
    ],
)
def test_a_pair_without_two_cameras_is_refused(case, motorcycle, tmp_path, capsys):
    left = np.asarray(Image.open(motorcycle / "left.png"))
    right = np.asarray(Image.open(motorcycle / "right.png"))
    folder = tmp_path / "photos"
    if case == "unreadable":
        photos(folder, left)
        (folder / "1.jpg").write_text("not a photo")
        expected = "1.jpg"
    elif case == "different sizes":
        photos(folder, left, right[:400, :600])
        expected = "741x500"
    elif case == "different sizes by EXIF":
        photos(folder, left)
        exif_jpeg(folder / "1.jpg", right, orientation=6)  # displayed upright: 500x741
        expected = "1.jpg is stored 741x500 with EXIF orientation 6"
    elif case == "different zoom by EXIF":
        folder.mkdir()
        exif_jpeg(folder / "0.jpg", left, focal_35mm=28)
        exif_jpeg(folder / "1.jpg", right, focal_35mm=50)
        expected = "different focal lengths"
    elif case == "identical":
        photos(folder, left, left)
        expected = "no baseline"
    elif case == "turned in place":
        photos(folder, left, turned_in_place(left, 8.0))
        expected = "no baseline"
    elif case == "zoomed in place":
        centre = (left.shape[1] / 2, left.shape[0] / 2)
        zoom = cv2.getRotationMatrix2D(centre, 0.0, 1.2)
        photos(folder, left, cv2.warpAffine(left, zoom, (left.shape[1], left.shape[0])))
        expected = "turned or zoomed without moving"
    elif case == "mirrored":
        photos(folder, left, left[:, ::-1].copy())
        expected = "mirrored"
    else:
        grey = np.full((240, 320, 3), 128, np.uint8)
        photos(folder, grey, grey)
        expected = "match"
    out = tmp_path / "scene"
    message = refused(["pair", "--data", str(folder), "--output-dir", str(out)], capsys)
    assert expected in message, message
    assert not out.exists(), "nothing is written for a refused pair"


def test_an_existing_output_folder_is_kept_unless_forced(motorcycle, tmp_path, capsys):
    out = tmp_path / "scene"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    message = refused(["pair", "--data", str(motorcycle), "--output-dir", str(out)], capsys)
    assert "--force" in message and (out / "notes.txt").read_text() == "mine"
    into_photos = refused(["pair", "--data", str(motorcycle), "--output-dir", str(motorcycle)], capsys)
    assert "outside your photos" in into_photos
    both = refused(
        [
            "pair",
            "--data",
            str(motorcycle),
            "--output-dir",
            str(tmp_path / "x"),
            "--focal-px",
            "900",
            "--fov-deg",
            "40",
        ],
        capsys,
    )
    assert "not both" in both
    process_data.main(["pair", "--data", str(motorcycle), "--output-dir", str(out), "--force"])
    assert (out / "transforms.json").exists() and (out / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--focal-px", "-5"),
        ("--focal-px", "0"),
        ("--focal-px", "nan"),
        ("--focal-px", "1"),
        ("--focal-px", "1e9"),
        ("--fov-deg", "0"),
        ("--fov-deg", "180"),
        ("--fov-deg", "-30"),
    ],
)
def test_a_focal_length_no_camera_has_is_refused(flag, value, motorcycle, tmp_path, capsys):
    message = refused(["pair", "--data", str(motorcycle), "--output-dir", str(tmp_path / "scene"), flag, value], capsys)
    assert flag in message and not (tmp_path / "scene").exists()


def test_an_exif_focal_length_no_camera_has_is_ignored(motorcycle, tmp_path, caplog):
    from pixelsplat_ns.process_data.pair import Photo, exif_focal

    left = np.asarray(Image.open(motorcycle / "left.png"))
    exif_jpeg(tmp_path / "a.jpg", left, focal_35mm=1)  # 20.7 px: a 174 degree field of view
    exif_jpeg(tmp_path / "b.jpg", left, focal_35mm=48)
    assert exif_focal([Photo(tmp_path / "a.jpg", left)] * 2) is None
    assert "ignored" in caplog.text and "174 x 171 degree" in caplog.text
    focal, source = exif_focal([Photo(tmp_path / "a.jpg", left), Photo(tmp_path / "b.jpg", left)])
    assert focal == pytest.approx(48 / FILM_DIAGONAL_MM * math.hypot(741, 500)) and "48 mm" in source


@pytest.mark.parametrize(
    "obstacle",
    [
        "images is a file",
        "transforms.json is a folder",
        "a photo's name is a folder",
        "images links to the photos",
        "not writable",
    ],
)
def test_an_output_folder_in_the_way_is_refused_before_anything_is_written(obstacle, motorcycle, tmp_path, capsys):
    out = tmp_path / "scene"
    out.mkdir()
    if obstacle == "images is a file":
        (out / "images").write_text("mine")
    elif obstacle == "transforms.json is a folder":
        (out / "transforms.json").mkdir()
    elif obstacle == "a photo's name is a folder":
        (out / "images" / "left.png").mkdir(parents=True)
    elif obstacle == "images links to the photos":
        (out / "images").symlink_to(motorcycle)
    else:
        out = Path("/proc/pixelsplat-scene")
    before = {p: p.read_bytes() for p in motorcycle.iterdir()}
    message = refused(["pair", "--data", str(motorcycle), "--output-dir", str(out), "--force"], capsys)
    assert "in the way" in message or "photo" in message and "itself" in message or "could not write" in message, (
        message
    )
    assert {p: p.read_bytes() for p in motorcycle.iterdir()} == before
    if obstacle not in ("not writable", "images links to the photos"):
        assert not (out / "images" / "right.png").exists()
    assert not (out / "transforms.json").is_file()
