"""The numba compositing backend against the pure-torch one: values and gradients on random scenes.

numba compiles the kernels on the first call of a session (``cache=True`` then keeps them in
``pixelsplat_ns/render/numba_kernels/__pycache__``, so later runs load them instead; docs/benchmarks.md has
both times). A fresh CI checkout pays the compile once, in whichever render test runs first.
"""

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.scenes import random_scene
from pixelsplat_ns.fast_routes.numba_cache import warm_up
from pixelsplat_ns.render import rasterize
from pixelsplat_ns.render.compositing import composite, footprints
from pixelsplat_ns.render.numba_kernels import compositing as numba_compositing
from pixelsplat_ns.render.numba_kernels import tiles
from pixelsplat_ns.render.numba_kernels.compositing import composite_numba

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)

PARAMS = ["means", "quats", "scales", "opacities", "colors"]


def values_and_gradients(scene: dict, backend: str, **kwargs) -> dict:
    """Image, alpha and the gradients of a fixed random-weighted loss w.r.t. every Gaussian parameter."""
    tensors = {name: scene[name].clone().requires_grad_() for name in PARAMS}
    image, alpha, _ = rasterize(**dict(scene, **tensors), **kwargs, backend=backend)
    weights = torch.rand(image.shape, generator=torch.Generator().manual_seed(7)).to(image.dtype)  # same in any dtype
    ((image * weights).sum() + (alpha * alpha).sum()).backward()
    grads = {name: t.grad for name, t in tensors.items() if t.grad is not None}
    return dict(image=image.detach(), alpha=alpha.detach(), **grads)


def in_float64(scene: dict, **kwargs) -> tuple[dict, dict]:
    """The scene and rasterize's keyword arguments in float64."""
    cast = lambda d: {k: v.double() if torch.is_tensor(v) and v.is_floating_point() else v for k, v in d.items()}  # noqa: E731
    return cast(scene), cast(kwargs)


def assert_matches(ours: dict, reference: dict, tolerance: float = 1e-5):
    """Equal within ``tolerance`` times each tensor's largest magnitude."""
    assert ours.keys() == reference.keys()
    for name, expected in reference.items():
        scale = float(expected.abs().max())
        assert scale > 0, f"{name} is all zero: the check would mean nothing"
        torch.testing.assert_close(ours[name], expected, atol=tolerance * scale, rtol=0, msg=name)


@pytest.mark.parametrize(
    "render_mode, sh_degree",
    [("RGB", None), ("RGB+ED", None), ("RGB", 0), ("D", 1), ("ED", 2), ("RGB+D", 3), ("RGB+ED", 4)],
)
def test_values_and_gradients_match_torch(render_mode, sh_degree):
    """Three cameras (one with its own colours per camera when SH is off), background, every render mode
    and SH degree."""
    scene = random_scene(n=300, cameras=3, seed=30, sh_degree=sh_degree, per_camera_colors=sh_degree is None)
    if sh_degree is not None:
        scene["colors"] = scene["colors"][:, : (sh_degree + 1) ** 2].contiguous()
    scene["opacities"][:10] = 1.3  # some alphas capped at 0.999
    backgrounds = torch.rand(3, 3, generator=torch.Generator().manual_seed(31))
    kwargs = dict(width=50, height=38, sh_degree=sh_degree, render_mode=render_mode, backgrounds=backgrounds)
    ours = values_and_gradients(scene, "numba", **kwargs)
    # The torch backend in float64: in float32 its own rounding reaches 1e-5 of the largest gradient in the ED
    # modes (division by alpha), the size of the tolerance; numba accumulates in float64 and stays far below.
    scene64, kwargs64 = in_float64(scene, **kwargs)
    reference = {k: v.float() for k, v in values_and_gradients(scene64, "torch", **kwargs64).items()}
    if render_mode in ("D", "ED"):
        assert "colors" not in reference  # the depth modes draw no colour
    assert_matches(ours, reference)


