"""Ctrl-C (SIGINT) and SIGTERM as a request to stop at the next safe point, instead of an exception wherever the
program happens to be (in the middle of an optimizer step or of writing a checkpoint)."""

import signal
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM") if hasattr(signal, name))


@contextmanager
def stop_requests(request_stop: Callable[[str], None]) -> Iterator[Callable[[], None]]:
    """Within the block, the first SIGINT or SIGTERM calls ``request_stop(signal name)`` and nothing else; the
    handlers in place before are then restored, so a second signal acts as it would have (Ctrl-C raises
    ``KeyboardInterrupt`` at once). The block gets a function that restores them earlier (where Ctrl-C must quit
    again, e.g. while the viewer waits); they are restored when the block ends in any case. Outside the main
    thread, where Python delivers no signals, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield lambda: None
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}

    def restore() -> None:
        for number, handler in previous.items():
            signal.signal(number, handler)

    def handle(number, frame) -> None:
        restore()
        request_stop(signal.Signals(number).name)

    for number in STOP_SIGNALS:
        signal.signal(number, handle)
    try:
        yield restore
    finally:
        restore()
