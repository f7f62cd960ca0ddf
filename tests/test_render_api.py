"""The public contract of ``rasterize``: batching over cameras, backend choice, and clear errors."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers.scenes import random_scene
from pixelsplat_ns.render import rasterize


def test_several_cameras_equal_one_at_a_time():
    scene = random_scene(n=300, cameras=3, seed=20, sh_degree=3)
    backgrounds = torch.rand(3, 3)
    kwargs = dict(width=50, height=38, sh_degree=3, render_mode="RGB+ED")
    image, alpha, meta = rasterize(**scene, backgrounds=backgrounds, **kwargs)
    assert image.shape == (3, 38, 50, 4) and meta["radii"].shape == (3, 300)
    for c in range(3):
        single = dict(scene, viewmats=scene["viewmats"][c : c + 1], Ks=scene["Ks"][c : c + 1])
        one_image, one_alpha, _ = rasterize(**single, backgrounds=backgrounds[c : c + 1], **kwargs)
        torch.testing.assert_close(image[c : c + 1, ..., :3], one_image[..., :3], atol=1e-5, rtol=0)
        torch.testing.assert_close(image[c : c + 1, ..., 3], one_image[..., 3], atol=1e-5, rtol=2e-5)  # z ~ 3
        torch.testing.assert_close(alpha[c : c + 1], one_alpha, atol=1e-5, rtol=0)


def test_meta_describes_the_projection():
    scene = random_scene(n=50, cameras=2, seed=21)
    _, _, meta = rasterize(**scene, width=32, height=24)
    assert meta["means2d"].shape == (2, 50, 2) and meta["conics"].shape == (2, 50, 3)
    assert meta["depths"].shape == (2, 50) and meta["radii"].dtype == torch.int32
    assert (meta["width"], meta["height"], meta["tile_size"], meta["n_cameras"]) == (32, 24, 16, 2)
    assert (meta["tile_width"], meta["tile_height"]) == (2, 2)


def test_auto_backend_on_cpu_never_imports_gsplat():
    code = (
        "import sys, torch\n"
        "from pixelsplat_ns.render import rasterize\n"
        "m = torch.tensor([[0.0, 0.0, 2.0]])\n"
        "img, a, _ = rasterize(m, torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1), torch.ones(1),\n"
        "    torch.ones(1, 3), torch.eye(4)[None], torch.tensor([[[20.0, 0, 8], [0, 20.0, 8], [0, 0, 1]]]), 16, 16)\n"
        "assert a.max() > 0.5\n"
        "print('gsplat' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


def test_gsplat_backend_refuses_cpu_tensors():
    scene = random_scene(n=5, cameras=1, seed=22)
    with pytest.raises(ValueError, match="backend='gsplat' needs CUDA tensors"):
        rasterize(**scene, width=16, height=16, backend="gsplat")


def _bad(**changes):
    scene = random_scene(n=6, cameras=2, seed=23)
    kwargs = dict(scene, width=16, height=12)
    kwargs.update(changes)
    return kwargs


@pytest.mark.usefixtures("unchecked_annotations")  # ill-typed input on purpose: rasterize's own errors
@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(width=0), "width must be a positive integer"),
        (dict(height=-3), "height must be a positive integer"),
        (dict(width=16.0), "width must be a positive integer"),
        (dict(means=torch.zeros(6, 2)), r"means must be a tensor of shape \[N, 3\]"),
        (dict(means=torch.zeros(0, 3)), "the scene is empty"),
        (dict(opacities=torch.ones(5)), r"opacities must have shape \[6\]"),
        (dict(quats=torch.ones(6, 3)), r"quats must have shape \[6, 4\]"),
        (dict(Ks=torch.eye(3)[None]), r"Ks must have shape \[2, 3, 3\]"),
        (dict(viewmats=torch.eye(4)), r"viewmats must have shape \[C, 4, 4\]"),
        (dict(colors=torch.ones(5, 3)), r"colors must have shape \[N, D\] or \[C, N, D\]"),
        (dict(colors=torch.ones(6, 3, 3), sh_degree=2), "K >= 9"),
        (dict(colors=torch.ones(6, 25, 3), sh_degree=5), "sh_degree must be an integer between 0 and 4"),
        (dict(backgrounds=torch.ones(2, 4)), r"backgrounds must have shape \[C, D\] = \[2, 3\]"),
        (dict(render_mode="depth"), "render_mode must be one of"),
        (dict(backend="cuda"), "backend must be"),
        (dict(near_plane=0.0), "need 0 < near_plane < far_plane"),
        (dict(near_plane=2.0, far_plane=1.0), "need 0 < near_plane < far_plane"),
        (dict(covars=torch.eye(3).repeat(6, 1, 1)), "either covars or quats and scales"),
        (dict(quats=None), "quats and scales are required"),
        (dict(means=torch.full((6, 3), float("nan"))), "means contains NaN or infinite values"),
        (dict(scales=torch.full((6, 3), float("inf"))), "scales contains NaN or infinite values"),
        (dict(means=torch.zeros(6, 3, dtype=torch.int64)), "means must be a floating-point tensor"),
        (dict(Ks=torch.zeros(2, 3, 3)), "positive focal lengths"),
        (
            dict(viewmats=torch.eye(4, dtype=torch.float64).repeat(2, 1, 1)),
            r"one floating-point dtype, got means float32, .*viewmats float64",
        ),
        (dict(backend="numba", means=torch.zeros(6, 3, dtype=torch.float16)), "one floating-point dtype"),
    ],
)
def test_bad_input_gets_a_clear_error(changes, message):
    with pytest.raises(ValueError, match=message):
        rasterize(**_bad(**changes))


def test_finite_values_whose_sum_overflows_are_not_taken_for_infinities():
    """The NaN check sums each tensor first; a sum that overflows must not be reported as an infinite value."""
    rasterize(**_bad(colors=torch.full((6, 3), 3e38)))  # the sum of the 18 values is inf in float32
    with pytest.raises(ValueError, match="colors contains NaN"):
        rasterize(**_bad(colors=torch.tensor([[3e38, float("nan"), 0.0]]).repeat(6, 1)))


def test_half_precision_on_the_cpu_stays_with_torch_and_numba_says_so():
    scene = {k: v.half() if isinstance(v, torch.Tensor) else v for k, v in random_scene(n=6, cameras=1, seed=3).items()}
    try:
        torch.ones(1, 1, 1).half().bmm(torch.ones(1, 1, 1).half())
    except RuntimeError:  # torch < 2.2 has no float16 matrix products on the CPU: refused, saying so
        with pytest.raises(ValueError, match="no torch.float16 matrix products on the CPU.*convert the tensors"):
            rasterize(**scene, width=16, height=12)
    else:
        colors, alphas, _ = rasterize(**scene, width=16, height=12)  # auto: the torch backend
        assert colors.dtype == torch.float16 and torch.isfinite(alphas).all()
    with pytest.raises(ValueError, match="backend='numba' computes in float32 or float64, got torch.float16"):
        rasterize(**scene, width=16, height=12, backend="numba")


def test_numpy_image_sizes_and_meta_tensors_are_taken():
    scene = random_scene(n=6, cameras=1, seed=4)
    expected, _, _ = rasterize(**scene, width=16, height=12)
    colors, _, _ = rasterize(**scene, width=np.int64(16), height=np.int32(12))
    assert torch.equal(colors, expected)
    meta = {k: v.to("meta") if isinstance(v, torch.Tensor) else v for k, v in scene.items()}
    with pytest.raises(ValueError, match="backend='numba' needs CPU tensors, got meta"):
        rasterize(**meta, width=16, height=12, backend="numba")


@pytest.mark.parametrize("hidden", [10, 300])  # a few hidden (SH for all) and most hidden (SH for the drawn only)
def test_gaussians_a_camera_does_not_draw_change_nothing_and_get_no_gradient(hidden):
    """Gaussians behind the camera: the render and the drawn Gaussians' gradients are those of the scene without
    them, and theirs are zero, whichever way the SH colours are evaluated."""
    scene = random_scene(n=100, cameras=1, seed=5, sh_degree=3)
    behind = random_scene(n=hidden, cameras=1, seed=6, sh_degree=3)
    behind["means"] = behind["means"] * torch.tensor([1.0, 1.0, -1.0])  # z < 0
    both = {k: torch.cat([scene[k], behind[k]]) if k not in ("viewmats", "Ks") else scene[k] for k in scene}
    results = []
    for inputs in (scene, both):
        leaves = {k: v.clone().requires_grad_(k not in ("viewmats", "Ks")) for k, v in inputs.items()}
        image, alpha, _ = rasterize(**leaves, width=40, height=30, sh_degree=3)
        (image.square().sum() + alpha.sum()).backward()
        results.append((image, {k: v.grad for k, v in leaves.items() if v.grad is not None}))
    (image, grads), (image_both, grads_both) = results
    assert torch.allclose(image, image_both, atol=1e-6)
    for name, grad in grads.items():
        assert torch.allclose(grads_both[name][:100], grad, atol=1e-5), name
        assert not grads_both[name][100:].any(), name
