"""Each of gsplat's rendering rules, checked on hand-built scenes whose images are known in closed form,
with every CPU backend (each test runs once per backend)."""

import math

import pytest
import torch

from pixelsplat_ns.render import rasterize

WIDTH = HEIGHT = 64
BACKEND = {"name": "torch"}  # the backend ``render`` uses, set by the ``backend`` fixture


@pytest.fixture(autouse=True, params=["torch", "numba"])
def backend(request, monkeypatch):
    monkeypatch.setitem(BACKEND, "name", request.param)
    return request.param


def camera(f=50.0, cx=32.5, cy=32.5, cameras=1):
    """Identity pose (OpenCV, looking down +z) with the principal point at a pixel centre by default."""
    K = torch.tensor([[f, 0.0, cx], [0.0, f, cy], [0.0, 0.0, 1.0]])
    return torch.eye(4).repeat(cameras, 1, 1), K.repeat(cameras, 1, 1)


def on_axis(depths, sigmas=None, covars=None):
    """Gaussians on the optical axis: isotropic with the given world std-devs, or with explicit covariances."""
    depths = torch.tensor(depths, dtype=torch.float32)
    means = torch.zeros(len(depths), 3)
    means[:, 2] = depths
    if covars is None:
        covars = torch.eye(3) * torch.tensor(sigmas, dtype=torch.float32)[:, None, None] ** 2
    return means, covars


def render(means, covars, opacities, colors, viewmats, Ks, **kwargs):
    kwargs.setdefault("width", WIDTH)
    kwargs.setdefault("height", HEIGHT)
    kwargs.setdefault("backend", BACKEND["name"])
    return rasterize(
        means,
        None,
        None,
        torch.as_tensor(opacities, dtype=torch.float32),
        torch.as_tensor(colors, dtype=torch.float32),
        viewmats,
        Ks,
        covars=covars,
        **kwargs,
    )


def pixel_grid():
    ys, xs = torch.meshgrid(torch.arange(HEIGHT) + 0.5, torch.arange(WIDTH) + 0.5, indexing="ij")
    return xs, ys


