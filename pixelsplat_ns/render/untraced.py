"""Calls into compiled numba kernels with Python tracing switched off, so that nerfstudio's viewer can interrupt
a render safely.

The viewer interrupts a render that the camera has moved away from by installing a trace function
(``sys.settrace``, nerfstudio ``render_state_machine.RenderStateMachine.check_interrupt``) that raises
``IOChangeException`` at the next traced line. Compiled numba code calls back into Python for some constants
(``numba.core.serialize._numba_unpickle``); an exception raised there cannot travel through the compiled
frames, comes out as a ``SystemError`` that the viewer does not catch, and its render thread dies: the viewer
stops drawing for good. With tracing off for the duration of a kernel call, the interrupt lands on the next
line of ordinary Python after it instead.

The same holds for the imports a first render makes (numba, gsplat): an interrupt raised half-way through
an import leaves the package in ``sys.modules`` without some of its submodules bound to it ("module 'numba'
has no attribute 'core'"), and every later render fails. ``import_untraced`` runs them with tracing off.
"""

import functools
import importlib
import sys
from types import ModuleType
from typing import Callable, TypeVar

F = TypeVar("F", bound=Callable)


def untraced(fn: F) -> F:
    """``fn`` run with the calling thread's trace function removed, and restored afterwards (frames already
    running keep theirs; only the frames ``fn`` opens go untraced)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        trace = sys.gettrace()
        if trace is None:
            return fn(*args, **kwargs)
        sys.settrace(None)
        try:
            return fn(*args, **kwargs)
        finally:
            sys.settrace(trace)

    return wrapper  # type: ignore[return-value]


@untraced
def import_untraced(name: str) -> ModuleType:
    """``importlib.import_module(name)`` with tracing off, for imports made lazily during a render.

    Raises:
        ImportError: as ``importlib.import_module``.
    """
    return importlib.import_module(name)


@functools.cache
def numba_available() -> bool:
    """Whether numba imports (asked once, with tracing off): an installed numba can still refuse to import (a
    NumPy it does not support, a mismatched llvmlite), and then the renderer and the encoder use torch's
    operators instead of their numba kernels."""
    try:
        import_untraced("numba")
    except ImportError:
        return False
    return True
