"""The synthetic generator: deterministic, and its frames show the geometry where its cameras say."""

import json

import numpy as np
import pytest
import torch

from helpers.chunks import write_split
from pixelsplat_ns.data import load_scene, read_chunk, read_evaluation_index, read_index
from pixelsplat_ns.data.synthetic import (
    Box,
    Room,
    SyntheticConfig,
    look_direction,
    make_texture,
    random_scene,
    render,
    render_scene,
    synthetic_scene,
    write_synthetic_dataset,
)

SMALL = SyntheticConfig(height=72, width=128, min_frames=6, max_frames=8)


def test_same_seed_same_scene_other_seed_other_scene():
    a, b, c = synthetic_scene(5, 0, SMALL), synthetic_scene(5, 0, SMALL), synthetic_scene(6, 0, SMALL)
    assert a.key == b.key and torch.equal(a.cameras, b.cameras) and torch.equal(a.timestamps, b.timestamps)
    assert all(torch.equal(x, y) for x, y in zip(a.images, b.images, strict=True))
    assert a.key != c.key and not torch.equal(a.cameras[:, 6:], c.cameras[:, 6:])


def test_dataset_layout_is_deterministic_and_in_the_official_format(tmp_path):
    counts = [write_synthetic_dataset(tmp_path / name, 5, seed=2, config=SMALL, test_fraction=0.3) for name in "ab"]
    assert counts[0] == counts[1] and counts[0]["train"] + counts[0]["test"] == 5 and counts[0]["test"] >= 1
    for split in ("train", "test"):
        index_a, index_b = read_index(tmp_path / "a" / split), read_index(tmp_path / "b" / split)
        assert list(index_a) == list(index_b)
        for path_a, path_b in zip(sorted(set(index_a.values())), sorted(set(index_b.values()))):
            for x, y in zip(read_chunk(path_a), read_chunk(path_b), strict=True):
                assert torch.equal(x.cameras, y.cameras) and all(map(torch.equal, x.images, y.images))
    evaluation = read_evaluation_index(tmp_path / "a" / "evaluation_index.json")
    assert set(evaluation) == set(read_index(tmp_path / "a" / "test"))
    for key, entry in evaluation.items():
        frames = len(next(s for s in read_chunk(read_index(tmp_path / "a" / "test")[key]) if s.key == key))
        left, right = entry.context
        assert 0 <= left < right < frames and len(set(entry.target)) == 3
        assert all(left < t < right for t in entry.target)
    assert json.loads((tmp_path / "a" / "evaluation_index.json").read_text()) == json.loads(
        (tmp_path / "b" / "evaluation_index.json").read_text()
    )


def test_intrinsics_are_realestate10k_like():
    scene = synthetic_scene(0, 1, SyntheticConfig(min_frames=2, max_frames=2, height=36, width=64))
    fx, fy, cx, cy = scene.cameras[0, :4].tolist()
    assert 0.5 <= fx <= 0.58 and abs(fy * 36 - fx * 64) < 1e-4 and (cx, cy) == (0.5, 0.5)


