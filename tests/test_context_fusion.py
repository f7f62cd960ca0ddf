"""Whole captures: context groups chosen along the capture, and the fusion of their Gaussians without
duplicates (pixelsplat_ns/per_scene/context_groups.py, fusion.py)."""

import re

import numpy as np
import pytest
import torch

from helpers.cli import SAMPLE, evaluate, gaussians, ns, train_command, train_run
from helpers.scenes import walk
from pixelsplat_ns.checkpoints import save_converted
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
from pixelsplat_ns.per_scene.capture_path import capture_order
from pixelsplat_ns.per_scene.context import ContextError
from pixelsplat_ns.per_scene.context_groups import (
    all_usable,
    choose_context_groups,
    group_is_usable,
    groups_along_path,
)
from pixelsplat_ns.per_scene.fusion import FusedScene, add_group


def test_groups_follow_the_capture_and_share_their_ends():
    c2w = walk(10)
    assert groups_along_path(c2w, 1, 2) == [(0, 9)]
    assert groups_along_path(c2w, 3, 2) == [(0, 3), (3, 6), (6, 9)]
    assert groups_along_path(c2w, 2, 3) == [(0, 2, 4), (4, 7, 9)]  # triples for a 3-view model
    assert groups_along_path(c2w, 9, 2) == [(i, i + 1) for i in range(9)]
    with pytest.raises(ContextError, match="10 training views.*the dataset has 10|take 11 training views"):
        groups_along_path(c2w, 10, 2)


def test_groups_are_spaced_by_distance_travelled_not_by_frame_count():
    c2w = walk(10)
    c2w[:6, 0, 3] = torch.linspace(0, 1, 6)  # six views bunched over the first metre, then 1 m steps
    c2w[6:, 0, 3] = torch.tensor([2.0, 3.0, 4.0, 6.0])  # 6 m in all: the halfway point is view 7
    assert groups_along_path(c2w, 2, 2) == [(0, 7), (7, 9)]


def name_order(count: int) -> list[int]:
    """The frame numbers of ``train_1 .. train_<count>`` in the string order of their names (nerfstudio-data's)."""
    return sorted(range(count), key=lambda i: f"train_{i + 1}")


@pytest.mark.parametrize("turn_degrees", [0.0, 2.0])
def test_a_capture_given_in_name_order_is_grouped_along_its_cameras(turn_degrees):
    c2w = walk(48, turn_degrees)
    shuffled = name_order(48)  # train_1, train_10, ..., train_19, train_2, train_20, ...
    capture = capture_order(c2w[shuffled])
    assert not capture.follows_given and capture.given_cost > 4 * capture.path_cost
    assert [shuffled[i] for i in capture.order] == list(range(48)), "the walk's own order, recovered"
    in_order = groups_along_path(c2w, 4, 2)
    assert [tuple(shuffled[i] for i in g) for g in groups_along_path(c2w[shuffled], 4, 2)] == in_order
    assert capture_order(c2w).follows_given, "a capture given in its path's order is kept as given"


def test_a_walk_out_and_back_keeps_its_own_order():
    """Out along x looking ahead, then back along the same places looking the other way: the frames at one place
    look opposite ways and are not neighbours on the path (TURN_PER_STEP_DEGREES)."""
    out = walk(12)
    back = walk(12).flip(0)
    back[:, :3, 0], back[:, :3, 2] = -back[:, :3, 0], -back[:, :3, 2]  # turned round: looking along -z's opposite
    c2w = torch.cat([out, back])
    assert capture_order(c2w).follows_given
    shuffled = torch.randperm(24, generator=torch.Generator().manual_seed(0)).tolist()
    found = [shuffled[i] for i in capture_order(c2w[shuffled]).order]
    # Along the walk one way or the other, with one turn on the spot: at the far end, or at the start (the same
    # loop, entered at the far end).
    jumps = [(a, b) for a, b in zip(found, found[1:]) if abs(a - b) != 1]
    assert jumps in ([], [(23, 0)], [(0, 23)]), found


def test_auto_takes_the_fewest_groups_whose_views_overlap():
    straight = walk(13)
    assert choose_context_groups(straight, "auto", 2, 30.0) == [(0, 12)]  # no turn, no baseline limit: one pair
    assert choose_context_groups(straight, "auto", 2, 30.0, max_baseline=4.0) == [(0, 4), (4, 8), (8, 12)]
    turning = walk(13, turn_degrees=4.5)  # 54 degrees over the capture: two groups within 30 degrees
    groups = choose_context_groups(turning, "auto", 2, 30.0)
    assert len(groups) == 2 and all(group_is_usable(turning, g, 30.0) for g in groups)


