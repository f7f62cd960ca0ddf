"""The reader's images, intrinsics and poses agree: a 3D point projects onto the pixel that shows it."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.chunks import marker_centroid, marker_scene, plain_scene, project_pixels, walk, write_split
from pixelsplat_ns.core.bounds import near_far
from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv
from pixelsplat_ns.core.crop import resize_and_crop
from pixelsplat_ns.core.geometry import field_of_view
from pixelsplat_ns.data import load_scene
from pixelsplat_ns.data.cameras import decode_chunk_cameras, mirror_cameras

POINT = np.array([0.4, 0.1, 3.0])
# A portrait 300x400 frame with its principal point far from the centre.
WIDTH, HEIGHT = 300, 400
K_OFF_CENTRE = np.array([[0.8, 0.0, 0.37], [0.0, 0.62, 0.61], [0.0, 0.0, 1.0]])


@pytest.fixture(scope="module")
def marker_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("marker")
    write_split(root, "test", [[marker_scene("m", POINT, walk(3, step=0.15), K_OFF_CENTRE, WIDTH, HEIGHT)]])
    return root


@pytest.mark.parametrize("shape", [(128, 128), (96, 160), (200, 150)])
def test_point_projects_onto_its_marker(marker_root, shape):
    scene = load_scene(marker_root, "test", "m", views=[0, 2], image_shape=shape)
    assert scene.images.shape == (2, 3, *shape)
    assert scene.images.dtype == torch.float32 and 0 <= scene.images.min() and scene.images.max() <= 1
    for view in range(2):
        expected = project_pixels(
            POINT, scene.extrinsics[view].double().numpy(), scene.intrinsics[view].double().numpy(), shape[1], shape[0]
        )
        found = marker_centroid(scene.images[view])
        assert np.abs(found - expected).max() < 0.2, (shape, view, found, expected)


def test_official_crop_intrinsics_are_off_for_an_off_centre_principal_point(marker_root):
    shape = (128, 128)  # 300x400 scales to 128x171: row margin 43
    official = load_scene(marker_root, "test", "m", views=[1], image_shape=shape, crop_intrinsics="official")
    exact = load_scene(marker_root, "test", "m", views=[1], image_shape=shape)
    assert torch.equal(official.images, exact.images)
    assert official.intrinsics[0, 1, 2] == pytest.approx(0.61)  # official: cy unchanged
    expected_shift = ((0.61 - 0.5) * (171 - 128) + 0.5) / 128  # off-centre error plus the odd margin's half pixel
    assert (exact.intrinsics[0, 1, 2] - official.intrinsics[0, 1, 2]).item() == pytest.approx(expected_shift, abs=1e-5)


def test_exact_and_official_crop_agree_on_centred_principal_points():
    k = torch.tensor([[0.532, 0.0, 0.5], [0.0, 0.946, 0.5], [0.0, 0.0, 1.0]])
    frame = Image.new("RGB", (640, 480))
    for shape in [(192, 192), (240, 320)]:  # scaled to 192x256 (even margin) and 240x320 (no margin)
        _, exact = resize_and_crop(frame, k, shape)
        _, official = resize_and_crop(frame, k, shape, "official")
        assert torch.allclose(exact, official, atol=1e-7), shape
    # RealEstate10k's 360x640 -> 256x256 scales to 256x455 (odd margin 199): the official cx is half a pixel off.
    _, exact = resize_and_crop(Image.new("RGB", (640, 360)), k, (256, 256))
    _, official = resize_and_crop(Image.new("RGB", (640, 360)), k, (256, 256), "official")
    assert exact[0, 0] == official[0, 0] == pytest.approx(0.532 * 455 / 256)
    assert (exact[0, 2] - official[0, 2]).item() == pytest.approx(0.5 / 256)
    assert exact[1, 2] == official[1, 2] == 0.5


def test_flipped_views_stay_consistent(marker_root):
    scene = load_scene(marker_root, "test", "m", views=[0, 1, 2], image_shape=(128, 160))
    c2w, k = mirror_cameras(scene.extrinsics, scene.intrinsics)
    mirrored_point = POINT * np.array([-1.0, 1.0, 1.0])
    for view in range(3):
        expected = project_pixels(mirrored_point, c2w[view].double().numpy(), k[view].double().numpy(), 160, 128)
        found = marker_centroid(scene.images[view].flip(-1))
        assert np.abs(found - expected).max() < 0.2
    assert torch.allclose(torch.linalg.det(c2w[:, :3, :3]), torch.ones(3))  # still proper rotations


def test_baseline_normalization_scales_the_world(marker_root):
    raw = load_scene(marker_root, "test", "m", views=[0, 2])
    scaled = load_scene(marker_root, "test", "m", views=[0, 2], make_baseline_1=True)
    baseline = (raw.extrinsics[0, :3, 3] - raw.extrinsics[1, :3, 3]).norm()
    assert (scaled.extrinsics[0, :3, 3] - scaled.extrinsics[1, :3, 3]).norm() == pytest.approx(1.0)
    assert torch.allclose(scaled.extrinsics[:, :3, 3] * baseline, raw.extrinsics[:, :3, 3], atol=1e-5)
    assert torch.allclose(scaled.near * baseline, raw.near) and torch.allclose(scaled.far * baseline, raw.far)
    for view in range(2):  # the marker's point, scaled alike, still lands on the marker
        expected = project_pixels(
            POINT / baseline.item(),
            scaled.extrinsics[view].double().numpy(),
            scaled.intrinsics[view].double().numpy(),
            256,
            256,
        )
        assert np.abs(marker_centroid(scaled.images[view]) - expected).max() < 0.2


def test_near_far_rule_by_hand():
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, :3, 3] = torch.tensor([0.0, 2.0, 0.0])  # baseline 2
    k = torch.tensor([[0.8, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]]).repeat(2, 1, 1)
    near, far = near_far(c2w, k, (100, 200))
    mean_pixel = (1 / (200 * 0.8) + 1 / (100 * 1.0)) / 2
    assert near.item() == pytest.approx(2 / (3.0 * 100 * mean_pixel))
    assert far.item() == pytest.approx(2 / (0.5 * mean_pixel))
    batched_near, _ = near_far(c2w.expand(5, 2, 4, 4), k.expand(5, 2, 3, 3), (100, 200))
    assert batched_near.shape == (5,) and torch.allclose(batched_near, near)


def test_camera_conventions():
    c2w_gl = torch.eye(4)
    c2w_gl[:3, 3] = torch.tensor([1.0, 2.0, 3.0])
    c2w_cv = convert_c2w_opengl_opencv(c2w_gl)
    # An OpenGL camera looks down -z with +y up; in OpenCV the same camera's +z column is world -z.
    assert torch.equal(c2w_cv[:3, 2], torch.tensor([0.0, 0.0, -1.0])) and torch.equal(
        c2w_cv[:3, 1], torch.tensor([0.0, -1.0, 0.0])
    )
    assert torch.equal(convert_c2w_opengl_opencv(c2w_cv), c2w_gl)
    # Chunk rows hold the world-to-camera matrix.
    scene = plain_scene("p", 2)
    c2w, _ = decode_chunk_cameras(scene.cameras)
    w2c = scene.cameras[:, 6:].reshape(2, 3, 4)
    assert torch.allclose(w2c[:, :, :3] @ c2w[:, :3, 3:] + w2c[:, :, 3:], torch.zeros(2, 3, 1), atol=1e-6)
    # Field of view: a centred fx of 0.5 sees 90 degrees; an off-centre principal point changes the angle.
    fov = field_of_view(torch.tensor([[0.5, 0.0, 0.5], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]))
    assert torch.allclose(fov.rad2deg(), torch.tensor([90.0, 90.0]))
    fov = field_of_view(torch.tensor([[0.5, 0.0, 0.0], [0.0, 0.5, 0.5], [0.0, 0.0, 1.0]]))
    assert fov[0].rad2deg().item() == pytest.approx(np.degrees(np.arctan(2.0)))
