"""The nerfstudio plugin contract: entry points, the ns-train CLI, and a light, safe config import."""

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from nerfstudio.plugins.types import MethodSpecification

from helpers.cli import SAMPLE
from pixelsplat_ns.core.torch_versions import TORCH_VERSION

METHODS = ("pixelsplat", "pixelsplat-pretrain", "pixelsplat-pretrain-tiny")
NS_TRAIN = str(Path(sys.executable).with_name("ns-train"))


def run(args, cwd=None):
    env = dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="300")
    return subprocess.run(args, capture_output=True, text=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.smoke
def test_entry_points_register_every_method_under_its_own_name():
    found = {
        ep.name: ep for ep in entry_points(group="nerfstudio.method_configs") if ep.value.startswith("pixelsplat_ns")
    }
    assert set(found) == set(METHODS)
    for name, ep in found.items():
        spec = ep.load()
        assert isinstance(spec, MethodSpecification)
        assert spec.config.method_name == name, "nerfstudio names the CLI command after method_name"
        assert spec.description


@pytest.mark.e2e
@pytest.mark.smoke
def test_ns_train_help_lists_the_methods_with_descriptions():
    result = run([NS_TRAIN, "--help"])
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())
    assert "pixelsplat-pretrain" in text
    assert "pixelSplat (CVPR 2024): a Gaussian splat scene from two posed views" in text
    assert "pixelSplat encoder training across RealEstate10k/ACID scenes" in text
    assert "pixelSplat's tiny preset for CPU training" in text


@pytest.mark.e2e
@pytest.mark.smoke
@pytest.mark.parametrize("method", (*METHODS, "splatfacto"))  # splatfacto: nerfstudio's own, beside the plugin
def test_ns_train_method_help_works(method):
    result = run([NS_TRAIN, method, "--help"])
    assert result.returncode == 0, result.stderr
    assert f"ns-train {method}" in result.stdout


def test_config_import_is_light():
    """Importing the configs constructs no module, imports no model runtime and leaves gsplat alone."""
    code = (
        "import sys, json, time, torch\n"
        "import nerfstudio.engine.trainer, nerfstudio.pipelines.base_pipeline, nerfstudio.plugins.types\n"
        "built = []\n"
        "original = torch.nn.Module.__init__\n"
        "torch.nn.Module.__init__ = lambda self, *a, **k: "
        "(built.append(type(self).__name__), original(self, *a, **k))[1]\n"
        "before, start = set(sys.modules), time.perf_counter()\n"
        "import pixelsplat_ns.methods\n"
        "seconds = time.perf_counter() - start\n"
        "new = sorted(set(sys.modules) - before)\n"
        "print(json.dumps({'seconds': seconds, 'built': built, 'new': new}))"
    )
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["built"] == [], "importing the config must not construct modules"
    runtime = [
        f"pixelsplat_ns.{method}.{part}" for method in ("per_scene", "pretraining") for part in ("model", "pipeline")
    ]
    runtime.append("pixelsplat_ns.pretraining.datamanager")
    assert not [m for m in report["new"] if m.startswith("gsplat") or m in runtime]
    assert report["seconds"] < 2.0


@pytest.mark.e2e
def test_per_scene_method_help_documents_its_options():
    result = run([NS_TRAIN, "pixelsplat", "--help"])
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.replace("│", " ").split())
    for flag in (
        "--pipeline.datamanager.context-views",
        "--pipeline.model.encoder-checkpoint",
        "--pipeline.model.context-short-side",
        "--pipeline.model.deterministic",
    ):
        assert flag in text
    assert "densify" not in text, "refinement keeps the predicted Gaussians: no splatfacto densification flags"