def pixel_aligned(
    depth: torch.Tensor, world_to_camera: torch.Tensor, intrinsics: torch.Tensor, opacity: float
) -> Gaussians:
    """One view's Gaussians, one per pixel at ``depth`` [h, w] along the pixel's ray."""
    height, width = depth.shape
    v, u = torch.meshgrid(torch.arange(height) + 0.5, torch.arange(width) + 0.5, indexing="ij")
    rays = torch.stack(
        [(u - intrinsics[0, 2]) / intrinsics[0, 0], (v - intrinsics[1, 2]) / intrinsics[1, 1], torch.ones_like(u)], -1
    )
    points = (rays * depth[..., None]).reshape(-1, 3)
    c2w = torch.linalg.inv(world_to_camera)
    means = points @ c2w[:3, :3].T + c2w[:3, 3]
    n = len(means)
    return Gaussians(
        means[None], (0.01 * torch.eye(3)).expand(1, n, 3, 3), torch.full((1, n), opacity), torch.zeros(1, n, 1, 3)
    )


def two_view_group(depths, opacities, x0: float, x1: float, height=6, width=8):
    """A group of two views looking down +z from x0 and x1, each with its own depth map [height, width] (the
    focal length and principal point scale with the size: every size sees the same field of view)."""
    intrinsics = torch.tensor([[width, 0, width / 2], [0, width, height / 2], [0, 0, 1]], dtype=torch.float32)
    w2c = torch.eye(4).repeat(2, 1, 1)
    w2c[0, 0, 3], w2c[1, 0, 3] = -x0, -x1
    parts = [pixel_aligned(d, w2c[i], intrinsics, o) for i, (d, o) in enumerate(zip(depths, opacities))]
    return Gaussians.concatenate(parts), w2c, intrinsics.expand(2, 3, 3), height, width


def test_a_surface_seen_by_two_groups_is_kept_once_the_more_opaque():
    wall = torch.full((6, 8), 10.0)
    scene = FusedScene(tolerance=0.05)
    add_group(scene, *two_view_group([wall, wall], [0.5, 0.5], 0.0, 0.5))
    # The next group shares the view at x = 0.5 and sees the same wall, more opaquely from its second view.
    add_group(scene, *two_view_group([wall * 1.02, wall], [0.4, 0.9], 0.5, 1.0))
    kept, predicted = scene.counts()
    assert predicted == 4 * 48
    first, second = scene.keep
    # Group 2's first view agrees within 5% and is less opaque: dropped where it lands on group 1's pixels.
    assert not second[:48].any()
    # Its second view is more opaque: it replaces group 1's Gaussians where it lands on them, and is kept.
    assert second[48:].all() and not first.all()
    assert kept < predicted and len(scene.gaussians().means[0]) == kept


def test_surfaces_that_disagree_are_both_kept():
    scene = FusedScene(tolerance=0.05)
    add_group(scene, *two_view_group([torch.full((6, 8), 10.0)] * 2, [0.5, 0.5], 0.0, 0.5))
    add_group(scene, *two_view_group([torch.full((6, 8), 5.0)] * 2, [0.9, 0.9], 0.5, 1.0))  # a nearer surface
    assert all(keep.all() for keep in scene.keep)


def test_tolerance_zero_keeps_all_but_exact_agreement():
    wall = torch.full((6, 8), 10.0)
    scene = FusedScene(tolerance=0.0)
    add_group(scene, *two_view_group([wall, wall], [0.5, 0.5], 0.0, 0.5))
    add_group(scene, *two_view_group([wall * 1.01, wall * 1.01], [0.4, 0.4], 0.5, 1.0))
    assert scene.keep[1].all()


def test_a_pixel_gives_way_only_to_a_ray_that_is_kept():
    """A new ray that beats one earlier surface and loses to another is dropped, and the surface it beat stays:
    whatever the order the earlier views are visited in, a surface never vanishes for a dropped ray."""
    scene = FusedScene(tolerance=1.0)
    near, far, between = torch.full((6, 8), 1.0), torch.full((6, 8), 3.0), torch.full((6, 8), 1.8)
    add_group(scene, *two_view_group([near, near], [0.3, 0.3], 0.0, 0.5))
    add_group(scene, *two_view_group([far, far], [0.9, 0.9], 0.0, 0.5))  # a factor 3 apart: both kept
    # Within a factor 2 of both: more opaque than the near surface, less than the far one.
    add_group(scene, *two_view_group([between, between], [0.5, 0.5], 0.0, 0.5))
    first, second, third = scene.keep
    assert first.all() and second.all() and not third.any()
    assert scene.counts() == (2 * 96, 3 * 96)


