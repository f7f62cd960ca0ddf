"""Camera geometry: rays, epipolar segment clipping, triangulation."""

import math

import torch

from pixelsplat_ns.core.geometry import (
    image_grid,
    project_camera_points,
    project_segments,
    triangulate_depth,
    world_rays,
)

K = torch.tensor([[0.8, 0.0, 0.5], [0.0, 0.8, 0.5], [0.0, 0.0, 1.0]])


def pose(position, yaw=0.0):
    c2w = torch.eye(4)
    c, s = math.cos(yaw), math.sin(yaw)
    c2w[:3, :3] = torch.tensor([[c, 0, s], [0, 1, 0], [-s, 0, c]])
    c2w[:3, 3] = torch.tensor(position)
    return c2w


def project_world(point, c2w, intrinsics=K):
    w2c = torch.linalg.inv(c2w)
    return project_camera_points(w2c[:3, :3] @ point + w2c[:3, 3], intrinsics)


def test_image_grid_and_rays_pass_through_pixel_centres():
    grid = image_grid(4, 8)
    assert grid.shape == (4, 8, 2)
    torch.testing.assert_close(grid[0, 0], torch.tensor([0.5 / 8, 0.5 / 4]))
    c2w = pose([0.3, -0.2, 0.1], yaw=0.4)
    origins, directions = world_rays(grid, c2w, K)
    torch.testing.assert_close(directions.norm(dim=-1), torch.ones(4, 8))
    point = origins[2, 5] + 3.0 * directions[2, 5]
    torch.testing.assert_close(project_world(point, c2w), grid[2, 5], atol=1e-6, rtol=0)


def test_segment_inside_the_image_keeps_its_near_and_far_endpoints():
    source, other = pose([0.0, 0.0, 0.0]), pose([0.5, 0.0, 0.0])
    origin, direction = world_rays(torch.tensor([0.5, 0.5]), source, K)
    start, end, visible = project_segments(origin, direction, other, K, torch.tensor(2.0), torch.tensor(50.0))
    assert bool(visible)
    torch.testing.assert_close(start, project_world(origin + 2.0 * direction, other))
    torch.testing.assert_close(end, project_world(origin + 50.0 * direction, other))


def test_segment_is_clipped_at_the_image_border():
    source, other = pose([0.0, 0.0, 0.0]), pose([2.0, 0.0, 0.0])
    origin, direction = world_rays(torch.tensor([0.5, 0.5]), source, K)
    # At depth 1 the point projects far left of the other image (x < 0); at depth 100 it is inside.
    assert project_world(origin + 1.0 * direction, other)[0] < 0
    start, end, visible = project_segments(origin, direction, other, K, torch.tensor(1.0), torch.tensor(100.0))
    assert bool(visible)
    assert abs(float(start[0])) < 1e-5, "the segment must start on the left border x = 0"
    torch.testing.assert_close(end, project_world(origin + 100.0 * direction, other))
    # The clipped start lies on the epipolar line: it is the projection of some point of the ray.
    points = origin + torch.linspace(1.0, 100.0, 20000)[:, None] * direction
    w2c = torch.linalg.inv(other)
    line = project_camera_points(points @ w2c[:3, :3].T + w2c[:3, 3], K)
    assert (line - start).norm(dim=-1).min() < 1e-3


def test_segment_behind_the_camera_is_clipped_or_invisible():
    source = pose([0.0, 0.0, 0.0])
    facing = pose([1.0, 0.0, 5.0], yaw=math.pi)  # looks back towards the source
    origin, direction = world_rays(torch.tensor([0.5, 0.5]), source, K)
    # Depths below 5 are in front of the other camera, deeper ones behind it; on the way the projection runs
    # off the right border (x = 1) at depth 3.4.
    start, end, visible = project_segments(origin, direction, facing, K, torch.tensor(1.0), torch.tensor(20.0))
    assert bool(visible)
    torch.testing.assert_close(start, torch.tensor([0.7, 0.5]), atol=1e-5, rtol=0)
    torch.testing.assert_close(end, torch.tensor([1.0, 0.5]), atol=1e-5, rtol=0)
    # A ray that lies entirely behind a camera is not seen at all.
    away = world_rays(torch.tensor([0.5, 0.5]), pose([0.0, 0.0, 0.0], yaw=math.pi), K)
    _, _, seen = project_segments(*away, pose([3.0, 0.0, 0.0]), K, torch.tensor(1.0), torch.tensor(30.0))
    assert not bool(seen)


def test_epipolar_sample_triangulates_to_the_true_distance():
    source, other = pose([0.0, 0.0, 0.0]), pose([0.6, 0.1, -0.2], yaw=-0.2)
    origin, direction = world_rays(torch.tensor([0.41, 0.57]), source, K)
    true_depth = 7.3
    xy = project_world(origin + true_depth * direction, other)
    other_origin, other_direction = world_rays(xy, other, K)
    depth = triangulate_depth(origin, direction, other_origin, other_direction)
    assert abs(float(depth) - true_depth) < 1e-3


def test_triangulation_of_parallel_rays_is_infinite():
    origin = torch.zeros(3)
    direction = torch.tensor([0.0, 0.0, 1.0])
    assert math.isinf(float(triangulate_depth(origin, direction, torch.tensor([1.0, 0.0, 0.0]), direction)))


def test_matrix_to_quaternion_gives_wxyz_and_takes_an_empty_batch():
    from pixelsplat_ns.core.conventions import matrix_to_quaternion

    half = math.radians(30.0)
    about_z = torch.tensor(
        [[math.cos(2 * half), -math.sin(2 * half), 0.0], [math.sin(2 * half), math.cos(2 * half), 0.0], [0.0, 0.0, 1.0]]
    )
    quaternion = matrix_to_quaternion(torch.stack([torch.eye(3), about_z]))
    expected = torch.tensor([[1.0, 0.0, 0.0, 0.0], [math.cos(half), 0.0, 0.0, math.sin(half)]])
    torch.testing.assert_close(quaternion * quaternion[:, :1].sign(), expected)
    assert matrix_to_quaternion(torch.zeros(0, 3, 3)).shape == (0, 4)
    assert matrix_to_quaternion(torch.zeros(2, 0, 3, 3)).shape == (2, 0, 4)
