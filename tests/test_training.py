"""The training objective: gradients reach the encoder through the renderer, and a few steps learn."""

import json

import pytest
import torch

from pixelsplat_ns.core.views import Views
from pixelsplat_ns.data import load_scene
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset
from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
from pixelsplat_ns.pretraining.loss import LossConfig, pretraining_loss


def scene_batch(root, key, context, target, size=64):
    views = load_scene(
        root,
        "train",
        key,
        list(context) + list(target),
        (size, size),
        make_baseline_1=True,
        context=range(len(context)),
    )
    n = len(context)
    views = views.batched()
    return {"context": views.select((slice(None), slice(0, n))), "target": views.select((slice(None), slice(n, None)))}


def two_views() -> Views:
    """Two random 32 x 32 views 0.3 apart, used as both context and targets."""
    extrinsics = torch.eye(4).repeat(1, 2, 1, 1)
    extrinsics[0, 1, 0, 3] = 0.3
    intrinsics = torch.tensor([[0.8, 0, 0.5], [0, 0.8, 0.5], [0, 0, 1.0]]).repeat(1, 2, 1, 1)
    return Views(torch.rand(1, 2, 3, 32, 32), extrinsics, intrinsics, torch.full((1, 2), 0.5), torch.full((1, 2), 20.0))


@pytest.mark.e2e
def test_a_few_steps_reduce_the_loss_on_a_fixed_scene(tmp_path):
    write_synthetic_dataset(
        tmp_path, num_scenes=1, seed=7, config=SyntheticConfig(height=72, width=128), test_fraction=0.0
    )
    key = next(iter(json.loads((tmp_path / "train" / "index.json").read_text())))
    batch = scene_batch(tmp_path, key, context=(0, 8), target=(2, 4, 6))
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(tiny()).train()
    optimizer = torch.optim.Adam(encoder.parameters(), lr=2e-3)
    losses = []
    for step in range(25):
        loss, _ = pretraining_loss(encoder, batch, step, LossConfig(), generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss["mse"].backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 0.5)
        optimizer.step()
        losses.append(loss["mse"].item())
    first, last = sum(losses[:3]) / 3, sum(losses[-3:]) / 3
    assert last < 0.7 * first, losses


def test_every_trained_parameter_gets_a_gradient():
    """DDP-friendliness: no parameter of the model is left out of the graph (ResNet's layer4 is not built)."""
    torch.manual_seed(0)
    encoder = PixelSplatEncoder(tiny()).train()
    views = two_views()
    loss, rendered = pretraining_loss(encoder, {"context": views, "target": views}, 0, LossConfig())
    assert rendered.shape == (1, 2, 3, 32, 32)
    loss["mse"].backward()
    missing = [name for name, p in encoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, missing


def test_lpips_joins_the_loss_from_its_start_step():
    import lpips

    torch.manual_seed(0)
    encoder = PixelSplatEncoder(tiny()).train()
    views = two_views()
    batch = {"context": views, "target": views}
    model = lpips.LPIPS(net="vgg", pretrained=False, pnet_rand=True, verbose=False).eval()
    config = LossConfig(lpips_weight=0.05, lpips_start_step=100)
    before, _ = pretraining_loss(encoder, batch, 99, config, model)
    after, _ = pretraining_loss(encoder, batch, 100, config, model)
    assert set(before) == {"mse"} and set(after) == {"mse", "lpips"}
    after["lpips"].backward()
    assert encoder.to_gaussians[1].weight.grad.abs().sum() > 0, "LPIPS must train the encoder"
