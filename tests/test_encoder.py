"""The pixelSplat encoder: output layout, the depth distribution, the colour conversion, the exact rewrites."""

import pytest
import torch
import torch.nn.functional as F

from helpers.scenes import cameras
from pixelsplat_ns.core.geometry import project_camera_points
from pixelsplat_ns.core.views import Views
from pixelsplat_ns.encoder import ComputeOptions, PixelSplatEncoder, ablation, paper, tiny
from pixelsplat_ns.encoder.depth import DepthPredictor, relative_disparity_to_depth, sample_bins
from pixelsplat_ns.encoder.official_sh import official_sh_to_gsplat
from pixelsplat_ns.render.spherical_harmonics import sh_basis, sh_rotation_matrix

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)


def encode(config, size=32, v=2, b=1, deterministic=True, seed=0, encoder=None):
    torch.manual_seed(seed)
    encoder = encoder or PixelSplatEncoder(config).eval()
    images = torch.rand(b, v, 3, size, size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return encoder, encoder.encode(Views(images, *cameras(b, v)), deterministic=deterministic)


def test_gaussians_are_ordered_by_view_pixel_and_sample():
    size = 32
    _, g = encode(tiny(), size=size, deterministic=False)
    assert g.means.shape == (1, 2 * size * size * 3, 3)
    assert g.covariances.shape == (1, 2 * size * size * 3, 3, 3)
    assert g.harmonics.shape == (1, 2 * size * size * 3, 25, 3) and g.opacities.shape == (1, 2 * size * size * 3)
    extrinsics, intrinsics, _, _ = cameras()
    means = g.means[0].view(2, size, size, 3, 3)  # view, row, column, sample, xyz
    for view in range(2):
        w2c = torch.linalg.inv(extrinsics[0, view])
        xy = project_camera_points(means[view] @ w2c[:3, :3].T + w2c[:3, 3], intrinsics[0, view]) * size
        rows, cols = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
        # Each Gaussian sits on the ray through its own pixel, up to the half-pixel offset.
        assert (xy[..., 0] - cols[..., None]).abs().max() <= 0.5 + 1e-3
        assert (xy[..., 1] - rows[..., None]).abs().max() <= 0.5 + 1e-3
        # The three samples of a pixel share their offset, so they lie on one ray.
        torch.testing.assert_close(xy[..., 0, :], xy[..., 2, :], atol=1e-3, rtol=0)


def test_covariances_are_symmetric_positive_definite():
    _, g = encode(tiny(), deterministic=False)
    cov = g.covariances[0].double()
    scale = cov.abs().amax(dim=(-1, -2), keepdim=True)
    assert ((cov - cov.transpose(-1, -2)).abs() <= 1e-6 * scale).all()
    assert (torch.linalg.eigvalsh(cov) > 0).all()


def test_deterministic_opacities_are_the_top_bin_probability_divided_by_three():
    encoder, g = encode(tiny(), deterministic=True)
    encoder.config.opacity_divided_by_gaussians_per_pixel = False
    _, undivided = encode(tiny(), deterministic=True, encoder=encoder)
    torch.testing.assert_close(g.opacities * 3, undivided.opacities)
    assert g.means.shape[1] == 2 * 32 * 32  # one Gaussian per pixel
    assert float(undivided.opacities.min()) >= 1 / 32 - 1e-6, "the top bin of 32 has at least probability 1/32"


def test_depth_bins_are_uniform_in_disparity():
    near, far, bins = torch.tensor(1.0), torch.tensor(100.0), 32
    depths = relative_disparity_to_depth((torch.arange(bins) + 0.5) / bins, near, far)
    disparities = 1 / depths
    steps = disparities[:-1] - disparities[1:]
    torch.testing.assert_close(steps, torch.full_like(steps, (1 / near - 1 / far).item() / bins), rtol=1e-4, atol=0)
    assert float(depths[0]) > float(near) and float(depths[-1]) < float(far)


def test_stochastic_bins_follow_the_pdf():
    pdf = torch.softmax(torch.randn(8), dim=0)
    index, probability = sample_bins(
        pdf.expand(20000, 8), 3, deterministic=False, generator=torch.Generator().manual_seed(0)
    )
    frequencies = torch.bincount(index.flatten(), minlength=8) / index.numel()
    torch.testing.assert_close(frequencies, pdf, atol=0.01, rtol=0)
    torch.testing.assert_close(probability, pdf[index])
    top, top_probability = sample_bins(pdf[None], 1, deterministic=True)
    assert int(top) == int(pdf.argmax()) and float(top_probability) == pytest.approx(float(pdf.max()))


def test_pdf_learns_through_opacity_and_offsets_through_depth():
    predictor = DepthPredictor(8, 4)
    features = torch.randn(1, 2, 10, 8)
    logits = {}
    predictor.projection.register_forward_hook(
        lambda module, inputs, output: logits.update(raw=output) or output.retain_grad()
    )
    near, far = torch.full((1, 2), 1.0), torch.full((1, 2), 10.0)

    depths, _ = predictor(features, near, far, 3, deterministic=False, generator=torch.Generator().manual_seed(1))
    depths.sum().backward()
    grad = logits["raw"].grad
    assert grad[..., 0::2].abs().max() == 0, "depths must not send gradients to the pdf logits"
    assert grad[..., 1::2].abs().max() > 0

    _, probabilities = predictor(
        features, near, far, 3, deterministic=False, generator=torch.Generator().manual_seed(1)
    )
    probabilities.sum().backward()
    grad = logits["raw"].grad
    assert grad[..., 1::2].abs().max() == 0, "opacities must not send gradients to the offsets"
    assert grad[..., 0::2].abs().max() > 0


def test_sh_rotation_commutes_with_evaluation():
    rotation = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    rotation = rotation * torch.sign(torch.det(rotation))
    coefficients = torch.randn(25, dtype=torch.float64)
    directions = torch.nn.functional.normalize(torch.randn(100, 3, dtype=torch.float64), dim=-1)
    matrix = sh_rotation_matrix(4, rotation)
    rotated_then_evaluated = sh_basis(4, directions @ rotation.T) @ coefficients
    evaluated_with_rotated_coefficients = sh_basis(4, directions) @ (matrix.T @ coefficients)
    torch.testing.assert_close(rotated_then_evaluated, evaluated_with_rotated_coefficients)


def test_colours_match_the_official_e3nn_rotation_and_permuted_renderer():
    """Official: world coefficients = e3nn Wigner D(R) @ camera coefficients, rendered with the 3DGS basis at
    (d.z, d.x, d.y). Ours: one matrix to gsplat's basis; the colour of every direction must agree."""
    e3nn = pytest.importorskip("e3nn.o3", reason="e3nn (a dev dependency) checks the official convention")
    torch.manual_seed(0)
    rotation = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64))[0]
    rotation = rotation * torch.sign(torch.det(rotation))
    camera_coefficients = torch.randn(25, dtype=torch.float64)
    angles = e3nn.matrix_to_angles(rotation)
    world = torch.cat(
        [e3nn.wigner_D(d, *angles).double() @ camera_coefficients[d * d : (d + 1) ** 2] for d in range(5)]
    )
    directions = torch.nn.functional.normalize(torch.randn(200, 3, dtype=torch.float64), dim=-1)
    permuted = directions[:, [2, 0, 1]]
    official = sh_basis(4, permuted) @ world
    ours = sh_basis(4, directions) @ (official_sh_to_gsplat(4, rotation) @ camera_coefficients)
    torch.testing.assert_close(ours, official, atol=1e-5, rtol=0)  # e3nn's Wigner matrices are float32


