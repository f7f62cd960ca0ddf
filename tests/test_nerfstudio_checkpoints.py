"""nerfstudio's step-*.ckpt files load with torch >= 2.6's default ``torch.load`` once a pixelsplat run is set up
(``install_process_hooks``), anything beyond plain data is still refused, and importing the library or the
plugin's entry points leaves torch's allow-list as it is."""

import json
import os
import pickle
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from nerfstudio.engine.optimizers import AdamOptimizerConfig, Optimizers, RAdamOptimizerConfig
from nerfstudio.engine.schedulers import (
    CosineDecaySchedulerConfig,
    ExponentialDecaySchedulerConfig,
    MultiStepSchedulerConfig,
)
from torch.cuda.amp.grad_scaler import GradScaler  # what nerfstudio 1.1.5's trainer saves

from pixelsplat_ns.core.torch_versions import TORCH_VERSION
from pixelsplat_ns.nerfstudio_compat import install_process_hooks

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)


@pytest.fixture(autouse=True)
def hooks_installed():
    """The allow-list in this process, as a pixelsplat trainer or pipeline installs it; before each test, since a
    ``torch.serialization.safe_globals`` block elsewhere in the worker removes its entries when it ends."""
    install_process_hooks()


TORCH_DEFAULTS_TO_WEIGHTS_ONLY = TORCH_VERSION >= (2, 6)


def optimizer_config() -> dict:
    """The schedules nerfstudio's methods use: splatfacto's, the pretraining warm-up, cosine, multi-step."""
    return {
        "means": {
            "optimizer": AdamOptimizerConfig(lr=1.6e-4, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(lr_final=1.6e-6, max_steps=30000),
        },
        "features_dc": {"optimizer": AdamOptimizerConfig(lr=0.0025, eps=1e-15), "scheduler": None},
        "camera_opt": {
            "optimizer": AdamOptimizerConfig(lr=1e-4, eps=1e-15),
            "scheduler": ExponentialDecaySchedulerConfig(
                lr_final=5e-7, max_steps=30000, warmup_steps=2, lr_pre_warmup=0
            ),
        },
        "encoder": {
            "optimizer": AdamOptimizerConfig(lr=1.5e-4, max_norm=0.5),
            "scheduler": ExponentialDecaySchedulerConfig(
                lr_pre_warmup=1.5e-4 / 2000, lr_final=1.5e-4, warmup_steps=2, max_steps=100, ramp="linear"
            ),
        },
        "fields": {
            "optimizer": RAdamOptimizerConfig(lr=1e-2, eps=1e-15),
            "scheduler": CosineDecaySchedulerConfig(warm_up_end=2, max_steps=100),
        },
        "proposal": {"optimizer": AdamOptimizerConfig(lr=1e-2), "scheduler": MultiStepSchedulerConfig(milestones=(3,))},
    }


def make_optimizers(seed: int = 0) -> Optimizers:
    generator = torch.Generator().manual_seed(seed)
    params = {name: [torch.nn.Parameter(torch.randn(5, 3, generator=generator))] for name in optimizer_config()}
    return Optimizers(optimizer_config(), params)


def train(optimizers: Optimizers, steps: range) -> None:
    """What nerfstudio's trainer does each step (without a grad scaler)."""
    for step in steps:
        optimizers.zero_grad_all()
        sum((group[0] ** 2).sum() for group in optimizers.parameters.values()).backward()
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)


def save_like_the_trainer(path: Path, optimizers: Optimizers, step: int) -> None:
    """nerfstudio 1.1.5 Trainer.save_checkpoint's layout."""
    torch.save(
        {
            "step": step,
            "pipeline": {"_model.weight": torch.randn(4, 4), "_model.buffer": torch.arange(3)},
            "optimizers": {k: v.state_dict() for (k, v) in optimizers.optimizers.items()},
            "schedulers": {k: v.state_dict() for (k, v) in optimizers.schedulers.items()},
            "scalers": GradScaler(enabled=False).state_dict(),
        },
        path,
    )


def python(code: str) -> subprocess.CompletedProcess:
    """A clean interpreter, so that only what ``code`` imports registers safe globals."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "step-000000004.ckpt"
    optimizers = make_optimizers()
    train(optimizers, range(4))
    save_like_the_trainer(path, optimizers, step=4)
    return path


LOAD = "import torch; state = torch.load({path!r}, map_location='cpu'); print('loaded', state['step'])"


@pytest.mark.skipif(not TORCH_DEFAULTS_TO_WEIGHTS_ONLY, reason="torch < 2.6 does not default to weights_only")
def test_the_checkpoint_holds_numpy_scalars_that_plain_torch_refuses(checkpoint):
    """The reproduction: without the plugin, torch.load refuses numpy's scalar reconstructor."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    assert type(state["schedulers"]["means"]["_last_lr"][0]).__module__ == "numpy"
    result = python(LOAD.format(path=str(checkpoint)))
    assert result.returncode != 0
    assert "UnpicklingError" in result.stderr and "multiarray.scalar" in result.stderr


