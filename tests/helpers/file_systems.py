"""Real places that cannot take a file, for tests of the project's writes: a small file system that fills up, and a
read-only one. Both are tmpfs mounts, which need root (CI runs as root); elsewhere the tests that use them skip,
saying so."""

import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest


@contextmanager
def mounted_tmpfs(folder: Path, size_kb: int, read_only: bool = False) -> Iterator[Path]:
    """A tmpfs of ``size_kb`` KiB mounted on ``folder`` (made), read-only if asked; unmounted at the end."""
    if os.name != "posix" or os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs (a real full disk / read-only folder); CI runs as root")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True)
    assert mounted.returncode == 0, f"mount failed as root: {mounted.stderr.decode()}"
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path, leave_kb: int = 0) -> None:
    """Fill the file system of ``folder`` up to ``leave_kb`` KiB of free space, with one file named ``filler``."""
    free = os.statvfs(folder).f_bavail * os.statvfs(folder).f_frsize
    (folder / "filler").write_bytes(b"\0" * max(free - leave_kb * 1024, 0))