def test_single_gaussian_matches_closed_form():
    f, z, s, opacity = 50.0, 2.0, 0.2, 0.8
    viewmats, Ks = camera(f, cx=32.0, cy=30.0)
    means, covars = on_axis([z], [s])
    color, background = torch.tensor([0.2, 0.5, 0.9]), torch.tensor([[0.1, 0.0, 0.3]])
    image, alpha, meta = render(means, covars, [opacity], color[None], viewmats, Ks, backgrounds=background)

    var = (f * s / z) ** 2 + 0.3  # projected variance plus gsplat's 0.3 blur
    radius = math.ceil(3 * math.sqrt(var + 0.1))  # the 0.01 floor under b^2 - det adds sqrt(0.01)
    assert int(meta["radii"][0, 0]) == radius
    xs, ys = pixel_grid()
    expected_alpha = (opacity * torch.exp(-0.5 * ((xs - 32.0) ** 2 + (ys - 30.0) ** 2) / var)).clamp(max=0.999)
    # gsplat only visits the tiles the 3-sigma radius reaches, and skips alpha < 1/255.
    tile_x = (xs >= 16 * math.floor((32.0 - radius) / 16)) & (xs < 16 * math.ceil((32.0 + radius) / 16))
    tile_y = (ys >= 16 * math.floor((30.0 - radius) / 16)) & (ys < 16 * math.ceil((30.0 + radius) / 16))
    expected_alpha = torch.where(tile_x & tile_y & (expected_alpha >= 1 / 255), expected_alpha, 0.0)
    expected = expected_alpha[..., None] * color + (1 - expected_alpha[..., None]) * background[0]
    torch.testing.assert_close(alpha[0, ..., 0], expected_alpha, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(image[0], expected, atol=1e-6, rtol=1e-5)


def test_depth_order_not_input_order_decides_occlusion():
    viewmats, Ks = camera()
    means, covars = on_axis([3.0, 2.0], [0.3, 0.3])  # blue behind, listed first
    colors = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    image, _, _ = render(means, covars, [0.6, 0.6], colors, viewmats, Ks)
    swapped, _, _ = render(means.flip(0), covars.flip(0), [0.6, 0.6], colors.flip(0), viewmats, Ks)
    torch.testing.assert_close(image, swapped)
    centre = image[0, 32, 32]
    torch.testing.assert_close(centre, torch.tensor([0.6, 0.0, 0.6 * 0.4]), atol=1e-6, rtol=0)


def test_equal_depths_keep_index_order():
    viewmats, Ks = camera()
    means, covars = on_axis([2.0, 2.0], [0.3, 0.3])
    colors = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    image, _, _ = render(means, covars, [0.6, 0.6], colors, viewmats, Ks)
    torch.testing.assert_close(image[0, 32, 32], torch.tensor([0.6, 0.0, 0.24]), atol=1e-6, rtol=0)
    flipped, _, _ = render(means, covars, [0.6, 0.6], colors.flip(0), viewmats, Ks)
    torch.testing.assert_close(flipped[0, 32, 32], torch.tensor([0.24, 0.0, 0.6]), atol=1e-6, rtol=0)


def test_opaque_front_gaussian_hides_the_one_behind():
    viewmats, Ks = camera()
    means, covars = on_axis([2.0, 4.0], [0.5, 0.5])
    image, alpha, _ = render(means, covars, [1.0, 1.0], [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], viewmats, Ks)
    # Front alpha is capped at 0.999; behind it T * (1 - 0.999) <= 1e-4 stops the pixel before the green one.
    torch.testing.assert_close(image[0, 32, 32], torch.tensor([0.999, 0.0, 0.0]), atol=1e-7, rtol=0)
    assert float(alpha[0, 32, 32]) == pytest.approx(0.999, abs=1e-7)


def test_alpha_cap_applies_to_opacities_above_one():
    viewmats, Ks = camera()
    means, covars = on_axis([2.0], [0.3])
    _, alpha, _ = render(means, covars, [5.0], [[1.0, 1.0, 1.0]], viewmats, Ks)
    assert float(alpha.max()) == pytest.approx(0.999, abs=1e-7)
    assert float((alpha > 0.998).float().sum()) > 1, "opacity 5 saturates more than the centre pixel"


def test_alpha_below_one_over_255_is_skipped():
    viewmats, Ks = camera()
    means, covars = on_axis([2.0], [0.3])
    image, alpha, _ = render(means, covars, [0.99 / 255], [[1.0, 1.0, 1.0]], viewmats, Ks)
    assert float(alpha.abs().max()) == 0.0 and float(image.abs().max()) == 0.0
    image, alpha, _ = render(means, covars, [1.01 / 255], [[1.0, 1.0, 1.0]], viewmats, Ks)
    assert float(alpha[0, 32, 32]) == pytest.approx(1.01 / 255, rel=1e-6)
    # Away from the centre exp(-sigma) pulls alpha under 1/255 again: only a small disc is drawn.
    assert 0 < int((alpha > 0).sum()) < 10


def test_compositing_stops_before_transmittance_reaches_1e4():
    viewmats, Ks = camera()
    means, covars = on_axis([2.0, 3.0, 4.0, 5.0], [1.0] * 4)
    colors = torch.eye(4)  # one channel per Gaussian
    image, alpha, _ = render(means, covars, [0.95] * 4, colors, viewmats, Ks)
    # T: 1, 0.05, 0.0025, 1.25e-4; the fourth would bring it to 6.25e-6 <= 1e-4, so it is left out.
    centre = image[0, 32, 32]
    torch.testing.assert_close(centre, torch.tensor([0.95, 0.0475, 0.002375, 0.0]), atol=1e-7, rtol=1e-5)
    assert float(alpha[0, 32, 32]) == pytest.approx(1 - 1.25e-4, abs=1e-7)


def test_gaussian_is_cut_at_its_tiles():
    """A Gaussian reaches only the 16x16 tiles its 3-sigma radius touches, even where alpha >= 1/255."""
    viewmats, Ks = camera(f=1.0, cx=8.99, cy=8.0)  # f = 1 px at z = 1: covariances map 1:1 to pixels
    means, covars = on_axis([1.0], covars=torch.diag(torch.tensor([5.0824, 2.7, 1.0]))[None])
    image, alpha, meta = render(means, covars, [1.0], [[1.0, 1.0, 1.0]], viewmats, Ks, width=32, height=16)
    assert int(meta["radii"][0, 0]) == 7  # ceil(3 * sqrt(5.0824 + 0.3)) = ceil(6.96)
    # Column 16 lies outside tile 0 (x in [0, 16)), yet its alpha would be exp(-0.5 * 7.51^2 / 5.3824) > 1/255.
    assert math.exp(-0.5 * (16.5 - 8.99) ** 2 / 5.3824) > 1 / 255
    assert float(alpha[0, 8, 15]) > 1 / 255
    assert float(alpha[0, :, 16:].abs().max()) == 0.0


def test_radius_uses_the_001_floor():
    viewmats, Ks = camera(f=1.0, cx=16.5, cy=16.5)
    means, covars = on_axis([1.0], [math.sqrt(0.65)])
    _, _, meta = render(means, covars, [1.0], [[1.0, 1.0, 1.0]], viewmats, Ks, width=32, height=32)
    # blurred variance 0.95: ceil(3 * sqrt(0.95 + sqrt(0.01))) = 4, where ceil(3 * sqrt(0.95)) would be 3.
    assert int(meta["radii"][0, 0]) == 4
    torch.testing.assert_close(meta["conics"][0, 0], torch.tensor([1 / 0.95, 0.0, 1 / 0.95]))


@pytest.mark.parametrize(
    "near, far, drawn",
    [(0.01, 1e10, True), (1.0, 1e10, False), (0.5, 1e10, True), (0.01, 0.5, True), (0.01, 0.4, False)],
)
def test_near_and_far_culling(near, far, drawn):
    """gsplat's kernel culls z < near_plane or z > far_plane: a Gaussian exactly at a plane is kept."""
    viewmats, Ks = camera()
    means, covars = on_axis([0.5], [0.01])
    _, alpha, meta = render(means, covars, [0.9], [[1.0, 1.0, 1.0]], viewmats, Ks, near_plane=near, far_plane=far)
    assert (float(alpha.max()) > 0) == drawn
    assert (int(meta["radii"][0, 0]) > 0) == drawn


def test_depth_modes():
    viewmats, Ks = camera()
    means, covars = on_axis([2.0, 4.0], [0.4, 0.4])
    colors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    d, alpha, _ = render(means, covars, [0.5, 0.7], colors, viewmats, Ks, render_mode="D")
    ed, _, _ = render(means, covars, [0.5, 0.7], colors, viewmats, Ks, render_mode="ED")
    rgbd, _, _ = render(
        means, covars, [0.5, 0.7], colors, viewmats, Ks, render_mode="RGB+ED", backgrounds=torch.ones(1, 3)
    )
    w1, w2 = 0.5, 0.7 * 0.5  # weights of the two Gaussians at the centre
    assert d.shape == (1, HEIGHT, WIDTH, 1) and rgbd.shape == (1, HEIGHT, WIDTH, 4)
    assert float(d[0, 32, 32, 0]) == pytest.approx(2 * w1 + 4 * w2, rel=1e-6)
    assert float(ed[0, 32, 32, 0]) == pytest.approx((2 * w1 + 4 * w2) / (w1 + w2), rel=1e-6)
    torch.testing.assert_close(ed, d / alpha.clamp(min=1e-10))
    torch.testing.assert_close(rgbd[..., 3:], ed)
    # The background fills colour channels only, never depth.
    torch.testing.assert_close(rgbd[0, 0, 0], torch.tensor([1.0, 1.0, 1.0, 0.0]))


def test_background_fills_uncovered_pixels():
    viewmats, Ks = camera(cameras=2)
    means, covars = on_axis([2.0], [0.2])
    backgrounds = torch.tensor([[0.1, 0.2, 0.3], [0.9, 0.8, 0.7]])
    image, alpha, _ = render(means, covars, [0.9], [[0.0, 0.0, 0.0]], viewmats, Ks, backgrounds=backgrounds)
    torch.testing.assert_close(image[:, 0, 0], backgrounds)
    assert float(alpha[:, 0, 0].abs().max()) == 0.0
    torch.testing.assert_close(image[:, 32, 32], backgrounds * (1 - 0.9), atol=1e-6, rtol=0)
