"""Long steps show what they are doing: a progress bar in a terminal, a line per stage in a terminal or a log."""

import io

from rich.console import Console

import pixelsplat_ns.core.progress as progress


def test_a_progress_bar_and_a_stage_line_in_a_terminal_and_in_a_log(monkeypatch):
    for terminal in (True, False):
        console = Console(file=io.StringIO(), force_terminal=terminal, width=100)
        monkeypatch.setattr(progress, "CONSOLE", console)
        assert list(progress.progress_bar(range(5), "pixelsplat: predicting context groups")) == list(range(5))
        with progress.stage("matching features") as result:
            result.text = "412 matches"
        shown = console.file.getvalue()
        assert ("predicting context groups" in shown) == terminal, "a bar in a terminal only; a log gets no bar"
        assert "matching features: 412 matches (" in shown
