"""Progress off a terminal: a plain line at most every EVERY seconds, and one at the end."""

import io

from rich.console import Console

from collapsekit.studies import progress


def test_plain_lines_when_stderr_is_not_a_terminal(monkeypatch):
    clock = iter([0.0, 1.0, 11.0, 12.0, 25.0, 26.0, 30.0])  # start, 5 ticks, the end
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    buf = io.StringIO()
    with progress.progress_bar("sampling", 5, Console(file=buf)) as tick:
        for _ in range(5):
            tick()
    assert buf.getvalue().splitlines() == [
        "sampling: 2/5 (11 s)", "sampling: 4/5 (25 s)", "sampling: 5/5 (30 s)"]


def test_a_terminal_gets_the_rich_bar():
    buf = io.StringIO()
    with progress.progress_bar("geometry", 3, Console(file=buf, force_terminal=True)) as tick:
        tick(3)
    assert "geometry" in buf.getvalue() and "3/3" in buf.getvalue()
