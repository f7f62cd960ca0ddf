"""Implausible cameras are refused, saying what is wrong and what format is expected; plausible ones pass,
and the relative thresholds judge a scene alike in any unit."""

import pytest
import torch

from pixelsplat_ns.core.bounds import at_one_position
from pixelsplat_ns.core.camera_checks import CameraError, check_intrinsics, check_rotation
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.core.views import DegenerateBaseline, prepare_views
from pixelsplat_ns.per_scene.context import ContextError, check_cameras


def test_plausible_intrinsics_pass():
    check_intrinsics(220.0, 220.0, 128.0, 72.0, 256, 144, "frame a")  # the sample scene's
    check_intrinsics(5000.0, 5000.0, 960.0, 540.0, 1920, 1080, "frame b")  # a telephoto
    check_intrinsics(300.0, 300.0, 350.0, -50.0, 256, 144, "frame c")  # an off-centre principal point near the image


def test_normalized_intrinsics_are_named():
    with pytest.raises(
        CameraError, match=r"frame a: fl_x=0.86.*179 x 178 degree.*look normalized.*times the width \(256\)"
    ):
        check_intrinsics(0.86, 1.53, 0.5, 0.5, 256, 144, "frame a")


def test_intrinsics_of_another_resolution_are_named():
    with pytest.raises(CameraError, match=r"principal point \(960, 540\).*another resolution \(about 1920x1080"):
        check_intrinsics(1200.0, 1200.0, 960.0, 540.0, 256, 144, "frame a")


def test_focal_lengths_in_the_wrong_unit_or_far_from_square_pixels_are_named():
    check_intrinsics(200000.0, 200000.0, 960.0, 540.0, 1920, 1080, "frame a")  # 0.55 degrees: a 4000 mm lens
    with pytest.raises(CameraError, match=r"frame a: fl_x=1e\+09.*narrower than any lens.*in pixels"):
        check_intrinsics(1e9, 1e9, 370.5, 250.0, 741, 500, "frame a")
    check_intrinsics(600.0, 300.0, 370.5, 250.0, 741, 500, "frame b")  # an anamorphic 2x squeeze
    with pytest.raises(CameraError, match=r"frame b: fl_x=995 and fl_y=300 differ 3.32-fold"):
        check_intrinsics(995.0, 300.0, 370.5, 250.0, 741, 500, "frame b")


def test_rotations_must_be_rotations():
    check_rotation(torch.eye(3) + 1e-5, "frame a")
    with pytest.raises(CameraError, match="not a rotation .*det R = 8"):
        check_rotation(2 * torch.eye(3), "frame a")
    with pytest.raises(CameraError, match="det R = -1.*mirrored"):
        check_rotation(torch.diag(torch.tensor([1.0, 1.0, -1.0])), "frame a")


@pytest.mark.parametrize("unit", [1e-6, 1e-3, 1.0, 1e3, 1e6])
def test_one_position_is_judged_relative_to_the_scene(unit):
    origins = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.1, 0.0]], dtype=torch.float64) * unit
    assert not at_one_position(float((origins[0] - origins[1]).norm()), origins)
    assert at_one_position(0.0, origins)
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[:, :3, 3] = origins.float()
    views, scale = prepare_views(torch.rand(2, 3, 16, 16), c2w, torch.eye(3).repeat(2, 1, 1), [0, 1])
    assert scale == pytest.approx(float((origins[0] - origins[1]).norm()), rel=1e-5)
    same = c2w.clone()
    same[1] = same[0]
    with pytest.raises(DegenerateBaseline):
        prepare_views(torch.rand(2, 3, 16, 16), same, torch.eye(3).repeat(2, 1, 1), [0, 1])


def test_one_image_says_to_add_views_not_to_change_the_split():
    one = torch.eye(4)[:3][None]
    with pytest.raises(ContextError, match="found 1: add views$"):
        check_cameras(one, ["PERSPECTIVE"], ["a"], total=1)
    with pytest.raises(ContextError, match="the dataset has 5 images.*--eval-mode all"):
        check_cameras(one, ["PERSPECTIVE"], ["a"], total=5)


