"""PSNR, SSIM and LPIPS as the paper computes them."""

import math
import urllib.error

import lpips
import pytest
import torch
from skimage.metrics import structural_similarity

from pixelsplat_ns.metrics import VGG16_WEIGHTS, load_lpips_vgg, lpips_distance, psnr, ssim


def test_psnr_per_image_on_clipped_images():
    gt = torch.full((2, 3, 4, 4), 0.5)
    pred = gt.clone()
    pred[0] += 0.1 * torch.where(torch.arange(16).reshape(4, 4) % 2 == 0, 1.0, -1.0)  # squared error 0.01
    gt[1] = 1.0
    pred[1, :, :2] = 1.3  # clipped to 1: no error
    pred[1, :, 2:] = 0.8  # error 0.04 on half the pixels
    values = psnr(gt, pred)
    assert values.shape == (2,)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4)
    assert values[1].item() == pytest.approx(-10 * math.log10(0.02), abs=1e-4)
    assert psnr(gt, gt).isinf().all()


def test_ssim_matches_scikit_image_with_the_paper_settings():
    generator = torch.Generator().manual_seed(0)
    gt = torch.rand(2, 3, 32, 40, generator=generator)
    pred = (gt + 0.1 * torch.randn(2, 3, 32, 40, generator=generator)).clip(0, 1)
    values = ssim(gt, pred)
    for i in range(2):

        def hwc(x, i=i):
            return x[i].permute(1, 2, 0).numpy()

        gaussian = structural_similarity(
            hwc(gt), hwc(pred), win_size=11, gaussian_weights=True, data_range=1.0, channel_axis=2
        )  # the official call
        uniform = structural_similarity(hwc(gt), hwc(pred), win_size=11, data_range=1.0, channel_axis=2)
        assert values[i].item() == pytest.approx(gaussian, abs=1e-6)
        assert abs(values[i].item() - uniform) > 1e-3


def test_ssim_by_hand_on_flat_images():
    # Flat images have no contrast or structure: SSIM is the luminance term (2 a b + C1) / (a^2 + b^2 + C1).
    c1 = (0.01 * 1.0) ** 2
    value = ssim(torch.full((1, 3, 16, 16), 0.2), torch.full((1, 3, 16, 16), 0.6)).item()
    assert value == pytest.approx((2 * 0.2 * 0.6 + c1) / (0.2**2 + 0.6**2 + c1), abs=1e-5)


def test_lpips_plumbing_with_a_random_trunk():
    torch.manual_seed(0)
    model = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False).eval()  # linear layers ship with lpips
    generator = torch.Generator().manual_seed(1)
    gt = torch.rand(2, 3, 64, 64, generator=generator)
    pred = (gt + 0.2 * torch.randn(2, 3, 64, 64, generator=generator)).clip(0, 1)
    values = lpips_distance(model, gt, pred)
    assert values.shape == (2,) and (values > 0).all()
    with torch.no_grad():
        direct = model(gt * 2 - 1, pred * 2 - 1)[:, 0, 0, 0]  # inputs mapped from [0, 1] to [-1, 1]
    assert torch.allclose(values, direct)
    assert torch.allclose(lpips_distance(model, gt, gt), torch.zeros(2))


def test_missing_vgg_weights_fail_with_instructions(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(RuntimeError) as caught:
        load_lpips_vgg()
    message = str(caught.value)
    assert VGG16_WEIGHTS in message and str(tmp_path / "hub" / "checkpoints") in message