def test_groups_of_different_image_sizes_fuse_pixel_by_pixel():
    """Each earlier view is indexed with its own size: a 12 x 16 group against a 6 x 8 one."""
    wall = torch.full((6, 8), 10.0)
    scene = FusedScene(tolerance=0.05)
    add_group(scene, *two_view_group([wall, wall], [0.5, 0.5], 0.0, 0.5))
    big = torch.full((12, 16), 10.0)
    add_group(scene, *two_view_group([big, big], [0.4, 0.4], 0.5, 1.0, height=12, width=16))
    first, second = scene.keep
    assert first.all(), "the less opaque big group drops nothing of the small one"
    assert not second[:192].any(), "the big group's first view, where the small group's second one is, is dropped"
    assert second[192:].reshape(12, 16)[:, -1].all(), "what only the big group's second view sees is kept"


def three_sample_group(depths, opacities, x0: float, x1: float) -> tuple:
    """``two_view_group`` with three Gaussians per pixel ray: ``depths``/``opacities`` give, per sample, the
    wall depth [h, w] and opacity of both views (the samples of a ray consecutive, as pixelSplat orders them)."""
    per_sample = [two_view_group([d, d], [o, o], x0, x1) for d, o in zip(depths, opacities)]
    interleave = lambda field: torch.stack([getattr(g[0], field)[0] for g in per_sample], 1).flatten(0, 1)[None]  # noqa: E731
    gaussians = Gaussians(*(interleave(f) for f in ("means", "covariances", "opacities", "harmonics")))
    return (gaussians, *per_sample[0][1:])


def test_a_duplicate_ray_is_dropped_whole_with_its_weaker_samples():
    """The ray is the unit: a new ray whose surface (opacity-weighted mean depth: 12.3 here, against the
    earlier pixels' 11.1) lands on an earlier surface is dropped with all its samples, even those far from that
    surface; and a more opaque new ray (combined opacity) drops all of the earlier pixel's."""
    wall = torch.full((6, 8), 10.0)
    scene = FusedScene(tolerance=0.2)
    add_group(scene, *three_sample_group([wall, wall * 0.5, wall * 2], [0.5, 0.2, 0.2], 0.0, 0.5))
    add_group(scene, *three_sample_group([wall * 1.02, wall * 0.3, wall * 3], [0.4, 0.1, 0.1], 0.5, 1.0))
    first, second = scene.keep
    assert len(second) == 2 * 48 * 3
    # Group 2's first view sees group 1's second view's pixels exactly: every one of its rays is dropped whole.
    assert not second[: 48 * 3].any()
    # Rays are kept or dropped whole, in both groups.
    for keep in (first, second):
        rays = keep.reshape(-1, 3)
        assert (rays.all(-1) | ~rays.any(-1)).all()
    scene = FusedScene(tolerance=0.2)
    add_group(scene, *three_sample_group([wall, wall * 0.5, wall * 2], [0.5, 0.2, 0.2], 0.0, 0.5))
    add_group(scene, *three_sample_group([wall * 1.02, wall * 0.3, wall * 3], [0.9, 0.1, 0.1], 0.5, 1.0))
    first, second = scene.keep
    assert second.all()
    assert not first.reshape(2, 48, 3)[1].any(), "group 1's second view is seen by the stronger shared view"


# ------------------------------------------------------------------------------------- through ns-train


def log_line(config, pattern: str) -> re.Match:
    """The first match of ``pattern`` in what ns-train logged for the run (its stdout, kept by ``train_log``)."""
    text = " ".join((config.parent / "train.log").read_text().split())
    found = re.search(pattern, text)
    assert found, text[-3000:]
    return found


def train_log(data, out, *flags):
    """``train`` for no steps, keeping what ns-train logged as train.log beside the run's config.yml."""
    config, result = train_run(data, out, 0, *flags)
    (config.parent / "train.log").write_text(result.stdout)
    return config


