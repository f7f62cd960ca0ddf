"""The encoder's CPU routes compute what torch's own kernels compute: values, gradients, and cached spectra."""

import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from helpers.scenes import cameras
from pixelsplat_ns.core.views import Views
from pixelsplat_ns.encoder import ComputeOptions, PixelSplatEncoder, tiny
from pixelsplat_ns.encoder.backbone import Backbone, upsample_and_sum
from pixelsplat_ns.fast_routes.derived_weights import DerivedWeights
from pixelsplat_ns.fast_routes.layers import (
    MIN_FOURIER_SIDE,
    MIN_ROWS_FOR_CONVOLUTION,
    FourierConv2d,
    Linear,
    conv2d_fourier,
    kernel_spectrum,
    linear,
)
from pixelsplat_ns.fast_routes.upsampling_numba import upsample_and_sum_numba


def close(a: torch.Tensor, b: torch.Tensor, tolerance: float = 1e-5) -> bool:
    a, b = a.detach(), b.detach()
    return float((a - b).abs().max()) <= tolerance * max(1.0, float(b.abs().max()))


@pytest.mark.parametrize("shape", [(2, 1025, 96), (300, 40), (7, 40), (3, 5, 64, 40)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_equals_torch_linear_with_gradients(shape, bias):
    torch.manual_seed(0)
    x = torch.randn(shape, requires_grad=True)
    weight = torch.randn(24, shape[-1], requires_grad=True)
    b = torch.randn(24, requires_grad=True) if bias else None
    ours = linear(x, weight, b)
    reference = F.linear(x, weight, b)
    assert ours.shape == reference.shape and close(ours, reference)
    upstream = torch.randn_like(reference)
    grads = torch.autograd.grad(ours, [x, weight], upstream)
    expected = torch.autograd.grad(reference, [x, weight], upstream)
    assert all(close(g, e) for g, e in zip(grads, expected))


def test_linear_takes_the_convolution_route_for_large_inputs_only():
    torch.manual_seed(0)
    weight = torch.randn(16, 8)
    large = torch.randn(MIN_ROWS_FOR_CONVOLUTION, 8)
    with torch.profiler.profile() as profile:
        linear(large, weight, None)
        linear(large[:4], weight, None)
        linear(large.double(), weight.double(), None)
    names = [event.name for event in profile.events()]
    assert names.count("aten::convolution") == 1


def test_linear_accepts_non_contiguous_inputs():
    torch.manual_seed(0)
    x = torch.randn(2, 300, 20)[:, ::2, :10]
    weight = torch.randn(6, 10)
    assert close(linear(x, weight, None), F.linear(x, weight))


def test_linear_module_keeps_nn_linear_state_dict_and_can_use_torch_default():
    module = Linear(8, 4)
    assert set(module.state_dict()) == {"weight", "bias"}
    x = torch.randn(MIN_ROWS_FOR_CONVOLUTION, 8)
    fast = module(x)
    module.via_convolution = False
    assert close(fast, module(x))


@pytest.mark.parametrize(
    "size, kernel, batch", [((64, 64), 7, 2), ((45, 70), 7, 1), ((40, 33), 5, 3), ((26, 26), 7, 1)]
)
def test_fourier_convolution_equals_direct_convolution(size, kernel, batch):
    torch.manual_seed(0)
    x = torch.randn(batch, 12, *size)
    weight, bias = torch.randn(10, 12, kernel, kernel), torch.randn(10)
    ours = conv2d_fourier(x, kernel_spectrum(weight), bias, kernel)
    assert ours.is_contiguous(memory_format=torch.channels_last)
    assert close(ours, F.conv2d(x, weight, bias, padding=kernel // 2))


def test_fourier_convolution_chunks_many_images():
    torch.manual_seed(0)
    x = torch.randn(40, 3, 30, 30)  # 4 tiles each: several chunks of whole images
    weight, bias = torch.randn(4, 3, 7, 7), torch.randn(4)
    assert close(conv2d_fourier(x, kernel_spectrum(weight), bias, 7), F.conv2d(x, weight, bias, padding=3))


def test_fourier_conv2d_uses_the_fourier_route_at_inference_on_large_images_only():
    torch.manual_seed(0)
    conv = FourierConv2d(4, 3, 7)
    large = torch.randn(1, 4, MIN_FOURIER_SIDE, MIN_FOURIER_SIDE)

    def ffts(*args) -> int:
        with torch.profiler.profile() as profile:
            result = conv.fourier(*args)
        assert close(result, F.conv2d(args[0], conv.weight, conv.bias, padding=3))
        return sum(event.name == "aten::fft_rfft2" for event in profile.events())

    with torch.no_grad():
        assert ffts(large) >= 1
        assert ffts(large[..., :-8]) == 0  # smaller than MIN_FOURIER_SIDE
        conv.double()
        assert ffts(large.double()) == 0  # float64: torch's own convolution
        conv.float()
    assert ffts(large) == 0  # autograd on: the direct convolution, whose backward is faster


def test_fourier_conv2d_recomputes_the_spectrum_when_weights_change():
    torch.manual_seed(0)
    conv = FourierConv2d(4, 3, 7)
    x = torch.randn(1, 4, MIN_FOURIER_SIDE, MIN_FOURIER_SIDE)
    with torch.no_grad():
        conv.fourier(x)
        conv.weight.mul_(-2.0)  # an in-place update, as an optimizer step or load_state_dict makes
        assert close(conv.fourier(x), F.conv2d(x, conv.weight, conv.bias, padding=3))
        conv.load_state_dict({"weight": torch.randn(3, 4, 7, 7), "bias": torch.randn(3)})
        assert close(conv.fourier(x), F.conv2d(x, conv.weight, conv.bias, padding=3))


def test_derived_weights_are_kept_only_while_parameters_are_unchanged_and_grad_free():
    parameter = torch.nn.Parameter(torch.ones(3))
    derived, calls = DerivedWeights(), []

    def compute():
        calls.append(1)
        return parameter.detach() * 2

    with torch.no_grad():
        derived("double", [parameter], compute)
        derived("double", [parameter], compute)
        assert len(calls) == 1
        parameter.add_(1.0)
        assert torch.equal(derived("double", [parameter], compute), torch.full((3,), 4.0))
        assert len(calls) == 2
    derived("double", [parameter], compute)  # autograd on: always computed afresh
    derived("double", [parameter], compute)
    assert len(calls) == 4


def test_backbone_gradients_through_its_in_place_sums():
    """The backbone sums its feature maps in place; autograd's numerical check in float64 (the CPU routes
    are float32-only, so this checks the in-place sums and layouts)."""
    torch.manual_seed(0)
    backbone = Backbone(tiny().backbone).double().eval()
    images = torch.rand(1, 3, 8, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda x: backbone(x).sum(dim=(2, 3)), (images,), eps=1e-6, atol=1e-5, fast_mode=True
    )


@pytest.mark.parametrize(
    "height, width, sizes, patch",
    [
        (256, 256, [(128, 128), (64, 64), (32, 32)], 8),  # the paper's backbone at 256^2
        (48, 80, [(24, 40), (12, 20), (6, 10)], 8),  # not square
        (16, 24, [(8, 12), (4, 6), (2, 3), (1, 2)], 8),  # a single row of the coarsest map
        (12, 12, [(12, 12)], 4),  # already at full size: torch's weights (1, 0)
    ],
)
def test_fused_upsampling_equals_torchs(height, width, sizes, patch):
    """The one-pass numba sum against ``upsample_and_sum`` (torch's interpolate and adds): the same within a
    few units in the last place, from channels-last and plain inputs, square or not, coarse maps of one row."""
    g = torch.Generator().manual_seed(5)
    maps = [torch.randn(2, 24, h, w, generator=g) * 3 for h, w in sizes]
    maps[0] = maps[0].contiguous(memory_format=torch.channels_last)
    patches = torch.randn(2, height // patch, width // patch, 24, generator=g)
    expected = upsample_and_sum(maps, patches, height, width)
    fused = upsample_and_sum_numba(maps, patches, height, width)
    assert fused.shape == expected.shape == (2, height, width, 24)
    # Rounding only: a few units in the last place of the largest values summed (sums cancel, so relative
    # differences of small outputs can be larger).
    ulp = torch.finfo(torch.float32).eps * float(expected.abs().max())
    torch.testing.assert_close(fused, expected, rtol=0, atol=4 * ulp)
    assert (fused - expected).abs().max() > 0 or len(sizes) == 1  # a real comparison, not one path twice


def test_fused_upsampling_refuses_what_it_cannot_do():
    maps = [torch.zeros(1, 4, 4, 4)]
    with pytest.raises(ValueError, match="float32 CPU"):
        upsample_and_sum_numba([maps[0].double()], torch.zeros(1, 2, 2, 4, dtype=torch.float64), 8, 8)
    with pytest.raises(ValueError, match="disagree"):
        upsample_and_sum_numba(maps, torch.zeros(1, 2, 2, 3), 8, 8)
    with pytest.raises(ValueError, match="do not tile"):
        upsample_and_sum_numba(maps, torch.zeros(1, 2, 3, 4), 8, 8)


def test_the_backbone_sums_with_the_fused_kernel_only_at_cpu_inference(monkeypatch):
    import pixelsplat_ns.fast_routes.upsampling_numba as upsampling

    calls = []
    original = upsampling.upsample_and_sum_numba
    monkeypatch.setattr(upsampling, "upsample_and_sum_numba", lambda *a: calls.append(1) or original(*a))
    torch.manual_seed(0)
    backbone = Backbone(tiny().backbone).eval()
    images = torch.rand(2, 3, 16, 24)
    with torch.no_grad():
        fused, plain = backbone(images), backbone(images, fused=False)
    assert calls == [1]
    torch.testing.assert_close(fused, plain, rtol=1e-6, atol=1e-6)
    backbone(images)  # autograd on: torch's operators
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        reduced = backbone(images)  # bfloat16 maps from float32 images: torch's operators
    assert calls == [1]
    assert float((reduced.float() - plain).abs().max()) < 0.1 * float(plain.abs().max())


def test_the_fused_sum_is_float32_whatever_the_default_dtype():
    torch.manual_seed(0)
    backbone = Backbone(tiny().backbone).eval()
    images = torch.rand(2, 3, 16, 24)
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        with torch.no_grad():
            fused, plain = backbone(images), backbone(images, fused=False)
    finally:
        torch.set_default_dtype(previous)
    assert fused.dtype == plain.dtype == torch.float32
    torch.testing.assert_close(fused, plain, rtol=1e-6, atol=1e-6)


INFERENCE_WITHOUT_NUMBA = """
import sys
sys.modules["numba"] = None  # numba refusing to import (a NumPy it does not support, say)
import torch
from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
from pixelsplat_ns.core.views import Views
encoder = PixelSplatEncoder(tiny()).eval()
extrinsics = torch.eye(4).repeat(1, 2, 1, 1)
extrinsics[0, 1, 0, 3] = 1.0
intrinsics = torch.tensor([[0.9, 0, 0.5], [0, 0.9, 0.5], [0, 0, 1.0]]).repeat(1, 2, 1, 1)
views = Views(torch.rand(1, 2, 3, 32, 32), extrinsics, intrinsics, torch.full((1, 2), 0.5), torch.full((1, 2), 50.0))
with torch.inference_mode():
    gaussians = encoder.encode(views, deterministic=True)
print("encoded", gaussians.means.shape[1], "numba" in sys.modules and sys.modules["numba"] is not None)
"""


def test_inference_falls_back_to_torch_where_numba_does_not_import():
    done = subprocess.run([sys.executable, "-c", INFERENCE_WITHOUT_NUMBA], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["encoded", str(2 * 32 * 32), "False"], done.stderr[-3000:]


def test_weights_derived_under_autocast_are_not_reused_outside_it():
    """A fresh tiny encoder run once under bfloat16 autocast, then in float32: the composed upscaler kernel
    computed under autocast (bfloat16) must not be reused by the float32 run, nor the reverse."""
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(tiny()).eval()
    views = Views(torch.rand(1, 2, 3, 32, 32), *cameras())
    never_autocast = PixelSplatEncoder(tiny()).eval()
    never_autocast.load_state_dict(encoder.state_dict())
    with torch.inference_mode():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            first = encoder.encode(views, deterministic=True)
        full = encoder.encode(views, deterministic=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            again = encoder.encode(views, deterministic=True)
        expected = never_autocast.encode(views, deterministic=True)
    for name in ("means", "covariances", "opacities", "harmonics"):
        assert torch.equal(getattr(full, name), getattr(expected, name)), name
        assert torch.equal(getattr(again, name), getattr(first, name)), name


def test_encoder_can_use_torch_default_linear():
    encoder = PixelSplatEncoder(tiny(), ComputeOptions(linear_as_convolution=False))
    assert not any(m.via_convolution for m in encoder.modules() if isinstance(m, Linear))
    assert all(m.via_convolution for m in PixelSplatEncoder(tiny()).modules() if isinstance(m, Linear))
    # The options change on a built encoder, weights untouched.
    weights = {k: v.clone() for k, v in encoder.state_dict().items()}
    encoder.set_compute_options(ComputeOptions())
    assert all(m.via_convolution for m in encoder.modules() if isinstance(m, Linear))
    encoder.set_compute_options(ComputeOptions(linear_as_convolution=False))
    assert not any(m.via_convolution for m in encoder.modules() if isinstance(m, Linear))
    assert all(torch.equal(encoder.state_dict()[k], v) for k, v in weights.items())