def test_dense_scene_with_early_stops_matches_torch():
    """Overlapping opaque Gaussians: most pixels stop before their last Gaussian, which the backward pass
    must skip; a few opacities above 1 cap alpha at 0.999."""
    scene = random_scene(n=600, cameras=2, seed=32)
    scene["opacities"] = 0.6 + 0.4 * scene["opacities"]
    scene["opacities"][:30] = 1.5
    scene["scales"] = scene["scales"] * 2
    kwargs = dict(width=48, height=40, backgrounds=torch.ones(2, 3))
    ours = values_and_gradients(scene, "numba", **kwargs)
    reference = values_and_gradients(scene, "torch", **kwargs)
    assert (reference["alpha"] > 0.999).float().mean() > 0.3, "the scene should stop many pixels early"
    assert_matches(ours, reference)


@pytest.mark.parametrize("dtype, max_correlation", [(torch.float32, 0.8), (torch.float64, 0.8), (torch.float64, 0.999)])
def test_compositing_many_channels(dtype, max_correlation):
    """``composite_numba`` on its own with 32 channels, in float32 and float64 (computed in float64); with
    correlations up to 0.999, thin slanted ellipses whose rows cover a small part of their pixel box, some of
    them so thin that the falloff recurrence over their box could underflow and the kernels evaluate it pixel
    by pixel instead."""
    g = torch.Generator().manual_seed(33)
    n_cameras, n, width, height = 2, 200, 33, 28
    means2d = torch.rand(n_cameras, n, 2, generator=g, dtype=dtype) * torch.tensor([width, height], dtype=dtype)
    scale = torch.rand(n_cameras, n, 2, generator=g, dtype=dtype) * 3 + 0.5
    rho = (torch.rand(n_cameras, n, generator=g, dtype=dtype) * 2 - 1) * max_correlation
    det = (scale[..., 0] * scale[..., 1]) ** 2 * (1 - rho**2)
    conics = torch.stack([scale[..., 1] ** 2, -rho * scale[..., 0] * scale[..., 1], scale[..., 0] ** 2], -1)
    conics = conics / det[..., None]
    opacities = torch.rand(n_cameras, n, generator=g, dtype=dtype)
    colors = torch.randn(n_cameras, n, 32, generator=g, dtype=dtype)
    depths = torch.rand(n_cameras, n, generator=g, dtype=dtype).round(decimals=1)  # many equal depths
    radii = torch.ceil(3 * scale.max(-1).values).int()
    radii[:, :5] = 0  # culled
    safe, unsafe = recurrence_use(means2d, conics, opacities, depths, radii, width, height)
    assert safe > 0 and (unsafe > 0) == (max_correlation > 0.99)
    results = []
    for fn in (composite_numba, composite):
        inputs = [t.clone().requires_grad_() for t in (means2d, conics, opacities, colors)]
        image, alpha = fn(*inputs, depths, radii, width, height)
        weights = torch.rand(image.shape, generator=torch.Generator().manual_seed(34), dtype=dtype)
        ((image * weights).sum() + alpha.sum()).backward()
        assert image.dtype == dtype and alpha.shape == (n_cameras, height, width, 1)
        results.append(
            dict(
                image=image.detach(),
                alpha=alpha.detach(),
                **{name: t.grad for name, t in zip(["means2d", "conics", "opacities", "colors"], inputs)},
            )
        )
    assert_matches(*results, tolerance=1e-5 if dtype == torch.float32 else 1e-10)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "conic", [(1200.0, -1180.0, 1200.0), (200.0, -190.0, 200.0), (110.0, -10.35, 1.0), (0.07, 0.031, 0.09)]
)
def test_extreme_conics_match_torch(dtype, conic):
    """Conics far from those of the usual 0.3 px blur: entries whose exp(-a), exp(-b) or exp(-c) would
    overflow or underflow although the falloffs stay in range (the recurrence must not be used for them), and
    a wide, slanted one whose falloffs the recurrence steps through a whole box (in float64, float32 inputs
    too)."""
    means2d = torch.tensor([[[8.0, 8.0], [5.3, 9.7]]], dtype=dtype)
    conics = torch.tensor([[conic, conic]], dtype=dtype)
    opacities = torch.tensor([[1.0, 0.7]], dtype=dtype)
    colors = torch.tensor([[[1.0, 0.2, 0.5], [0.1, 0.9, 0.3]]], dtype=dtype)
    depths, radii = torch.tensor([[1.0, 2.0]], dtype=dtype), torch.tensor([[8, 8]], dtype=torch.int32)
    ours = composite_numba(means2d, conics, opacities, colors, depths, radii, 16, 16)
    reference = composite(*(t.double() for t in (means2d, conics, opacities, colors, depths)), radii, 16, 16)
    for value, expected in zip(ours, reference):
        assert expected.abs().max() > 5e-3
        torch.testing.assert_close(value.double(), expected, atol=2e-6, rtol=0)


