"""The evaluation loop end to end on a generated dataset, with a small random encoder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from pixelsplat_ns.checkpoints import save_converted
from pixelsplat_ns.core.gaussians import Gaussians
from pixelsplat_ns.data.synthetic import SyntheticConfig, write_synthetic_dataset
from pixelsplat_ns.encoder import PixelSplatEncoder, tiny
from pixelsplat_ns.render import render_gaussians

BIN = Path(sys.executable).parent


@pytest.mark.e2e
def test_evaluate_script_scores_every_indexed_target(tmp_path):
    data = tmp_path / "data"
    write_synthetic_dataset(
        data,
        num_scenes=4,
        seed=3,
        config=SyntheticConfig(height=72, width=128, min_frames=48, max_frames=50),
        test_fraction=0.5,
    )
    index = json.loads((data / "evaluation_index.json").read_text())
    entries = {k: v for k, v in index.items() if v is not None}
    assert entries
    torch.manual_seed(0)
    config = tiny()
    save_converted(tmp_path / "tiny.pt", config, PixelSplatEncoder(config).state_dict())
    output = tmp_path / "eval.json"
    command = [
        str(BIN / "pixelsplat-evaluate"),
        "--checkpoint",
        str(tmp_path / "tiny.pt"),
        "--data",
        str(data),
        "--index",
        str(data / "evaluation_index.json"),
        "--output-path",
        str(output),
        "--image-size",
        "64",
        "64",
        "--skip-lpips",
    ]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "PSNR" in result.stdout
    assert f"encoder: {tmp_path / 'tiny.pt'}: pixelsplat-ns encoder file, architecture camera-ready" in result.stdout
    report = json.loads(output.read_text())
    assert set(report["scenes"]) == set(entries)
    for key, scene in report["scenes"].items():
        assert len(scene["psnr"]) == len(entries[key]["target"]) == len(scene["ssim"])
        assert all(0 < p < 60 for p in scene["psnr"]) and all(-1 <= s <= 1 for s in scene["ssim"])
    all_psnr = [p for scene in report["scenes"].values() for p in scene["psnr"]]
    assert abs(report["mean"]["psnr"] - sum(all_psnr) / len(all_psnr)) < 1e-9
    assert report["mean"]["lpips"] is None
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode != 0 and "--force" in refused.stderr


def test_render_gaussians_uses_the_encoder_camera_conventions():
    """A single Gaussian straight ahead of a camera (OpenCV, normalized intrinsics) lands in the centre."""
    gaussians = Gaussians(
        means=torch.tensor([[[0.0, 0.0, 2.0]]]),
        covariances=(torch.eye(3) * 0.05**2)[None, None],
        opacities=torch.tensor([[0.9]]),
        harmonics=torch.zeros(1, 1, 25, 3),
    )
    gaussians.harmonics[..., 0, :] = 0.5 / 0.28209479177387814  # colour 1.0 after gsplat's +0.5
    image = render_gaussians(
        gaussians,
        torch.eye(4)[None, None],
        torch.tensor([[[[1.0, 0, 0.5], [0, 1.0, 0.5], [0, 0, 1]]]]),
        torch.tensor([[1.0]]),
        (32, 32),
    )
    assert image.shape == (1, 1, 3, 32, 32)
    brightest = divmod(int(image[0, 0, 0].argmax()), 32)
    assert brightest in {(15, 15), (15, 16), (16, 15), (16, 16)}
    assert float(image[0, 0, 0].max()) > 0.5
