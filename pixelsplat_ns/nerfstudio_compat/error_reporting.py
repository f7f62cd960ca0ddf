"""A user's bad input, reported by ``ns-*`` commands as a message instead of a traceback."""

import sys
from pathlib import Path

from pixelsplat_ns.core.atomic_files import as_cannot_write, check_writable
from pixelsplat_ns.core.errors import InputError
from pixelsplat_ns.nerfstudio_compat.distributed import failed_process_report


def report_input_errors_without_traceback() -> None:
    """Print an ``InputError`` that ends an ``ns-*`` command as its message alone, with exit status 1; likewise an
    error whose cause is a place that cannot take a file (a full disk, a read-only folder: ``CannotWrite``).

    Works around: ``ns-train`` builds the pipeline inside ``nerfstudio.scripts.train.main`` and lets whatever
    it raises reach the top level, so a message about the user's input (context views, cameras, images,
    checkpoints) came at the end of a long traceback; nerfstudio's own writes (``ns-eval``'s JSON, ``ns-export``,
    ``ns-render``) end the same way on a full disk or a read-only folder; with several processes
    (``--machine.num-devices``), the error of the one that failed came inside a launcher's traceback
    (``distributed.failed_process_report``). Every other exception keeps its traceback."""
    previous = sys.excepthook

    def hook(kind, error, traceback):
        cannot_write = None if issubclass(kind, InputError) else as_cannot_write(error)
        failed_process = failed_process_report(str(error)) if kind.__name__ == "ProcessRaisedException" else None
        if issubclass(kind, InputError):
            print(f"\n{kind.__name__}: {error}", file=sys.stderr)
        elif failed_process is not None:
            print(f"\n{failed_process}", file=sys.stderr)
        elif cannot_write is not None:
            print(f"\n{type(cannot_write).__name__}: {cannot_write}", file=sys.stderr)
        else:
            previous(kind, error, traceback)

    if not getattr(sys.excepthook, "reports_input_errors", False):
        hook.reports_input_errors = True  # type: ignore[attr-defined]  # a marker: install the hook once
        sys.excepthook = hook


EVAL_OUTPUT_BYTES = 1 << 20
"""Room asked for ``ns-eval``'s JSON (metrics and settings: kilobytes) before the evaluation starts."""


def check_ns_eval_output_path(argv: list[str]) -> None:
    """In ``ns-eval``: refuse an ``--output-path`` that cannot be written, before any metric is computed.

    Works around: ``ns-eval`` (``nerfstudio.scripts.eval.ComputePSNR.main``) renders and scores every evaluation
    image, and only then makes the output's folder and writes the JSON: a read-only folder cost the whole
    evaluation and ended in a traceback. The flag is read from ``argv`` as tyro accepts it (``--output-path P``,
    ``--output-path=P``, underscores too); nerfstudio's default is ``output.json`` here. Elsewhere a no-op."""
    if not argv or Path(argv[0]).name not in ("ns-eval", "ns-eval.exe"):
        return
    output = "output.json"
    for i, arg in enumerate(argv[1:], start=1):
        flag, _, value = arg.partition("=")
        if flag.replace("_", "-") == "--output-path":
            output = value if value else (argv[i + 1] if i + 1 < len(argv) else output)
    check_writable(Path(output), size_hint=EVAL_OUTPUT_BYTES)
