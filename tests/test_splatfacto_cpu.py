"""scripts/benchmarks/splatfacto_cpu.py, the per-scene baseline of benchmark_fusion: nerfstudio's splatfacto,
unchanged but for gsplat's CUDA rasterization (replaced by the project's), trained from random points on the
CPU and scored on the held-out views. Runs in a subprocess: the script patches splatfacto, torchmetrics and
torch for its own process only."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "pixelsplat_ns" / "sample_scene"


@pytest.mark.e2e
def test_splatfacto_trains_on_the_cpu_for_its_wall_time_and_scores_the_held_out_views(tmp_path):
    # torch.compile of splatfacto's view matrix would take longer than the test's training.
    env = dict(os.environ, TORCHDYNAMO_DISABLE="1", PYTHONWARNINGS="ignore")
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "benchmarks" / "splatfacto_cpu.py"),
            "--data",
            str(SAMPLE),
            "--seconds",
            "3",
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    score = json.loads(result.stdout.strip().splitlines()[-1])
    transforms = json.loads((SAMPLE / "transforms.json").read_text())
    assert score["views"] == len(transforms["frames"]) - math.ceil(
        len(transforms["frames"]) * 0.9
    )  # nerfstudio's split
    assert score["steps"] >= 3 and 3 <= score["seconds"] < 30
    assert score["gaussians"] == 50000  # splatfacto's random points; densification starts at step 500
    assert 3 < score["psnr"] < 40
    run = next(tmp_path.rglob("config.yml")).parent  # the run is kept: config, last checkpoint, the result
    assert json.loads((run / "result.json").read_text()) == score
    assert len(list(run.glob("nerfstudio_models/step-*.ckpt"))) == 1


def test_the_substitute_rasterization_is_the_projects_and_refuses_what_it_lacks():
    from pixelsplat_ns.render.gsplat_drop_in import rasterization as cpu_rasterization
    from pixelsplat_ns.render.rasterize import rasterize

    torch.manual_seed(0)
    means = torch.randn(50, 3) * 0.3 + torch.tensor([0, 0, 3.0])
    quats, scales, opacities = torch.randn(50, 4), torch.rand(50, 3) * 0.1, torch.rand(50)
    colors = torch.randn(50, 16, 3)
    viewmats, Ks = torch.eye(4)[None], torch.tensor([[[40.0, 0, 24], [0, 40.0, 16], [0, 0, 1]]])
    ours, alpha, info = cpu_rasterization(
        means, quats, scales, opacities, colors, viewmats, Ks, 48, 32, sh_degree=3, render_mode="RGB+ED", tile_size=16
    )
    reference, reference_alpha, _ = rasterize(
        means, quats, scales, opacities, colors, viewmats, Ks, 48, 32, sh_degree=3, render_mode="RGB+ED"
    )
    assert torch.equal(ours, reference) and torch.equal(alpha, reference_alpha)
    assert info["means2d"].shape == (1, 50, 2) and info["radii"].shape == (1, 50)  # what densification reads
    with pytest.raises(ValueError, match="absgrad"):
        cpu_rasterization(means, quats, scales, opacities, colors, viewmats, Ks, 48, 32, absgrad=True)
