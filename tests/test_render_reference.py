"""The torch and numba rasterizers against a literal oracle (gsplat's pure-torch projection and SH, then the
CUDA kernel's per-pixel loop) on random scenes that exercise every rule at once."""

import pytest
import torch
from gsplat.cuda._torch_impl import _fully_fused_projection, _quat_scale_to_covar_preci, _spherical_harmonics

from helpers.reference_rasterizer import reference_rasterize
from helpers.scenes import random_scene
from pixelsplat_ns.render import compositing, rasterize
from pixelsplat_ns.render.projection import project_gaussians, quat_scale_to_covar
from pixelsplat_ns.render.spherical_harmonics import evaluate_sh

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)

BACKENDS = ("torch", "numba")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("render_mode", ["RGB", "D", "ED", "RGB+D", "RGB+ED"])
@pytest.mark.parametrize("with_background", [False, True])
def test_matches_oracle_render_modes(render_mode, with_background, backend):
    scene = random_scene(seed=1)
    backgrounds = torch.rand(2, 3) if with_background else None
    kwargs = dict(width=75, height=45, backgrounds=backgrounds, render_mode=render_mode)
    image, alpha, _ = rasterize(**scene, **kwargs, backend=backend)
    ref_image, ref_alpha = reference_rasterize(**scene, **kwargs)
    assert image.shape == ref_image.shape and alpha.shape == (2, 45, 75, 1)
    assert (alpha > 0.5).float().mean() > 0.2, "scene should cover a good part of the image"
    torch.testing.assert_close(alpha, ref_alpha, atol=2e-5, rtol=0)
    if render_mode.startswith("RGB"):
        torch.testing.assert_close(image[..., :3], ref_image[..., :3], atol=2e-5, rtol=0)
    if render_mode != "RGB":  # depths of about 3: compare relatively
        torch.testing.assert_close(image[..., -1], ref_image[..., -1], atol=1e-4, rtol=5e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sh_degree", [0, 1, 2, 3, 4])
def test_matches_oracle_spherical_harmonics(sh_degree, backend):
    scene = random_scene(seed=2, sh_degree=sh_degree, per_camera_colors=sh_degree == 2)
    kwargs = dict(width=40, height=33, sh_degree=sh_degree, backgrounds=torch.rand(2, 3))
    image, alpha, _ = rasterize(**scene, **kwargs, backend=backend)
    ref_image, ref_alpha = reference_rasterize(**scene, **kwargs)
    torch.testing.assert_close(image, ref_image, atol=2e-5, rtol=0)
    torch.testing.assert_close(alpha, ref_alpha, atol=2e-5, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_matches_oracle_with_covariances_and_per_camera_colors(backend):
    scene = random_scene(seed=3, per_camera_colors=True)
    covars = quat_scale_to_covar(scene.pop("quats"), scene.pop("scales"))
    image, alpha, _ = rasterize(**scene, quats=None, scales=None, covars=covars, width=64, height=48, backend=backend)
    reference = random_scene(seed=3, per_camera_colors=True)
    ref_image, ref_alpha = reference_rasterize(**reference, width=64, height=48)
    torch.testing.assert_close(image, ref_image, atol=2e-5, rtol=0)
    torch.testing.assert_close(alpha, ref_alpha, atol=2e-5, rtol=0)


@pytest.mark.parametrize("backend, pairs_per_slab", [("torch", None), ("torch", 300), ("numba", None)])
def test_dense_scene_with_early_stops_matches_oracle(monkeypatch, backend, pairs_per_slab):
    """Many overlapping opaque Gaussians: most pixels stop early. With small slabs (torch backend),
    transmittance is carried from slab to slab and Gaussians behind stopped pixels are dropped."""
    if pairs_per_slab:
        monkeypatch.setattr(compositing, "MAX_PAIRS_PER_SLAB", pairs_per_slab)
    scene = random_scene(n=600, cameras=1, seed=4)
    scene["opacities"] = 0.6 + 0.4 * scene["opacities"]
    scene["scales"] = scene["scales"] * 2
    image, alpha, _ = rasterize(**scene, width=48, height=40, backend=backend)
    ref_image, ref_alpha = reference_rasterize(**scene, width=48, height=40)
    assert (alpha > 0.999).float().mean() > 0.3, "the scene should stop many pixels early"
    torch.testing.assert_close(image, ref_image, atol=2e-5, rtol=0)
    torch.testing.assert_close(alpha, ref_alpha, atol=2e-5, rtol=0)


def test_projection_matches_gsplat_torch_reference():
    scene = random_scene(n=2000, seed=5)
    # Push some Gaussians far outside the field of view so the Jacobian clamp matters, some behind the camera.
    scene["means"][:200, 0] *= 8
    scene["means"][200:300, 2] -= 4
    covars = quat_scale_to_covar(scene["quats"], scene["scales"])
    ref_covars, _ = _quat_scale_to_covar_preci(scene["quats"], scene["scales"], compute_preci=False, triu=False)
    torch.testing.assert_close(covars, ref_covars)
    ours = project_gaussians(scene["means"], covars, scene["viewmats"], scene["Ks"], 75, 45, 0.3, 0.01, 1e10)
    radii, means2d, depths, conics, _ = _fully_fused_projection(
        scene["means"], ref_covars, scene["viewmats"], scene["Ks"], 75, 45, eps2d=0.3, near_plane=0.01, far_plane=1e10
    )
    assert (ours.radii == radii).all()
    visible = radii > 0
    assert 0.3 < visible.float().mean() < 0.9
    torch.testing.assert_close(ours.means2d[visible], means2d[visible])
    torch.testing.assert_close(ours.depths, depths)
    torch.testing.assert_close(ours.conics[visible], conics[visible], rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_spherical_harmonics_match_gsplat_torch_reference(degree):
    g = torch.Generator().manual_seed(degree)
    dirs = torch.randn(500, 3, generator=g) * 3  # unnormalized on purpose
    coeffs = torch.randn(500, 25, 3, generator=g)
    torch.testing.assert_close(evaluate_sh(degree, dirs, coeffs), _spherical_harmonics(degree, dirs, coeffs))