@pytest.mark.e2e
def test_several_pairs_along_the_sample_capture_fused_and_concatenated(tmp_path):
    pairs = ["--pipeline.datamanager.context-pairs", "3"]
    fused = train_log(SAMPLE, tmp_path / "fused", *pairs)
    concatenated = train_log(
        SAMPLE, tmp_path / "concatenated", *pairs, "--pipeline.model.context-fusion", "concatenate"
    )
    groups = log_line(fused, r"context groups: \((\d+) (\d+)\), \((\d+) (\d+)\), \((\d+) (\d+)\)")
    ends = [int(g) for g in groups.groups()]
    assert ends[0] == 0 and ends[1] == ends[2] and ends[3] == ends[4]  # along the capture, sharing their ends
    kept = log_line(fused, r"kept (\d+) of (\d+) Gaussians")
    total = 3 * 2 * 64 * 112 * 3  # three pairs of 64 x 112 context images (SMALL_CONTEXT), 3 Gaussians per pixel
    assert int(kept.group(2)) == total and int(kept.group(1)) < total
    assert len(gaussians(fused)["means"]) == int(kept.group(1))
    assert len(gaussians(concatenated)["means"]) == total
    # ns-eval works on the fused scene unchanged, and fusion loses nothing that matters against concatenation
    # (this short capture is best covered by its single widest pair; docs/captures.md for longer ones).
    assert evaluate(fused)["psnr"] > evaluate(concatenated)["psnr"] - 0.5


@pytest.mark.e2e
def test_a_capture_named_out_of_order_gets_the_groups_of_its_cameras_path(tmp_path):
    """The sample capture's frames renamed train_1 .. train_21: nerfstudio-data sorts them as strings; the
    groups are those of the frames in capture order, and the log says the names' order is not the path."""
    import json
    import shutil

    renamed = tmp_path / "renamed"
    (renamed / "images").mkdir(parents=True)
    transforms = json.loads((SAMPLE / "transforms.json").read_text())
    for i, frame in enumerate(transforms["frames"]):
        shutil.copy(SAMPLE / frame["file_path"], renamed / "images" / f"train_{i + 1}.jpg")
        frame["file_path"] = f"images/train_{i + 1}.jpg"
    (renamed / "transforms.json").write_text(json.dumps(transforms))
    flags = ["--pipeline.datamanager.context-pairs", "3", "nerfstudio-data", "--eval-mode", "all"]
    shuffled = train_log(renamed, tmp_path / "run", *flags)
    views = r"context groups: (.*?) pixelsplat fused"  # the views' names, with rich's wrapping in between
    renamed_frames = [int(n) - 1 for n in re.findall(r"train_(\d+)\.jpg", log_line(shuffled, views).group(1))]
    # The frames in capture order (the sample's own, by frame number) give these groups; nerfstudio's
    # re-centring and scaling of the poses keeps their order and proportions.
    c2w = torch.tensor([frame["transform_matrix"] for frame in transforms["frames"]])[:, :3]
    in_order = groups_along_path(c2w, 3, 2)
    assert capture_order(c2w).follows_given and sorted(renamed_frames) == sorted({i for g in in_order for i in g})
    log_line(shuffled, r"the training images' order \(train_1\.jpg, train_10\.jpg, .*?\) is not the path")


@pytest.mark.e2e
def test_a_three_view_encoder_takes_triples_through_the_same_flag(tmp_path):
    config = tiny()
    config.num_context_views = 3
    save_converted(tmp_path / "three.pt", config, PixelSplatEncoder(config).state_dict(), (64, 64))
    run = train_log(
        SAMPLE,
        tmp_path / "outputs",
        "--pipeline.model.encoder-checkpoint",
        tmp_path / "three.pt",
        "--pipeline.datamanager.context-pairs",
        "2",
    )
    log_line(run, r"context groups: \(0 \d+ \d+\), \(\d+ \d+ \d+\)")
    assert int(log_line(run, r"kept (\d+) of (\d+) Gaussians").group(2)) == 2 * 3 * 64 * 112 * 3


@pytest.mark.e2e
def test_auto_spaces_its_groups_by_the_triangulated_depth(tmp_path):
    run = train_log(SAMPLE, tmp_path / "outputs", "--pipeline.datamanager.context-pairs", "auto")
    # (rich wraps the line and may put the source location in the middle of it)
    found = log_line(
        run,
        r"context-pairs auto: the scene's median depth is ([\d.e+-]+) \(triangulated from .*?\), "
        r"so groups at most ([\d.e+-]+) apart .*?: (\d+) group",
    )
    depth, baseline = float(found.group(1)), float(found.group(2))
    assert depth > 0 and baseline == pytest.approx(0.3 * depth, rel=1e-2)


