"""The numba projection and SH kernels against the torch ones (``rasterize``'s own, under autograd): every
output and the gradients of means, covariances and SH coefficients, for SH degrees 0-4, shared and per-camera
coefficients, and Gaussians that each culling rule removes (behind the camera, beyond the far plane, a
degenerate 2D covariance, off screen) or whose Jacobian the field-of-view clamp bends."""

import numpy as np
import pytest
import torch

from helpers.scenes import random_scene
from pixelsplat_ns.render.numba_kernels.projection import project_and_shade_numba
from pixelsplat_ns.render.projection import quat_scale_to_covar
from pixelsplat_ns.render.rasterize import _project_and_shade

WIDTH, HEIGHT = 40, 30


def hard_scene(sh_degree, per_camera, dtype=torch.float64):
    """300 random Gaussians, non-symmetric covariances, and a few placed on each rule's edge."""
    scene = random_scene(n=300, cameras=3, seed=5, dtype=dtype, sh_degree=4, per_camera_colors=per_camera)
    means = scene["means"].clone()
    means[0, 2] = -1.0  # behind every camera
    means[1, 2] = 2e10  # beyond the far plane
    means[2] = torch.tensor([30.0, 0.0, 3.0], dtype=dtype)  # far off screen, the Jacobian clamped
    means[3] = torch.tensor([3.5, -2.5, 3.0], dtype=dtype)  # just off screen: clamped, maybe still drawn
    noise = torch.randn(300, 3, 3, generator=torch.Generator().manual_seed(6), dtype=dtype)
    covars = quat_scale_to_covar(scene["quats"], scene["scales"]) + 0.002 * noise
    means[4] = torch.tensor([0.0, 0.0, 3.0], dtype=dtype)
    covars[4] = 0.0  # a point in view: the 2D covariance is the blur alone
    colors = scene["colors"][..., : (sh_degree + 1) ** 2, :] if sh_degree is not None else None
    return means, covars, colors, scene["viewmats"], scene["Ks"]


def outputs_and_gradients(
    backend, means, covars, coeffs, viewmats, Ks, sh_degree, quats=None, scales=None, eps2d=0.3, near=0.01, far=1e10
):
    """Outputs and the gradients of a fixed random-weighted loss; ``quats`` and ``scales`` replace ``covars``
    when given."""
    named = dict(means=means, covars=covars, coeffs=coeffs, quats=quats, scales=scales)
    if quats is not None:
        named["covars"] = None
    inputs = {name: t.clone().requires_grad_() for name, t in named.items() if t is not None}
    means, covars, coeffs, quats, scales = (inputs.get(name) for name in named)
    if backend == "torch":
        centers = torch.linalg.inv(viewmats)[:, :3, 3] if coeffs is not None else None
        if covars is None:
            covars = quat_scale_to_covar(quats, scales)
        projection, colors = _project_and_shade(
            means, covars, coeffs, viewmats, Ks, centers, WIDTH, HEIGHT, eps2d, near, far, sh_degree
        )
        radii, means2d, depths, conics = projection.radii, projection.means2d, projection.depths, projection.conics
    else:
        radii, means2d, depths, conics, colors = project_and_shade_numba(
            means, covars, coeffs, viewmats, Ks, WIDTH, HEIGHT, eps2d, near, far, sh_degree, quats=quats, scales=scales
        )
    g = torch.Generator().manual_seed(1)
    weight = lambda t: torch.randn(t.shape, generator=g, dtype=torch.float64).to(t.dtype)  # noqa: E731
    # Every projected output gets a gradient, culled Gaussians' too; colours only where drawn (the compositing
    # never reads the others, and the numba kernel leaves them 0).
    loss = (means2d * weight(means2d)).sum() + (depths * weight(depths)).sum() + (conics * weight(conics)).sum()
    drawn = (radii > 0)[..., None]
    if colors is not None:
        loss = loss + (colors * weight(colors) * drawn).sum()
        colors = colors.detach() * drawn
    grads = torch.autograd.grad(loss, list(inputs.values()))
    values = dict(radii=radii, means2d=means2d.detach(), depths=depths.detach(), conics=conics.detach())
    if colors is not None:
        values["colors"] = colors
    return values, dict(zip(inputs, grads))


@pytest.mark.parametrize("sh_degree", [None, 0, 1, 2, 3, 4])
@pytest.mark.parametrize("per_camera", [False, True])
def test_values_and_gradients_match_torch_in_float64(sh_degree, per_camera):
    scene = hard_scene(sh_degree, per_camera)
    values, grads = outputs_and_gradients("numba", *scene, sh_degree)
    ref_values, ref_grads = outputs_and_gradients("torch", *scene, sh_degree)
    radii = ref_values["radii"]
    assert (radii[:, :2] == 0).all() and (radii[:, 4] > 0).any(), "the culled and the point Gaussians"
    assert 0 < (radii > 0).sum() < radii.numel()
    assert torch.equal(values.pop("radii"), ref_values.pop("radii"))
    for name, expected in list(ref_values.items()) + list(ref_grads.items()):
        ours = values.get(name, grads.get(name))
        scale = float(expected.abs().max())
        assert scale > 0, f"{name} is all zero: the check would mean nothing"
        torch.testing.assert_close(ours, expected, atol=1e-12 * scale, rtol=1e-12, msg=name)


