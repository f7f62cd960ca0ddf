"""The GPU check cannot rot while no GPU is at hand: it runs here on the CPU, with nerfstudio unimportable,
as it must on the GPU machine (which has no nerfstudio)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
WITHOUT_NERFSTUDIO = "import sys\nsys.modules['nerfstudio'] = None  # any import of nerfstudio now fails\n"


def python(code: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=env, timeout=600)


def test_the_library_parts_the_gpu_check_needs_import_without_nerfstudio():
    modules = [
        "pixelsplat_ns.render",
        "pixelsplat_ns.encoder",
        "pixelsplat_ns.checkpoints",
        "pixelsplat_ns.pretraining.loss",
        "pixelsplat_ns.data",
        "pixelsplat_ns.evaluation",
        "pixelsplat_ns.metrics",
        "pixelsplat_ns.synthetic_gaussians",
    ]
    result = python(WITHOUT_NERFSTUDIO + "".join(f"import {m}\n" for m in modules) + "print('imported')")
    assert result.returncode == 0 and "imported" in result.stdout, result.stderr[-3000:]
    # The control: the plugin itself does need nerfstudio, so the block is real.
    blocked = python(WITHOUT_NERFSTUDIO + "import pixelsplat_ns.methods")
    assert blocked.returncode != 0 and "nerfstudio" in blocked.stderr


@pytest.mark.e2e  # the whole check program, training steps included
def test_the_gpu_check_runs_on_the_cpu_without_nerfstudio(tmp_path):
    # The script runs as its own program, as on the device machine; a nerfstudio that cannot be imported comes
    # first on its path.
    blocker = tmp_path / "blocked"
    blocker.mkdir()
    (blocker / "nerfstudio.py").write_text("raise ImportError('nerfstudio is not on the GPU machine')\n")
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=os.pathsep.join([str(blocker), str(ROOT)]))
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "gpu_check.py"),
            "--device",
            "cpu",
            "--quick",
            "--repeats",
            "2",
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    report = json.loads((out / "gpu_check.json").read_text())
    assert report["ok"] and report["environment"]["device"] == "cpu"
    sections = {row["section"] for row in report["checks"]}
    assert {"rasterize", "encoder", "ddp"} <= sections and "section" not in sections, "every section ran to its end"
    rasterized = [row["case"] for row in report["checks"] if row["section"] == "rasterize"]
    assert any("grad means" in case and "paper scale" in case for case in rasterized)
    assert all(any(f"SH {degree}" in case for case in rasterized) for degree in range(4))
    timed = " ".join(row["case"] for row in report["timings"])
    assert "encode" in timed and "render" in timed and "training step" in timed and "DDP step" in timed
    # Two processes over gloo on the CPU (a GPU tries NCCL first): equal parameters after steps on different data.
    ddp = [row["case"] for row in report["checks"] if row["section"] == "ddp"]
    assert any("parameters equal across ranks" in case for case in ddp) and any("moved" in case for case in ddp)
    assert report["ddp"]["backend"] == "gloo" and [run["backend"] for run in report["ddp"]["runs"]] == ["gloo"]
    run = report["ddp"]["runs"][0]
    assert run["ok"] and run["parameters_moved"] > 0 and run["step_s"] > 0 and run["pinned"] is None
    assert all(rank["ok"] and rank["copy_error"] == 0 for rank in run["ranks"])
    assert all(row["seconds"] > 0 for row in report["timings"])
