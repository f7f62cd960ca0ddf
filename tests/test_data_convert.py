"""nerfstudio data <-> chunks: round trip, COLMAP poses, refusals with reasons."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from scipy.spatial.transform import Rotation

from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.data import load_scene
from pixelsplat_ns.data.nerfstudio_convert import ConversionError, nerfstudio_to_chunks, write_nerfstudio_scene
from pixelsplat_ns.data.scene import read_scene

WIDTH, HEIGHT = 72, 56  # neither 16:9 nor square


def random_poses(count: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    poses = np.tile(np.eye(4), (count, 1, 1))
    if count:  # scipy < 1.11 has no empty Rotation
        poses[:, :3, :3] = Rotation.random(count, random_state=seed).as_matrix()
    poses[:, :3, 3] = rng.normal(size=(count, 3))
    return poses


def nerfstudio_dataset(folder, count=4, suffix="jpg", **camera):
    """A transforms.json dataset with an off-centre principal point and smooth random images."""
    (folder / "images").mkdir(parents=True)
    rng = np.random.default_rng(1)
    frames = []
    for i, pose in enumerate(random_poses(count)):
        name = f"images/frame_{i:05d}.{suffix}"
        mode = "RGBA" if suffix == "png" else "RGB"
        smooth = Image.fromarray(rng.integers(0, 256, (4, 4, len(mode)), dtype=np.uint8), mode)
        smooth.resize((WIDTH, HEIGHT), Image.BILINEAR).save(folder / name)
        frames.append({"file_path": name, "transform_matrix": pose.tolist()})
    meta = {"fl_x": 61.0, "fl_y": 63.5, "cx": 30.25, "cy": 31.0, "w": WIDTH, "h": HEIGHT, **camera, "frames": frames}
    (folder / "transforms.json").write_text(json.dumps(meta))
    return folder


def test_round_trip_nerfstudio_chunks_nerfstudio(tmp_path):
    source = nerfstudio_dataset(tmp_path / "room")
    index = nerfstudio_to_chunks([source], tmp_path / "chunks", split="test")
    assert list(index) == ["room"]
    back = write_nerfstudio_scene(read_scene(tmp_path / "chunks", "test", "room"), tmp_path / "back")
    original = json.loads((source / "transforms.json").read_text())
    returned = json.loads((back / "transforms.json").read_text())
    assert len(returned["frames"]) == len(original["frames"])
    for a, b in zip(original["frames"], returned["frames"]):
        assert np.allclose(a["transform_matrix"], b["transform_matrix"], atol=1e-5)
        assert (b["w"], b["h"]) == (WIDTH, HEIGHT)
        for field in ("fl_x", "fl_y", "cx", "cy"):
            assert b[field] == pytest.approx(original[field], abs=1e-4)
        assert (back / b["file_path"]).read_bytes() == (source / a["file_path"]).read_bytes()  # JPEGs kept as is


def test_chunk_cameras_follow_the_conventions(tmp_path):
    source = nerfstudio_dataset(tmp_path / "room")
    nerfstudio_to_chunks([source], tmp_path / "chunks")
    scene = load_scene(tmp_path / "chunks", "test", "room", views=[0, 1, 2, 3], image_shape=(HEIGHT, WIDTH))
    poses_gl = np.array([f["transform_matrix"] for f in json.loads((source / "transforms.json").read_text())["frames"]])
    poses_cv = poses_gl.copy()
    poses_cv[:, :3, 1:3] *= -1  # OpenGL camera axes (y up, z back) -> OpenCV (y down, z forward)
    assert np.allclose(scene.extrinsics.numpy(), poses_cv, atol=1e-5)
    expected_k = np.array([[61.0 / WIDTH, 0, 30.25 / WIDTH], [0, 63.5 / HEIGHT, 31.0 / HEIGHT], [0, 0, 1]])
    assert np.allclose(scene.intrinsics.numpy(), expected_k, atol=1e-6)  # no resize: intrinsics unchanged


def test_png_with_alpha_is_composited_onto_black(tmp_path):
    source = nerfstudio_dataset(tmp_path / "png", count=2, suffix="png")
    nerfstudio_to_chunks([source], tmp_path / "chunks")
    scene = load_scene(tmp_path / "chunks", "test", "png", views=[0], image_shape=(HEIGHT, WIDTH))
    rgba = np.asarray(Image.open(source / "images/frame_00000.png")).astype(np.float64) / 255
    expected = rgba[..., :3] * rgba[..., 3:]
    assert np.abs(scene.images[0].permute(1, 2, 0).numpy() - expected).mean() < 0.01  # JPEG error only


def colmap_dataset(folder, model="PINHOLE", params=(61.0, 63.5, 30.25, 31.0)):
    (folder / "images").mkdir(parents=True)
    (folder / "sparse/0").mkdir(parents=True)
    w2c = np.linalg.inv(random_poses(3, seed=4))
    lines = []
    for i, matrix in enumerate(w2c):
        Image.new("RGB", (WIDTH, HEIGHT), (i * 40, 90, 200)).save(folder / f"images/im{i}.jpg")
        qx, qy, qz, qw = Rotation.from_matrix(matrix[:3, :3]).as_quat()
        tx, ty, tz = matrix[:3, 3]
        lines += [f"{i + 1} {qw} {qx} {qy} {qz} {tx} {ty} {tz} 1 im{i}.jpg", ""]
    (folder / "sparse/0/cameras.txt").write_text(f"1 {model} {WIDTH} {HEIGHT} {' '.join(map(str, params))}\n")
    (folder / "sparse/0/images.txt").write_text("\n".join(lines) + "\n")
    (folder / "sparse/0/points3D.txt").write_text("")
    return folder, w2c


def test_colmap_poses_are_stored_as_colmap_world_to_camera(tmp_path):
    source, w2c = colmap_dataset(tmp_path / "colmap_scene")
    nerfstudio_to_chunks([source], tmp_path / "chunks")
    scene = read_scene(tmp_path / "chunks", "test", "colmap_scene")
    assert np.allclose(scene.cameras[:, 6:].reshape(3, 3, 4).numpy(), w2c[:, :3], atol=1e-5)
    assert np.allclose(scene.cameras[0, :4].numpy(), [61.0 / WIDTH, 63.5 / HEIGHT, 30.25 / WIDTH, 31.0 / HEIGHT])


def test_bad_input_is_refused_with_a_reason(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        nerfstudio_to_chunks([tmp_path / "missing"], tmp_path / "out")
    (tmp_path / "empty_folder").mkdir()
    with pytest.raises(ConversionError, match="neither transforms.json nor a COLMAP model"):
        nerfstudio_to_chunks([tmp_path / "empty_folder"], tmp_path / "out")
    empty = nerfstudio_dataset(tmp_path / "no_frames", count=0)
    with pytest.raises(InputError, match="no_frames/transforms.json has no list of frames"):
        nerfstudio_to_chunks([empty], tmp_path / "out")
    distorted = nerfstudio_dataset(tmp_path / "distorted", k1=0.05)
    with pytest.raises(ConversionError, match="lens distortion.*Undistort"):
        nerfstudio_to_chunks([distorted], tmp_path / "out")
    fisheye = nerfstudio_dataset(tmp_path / "fisheye", camera_model="OPENCV_FISHEYE")
    with pytest.raises(ConversionError, match=r"\['FISHEYE'\] cannot be stored.*pinhole"):
        nerfstudio_to_chunks([fisheye], tmp_path / "out")
    radial, _ = colmap_dataset(tmp_path / "radial", "SIMPLE_RADIAL", (61.0, 30.25, 31.0, -0.02))
    with pytest.raises(ConversionError, match="lens distortion"):
        nerfstudio_to_chunks([radial], tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_existing_output_is_never_replaced_without_the_flag(tmp_path):
    source = nerfstudio_dataset(tmp_path / "room")
    nerfstudio_to_chunks([source], tmp_path / "chunks")
    with pytest.raises(FileExistsError, match="overwrite"):
        nerfstudio_to_chunks([source], tmp_path / "chunks")
    nerfstudio_to_chunks([source], tmp_path / "chunks", keys=["renamed"], overwrite=True)
    scene = read_scene(tmp_path / "chunks", "test", "renamed")
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep")
    with pytest.raises(FileExistsError, match="not empty"):
        write_nerfstudio_scene(scene, tmp_path / "mine")
    write_nerfstudio_scene(scene, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep"
    assert torch.equal(read_scene(tmp_path / "chunks", "test", "renamed").cameras, scene.cameras)


def test_a_damaged_chunk_frame_says_what_to_do(tmp_path):
    from helpers.chunks import plain_scene

    scene = plain_scene("damaged", num_frames=3)
    scene.images[1] = torch.frombuffer(bytearray(b"not a jpeg"), dtype=torch.uint8)
    with pytest.raises(ConversionError, match=r"frame 1 is not a readable image .*: the chunk is damaged"):
        write_nerfstudio_scene(scene, tmp_path / "scene")
