"""What a long step is doing while it works (a process-data command, a capture's prediction), as nerfstudio's
own commands show it (its rich ``CONSOLE``): in a terminal a spinner or a progress bar while a stage runs; then,
in a terminal or not, one line per stage with what it found and how long it took."""

import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Iterator, Sequence, TypeVar

from nerfstudio.utils.rich_utils import CONSOLE
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

T = TypeVar("T")


@dataclass
class StageResult:
    """What a stage found, for its line; set inside the ``stage`` block."""

    text: str = "done"


@contextmanager
def stage(description: str, spinner: bool = True) -> Iterator[StageResult]:
    """Run a stage: a spinner with ``description`` in a terminal while it runs (``spinner``; off for a stage that
    shows a progress bar, since rich shows one live display at a time), then the line ``description: <result>
    (<seconds> s)``. A stage that raises prints no line: the error says what happened."""
    start = time.perf_counter()
    result = StageResult()
    with CONSOLE.status(f"[bold]{escape(description)}...") if spinner else nullcontext():
        yield result
    CONSOLE.print(
        f"{description}: {result.text} ({time.perf_counter() - start:.1f} s)",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def progress_bar(items: Sequence[T], description: str) -> Iterator[T]:
    """``items`` one by one, with a progress bar (items done, elapsed time) in a terminal; removed when done."""
    if not CONSOLE.is_terminal:  # nothing to animate, and rich would leave an empty line
        yield from items
        return
    columns = (TextColumn(escape(description)), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=CONSOLE, transient=True) as progress:
        yield from progress.track(items, total=len(items))