def recurrence_use(means2d, conics, opacities, depths, radii, width, height) -> tuple[int, int]:
    """How many (tile, Gaussian) entries the kernels walk with the falloff recurrence, and how many pixel by
    pixel because a corner of the Gaussian's box in the tile is too far out (``RECURRENCE_MAX_SIGMA``)."""
    flat = [t.flatten(0, 1).detach() for t in (means2d, conics, opacities)]
    boxes, lists = tiles.build_layout(*flat, depths, radii.flatten(), width, height)
    counts = [0, 0]
    for tile in range(len(lists.offsets) - 1):
        _, px0, px1, py0, py1 = tiles._tile_bounds(tile, lists.tiles_x, lists.tiles_y, width, height)
        for m in lists.entries[lists.offsets[tile] : lists.offsets[tile + 1]]:
            (mx, my), (a, b, c) = flat[0][m].tolist(), flat[1][m].tolist()
            xs = (max(px0, boxes.x0[m]) + 0.5, min(px1, boxes.x1[m]) - 0.5)
            ys = (max(py0, boxes.y0[m]) + 0.5, min(py1, boxes.y1[m]) - 0.5)
            worst = max(0.5 * (a * (mx - x) ** 2 + c * (my - y) ** 2) + b * (mx - x) * (my - y) for x in xs for y in ys)
            counts[int(worst > numba_compositing.RECURRENCE_MAX_SIGMA)] += 1
    return counts[0], counts[1]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pixel_boxes_and_tile_lists_are_the_torch_backends(dtype):
    """The numba layout (tile rectangles in the means' dtype, as gsplat's float32, then the boxes) against
    ``compositing.footprints``, with centres on and a rounding step off tile edges, off screen and culled; the
    tile lists are the same whatever the number of parallel chunks."""
    g = torch.Generator().manual_seed(37)
    n, width, height = 3000, 1000, 700
    means2d = torch.rand(2, n, 2, generator=g, dtype=dtype) * 1100 - 50
    scale = torch.rand(2, n, 2, generator=g, dtype=dtype) * 6 + 0.3
    radii = torch.ceil(3 * scale.max(-1).values).int()
    # A third: centres a few rounding steps off tile edges, wide ellipses and any radius, so that the tile
    # rectangle bounds the box and its float32 arithmetic shows (float64 would round some the other way).
    edges = torch.randint(0, 40, (2, n, 2), generator=g).to(dtype) * 16
    ulps = torch.randint(-3, 4, (2, n, 2), generator=g).to(dtype) * torch.finfo(dtype).eps * edges.clamp(min=1)
    means2d[:, ::3] = (edges + ulps)[:, ::3]
    scale[:, ::3] = 200.0
    radii[:, ::3] = torch.randint(1, 400, (2, n), generator=g, dtype=torch.int32)[:, ::3]
    conics = torch.stack([1 / scale[..., 0] ** 2, torch.zeros_like(scale[..., 0]), 1 / scale[..., 1] ** 2], -1)
    opacities = torch.rand(2, n, generator=g, dtype=dtype)
    radii[:, ::7] = 0
    depths = torch.rand(2, n, generator=g, dtype=dtype)
    flat = [t.flatten(0, 1) for t in (means2d, conics, opacities)]
    boxes, lists = tiles.build_layout(*flat, depths, radii.flatten(), width, height)
    expected = footprints(*flat, radii.flatten(), width, height)
    for name in ("x0", "x1", "y0", "y1"):
        assert (getattr(boxes, name) == getattr(expected, name).numpy()).all(), name
    if dtype == torch.float32:
        in_float64 = footprints(flat[0].double(), *flat[1:], radii.flatten(), width, height)
        assert any((getattr(in_float64, name) != getattr(expected, name)).any() for name in ("x1", "y1"))
    assert ((boxes.x1 > boxes.x0) & (boxes.y1 > boxes.y0)).mean() > 0.5
    order = tiles.depth_order(depths)
    for chunks in (1, 5):
        offsets, entries = tiles._tile_lists(
            order, boxes.x0, boxes.x1, boxes.y0, boxes.y1, 2, n, lists.tiles_x, lists.tiles_y, chunks
        )
        assert (offsets == lists.offsets).all() and (entries == lists.entries).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_depth_order_is_torchs_stable_sort(dtype):
    """The radix sort that orders each camera's Gaussians: negative, equal and huge depths, several sizes."""
    g = torch.Generator().manual_seed(36)
    for n in (1, 2, 1000, 70_000):
        depths = torch.round(torch.randn(3, n, generator=g, dtype=dtype) * 12) / 4 + 0.0  # ties; no -0.0
        depths[1, : n // 2] = 1e30
        depths[2] = torch.finfo(dtype).tiny * torch.arange(n, 0, -1, dtype=dtype)  # tiny, decreasing
        expected = torch.sort(depths, dim=-1, stable=True).indices.numpy()
        assert (tiles.depth_order(depths) == expected).all()


def test_a_viewer_interrupt_never_lands_inside_a_kernel():
    """nerfstudio's viewer interrupts a render with a trace function that raises at the next traced line.
    Raised inside numba's callback into Python (``_numba_unpickle``) it came out of the kernel as a
    SystemError, which killed the viewer's render thread (the viewer then stopped drawing). The kernels now
    run untraced: the render completes, and the lines of ``rasterize`` around them are still traced, so an
    interrupt lands there."""

    class Interrupt(Exception):
        pass

    scene = random_scene(n=60, cameras=1, seed=38, sh_degree=2)
    scene["colors"] = scene["colors"][:, :9].contiguous()
    kwargs = dict(width=24, height=20, sh_degree=2, render_mode="RGB+ED")
    expected, _, _ = rasterize(**scene, **kwargs)  # kernels compiled or loaded
    traced_lines = []

    def tracer(frame, event, arg):
        if event == "line" and frame.f_code.co_name == "_numba_unpickle":
            raise Interrupt
        if event == "line" and frame.f_code.co_name == "_rasterize_torch":
            traced_lines.append(frame.f_lineno)
        return tracer

    sys.settrace(tracer)
    try:
        image, _, _ = rasterize(**scene, **kwargs)
    finally:
        sys.settrace(None)
    assert torch.equal(image, expected)
    assert len(traced_lines) > 5


INTERRUPTED_FIRST_RENDER = """
import importlib.util, sys
from pathlib import Path
import torch
sys.path.insert(0, sys.argv[1])
from helpers.scenes import random_scene
from pixelsplat_ns.render import rasterize

assert "numba" not in sys.modules  # rasterize imports it at the first CPU render
packages = [Path(importlib.util.find_spec(name).origin).parent for name in ("numba", "llvmlite")]
interrupts = []

class Interrupt(Exception):
    pass

def tracer(frame, event, arg):  # the viewer's interrupt, at any traced line of numba's or llvmlite's own code
    if event == "line" and any(Path(frame.f_code.co_filename).is_relative_to(p) for p in packages):
        interrupts.append(frame.f_code.co_filename)
        raise Interrupt
    return tracer

scene = random_scene(n=40, cameras=1, seed=39, sh_degree=1)
kwargs = dict(width=20, height=16, sh_degree=1, render_mode="RGB+ED")
sys.settrace(tracer)
try:
    first, _, _ = rasterize(**scene, **kwargs)
finally:
    sys.settrace(None)
again, _, _ = rasterize(**scene, **kwargs)
assert not interrupts, interrupts[:3]
assert "numba" in sys.modules and torch.equal(first, again)
print("rendered")
"""


def test_an_interrupt_never_lands_inside_numbas_import(tmp_path):
    """The first CPU render imports numba; under the viewer's trace an interrupt could land half-way through
    that import and leave numba in ``sys.modules`` without its submodules bound ("module 'numba' has no
    attribute 'core'" at every later render: the viewer's render thread died and the viewer never drew).
    In a fresh interpreter, a trace function that raises at any line of numba's or llvmlite's Python code must
    never fire: the import and the kernels run untraced."""
    script = tmp_path / "interrupted_first_render.py"
    script.write_text(INTERRUPTED_FIRST_RENDER)
    done = subprocess.run(
        [sys.executable, script, str(Path(__file__).parent)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0 and "rendered" in done.stdout, done.stderr[-3000:]


def test_warm_up_reports_seconds():
    assert 0 < warm_up() < 120


def test_auto_uses_numba_on_cpu_and_torch_when_numba_is_missing(monkeypatch):
    scene = random_scene(n=50, cameras=1, seed=35)
    calls = []
    monkeypatch.setattr(numba_compositing, "composite_numba", lambda *a: calls.append("numba") or composite(*a))
    rasterize(**scene, width=24, height=20)
    assert calls == ["numba"]
    module = importlib.import_module("pixelsplat_ns.render.rasterize")  # the package's name is the function
    monkeypatch.setattr(module, "numba_available", lambda: False)
    rasterize(**scene, width=24, height=20)
    assert calls == ["numba"]
    with pytest.raises(ValueError, match="numba does not import here.*backend='auto' or 'torch'"):
        rasterize(**scene, width=24, height=20, backend="numba")


def test_importing_the_package_does_not_import_numba():
    code = "import sys, pixelsplat_ns, pixelsplat_ns.render; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("plane", ["near", "far"])
def test_a_gaussian_exactly_on_a_depth_limit_is_drawn_by_both_backends(dtype, plane):
    """gsplat keeps near <= z <= far with the limits in the inputs' dtype (0.01 in float32 is 0.00999999978);
    the numba kernels, which compute in float64, must compare against the same rounded limits."""
    z = 0.01 if plane == "near" else 3.7
    scene = dict(
        means=torch.tensor([[0.0, 0.0, z]], dtype=dtype),
        quats=torch.tensor([[1.0, 0, 0, 0]], dtype=dtype),
        scales=torch.full((1, 3), 0.001 * z / 0.01, dtype=dtype),
        opacities=torch.tensor([0.9], dtype=dtype),
        colors=torch.ones(1, 3, dtype=dtype),
        viewmats=torch.eye(4, dtype=dtype)[None],
        Ks=torch.tensor([[[20.0, 0, 10], [0, 20.0, 10], [0, 0, 1]]], dtype=dtype),
        width=20,
        height=20,
        near_plane=0.01 if plane == "near" else 0.001,
        far_plane=1e10 if plane == "near" else 3.7,
    )
    drawn = {}
    for backend in ("numba", "torch"):
        _, alphas, meta = rasterize(**scene, backend=backend)
        drawn[backend] = (int(meta["radii"].flatten()[0]), float(alphas.sum()))
    assert drawn["torch"][0] > 0 and drawn["torch"][1] > 1.0
    assert drawn["numba"][0] == drawn["torch"][0]
    assert drawn["numba"][1] == pytest.approx(drawn["torch"][1], rel=1e-5)
