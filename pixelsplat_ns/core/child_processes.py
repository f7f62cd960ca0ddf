"""Child processes that end with the process that started them.

A ``DataLoader`` worker whose parent is killed (nerfstudio's launcher kills every training process once one has
failed) notices it only at its next idle check, and then waits forever to flush its last batches into a pipe that
no one reads. It lived on, holding the terminal's (or a caller's) output open. On Linux the kernel ends it with
its parent instead (``prctl(PR_SET_PDEATHSIG)``); elsewhere this is a no-op and torch's own check remains.
"""

import ctypes
import functools
import os
import signal
import sys
from typing import Callable, Optional

PR_SET_PDEATHSIG = 1
"""From linux/prctl.h: the signal this process receives when its parent thread dies."""


def die_with_parent(worker_id: int = 0, parent: Optional[int] = None) -> None:
    """Ask the kernel to kill this process when its parent dies (Linux; a no-op elsewhere); a ``DataLoader``'s
    ``worker_init_fn`` through ``die_with(os.getpid())`` (``worker_id`` is unused). ``parent``: the pid of the
    process that started this one; if this process's parent is no longer that one (it died while this process
    was starting, as a spawned worker takes seconds to), this process ends at once. Raises nothing: where
    ``prctl`` is missing, nothing changes."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL))
    except (OSError, AttributeError):
        return
    if parent is not None and os.getppid() != parent:  # it died before the request: nothing would signal it now
        os._exit(1)


def die_with(parent: int) -> Callable[[int], None]:
    """``die_with_parent`` for the workers of process ``parent`` (normally ``os.getpid()`` of the process making
    the ``DataLoader``), picklable for spawned workers."""
    return functools.partial(die_with_parent, parent=parent)
