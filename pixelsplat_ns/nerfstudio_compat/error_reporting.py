"""A user's bad input, reported by ``ns-*`` commands as a message instead of a traceback."""

import sys

from pixelsplat_ns.core.errors import InputError


def report_input_errors_without_traceback() -> None:
    """Print an ``InputError`` that ends an ``ns-*`` command as its message alone, with exit status 1.

    Works around: ``ns-train`` builds the pipeline inside ``nerfstudio.scripts.train.main`` and lets whatever
    it raises reach the top level, so a message about the user's input (context views, cameras, images,
    checkpoints) came at the end of a long traceback. Every other exception keeps its traceback."""
    previous = sys.excepthook

    def hook(kind, error, traceback):
        if issubclass(kind, InputError):
            print(f"\n{kind.__name__}: {error}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    if not getattr(sys.excepthook, "reports_input_errors", False):
        hook.reports_input_errors = True  # type: ignore[attr-defined]  # a marker: install the hook once
        sys.excepthook = hook
