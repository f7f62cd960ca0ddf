"""Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point, instead of an exception wherever the
program happens to be (in the middle of an optimizer step, of writing a checkpoint, or inside a compiled kernel,
where an exception comes out as an unrelated ``SystemError``)."""

import os
import signal
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator, Optional

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


def quit_now(signal_name: str, message: str) -> None:
    """Print ``message`` and end the process at once with the signal's exit status (128 + its number), as a
    shell reports a process the signal ended; no exception, so no traceback and no cleanup code runs (a
    ``core.atomic_files`` temporary file is removed by the next write in its folder)."""
    print(message, file=sys.stderr, flush=True)
    sys.stdout.flush()
    os._exit(128 + signal.Signals[signal_name].value)


@contextmanager
def stop_requests(
    request_stop: Callable[[str], None], on_repeat: Optional[Callable[[str], None]] = None
) -> Iterator[Callable[[], None]]:
    """Within the block, the first SIGINT or SIGTERM calls ``request_stop(signal name)`` and nothing else; a second
    one calls ``on_repeat(signal name)`` (default: ``quit_now`` saying that nothing more is saved). The block gets
    a function that restores the handlers in place before (where Ctrl-C must act as usual again, e.g. while the
    viewer waits); they are restored when the block ends in any case. Outside the main thread, where Python
    delivers no signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    requested: list[str] = []

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def handle(number, frame) -> None:
        name = signal.Signals(number).name
        if not requested:
            requested.append(name)
            request_stop(name)
        elif on_repeat is not None:
            on_repeat(name)
        else:
            quit_now(name, f"{name} again: quitting at once, without saving")

    for number in STOP_SIGNALS:
        signal.signal(number, handle)
    try:
        yield restore
    finally:
        restore()
