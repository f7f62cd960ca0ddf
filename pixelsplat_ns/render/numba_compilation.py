"""One line before numba compiles one of the project's kernels, wherever that happens first in a process (the
viewer, ``ns-render``, ``ns-eval``, ``ns-train``, the library): compiling takes a while, once, and a silent wait
looks like a hang. Kernels found in numba's disk cache (``cache=True``: ``__pycache__`` beside the kernels'
modules, or ``NUMBA_CACHE_DIR``) are loaded without compiling, and nothing is printed.

The functions that call the kernels (forward and backward) are decorated with ``announces_compilation``, which
listens to numba's ``numba:compile`` event (sent only when no cached code is found) for the duration of the
call, and leaves nothing installed."""

import contextlib
import functools
import sys
from typing import Callable, Iterator, TypeVar

F = TypeVar("F", bound=Callable)
RENDERER = "the CPU renderer's kernels"

_announced: set[str] = set()
"""What has been announced in this process (each ``what`` once)."""


def _print_before_first_compilation(what: str, data) -> None:
    """numba's ``numba:compile`` start event: print the line for ``what`` if a kernel of the project starts to
    compile and the line has not been printed yet."""
    dispatcher = (data.data or {}).get("dispatcher")
    module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
    if what not in _announced and module.startswith("pixelsplat_ns."):
        _announced.add(what)
        print(
            f"pixelsplat-ns: compiling {what} with numba, once; this call waits for it, later ones (and later runs) "
            "load them from numba's disk cache",
            file=sys.stderr,
            flush=True,
        )


@functools.cache
def _listener_class() -> type:
    """numba's ``Listener`` for ``_print_before_first_compilation`` (numba imported on first use, not here)."""
    from numba.core import event

    class FirstCompilation(event.Listener):
        def __init__(self, what: str) -> None:
            self.what = what

        def on_start(self, data: event.Event) -> None:
            _print_before_first_compilation(self.what, data)

        def on_end(self, data: event.Event) -> None:
            pass

    return FirstCompilation


@contextlib.contextmanager
def announcing_compilation(what: str) -> Iterator[None]:
    """Run numba kernels of the project, printing one line to stderr (once per process and ``what``) before
    numba starts to compile one of them; ``what`` names the kernels in that line ("the CPU renderer's kernels")."""
    if what in _announced:
        yield
        return
    from numba.core import event

    with event.install_listener("numba:compile", _listener_class()(what)):
        yield


def announces_compilation(what: str) -> Callable[[F], F]:
    """Decorator: the function runs inside ``announcing_compilation(what)``."""

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with announcing_compilation(what):
                return fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
