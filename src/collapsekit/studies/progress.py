"""Progress of long stages, on stderr (so ``--json`` output stays clean): a rich bar in a
terminal; elsewhere (nohup, SLURM, CI logs) one plain line at most every ``EVERY`` seconds
and one at the end, so a log never stays silent for long."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager

EVERY = 10.0  # seconds between plain progress lines


@contextmanager
def progress_bar(description: str, total: int, console=None):
    """Yield ``tick(n=1)`` that advances the progress of ``total`` steps."""
    from rich.console import Console

    console = console or Console(stderr=True)
    if not console.is_terminal:
        yield from _plain(description, total, console.file)
        return
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=console,
                  transient=False) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n=1: bar.advance(task, n)


def _plain(description: str, total: int, stream):
    start = last = time.monotonic()
    done = [0]

    def line(now: float) -> None:
        print(f"{description}: {done[0]}/{total} ({now - start:.0f} s)", file=stream or
              sys.stderr, flush=True)

    def tick(n: int = 1) -> None:
        nonlocal last
        done[0] += n
        now = time.monotonic()
        if now - last >= EVERY:
            line(now)
            last = now

    yield tick
    line(time.monotonic())
