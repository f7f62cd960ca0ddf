"""Small random scenes and camera rigs for the renderer, encoder and per-scene tests; the per-scene model holding
such Gaussians and a nerfstudio camera to render them (those two load nerfstudio when called)."""

import math

import torch

from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.render.projection import quat_scale_to_covar


def random_scene(n=250, cameras=2, seed=0, dtype=torch.float32, sh_degree=None, per_camera_colors=False):
    """``rasterize``'s keyword arguments for ``n`` random Gaussians about 3 in front of ``cameras`` cameras
    (OpenCV world-to-camera ``viewmats`` [C, 4, 4], pixel ``Ks`` [C, 3, 3] for images of about 75 x 45); colours
    [N, 3] or, with ``sh_degree``, SH coefficients [N, 25, 3] (with ``per_camera_colors``, one set per camera)."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(n, 3, generator=g, dtype=dtype) * 0.7 + torch.tensor([0.0, 0.0, 3.0], dtype=dtype)
    quats = torch.randn(n, 4, generator=g, dtype=dtype)
    scales = torch.rand(n, 3, generator=g, dtype=dtype) * 0.15 + 0.01
    opacities = torch.rand(n, generator=g, dtype=dtype)
    if sh_degree is None:
        shape = (cameras, n, 3) if per_camera_colors else (n, 3)
        colors = torch.rand(*shape, generator=g, dtype=dtype)
    else:
        shape = (cameras, n, 25, 3) if per_camera_colors else (n, 25, 3)
        colors = torch.randn(*shape, generator=g, dtype=dtype) * 0.3
    # Cameras around the scene; the second has an off-centre principal point and different focal lengths.
    viewmats = torch.eye(4, dtype=dtype).repeat(cameras, 1, 1)
    for c in range(1, cameras):
        angle = 0.2 * c
        viewmats[c, 0, 0], viewmats[c, 0, 2] = torch.cos(torch.tensor(angle)), torch.sin(torch.tensor(angle))
        viewmats[c, 2, 0], viewmats[c, 2, 2] = -torch.sin(torch.tensor(angle)), torch.cos(torch.tensor(angle))
        viewmats[c, :3, 3] = torch.tensor([0.3 * c, -0.1, 0.2])
    Ks = torch.tensor([[60.0, 0, 37], [0, 64.0, 22], [0, 0, 1]], dtype=dtype).repeat(cameras, 1, 1)
    if cameras > 1:
        Ks[1] = torch.tensor([[45.0, 0, 20.5], [0, 52.0, 30.0], [0, 0, 1]], dtype=dtype)
    return dict(means=means, quats=quats, scales=scales, opacities=opacities, colors=colors, viewmats=viewmats, Ks=Ks)


def random_gaussians(n=250, seed=0) -> Gaussians:
    """``random_scene``'s Gaussians as the encoder's output (batch 1, covariances, degree-4 SH)."""
    scene = random_scene(n=n, seed=seed, sh_degree=4)
    covariances = quat_scale_to_covar(scene["quats"], scene["scales"])
    return Gaussians(scene["means"][None], covariances[None], scene["opacities"][None], scene["colors"][None])


def cameras(b=1, v=2, baseline=0.4):
    """``b`` rigs of ``v`` cameras ``baseline`` apart along x, slightly turned towards each other: OpenCV
    camera-to-world extrinsics [b, v, 4, 4], normalized intrinsics [b, v, 3, 3], near 0.5 and far 50 [b, v]."""
    extrinsics = torch.eye(4).repeat(b, v, 1, 1)
    for i in range(v):
        angle = 0.05 * (i - (v - 1) / 2)
        extrinsics[:, i, :3, :3] = torch.tensor(
            [[math.cos(angle), 0, math.sin(angle)], [0, 1, 0], [-math.sin(angle), 0, math.cos(angle)]]
        )
        extrinsics[:, i, :3, 3] = torch.tensor([baseline * (i - (v - 1) / 2), 0.02 * i, 0.0])
    intrinsics = torch.tensor([[0.86, 0, 0.52], [0, 0.9, 0.47], [0, 0, 1.0]]).repeat(b, v, 1, 1)
    return extrinsics, intrinsics, torch.full((b, v), 0.5), torch.full((b, v), 50.0)


def walk(n: int, turn_degrees: float = 0.0) -> torch.Tensor:
    """OpenGL camera-to-world [n, 3, 4] of a camera stepping 1 along +x per view, turning about y by
    ``turn_degrees`` per view (the context-group tests' captures)."""
    c2w = torch.eye(4)[:3].repeat(n, 1, 1)
    for i in range(n):
        angle = torch.deg2rad(torch.tensor(turn_degrees * i))
        c2w[i, 0, 0], c2w[i, 0, 2], c2w[i, 2, 0], c2w[i, 2, 2] = angle.cos(), angle.sin(), -angle.sin(), angle.cos()
        c2w[i, 0, 3] = float(i)
    return c2w


# OpenGL camera-to-world [3, 4] of a camera at the origin looking along +z, at random_scene's Gaussians.
LOOKING_AT_THE_SCENE = torch.diag(torch.tensor([1.0, -1.0, -1.0, 1.0]))[:3]


def nerfstudio_camera(camera_to_world: torch.Tensor = LOOKING_AT_THE_SCENE, **options):
    """One 64 x 48 nerfstudio camera (focal length 40 pixels, principal point (32, 24)) with OpenGL
    camera-to-world ``camera_to_world`` [3, 4]; ``options`` go to ``Cameras`` (``camera_type``, ...)."""
    from nerfstudio.cameras.cameras import Cameras  # here, not at the top: the renderer tests never load nerfstudio

    return Cameras(
        camera_to_worlds=camera_to_world[None], fx=40.0, fy=40.0, cx=32.0, cy=24.0, width=64, height=48, **options
    )


def per_scene_model(gaussians: Gaussians, **options):
    """The per-scene model (``PixelSplatModelConfig(**options)``, scene box [-1, 1]^3) holding ``gaussians``, near
    plane 0.01, in eval mode: what ``get_outputs`` renders for the viewer, ns-eval and ns-render."""
    from nerfstudio.data.scene_box import SceneBox

    from pixelsplat_ns.per_scene.config import PixelSplatModelConfig

    model = PixelSplatModelConfig(**options).setup(
        scene_box=SceneBox(torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=2
    )
    model.set_gaussians(gaussians)
    model.set_near_plane(0.01)
    return model.eval()