@pytest.mark.parametrize(
    "preset, variant",
    [
        ("paper", "none"),
        ("tiny", "none"),
        ("tiny", "no_epipolar"),
        ("tiny", "no_depth_encoding"),
        ("tiny", "no_sampling"),
    ],
)
def test_exact_rewrites_equal_the_straightforward_path(preset, variant):
    """Ours (exact rewrites, the CPU routes) against the official arithmetic on torch's default kernels.
    The paper preset runs at 128 x 128, where the last upscaler conv takes the Fourier route."""
    config = ablation(paper() if preset == "paper" else tiny(), variant)
    size = 128 if preset == "paper" else 32
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(config).eval()
    _, fast = encode(config, size=size, deterministic=False, encoder=encoder, seed=3)
    straightforward = PixelSplatEncoder(config, ComputeOptions(exact_rewrites=False, linear_as_convolution=False))
    straightforward.eval().load_state_dict(encoder.state_dict())
    _, plain = encode(config, size=size, deterministic=False, encoder=straightforward, seed=3)
    expected_count = 2 * size * size * (1 if variant == "no_sampling" else 3)
    assert fast.means.shape[1] == expected_count
    for name in ("means", "covariances", "opacities", "harmonics"):
        a, b = getattr(fast, name), getattr(plain, name)
        assert float((a - b).abs().max()) <= 1e-4 * max(1.0, float(b.abs().max())), name