@pytest.mark.e2e
@pytest.mark.parametrize(
    "flags, message",
    [
        (["--pipeline.datamanager.context-views", "0", "5", "--pipeline.datamanager.context-pairs", "2"], "not both"),
        (["--pipeline.datamanager.context-pairs", "0"], "context-pairs 0: give 1 or more"),
        (["--pipeline.datamanager.context-pairs", "-1"], "context-pairs -1: give 1 or more"),
        (
            ["--pipeline.datamanager.context-pairs", "auto", "--pipeline.datamanager.max-baseline-to-depth", "-1"],
            "max-baseline-to-depth -1: give a positive share",
        ),
        (
            ["--pipeline.datamanager.context-pairs", "2", "--pipeline.model.fusion-depth-tolerance", "0"],
            "fusion-depth-tolerance 0: give a finite positive",
        ),
        (
            ["--pipeline.datamanager.context-pairs", "2", "--pipeline.model.fusion-depth-tolerance", "nan"],
            "fusion-depth-tolerance nan: give a finite positive",
        ),
        (
            ["--pipeline.datamanager.context-pairs", "2", "--pipeline.model.fusion-depth-tolerance", "inf"],
            "fusion-depth-tolerance inf: give a finite positive",
        ),
    ],
)
def test_context_group_flags_no_scene_can_have_are_refused(flags, message, tmp_path):
    result = ns(*train_command(SAMPLE, tmp_path / "outputs", *flags), cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0 and message in " ".join(output.split()), output[-2000:]
    assert "Traceback" not in output


def test_auto_says_when_no_split_is_usable():
    c2w = walk(6, turn_degrees=40.0)  # every neighbouring pair turns more than 30 degrees
    groups = choose_context_groups(c2w, "auto", 2, 30.0)
    assert groups == [(i, i + 1) for i in range(5)] and not all_usable(c2w, groups, 30.0)


def test_triangulated_features_give_the_true_depth():
    """``auto`` spaces its groups by the triangulated depth: on generated rooms (true depth known) the
    features that survive the checks lie at their true depth, and a view pair without a baseline gives none."""
    from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv, denormalize_intrinsics
    from pixelsplat_ns.data.synthetic import SyntheticConfig, random_scene, render
    from pixelsplat_ns.per_scene.scene_depth import MIN_POINTS, median_depth, triangulate

    for seed in (1, 3):
        room, c2w, intrinsics = random_scene(seed, 0, SyntheticConfig(height=144, width=256))
        views = [render(room, c2w[i], intrinsics, 144, 256) for i in (0, 20)]
        images = [(colour * 255).round().astype("uint8") for colour, _ in views]
        cameras = convert_c2w_opengl_opencv(torch.from_numpy(c2w[[0, 20]]).double())[:, :3]  # nerfstudio's axes
        pixels = denormalize_intrinsics(torch.as_tensor(intrinsics).double(), 256, 144).expand(2, 3, 3)
        points, depths = triangulate(images, cameras, pixels)
        assert len(points) >= MIN_POINTS
        truth = views[0][1][points[:, 1].astype(int), points[:, 0].astype(int)]
        ratio = depths[0] / truth
        assert abs(float(np.median(ratio)) - 1) < 0.05, ratio
        assert (
            median_depth([(images, cameras * torch.tensor([1, 1, 1, 1000.0]), pixels)]) > 100
        )  # scales with the scene
        assert median_depth([([images[0], images[0]], cameras[[0, 0]], pixels)]) is None  # no baseline: no depth


def test_large_photos_are_matched_downscaled_at_the_same_depth(monkeypatch):
    """Photos over MATCH_LONG_SIDE are matched downscaled: positions come back at the photo's own size, at the
    same depths (here a 288 x 512 render matched at a long side of 256)."""
    from pixelsplat_ns.core.conventions import convert_c2w_opengl_opencv, denormalize_intrinsics
    from pixelsplat_ns.data.synthetic import SyntheticConfig, random_scene, render
    from pixelsplat_ns.per_scene import scene_depth

    room, c2w, intrinsics = random_scene(1, 0, SyntheticConfig(height=288, width=512))
    views = [render(room, c2w[i], intrinsics, 288, 512) for i in (0, 20)]
    images = [(colour * 255).round().astype("uint8") for colour, _ in views]
    cameras = convert_c2w_opengl_opencv(torch.from_numpy(c2w[[0, 20]]).double())[:, :3]
    pixels = denormalize_intrinsics(torch.as_tensor(intrinsics).double(), 512, 288).expand(2, 3, 3)
    monkeypatch.setattr(scene_depth, "MATCH_LONG_SIDE", 256)
    points, depths = scene_depth.triangulate(images, cameras, pixels)
    assert len(points) >= scene_depth.MIN_POINTS and points[:, 0].max() > 256  # at the photo's own size
    truth = views[0][1][points[:, 1].astype(int), points[:, 0].astype(int)]
    assert abs(float(np.median(depths[0] / truth)) - 1) < 0.05