def test_a_known_box_appears_where_the_cameras_project_it(tmp_path):
    grey, red = np.array([[0.5, 0.5, 0.5]] * 2), np.array([[0.9, 0.1, 0.1]] * 2)
    rng = np.random.default_rng(0)
    walls = [make_texture("plain", grey, 1.0, rng) for _ in range(6)]
    box = Box(np.array([0.6, 0.5, 4.0]), np.array([0.4, 0.5, 0.3]), 0.5, make_texture("plain", red, 1.0, rng))
    room = Room(np.array([-3.0, 0.0, 0.0]), np.array([3.0, 3.0, 8.0]), walls, [box], np.array([0.0, 2.7, 4.0]))
    room.scale = 2.5
    c2w = np.tile(np.eye(4), (2, 1, 1))
    for i, (eye, yaw) in enumerate([((0.0, 1.4, 1.0), 0.1), ((-0.5, 1.2, 1.6), 0.3)]):
        c2w[i, :3, :3] = look_direction(np.array([np.sin(yaw), -0.15, np.cos(yaw)]))
        c2w[i, :3, 3] = eye
    k = np.array([[0.6, 0.0, 0.5], [0.0, 0.6 * 160 / 120, 0.5], [0.0, 0.0, 1.0]])
    scene = render_scene("box", room, c2w, k, SyntheticConfig(height=120, width=160, jpeg_quality=98))
    write_split(tmp_path, "test", [[scene]])
    loaded = load_scene(tmp_path, "test", "box", views=[0, 1], image_shape=(120, 160))

    corners = box.corners() * room.scale  # the stored world is scaled; the images are not
    ys, xs = np.mgrid[:120, :160] + 0.5
    for view in range(2):
        w2c = torch.linalg.inv(loaded.extrinsics[view].double()).numpy()
        camera = corners @ w2c[:3, :3].T + w2c[:3, 3]
        uv = camera[:, :2] / camera[:, 2:] @ loaded.intrinsics[view, :2, :2].double().numpy().T
        pixels = (uv + loaded.intrinsics[view, :2, 2].double().numpy()) * [160, 120]
        distance = signed_distance_to_hull(pixels, xs, ys)
        image = loaded.images[view].numpy()
        is_red = (image[0] > image[1] + 0.2) & (image[0] > image[2] + 0.2)
        assert is_red[distance < -2].all() and not is_red[distance > 2].any()
        assert (distance < -2).sum() > 200  # the box covers a real area


def signed_distance_to_hull(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Signed distance (negative inside) of pixel centres to the convex hull of 2D points."""
    hull = convex_hull(points)
    distance = np.full(xs.shape, -np.inf)
    for a, b in zip(hull, np.roll(hull, -1, axis=0)):
        edge = b - a
        normal = np.array([edge[1], -edge[0]]) / np.linalg.norm(edge)  # outward for counter-clockwise order
        distance = np.maximum(distance, (xs - a[0]) * normal[0] + (ys - a[1]) * normal[1])
    return distance


def convex_hull(points: np.ndarray) -> np.ndarray:
    """Monotone chain: the hull counter-clockwise in (x, y), so (dy, -dx) of each edge points outward."""
    points = sorted(map(tuple, points))

    def half(sequence):
        chain = []
        for p in sequence:
            while len(chain) >= 2 and np.cross(np.subtract(chain[-1], chain[-2]), np.subtract(p, chain[-2])) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    return np.array(half(points) + half(points[::-1]))


def test_invalid_settings_are_refused_before_anything_is_written(tmp_path):
    from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset

    with pytest.raises(ValueError, match="min_frames <= max_frames"):
        write_synthetic_dataset(tmp_path / "out", 2, 0, SyntheticConfig(min_frames=40, max_frames=30))
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*"))


def test_rays_parallel_to_a_wall_find_the_room():
    """A ray whose direction has an exact zero component (an axis-aligned camera's middle column at an odd
    width) leaves the room through another face: it must not be taken as exiting behind the camera (-inf)."""
    room, _, _ = random_scene(1, 0, SyntheticConfig(height=9, width=9, min_frames=48, max_frames=48))
    c2w = np.eye(4)
    c2w[:3, 3] = (room.low + room.high) / 2
    intrinsics = np.array([[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]])
    colour, depth = render(room, c2w, intrinsics, 9, 9)
    assert np.isfinite(colour).all() and np.isfinite(depth).all() and (depth > 0).all()


def test_make_sample_scene_refuses_what_it_cannot_write_in_one_line(tmp_path):
    """scripts/tools/make_sample_scene.py follows pixelsplat-process-data's output-folder rules."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "tools" / "make_sample_scene.py"
    (tmp_path / "a_file").write_text("mine")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "notes.txt").write_text("mine")
    for out, message in (
        (tmp_path / "a_file", "exists and is not a folder"),
        (tmp_path / "full", "is not empty; choose another folder or pass --overwrite"),
    ):
        result = subprocess.run(
            [sys.executable, str(script), "--out", str(out), "--frames", "2"], capture_output=True, text=True
        )
        assert result.returncode != 0 and message in result.stderr and "Traceback" not in result.stderr
    assert (tmp_path / "a_file").read_text() == "mine" and (tmp_path / "full" / "notes.txt").read_text() == "mine"
