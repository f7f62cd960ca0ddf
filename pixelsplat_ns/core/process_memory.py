"""This process's memory on the host, read the same way on Linux, macOS and Windows.

The peak resident set comes from ``getrusage`` where it exists, in the platform's unit (``ru_maxrss`` is in KiB
on Linux and the BSDs, in bytes on macOS), and from psutil's peak working set on Windows, which has no
``resource`` module. ``resource`` is imported only when asked, so that importing this module works anywhere."""

import sys

import psutil


def peak_resident_bytes() -> float:
    """The most resident memory this process has held so far (bytes)."""
    if sys.platform == "win32":
        return float(psutil.Process().memory_info().peak_wset)
    import resource  # POSIX only

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return float(peak if sys.platform == "darwin" else peak * 1024)


def resident_bytes() -> float:
    """The resident memory this process holds now (bytes)."""
    return float(psutil.Process().memory_info().rss)


def available_bytes() -> float:
    """Memory the host could still give this process without swapping (bytes)."""
    return float(psutil.virtual_memory().available)