@pytest.mark.parametrize("sh_degree", [None, 3])
def test_quaternions_and_scales_match_torch_in_float64(sh_degree):
    """Covariances made in the kernel from unnormalized quaternions (some tiny, one zero) and scales, as
    ``quat_scale_to_covar`` makes them, and their gradients."""
    means, _, coeffs, viewmats, Ks = hard_scene(sh_degree, False)
    scene = random_scene(n=300, cameras=3, seed=5, dtype=torch.float64)
    quats, scales = scene["quats"] * 3.0, scene["scales"]
    quats[5] *= 1e-7  # tiny: normalized all the same
    quats[6] = 0.0  # the identity's limit: quaternion_to_matrix of 0 is the identity
    values, grads = outputs_and_gradients("numba", means, None, coeffs, viewmats, Ks, sh_degree, quats, scales)
    ref_values, ref_grads = outputs_and_gradients("torch", means, None, coeffs, viewmats, Ks, sh_degree, quats, scales)
    assert set(grads) == set(ref_grads) >= {"quats", "scales"} and "covars" not in grads
    assert torch.equal(values.pop("radii"), ref_values.pop("radii"))
    for name, expected in list(ref_values.items()) + list(ref_grads.items()):
        ours = values.get(name, grads.get(name))
        torch.testing.assert_close(ours, expected, atol=1e-12 * float(expected.abs().max()), rtol=1e-10, msg=name)


def test_float32_matches_the_float64_reference():
    """float32 inputs are computed in float64 and the results rounded once: against float64 arithmetic on the
    same (float32) inputs and constants (eps2d and the depth limits in float32, as gsplat holds them), only
    that rounding is left."""
    scene32 = [t.float() for t in hard_scene(3, False)]
    scene64 = [t.double() for t in scene32]
    values, grads = outputs_and_gradients("numba", *scene32, 3)
    constants = dict(eps2d=float(np.float32(0.3)), near=float(np.float32(0.01)), far=float(np.float32(1e10)))
    ref_values, ref_grads = outputs_and_gradients("torch", *scene64, 3, **constants)
    assert values["means2d"].dtype == grads["covars"].dtype == torch.float32
    drawn = ref_values["radii"] > 0
    agree = (values.pop("radii") == ref_values.pop("radii")).float().mean()
    assert agree > 0.99  # a radius may round the other way on a float32 boundary
    for name, expected in list(ref_values.items()) + list(ref_grads.items()):
        ours = values.get(name, grads.get(name)).double()
        if name in ("means2d", "depths", "conics", "colors"):
            ours, expected = ours[drawn], expected[drawn]
        scale = float(expected.abs().max())
        torch.testing.assert_close(ours, expected, atol=1e-6 * scale, rtol=0, msg=name)


def test_without_upstream_gradients_for_some_outputs():
    """Only the colours reach the loss (the others' gradients arrive as None): the coefficients' gradient
    is still right and the covariances get none."""
    means, covars, coeffs, viewmats, Ks = hard_scene(2, False)
    results = {}
    for backend in ("numba", "torch"):
        m, cov, k = (t.clone().requires_grad_() for t in (means, covars, coeffs))
        if backend == "numba":
            radii, _, _, _, colors = project_and_shade_numba(m, cov, k, viewmats, Ks, WIDTH, HEIGHT, 0.3, 0.01, 1e10, 2)
        else:
            projection, colors = _project_and_shade(
                m, cov, k, viewmats, Ks, torch.linalg.inv(viewmats)[:, :3, 3], WIDTH, HEIGHT, 0.3, 0.01, 1e10, 2
            )
            radii = projection.radii
        (colors * (radii > 0)[..., None]).sum().backward()
        results[backend] = (m.grad, cov.grad, k.grad)
    for ours, expected in zip(results["numba"], results["torch"]):
        torch.testing.assert_close(
            ours, expected if expected is not None else torch.zeros_like(ours), atol=1e-12, rtol=1e-12
        )


def test_refuses_too_few_coefficients_two_covariances_and_other_devices():
    means, covars, coeffs, viewmats, Ks = hard_scene(1, False)
    with pytest.raises(ValueError, match="covars, or quats and scales, not both"):
        ones = torch.ones(300, 4, dtype=means.dtype)
        project_and_shade_numba(
            means, covars, None, viewmats, Ks, WIDTH, HEIGHT, 0.3, 0.01, 1e10, None, quats=ones, scales=ones[:, :3]
        )
    with pytest.raises(ValueError, match="SH degree 2 needs at least 9 coefficients"):
        project_and_shade_numba(means, covars, coeffs, viewmats, Ks, WIDTH, HEIGHT, 0.3, 0.01, 1e10, 2)
    with pytest.raises(ValueError, match="needs CPU tensors, got meta"):
        project_and_shade_numba(means.to("meta"), covars, None, viewmats, Ks, WIDTH, HEIGHT, 0.3, 0.01, 1e10, None)
