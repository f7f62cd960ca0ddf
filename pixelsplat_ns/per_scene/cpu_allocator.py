"""glibc's allocator, tuned for rendering on the CPU: freed blocks are kept for the next frame or step.

Every refinement step on the CPU allocates blocks of megabytes to tens of megabytes (the SH coefficients'
concatenation and gradients, the kernels' outputs and per-entry sums), and frees them at the end of the step.
glibc serves blocks above its mmap threshold (128 KB, rising with use to at most 32 MB) with fresh ``mmap``
pages and gives them back at ``free``, so each step page-faults all of them in again, zeroing every page: a
noticeable share of a step at the demo scene's 221,184 Gaussians. With blocks up to ``MMAP_THRESHOLD`` served
from the heap and up to ``TRIM_THRESHOLD`` of freed heap kept, the next step reuses them. The price is resident
memory. ``scripts/benchmarks/benchmark_per_scene.py`` (``--no-cpu-allocator-tuning`` for the comparison)
measures both; docs/benchmarks.md has the figures.

The settings are the process's (``mallopt``), made once by the first CPU render of a ``PixelSplatModel`` (the
ns-train, ns-viewer, ns-eval and ns-render processes), unless ``PixelSplatModelConfig.cpu_allocator_tuning``
is off; a model with the flag off cannot undo what an earlier one set in the same process. Elsewhere than on
glibc (macOS, musl) nothing is changed.
"""

import ctypes
import ctypes.util
import platform

M_TRIM_THRESHOLD = -1  # glibc's malloc.h
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 64 * 2**20
"""Blocks up to this size come from the heap: all of a step's, while the encoder's largest (268 MB at 2 x
256^2) keep their own mappings and go back to the system when freed."""
MMAP_THRESHOLD_FALLBACK = 32 * 2**20
"""The most that glibc versions capping the threshold at half their heap size (64 MB) accept."""
TRIM_THRESHOLD = 256 * 2**20
"""Freed memory kept at the heap's top before it is given back to the system."""

_tuned: bool | None = None  # None: not tried yet


def keep_freed_blocks() -> bool:
    """Set glibc's mmap and trim thresholds (``MMAP_THRESHOLD``, ``TRIM_THRESHOLD``) once per process;
    returns whether they are set (False where the C library is not glibc or refuses)."""
    global _tuned
    if _tuned is None:
        _tuned = False
        if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
            libc = ctypes.CDLL(ctypes.util.find_library("c"))
            # mallopt returns 1 on success; setting either threshold also stops glibc's dynamic mmap threshold.
            trimmed = bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
            mapped = any(libc.mallopt(M_MMAP_THRESHOLD, size) for size in (MMAP_THRESHOLD, MMAP_THRESHOLD_FALLBACK))
            _tuned = trimmed and mapped
    return _tuned