@pytest.mark.usefixtures("unchecked_annotations")  # ill-typed input on purpose: prepare_views's own errors
@pytest.mark.parametrize(
    "change, message",
    [
        (dict(images=torch.rand(3, 3, 16, 16)), r"extrinsics must have shape \[3, 4, 4\] \(one per image\)"),
        (dict(images=torch.rand(0, 3, 16, 16), extrinsics=torch.eye(4)[:0], intrinsics=torch.eye(3)[:0]), "no views"),
        (dict(context=[0, 5]), r"context positions \[0, 5\] out of range for 2 views"),
        (dict(context=[]), "context must be a list, range or tensor of view positions"),
        (dict(context=[0.7, 1.9]), "context must be a list, range or tensor of view positions"),
        (dict(context=None), "context must be a list, range or tensor of view positions"),
        (dict(context=torch.tensor([True, False, True])), "a context mask needs one entry per view"),
        (dict(intrinsics=torch.tensor([[0.0, 0, 0.5], [0, 0.9, 0.5], [0, 0, 1]]).repeat(2, 1, 1)), "focal lengths"),
        (dict(intrinsics=torch.tensor([[-0.9, 0, 0.5], [0, 0.9, 0.5], [0, 0, 1]]).repeat(2, 1, 1)), "focal lengths"),
        (dict(extrinsics=torch.eye(4, dtype=torch.long).repeat(2, 1, 1)), "extrinsics must be floating point"),
        (dict(images=torch.rand(2, 3, 0, 16)), "not empty"),
        (dict(images=torch.rand(2, 3, 16, 16).numpy()), "images must be a torch tensor"),
        (dict(index=torch.arange(5)), r"index must hold one frame number per image \(2\)"),
        (dict(nan_pose=True), "extrinsics contain NaN"),
        (
            dict(intrinsics=torch.tensor([[400.0, 0, 320], [0, 400, 240], [0, 0, 1]]).repeat(2, 1, 1)),
            "look like pixels",
        ),
    ],
)
def test_prepare_views_refuses_what_it_cannot_use(change, message):
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, 0, 3] = 0.5
    inputs = dict(
        images=torch.rand(2, 3, 16, 16),
        extrinsics=c2w,
        intrinsics=torch.tensor([[0.9, 0, 0.5], [0, 0.9, 0.5], [0, 0, 1]]).repeat(2, 1, 1),
        context=[0, 1],
    )
    if change.pop("nan_pose", False):
        inputs["extrinsics"] = c2w.clone()
        inputs["extrinsics"][0, 0, 3] = float("nan")
    inputs.update(change)
    with pytest.raises(InputError, match=message):
        prepare_views(
            inputs["images"], inputs["extrinsics"], inputs["intrinsics"], inputs["context"], index=inputs.get("index")
        )


def test_context_as_a_mask_or_a_tuple_picks_the_same_views_as_positions():
    c2w = torch.eye(4).repeat(3, 1, 1)
    c2w[:, 0, 3] = torch.tensor([0.0, 0.3, 0.6])
    images, intrinsics = torch.rand(3, 3, 16, 16), torch.eye(3).repeat(3, 1, 1)
    _, expected = prepare_views(images, c2w, intrinsics, [0, 2])
    for context in (torch.tensor([True, False, True]), (0, 2), range(0, 3, 2), [-3, -1]):
        views, scale = prepare_views(images, c2w, intrinsics, context)
        assert scale == pytest.approx(expected)


def test_views_to_a_dtype_keeps_the_index_integer():
    c2w = torch.eye(4).repeat(2, 1, 1)
    c2w[1, 0, 3] = 0.5
    views, _ = prepare_views(
        torch.rand(2, 3, 16, 16), c2w, torch.eye(3).repeat(2, 1, 1), [0, 1], index=torch.tensor([3, 7])
    )
    converted = views.to(torch.float64)
    assert converted.images.dtype == converted.near.dtype == torch.float64
    assert converted.index.dtype == torch.int64 and converted.index.tolist() == [3, 7]