def test_the_original_codebase_passes_each_layers_self_attention_through_two_convolutions():
    """Official 787a889's ConvFeedForward: x + convs(SA(LN(x)) + LN(x)) where 32b1b66 has x + SA(LN(x)) + LN(x)."""
    from dataclasses import replace

    from pixelsplat_ns.encoder.epipolar import EpipolarLayer

    torch.manual_seed(0)
    config = replace(tiny().epipolar, d_mlp=8)
    camera_ready = EpipolarLayer(config, 32, "camera_ready").eval()
    original = EpipolarLayer(config, 32, "original_codebase").eval()
    missing, unexpected = original.load_state_dict(camera_ready.state_dict(), strict=False)
    assert not unexpected and sorted(missing) == ["convs.0.bias", "convs.0.weight", "convs.2.bias", "convs.2.weight"]
    assert [type(m).__name__ for m in original.convs] == ["Conv2d", "GELU", "Conv2d"]
    assert original.convs[0].kernel_size == original.convs[2].kernel_size == (7, 7)
    seen = {}
    original.convs.register_forward_hook(lambda module, inputs, output: seen.update(input=inputs[0], output=output))
    x, kv = torch.randn(1, 2, 32, 8, 8), torch.randn(2 * 64, 16, 32)
    with torch.no_grad():
        out_camera_ready, out_original = camera_ready(x, kv, True), original(x, kv, True)
    feed_forward_in, feed_forward_out = (seen[k].unflatten(0, (1, 2)) for k in ("input", "output"))
    # Both are (x + cross attention) + their feed-forward term, and the convolutions take the camera-ready term.
    torch.testing.assert_close(out_camera_ready - feed_forward_in, out_original - feed_forward_out)
    assert not torch.allclose(out_camera_ready, out_original)
    with pytest.raises(ValueError, match="original codebase's epipolar transformer takes 2 context views"):
        PixelSplatEncoder(replace(tiny(), architecture="original_codebase", num_context_views=3))


def test_three_context_views_use_view_embeddings():
    config = tiny()
    config.num_context_views = 3
    encoder, g = encode(config, v=3)
    assert encoder.epipolar_transformer.view_embeddings.weight.shape == (3, config.d_feature)
    assert g.means.shape[1] == 3 * 32 * 32
    with pytest.raises(ValueError, match="built for 2 context views"):
        encode(tiny(), v=3)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(images=torch.rand(1, 2, 3, 30, 32)), "multiples of 16"),
        (dict(images=torch.rand(1, 1, 3, 32, 32)), "at least 2 context views"),
        (dict(near=torch.zeros(1, 2)), "0 < near < far"),
        (dict(far=torch.full((1, 2), float("nan"))), "far contains NaN"),
        (dict(intrinsics=torch.eye(3)), r"intrinsics must have shape \[1, 2, 3, 3\]"),
        (dict(images=torch.rand(0, 2, 3, 32, 32)), "must not be empty"),
        (dict(images=torch.rand(1, 2, 3, 0, 32)), "must not be empty"),
        (dict(images=(torch.rand(1, 2, 3, 32, 32) * 255).to(torch.uint8)), "floating point.*divide 8-bit images"),
        (dict(images=torch.rand(1, 2, 3, 32, 32) * 255), r"in \[0, 1\].*divide them by 255"),
        (dict(images=torch.rand(1, 2, 3, 32, 32) - 0.5), r"in \[0, 1\]"),
        (
            dict(images=torch.rand(1, 2, 3, 32, 32, dtype=torch.float64)),
            "torch.float64 but the encoder's weights are torch.float32",
        ),
        (dict(near=torch.full((1, 2), 0.5, dtype=torch.float64)), "near are torch.float64"),
        (dict(images=torch.rand(1, 2, 3, 32, 8)), "e.g. to 32x16"),
        (dict(images=torch.full((1, 2, 3, 32, 32), 1.0011)), r"within 0.001\).*clip them"),
    ],
)
def test_bad_input_is_refused(change, message):
    extrinsics, intrinsics, near, far = cameras()
    inputs = dict(images=torch.rand(1, 2, 3, 32, 32), extrinsics=extrinsics, intrinsics=intrinsics, near=near, far=far)
    inputs.update(change)
    with pytest.raises(ValueError, match=message):
        PixelSplatEncoder(tiny()).encode(Views(**inputs))