def test_a_trainer_checkpoint_loads_with_plain_torch_load_once_a_pixelsplat_run_is_set_up(checkpoint):
    """What the pixelsplat trainer and pipelines call when they are set up (ns-train, ns-viewer, ns-eval, ...)."""
    hooks = "from pixelsplat_ns.nerfstudio_compat import install_process_hooks\ninstall_process_hooks()\n"
    result = python(hooks + LOAD.format(path=str(checkpoint)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "loaded 4" in result.stdout


@pytest.mark.parametrize(
    "plugin_import",
    ["import pixelsplat_ns.methods", "import nerfstudio.configs.method_configs"],
    ids=["plugin", "ns-entry-points"],
)
def test_importing_the_plugin_alone_leaves_torch_load_as_it_is(checkpoint, plugin_import):
    """nerfstudio imports every plugin's entry points in every ns-* command: that import changes nothing."""
    result = python(f"{plugin_import}\n" + LOAD.format(path=str(checkpoint)))
    if TORCH_DEFAULTS_TO_WEIGHTS_ONLY:
        assert result.returncode != 0 and "multiarray.scalar" in result.stderr
    else:
        assert result.returncode == 0, result.stderr[-3000:]


def test_optimizer_and_scheduler_states_load_back_and_training_continues_identically(checkpoint):
    state = torch.load(checkpoint, map_location="cpu")  # weights_only by default from torch 2.6
    original = make_optimizers()
    train(original, range(4))

    restored = make_optimizers(seed=1)  # fresh, as on resume; the parameters come from the pipeline's state
    with torch.no_grad():
        for name, group in restored.parameters.items():
            group[0].copy_(original.parameters[name][0])
    restored.load_optimizers(state["optimizers"])
    restored.load_schedulers(state["schedulers"])
    GradScaler(enabled=False).load_state_dict(state["scalers"])
    for name in original.schedulers:
        assert restored.schedulers[name].get_last_lr() == original.schedulers[name].get_last_lr(), name
        assert restored.schedulers[name].last_epoch == 4

    train(original, range(4, 7))
    train(restored, range(4, 7))
    for name in original.parameters:
        assert torch.equal(restored.parameters[name][0], original.parameters[name][0]), name
        assert restored.optimizers[name].param_groups[0]["lr"] == original.optimizers[name].param_groups[0]["lr"]


class WritesAFile:
    """Unpickling calls ``open(marker, "w")``: creating the marker proves code ran."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


class RunsAShellCommand:
    """Unpickling calls ``os.system``; the command only creates the marker file. (torch blocks the os and
    posix modules outright, so ``WritesAFile`` is the payload that exercises the allow-list.)"""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return os.system, ("touch " + shlex.quote(self.marker),)


class PlainObject:
    def __init__(self):
        self.value = 1.0


@pytest.mark.skipif(not TORCH_DEFAULTS_TO_WEIGHTS_ONLY, reason="torch < 2.6 does not default to weights_only")
@pytest.mark.parametrize("payload", ["open", "os.system", "plain object"])
def test_arbitrary_objects_are_still_refused(tmp_path, checkpoint, payload):
    marker = tmp_path / "marker"
    evil = {"open": WritesAFile, "os.system": RunsAShellCommand}.get(payload)
    state = torch.load(checkpoint, map_location="cpu")
    state["schedulers"]["means"]["extra"] = evil(marker) if evil else PlainObject()
    path = tmp_path / "step-000000005.ckpt"
    torch.save(state, path)
    assert not marker.exists()

    code = (
        "import json, pickle, torch, pixelsplat_ns.methods\n"
        f"try:\n    torch.load({str(path)!r}, map_location='cpu')\n    print(json.dumps('loaded'))\n"
        "except pickle.UnpicklingError as error:\n    print(json.dumps(str(error)))\n"
    )
    result = python(code)
    assert result.returncode == 0, result.stderr[-3000:]
    message = json.loads(result.stdout.splitlines()[-1])
    assert message != "loaded" and "Weights only load failed" in message
    assert not marker.exists(), "unpickling ran code from the checkpoint"

    with pytest.raises(pickle.UnpicklingError):  # the same in this process, where other tests imported more
        torch.load(path, map_location="cpu")
    assert not marker.exists()


def test_the_payload_is_real_when_unpickled_without_restrictions(tmp_path):
    """Control for the test above: the same payload, fully unpickled, does create the marker."""
    marker = tmp_path / "marker"
    path = tmp_path / "payload.ckpt"
    torch.save({"x": WritesAFile(marker)}, path)
    torch.load(path, weights_only=False)["x"].close()
    assert marker.exists()


@pytest.mark.skipif(not TORCH_DEFAULTS_TO_WEIGHTS_ONLY, reason="torch < 2.6 does not default to weights_only")
def test_the_library_alone_leaves_torch_allow_list_as_it_is(checkpoint):
    """Only the nerfstudio plugin changes torch's global allow-list: a program that uses the encoder and the
    renderer does not get it changed behind its back."""
    result = python(
        "import pixelsplat_ns, pixelsplat_ns.encoder, pixelsplat_ns.render, pixelsplat_ns.data\n"
        + LOAD.format(path=str(checkpoint))
    )
    assert result.returncode != 0 and "UnpicklingError" in result.stderr