@pytest.mark.smoke
def test_importing_the_entry_points_changes_no_global_state():
    """nerfstudio imports every plugin's entry points in every ns-* command (ns-train splatfacto included): that
    import must leave the process as it was (excepthook, torch's allow-list, pickle's reducers, signal handlers);
    the hooks are installed when a pixelsplat run is set up."""
    code = (
        "import copyreg, signal, sys, json, torch\n"
        "from nerfstudio.plugins.registry import discover_methods\n"
        "def allowed(): return list(getattr(torch.serialization, 'get_safe_globals', list)())  # torch >= 2.5\n"
        "def ours(): return sorted(str(t) for t in copyreg.dispatch_table if 'pixelsplat_ns' in t.__module__)\n"
        "def handlers(): return [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]\n"
        "hook, safe, reducers, before = sys.excepthook, allowed(), ours(), handlers()\n"
        "methods, _ = discover_methods()\n"
        "assert {'pixelsplat', 'pixelsplat-pretrain'} <= set(methods), sorted(methods)\n"
        "unchanged = {'excepthook': sys.excepthook is hook, 'safe_globals': allowed() == safe,\n"
        "             'reducers': ours() == reducers, 'signals': handlers() == before}\n"
        "from pixelsplat_ns.nerfstudio_compat import install_process_hooks\n"
        "install_process_hooks()\n"
        "installed = {'excepthook': sys.excepthook is not hook, 'safe_globals': len(allowed()) > len(safe),\n"
        "             'reducers': len(ours()) > len(reducers), 'signals': handlers() == before}\n"
        "print(json.dumps({'unchanged': unchanged, 'installed': installed}))"
    )
    result = run([sys.executable, "-c", code])
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    assert report["unchanged"] == {"excepthook": True, "safe_globals": True, "reducers": True, "signals": True}
    # The control: the hooks do change them (the allow-list only where torch.load defaults to weights_only, 2.6+;
    # the pickling of lazy targets, for nerfstudio's launcher of several processes). Signal handlers are the
    # trainer's, only while it trains.
    weights_only_default = TORCH_VERSION >= (2, 6)
    assert report["installed"] == {
        "excepthook": True,
        "safe_globals": weights_only_default,
        "reducers": True,
        "signals": True,
    }


# Stands for a module of ours that does not import in the user's environment (as encoder code needing torch 2.4
# did under nerfstudio's torch 2.1.2): loaded by Python at start-up from the test's PYTHONPATH.
SIMULATED_IMPORT_FAILURE = """
import importlib.abc, sys

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "pixelsplat_ns.fast_routes.derived_weights":
            raise ImportError("cannot import name 'is_autocast_available' from 'torch.amp.autocast_mode' (simulated)")
        return None

sys.meta_path.insert(0, Blocked())
"""


@pytest.mark.e2e
@pytest.mark.smoke
def test_a_module_that_does_not_import_fails_only_ns_train_pixelsplat(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SIMULATED_IMPORT_FAILURE)
    env = dict(os.environ, PYTHONWARNINGS="ignore", COLUMNS="300", PYTHONPATH=str(site))

    def ns_train(*args):
        return subprocess.run([NS_TRAIN, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)

    assert ns_train("splatfacto", "--help").returncode == 0, "another method's command is unaffected"
    listed = ns_train("--help")
    assert listed.returncode == 0 and "pixelsplat-pretrain" in listed.stdout
    refused = ns_train("pixelsplat", "--data", str(SAMPLE), "--output-dir", str(tmp_path / "outputs"))
    output = refused.stdout + refused.stderr
    assert refused.returncode != 0
    assert (
        "error: ns-train pixelsplat: pixelsplat-ns does not import in this environment: ImportError: cannot "
        "import name 'is_autocast_available'" in output
    ), output[-3000:]
    assert "pip install <its folder> -c keep-torch.txt" in output and "Traceback" not in output
    assert not (tmp_path / "outputs").exists(), "nothing is written"
    # The control: the simulated failure is what refused it (the same module imports without it).
    probe = "import pixelsplat_ns.fast_routes.derived_weights"
    assert subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True).returncode != 0
    assert subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0