@pytest.mark.parametrize(
    "images, message",
    [
        (torch.full((1, 2, 3, 32, 32), float("nan")), "images contains NaN"),
        (torch.where(torch.arange(32) == 3, float("inf"), torch.rand(1, 2, 3, 32, 32)), "images contains NaN"),
        (torch.rand(1, 2, 3, 32, 32) * 255, r"in \[0, 1\].*divide them by 255"),
        (torch.rand(1, 2, 3, 32, 32) - 0.5, r"in \[0, 1\].*clip them"),
    ],
)
def test_encode_checks_the_values_of_hand_made_views_that_encode_prepared_trusts(images, message):
    """``encode`` reads every value of views it did not see made; ``encode_prepared`` (the library's calls on
    ``prepare_views``'s views) leaves those passes out but keeps the checks that read no data."""
    encoder = PixelSplatEncoder(tiny()).eval()
    views = Views(images, *cameras())
    with pytest.raises(ValueError, match=message):
        encoder.encode(views)
    with torch.no_grad():
        encoder.encode_prepared(views, deterministic=True)  # no pass over the images: nothing refused
    with pytest.raises(ValueError, match="multiples of 16"):
        encoder.encode_prepared(Views(images[..., :30, :], *cameras()))
    with pytest.raises(ValueError, match="0 < near < far"):
        encoder.encode_prepared(views._replace(near=torch.zeros(1, 2)))


def test_prepare_views_checks_the_context_images_as_encode_would():
    """``prepare_views`` makes the passes over the context images once, with ``encode``'s messages; the
    encoder's result from its views is the same either way. Target images are not the encoder's input."""
    from pixelsplat_ns.core.views import prepare_views

    extrinsics, intrinsics, _, _ = cameras()
    images = torch.rand(3, 3, 32, 32)
    for bad, message in ((float("nan"), "images contains NaN"), (300.0, "divide them by 255"), (-0.5, "clip them")):
        context = images.clone()
        context[1, 0, 5, 5] = bad
        with pytest.raises(ValueError, match=message):
            prepare_views(context, extrinsics[0, [0, 1, 1]], intrinsics[0, [0, 1, 1]], [0, 1])
        target = images.clone()
        target[2, 0, 5, 5] = bad
        prepare_views(target, extrinsics[0, [0, 1, 1]], intrinsics[0, [0, 1, 1]], [0, 1])
    views, _ = prepare_views(images[:2], extrinsics[0], intrinsics[0], [0, 1])
    encoder = PixelSplatEncoder(tiny()).eval()
    with torch.no_grad():
        checked = encoder.encode(views.batched(), deterministic=True)
        trusted = encoder.encode_prepared(views.batched(), deterministic=True)
    for name in ("means", "covariances", "opacities", "harmonics"):
        assert torch.equal(getattr(checked, name), getattr(trusted, name)), name


def test_attention_computed_step_by_step_where_the_fused_cpu_backward_is_unsound(monkeypatch):
    """torch 2.1's CPU flash attention corrupts the heap in its bfloat16 backward: there the formula is computed
    step by step, with the fused kernel's values and gradients (within bfloat16 rounding)."""
    from pixelsplat_ns.encoder import attention

    monkeypatch.setattr(attention, "_FUSED_CPU_BACKWARD_SOUND", False)
    generator = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 17, 8, generator=generator) for _ in range(3))
    results = []
    for dtype in (torch.bfloat16, torch.float32):
        leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
        compute = attention.scaled_dot_product_attention if dtype == torch.bfloat16 else F.scaled_dot_product_attention
        out = compute(*leaves)
        (out.float() * torch.linspace(-1, 1, 8)).sum().backward()
        results.append([out.float(), *(t.grad.float() for t in leaves)])
    for ours, fused in zip(*results):
        torch.testing.assert_close(ours, fused, atol=0.05, rtol=0.05)
    with torch.no_grad():  # without gradients (inference) the fused kernel runs: same values
        expected = F.scaled_dot_product_attention(q, k, v)
        torch.testing.assert_close(attention.scaled_dot_product_attention(q, k, v), expected)
