"""The nerfstudio plugin contract: entry points, the ns-train CLI, and a light, safe config import."""

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from nerfstudio.plugins.types import MethodSpecification

METHODS = ("pixelsplat", "pixelsplat-pretrain")
NS_TRAIN = str(Path(sys.executable).with_name("ns-train"))


def run(args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="300")
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


def test_entry_points_register_both_methods_under_their_own_names():
    found = {ep.name: ep for ep in entry_points(group="nerfstudio.method_configs") if ep.value.startswith("pixelsplat_ns")}
    assert set(found) == set(METHODS)
    for name, ep in found.items():
        spec = ep.load()
        assert isinstance(spec, MethodSpecification)
        assert spec.config.method_name == name, "nerfstudio names the CLI command after method_name"
        assert spec.description


def test_ns_train_help_lists_both_methods_with_descriptions():
    result = run([NS_TRAIN, "--help"])
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "pixelsplat-pretrain" in text
    assert "pixelSplat (CVPR 2024): a Gaussian splat scene from two posed views" in text
    assert "pixelSplat encoder training across RealEstate10k/ACID scenes" in text


@pytest.mark.parametrize("method", METHODS)
def test_ns_train_method_help_works(method):
    result = run([NS_TRAIN, method, "--help"])
    assert result.returncode == 0, result.stderr
    assert f"ns-train {method}" in result.stdout


def test_config_import_is_light():
    """Beyond the nerfstudio modules it configures, the config module imports nothing but itself."""
    code = (
        "import sys, json\n"
        "import nerfstudio.engine.trainer, nerfstudio.pipelines.base_pipeline, nerfstudio.plugins.types\n"
        "before = set(sys.modules)\n"
        "import pixelsplat_ns.config\n"
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == ["pixelsplat_ns", "pixelsplat_ns.config"]


def test_training_a_method_without_its_pipeline_stops_with_a_clear_error(tmp_path):
    result = run([NS_TRAIN, "pixelsplat", "--output-dir", str(tmp_path / "outputs"), "--vis", "tensorboard"],
                 cwd=tmp_path)
    assert result.returncode != 0
    assert "MethodUnavailableError" in result.stderr + result.stdout
    assert "nothing was trained" in " ".join((result.stderr + result.stdout).split())
    assert not list(tmp_path.rglob("*.ckpt"))
