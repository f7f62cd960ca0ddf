"""glibc's allocator tuning for CPU rendering (``pixelsplat_ns/per_scene/cpu_allocator.py``): what it sets, checked
through glibc's own accounting in a fresh interpreter, and when the per-scene model sets it."""

import platform
import subprocess
import sys

import pytest
import torch

from pixelsplat_ns.per_scene import cpu_allocator

ON_GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Bytes glibc holds in mmap'd blocks (mallinfo2's hblkhd) grow by a block's size when it gets its own mapping.
MAPPED_BLOCK = """
import ctypes, ctypes.util, sys

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.mallinfo2.restype, libc.malloc.restype = MallInfo2, ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] == "tuned":
    from pixelsplat_ns.per_scene.cpu_allocator import keep_freed_blocks
    assert keep_freed_blocks() and keep_freed_blocks()  # once, then remembered
for size_mb in (16, 40, 100):
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(size_mb << 20)
    print(size_mb, libc.mallinfo2().hblkhd - before >= size_mb << 20)
    libc.free(block)
"""


@pytest.mark.skipif(not ON_GLIBC, reason="mallopt's thresholds are glibc's; elsewhere nothing is set")
def test_blocks_up_to_64_mb_come_from_the_heap_once_tuned():
    def mapped(mode: str) -> dict:
        out = subprocess.run([sys.executable, "-c", MAPPED_BLOCK, mode], capture_output=True, text=True, check=True)
        return {int(size): flag == "True" for size, flag in (line.split() for line in out.stdout.splitlines())}

    assert mapped("default") == {16: True, 40: True, 100: True}, "glibc's default maps such blocks"
    assert mapped("tuned") == {16: False, 40: False, 100: True}


def test_the_model_tunes_at_its_first_cpu_render_unless_told_not_to(monkeypatch):
    from helpers.scenes import nerfstudio_camera, per_scene_model, random_gaussians
    from pixelsplat_ns.per_scene import model as model_module

    calls = []
    monkeypatch.setattr(model_module, "keep_freed_blocks", lambda: calls.append("tuned"))
    camera = nerfstudio_camera()
    for tuning in (False, True):
        model = per_scene_model(random_gaussians(seed=3), cpu_allocator_tuning=tuning)
        with torch.no_grad():
            model.get_outputs(camera)
        assert calls == (["tuned"] if tuning else [])


def test_nothing_is_set_where_the_c_library_is_not_glibc(monkeypatch):
    monkeypatch.setattr(cpu_allocator, "_tuned", None)
    monkeypatch.setattr(cpu_allocator.platform, "libc_ver", lambda: ("", ""))
    monkeypatch.setattr(cpu_allocator.ctypes, "CDLL", lambda *_: pytest.fail("no C library should be loaded"))
    assert cpu_allocator.keep_freed_blocks() is False


def test_a_glibc_that_caps_the_mmap_threshold_at_32_mb_gets_32_mb(monkeypatch):
    """Some glibc versions refuse an mmap threshold above half their heap size (64 MB on 64-bit)."""
    settings = {}

    class CappedLibc:
        def mallopt(self, option, value):
            if option == cpu_allocator.M_MMAP_THRESHOLD and value > 32 * 2**20:
                return 0
            settings[option] = value
            return 1

    monkeypatch.setattr(cpu_allocator, "_tuned", None)
    monkeypatch.setattr(cpu_allocator.platform, "system", lambda: "Linux")
    monkeypatch.setattr(cpu_allocator.platform, "libc_ver", lambda: ("glibc", "2.28"))
    monkeypatch.setattr(cpu_allocator.ctypes, "CDLL", lambda *_: CappedLibc())
    assert cpu_allocator.keep_freed_blocks() is True
    assert settings == {cpu_allocator.M_TRIM_THRESHOLD: 256 * 2**20, cpu_allocator.M_MMAP_THRESHOLD: 32 * 2**20}
