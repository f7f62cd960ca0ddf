"""The CUDA paths, checked without a GPU: every tensor the encoder makes is made on its inputs' device, the
renderer runs in float32 under mixed precision, batches for a GPU come from pinned memory."""

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from pixelsplat_ns.core.torch_versions import autocast_dtype
from pixelsplat_ns.core.views import Views
from pixelsplat_ns.encoder import PixelSplatEncoder, paper, tiny
from pixelsplat_ns.encoder.official_sh import official_sh_to_gsplat
from pixelsplat_ns.pretraining.datamanager import loader_options
from pixelsplat_ns.pretraining.loss import LossConfig, pretraining_loss
from pixelsplat_ns.render import views as render_views_module
from pixelsplat_ns.render.spherical_harmonics import sh_rotation_matrix

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)

COPIES = (torch.ops.aten.copy_.default, torch.ops.aten._to_copy.default)  # moving data between devices is fine


class MixedDevices(TorchDispatchMode):
    """Records every operation that meets tensors of two devices (beyond scalars and copies): on a GPU each
    one fails with "Expected all tensors to be on the same device"."""

    def __init__(self) -> None:
        super().__init__()
        self.found: set[tuple[str, tuple[str, ...]]] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        devices = {
            t.device.type for t in tree_flatten((args, kwargs))[0] if isinstance(t, torch.Tensor) and t.dim() > 0
        }
        if len(devices) > 1 and func not in COPIES:
            self.found.add((str(func), tuple(sorted(devices))))
        return func(*args, **kwargs)


def meta_context(size: int) -> Views:
    """Context views on the meta device: shapes without data, so nothing runs and no memory is taken."""
    b, v = 1, 2
    return Views(
        torch.empty(b, v, 3, size, size, device="meta"),
        torch.eye(4, device="meta").repeat(b, v, 1, 1),
        torch.eye(3, device="meta").repeat(b, v, 1, 1),
        torch.ones(b, v, device="meta"),
        torch.full((b, v), 10.0, device="meta"),
    )


def test_the_detector_catches_a_tensor_made_on_the_cpu():
    """Element-wise operations refuse mixed devices even on meta; products do not, so they are recorded."""
    with MixedDevices() as mode:
        torch.ones(3, 3, device="meta") @ torch.ones(3, 3)
    assert mode.found == {("aten.mm.default", ("cpu", "meta"))}


@pytest.mark.parametrize("preset, size", [(tiny, 64), (paper, 256)], ids=["tiny", "paper"])
@pytest.mark.parametrize("deterministic", [True, False])
def test_the_encoder_makes_every_tensor_on_its_inputs_device(monkeypatch, preset, size, deterministic):
    encoder = PixelSplatEncoder(preset()).eval().to("meta")
    monkeypatch.setattr(encoder, "_check_inputs", lambda context: None)  # its value checks read data
    with torch.no_grad(), MixedDevices() as mode:
        gaussians = encoder.encode(meta_context(size), deterministic=deterministic)
    assert gaussians.means.device.type == "meta"
    assert not mode.found, sorted(mode.found)


def test_the_sh_conversions_follow_their_rotations_device():
    rotation = torch.eye(3, device="meta").expand(2, 3, 3)
    with MixedDevices() as mode:
        sh_rotation_matrix(3, rotation)
        for sh_rotation in ("official", "frame_independent"):
            for coefficient_14 in ("official_forward_kernel", "consistent"):
                official_sh_to_gsplat(4, rotation, sh_rotation, coefficient_14)
    assert not mode.found, sorted(mode.found)


def test_the_training_loss_renders_in_float32_under_autocast(monkeypatch):
    """nerfstudio's --mixed-precision runs the loss under autocast: the encoder may compute in half precision,
    the renderer still gets float32 (gsplat takes nothing else) and the loss stays finite."""
    seen = []
    original = render_views_module.rasterize

    def spy(*args, **kwargs):
        seen.extend(t.dtype for t in (*args, *kwargs.values()) if isinstance(t, torch.Tensor) and t.is_floating_point())
        seen.append(autocast_dtype("cpu") is not None)
        return original(*args, **kwargs)

    monkeypatch.setattr(render_views_module, "rasterize", spy)
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(tiny()).train()
    extrinsics = torch.eye(4).repeat(1, 2, 1, 1)
    extrinsics[0, 1, 0, 3] = 0.3
    intrinsics = torch.tensor([[0.8, 0, 0.5], [0, 0.8, 0.5], [0, 0, 1.0]]).repeat(1, 2, 1, 1)
    views = Views(
        torch.rand(1, 2, 3, 32, 32), extrinsics, intrinsics, torch.full((1, 2), 0.5), torch.full((1, 2), 20.0)
    )
    with torch.autocast("cpu", dtype=torch.bfloat16):
        losses, rendered = pretraining_loss(encoder, {"context": views, "target": views}, 0, LossConfig(lpips_weight=0))
    losses["mse"].backward()
    assert seen and all(entry in (torch.float32, False) for entry in seen), set(seen)
    assert rendered.dtype == torch.float32 and torch.isfinite(losses["mse"])
    assert encoder.to_gaussians[1].weight.grad is not None


def test_batches_for_a_gpu_come_from_pinned_memory():
    assert loader_options("cuda:0", 2)["pin_memory"] and loader_options(torch.device("cuda", 1), 0)["pin_memory"]
    assert not loader_options("cpu", 2)["pin_memory"]
    assert loader_options("cpu", 0)["persistent_workers"] is False
