"""Gradients of the torch and numba rasterizers: float64 gradcheck on tiny scenes (fast mode: random
projections of the Jacobian, which any wrong entry changes), and the torch backend's invariance to slab size."""

import pytest
import torch

from helpers.scenes import random_scene
from pixelsplat_ns.render import compositing, rasterize
from pixelsplat_ns.render.projection import quat_scale_to_covar


def tiny_scene(seed, sh_degree=None):
    scene = random_scene(n=8, cameras=2, seed=seed, dtype=torch.float64, sh_degree=sh_degree)
    scene["scales"] = scene["scales"] + 0.08  # a few pixels wide at this resolution
    scene["opacities"] = 0.2 + 0.7 * scene["opacities"]
    scene["Ks"][:, :2] *= 0.35  # 26 x 16 images
    if sh_degree is not None:
        scene["colors"] = scene["colors"][:, : (sh_degree + 1) ** 2].contiguous()
    return scene


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_gradcheck_quats_scales_colours_and_expected_depth(backend):
    scene = tiny_scene(seed=10)
    scene["opacities"][:2] = 1.5  # alpha capped at 0.999 near their centres: no gradient flows there
    backgrounds = torch.rand(2, 3, dtype=torch.float64)
    names = ["means", "quats", "scales", "opacities", "colors"]

    def render(*tensors):
        inputs = dict(scene, **dict(zip(names, tensors)))
        image, alpha, _ = rasterize(
            **inputs, width=26, height=16, backgrounds=backgrounds, render_mode="RGB+ED", backend=backend
        )
        return image, alpha

    tensors = [scene[n].clone().requires_grad_() for n in names]
    assert render(*tensors)[1].max() > 0.5, "the scene must be visible for the check to mean anything"
    assert torch.autograd.gradcheck(render, tensors, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


@pytest.mark.parametrize("backend", ["torch", "numba"])
def test_gradcheck_covariances_and_spherical_harmonics(backend):
    scene = tiny_scene(seed=11, sh_degree=2)
    covars = quat_scale_to_covar(scene.pop("quats"), scene.pop("scales")).detach()

    def render(means, covars, opacities, colors):
        inputs = dict(scene, means=means, opacities=opacities, colors=colors)
        return rasterize(
            **inputs,
            quats=None,
            scales=None,
            covars=(covars + covars.mT) / 2,
            width=26,
            height=16,
            sh_degree=2,
            render_mode="RGB+D",
            backend=backend,
        )[0]

    tensors = [t.clone().requires_grad_() for t in (scene["means"], covars, scene["opacities"], scene["colors"])]
    assert torch.autograd.gradcheck(render, tensors, eps=1e-6, atol=1e-5, rtol=1e-4, fast_mode=True)


@pytest.mark.parametrize("pairs_per_slab", [200, 5000])
def test_gradients_do_not_depend_on_slab_size(monkeypatch, pairs_per_slab):
    """The backward pass carries colour and transmittance across slabs exactly as the forward pass does."""
    scene = random_scene(n=400, cameras=2, seed=12)
    scene["opacities"] = 0.5 + 0.5 * scene["opacities"]
    names = ["means", "quats", "scales", "opacities", "colors"]

    def gradients():
        tensors = {n: scene[n].clone().requires_grad_() for n in names}
        image, alpha, _ = rasterize(
            **dict(scene, **tensors), width=48, height=40, backgrounds=torch.ones(2, 3), backend="torch"
        )
        weights = torch.linspace(0, 1, image.numel()).view_as(image)
        ((image * weights).sum() + alpha.square().sum()).backward()
        return image.detach(), [tensors[n].grad for n in names]

    image, grads = gradients()
    monkeypatch.setattr(compositing, "MAX_PAIRS_PER_SLAB", pairs_per_slab)
    sliced_image, sliced_grads = gradients()
    torch.testing.assert_close(sliced_image, image, atol=1e-6, rtol=0)
    for name, g, sliced in zip(names, grads, sliced_grads):
        assert g.abs().max() > 0, name
        torch.testing.assert_close(sliced, g, atol=1e-5, rtol=1e-4, msg=name)
