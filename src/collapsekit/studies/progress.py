"""Rich progress bars for long stages (to stderr, so ``--json`` output stays clean)."""

from __future__ import annotations

from contextlib import contextmanager


@contextmanager
def progress_bar(description: str, total: int, console=None):
    """Yield ``tick(n=1)`` that advances a rich bar of ``total`` steps."""
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(),
                  console=console or Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)
