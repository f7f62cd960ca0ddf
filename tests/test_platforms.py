"""Windows, macOS and Apple's MPS device, simulated where that is honest: no POSIX-only module is imported when
the package is, peak memory is read in each platform's unit, MPS is refused in one line, and the first numba
compilation says why the first render waits."""

import ast
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from helpers.cli import SAMPLE, ns, train_command
from pixelsplat_ns.core import process_memory
from pixelsplat_ns.core.devices import UnsupportedDevice, check_device

pytestmark = pytest.mark.smoke  # also run in the nerfstudio user's environment (CI's second run)

ROOT = Path(__file__).resolve().parents[1]
POSIX_ONLY = {"resource", "fcntl", "termios", "pwd", "grp", "posix", "pty", "tty", "syslog", "crypt"}


def module_level_imports(path: Path) -> set[str]:
    """Top-level modules imported by the module's own body (not inside functions, where they run on use)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_no_module_imports_a_posix_only_module_when_it_is_imported():
    found = {
        str(path.relative_to(ROOT)): sorted(module_level_imports(path) & POSIX_ONLY)
        for path in sorted((ROOT / "pixelsplat_ns").rglob("*.py"))
    }
    assert not {path: names for path, names in found.items() if names}
    scripts = [p for p in (ROOT / "scripts").rglob("*.py") if "resource" in module_level_imports(p)]
    assert not scripts, "the benchmarks read memory through pixelsplat_ns.core.process_memory"


def test_the_package_imports_and_reads_its_peak_memory_without_resource(tmp_path):
    """As on Windows: ``import resource`` fails; every module with work to do at import still imports. (psutil is
    imported first: on Linux it uses ``resource`` itself, on Windows it does not.)"""
    code = (
        "import sys, psutil; sys.modules['resource'] = None\n"
        "import pixelsplat_ns.evaluation, pixelsplat_ns.pretraining.memory, pixelsplat_ns.methods\n"
        "import pixelsplat_ns.per_scene.pipeline, pixelsplat_ns.pretraining.pipeline, pixelsplat_ns.cli.evaluate\n"
        "from pixelsplat_ns.core import process_memory\n"
        "import psutil\n"
        "process_memory.sys.platform = 'win32'\n"
        "psutil.Process.memory_info = lambda self: type('M', (), {'peak_wset': 123.0, 'rss': 1.0})()\n"
        "print(process_memory.peak_resident_bytes())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[-1] == "123.0", "Windows: psutil's peak working set"
    control = subprocess.run(
        [sys.executable, "-c", "import sys; sys.modules['resource'] = None; import resource"], capture_output=True
    )
    assert control.returncode != 0, "the control: the simulation does make resource unimportable"


@pytest.mark.parametrize(("platform", "factor"), [("linux", 1024), ("darwin", 1)])
def test_peak_memory_is_read_in_the_platforms_unit(platform, factor, monkeypatch):
    """``ru_maxrss`` is KiB on Linux and bytes on macOS: both come out in bytes."""
    import resource

    monkeypatch.setattr(resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=5000))
    monkeypatch.setattr(process_memory.sys, "platform", platform)
    assert process_memory.peak_resident_bytes() == 5000 * factor


def test_peak_memory_is_at_least_what_the_process_holds():
    assert process_memory.peak_resident_bytes() >= 0.9 * process_memory.resident_bytes() > 0


def test_mps_is_refused_in_one_line_and_other_devices_pass():
    with pytest.raises(
        UnsupportedDevice, match=r"cannot run on the 'mps' device: .*float64.*--machine.device-type cpu"
    ):
        check_device(torch.device("mps"))
    for device in ("cpu", torch.device("meta")):
        check_device(device)


def test_cuda_where_torch_sees_no_gpu_is_refused_in_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(UnsupportedDevice, match=r"a CUDA device was asked for, but torch .* sees no CUDA GPU"):
        check_device("cuda:0")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    check_device("cuda:0")


@pytest.mark.e2e
def test_ns_train_on_mps_stops_with_that_line(tmp_path):
    result = ns(*train_command(SAMPLE, tmp_path / "outputs", "--machine.device-type", "mps"), cwd=tmp_path, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "UnsupportedDevice: pixelsplat-ns cannot run on the 'mps' device" in output and "Traceback" not in output


@pytest.mark.e2e
def test_the_first_numba_compilation_says_so_once(tmp_path):
    """A fresh numba cache (as after an install): the first render prints the line before it compiles; a second
    process loads the kernels from the cache and prints nothing."""
    code = (
        "import torch\n"
        "from pixelsplat_ns.render import rasterize\n"
        "K = torch.tensor([[[8.0, 0, 8], [0, 8.0, 8], [0, 0, 1]]])\n"
        "rasterize(torch.tensor([[0.0, 0, 2]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1),\n"
        "          torch.ones(1), torch.ones(1, 3), torch.eye(4)[None], K, 16, 16, backend='numba')\n"
        "rasterize(torch.tensor([[0.0, 0, 2]]), torch.tensor([[1.0, 0, 0, 0]]), torch.full((1, 3), 0.1),\n"
        "          torch.ones(1), torch.ones(1, 3), torch.eye(4)[None], K, 16, 16, backend='numba')\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"), PYTHONWARNINGS="ignore")
    first, second = (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600)
        for _ in range(2)
    )
    assert first.returncode == 0 and second.returncode == 0, first.stderr[-3000:] + second.stderr[-3000:]
    line = "pixelsplat-ns: compiling the CPU renderer's kernels with numba, once"
    assert first.stderr.count(line) == 1, first.stderr[-3000:]
    assert line not in second.stderr, "the kernels came from the cache"
