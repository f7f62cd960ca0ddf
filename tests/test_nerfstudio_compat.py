"""The workarounds for nerfstudio are checked against one version: a different one must be re-checked."""

from importlib.metadata import version
from pathlib import Path

from pixelsplat_ns.nerfstudio_compat import PINNED_NERFSTUDIO

ROOT = Path(__file__).resolve().parents[1]


def test_nerfstudio_is_the_version_the_workarounds_were_checked_against():
    installed = version("nerfstudio")
    assert installed == PINNED_NERFSTUDIO, (
        f"nerfstudio {installed} is installed, but pixelsplat_ns/nerfstudio_compat/ was checked against "
        f"{PINNED_NERFSTUDIO}: re-check each workaround there against the new version (each docstring says what "
        "nerfstudio does and where), drop those it made unnecessary, then update PINNED_NERFSTUDIO"
    )
    assert f'"nerfstudio=={PINNED_NERFSTUDIO}"' in (ROOT / "pyproject.toml").read_text(), (
        "pyproject.toml must pin the nerfstudio version the workarounds were checked against"
    )


def test_a_save_killed_midway_leaves_the_checkpoints_as_they_were(tmp_path):
    """SIGKILL while a large checkpoint is being written: no step-*.ckpt appears, the earlier one still loads,
    a resume would find only whole checkpoints, and the next save removes what the killed writer left."""
    import signal
    import subprocess
    import sys
    import time

    import torch

    from pixelsplat_ns.nerfstudio_compat.checkpoints import save_atomically, step_checkpoints

    folder = tmp_path / "run" / "nerfstudio_models"
    folder.mkdir(parents=True)
    save_atomically({"step": 1, "weights": torch.ones(3)}, folder / "step-000000001.ckpt")
    # The writer stalls once its bytes are out (torch.save wrapped in its own process): the kill lands in the middle
    # of the save, between writing and putting the file in place, without writing gigabytes to get there.
    code = (
        "import time, torch\nfrom pathlib import Path\n"
        "from pixelsplat_ns.nerfstudio_compat.checkpoints import save_atomically\n"
        "real_save = torch.save\n"
        "def stalling_save(obj, file, *args, **kwargs):\n"
        "    real_save(obj, file, *args, **kwargs)\n"
        "    file.flush()\n"
        "    time.sleep(600)\n"
        "torch.save = stalling_save\n"
        f"save_atomically({{'step': 2, 'weights': torch.ones(1000)}}, Path({str(folder)!r}) / 'step-000000002.ckpt')"
    )
    writer = subprocess.Popen([sys.executable, "-c", code])
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        partials = list((tmp_path / "run").glob(".step-000000002.ckpt.*.partial"))
        if partials and partials[0].stat().st_size > 0:
            break
        time.sleep(0.01)
    partial = partials[0]
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert partial.exists(), "the save was killed while writing"
    assert [p.name for p in folder.iterdir()] == ["step-000000001.ckpt"]
    assert [step for step, _ in step_checkpoints(folder)] == [1]
    assert torch.load(folder / "step-000000001.ckpt")["step"] == 1
    save_atomically({"step": 3, "weights": torch.ones(3)}, folder / "step-000000003.ckpt")
    assert not partial.exists(), "the dead writer's partial file is removed by the next save there"
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["nerfstudio_models"]
