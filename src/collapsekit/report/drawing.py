"""The report's figures as PNG bytes, drawn on two processes where two CPUs are free.

:func:`draw_all` draws here and, for many figures, in one helper process
(``python -c ... serve()``, fed through its stdin/stdout by a thread): each takes the next
figure when it is done with one. A figure the helper does not return (it could not start,
died, or raised) is drawn here, so the result never depends on the helper: the same PNG
bytes either way (:func:`plots.style`: the rcParams of the matplotlibrc files, not the
caller's changes), and the warnings of its figures raised here. Matplotlib is Python-bound
and holds the GIL, so threads would not help; a helper costs about 1 s of imports, hence
:data:`MIN_PARALLEL`.
"""

from __future__ import annotations

import collections
import os
import pickle
import struct
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

from collapsekit.report import plots

MIN_PARALLEL = 16  # fewer figures are drawn here alone
_LEN = struct.Struct("<Q")


def draw(spec) -> bytes:
    """The PNG of one :class:`collapsekit.report.layout.PlotSpec`."""
    if spec.kind == "line":
        return plots.line_plot(spec.series, metric=spec.metric, x_label=spec.x,
                               title=spec.title, refs=spec.refs, ylim=spec.ylim)
    if spec.kind == "heatmap":
        return plots.heatmap(spec.series, metric=spec.metric, row_label=spec.y,
                             col_label=spec.x, title=spec.title)
    return plots.strip_plot(spec.series, metric=spec.metric, title=spec.title,
                            refs=spec.refs, xlim=spec.ylim)


def cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def draw_all(specs, parallel: bool | None = None) -> list[bytes]:
    """PNG bytes of each spec, in order. ``parallel``: use a helper process (None: when
    there are at least :data:`MIN_PARALLEL` specs and 2 CPUs)."""
    specs = list(specs)
    out: list = [None] * len(specs)
    todo = collections.deque(range(len(specs)))
    if parallel is None:
        parallel = len(specs) >= MIN_PARALLEL and cpus() >= 2
    helper = _start() if parallel and len(specs) > 1 else None
    done = threading.Event()  # the helper takes no more specs and its last one is stored
    caught: list = []  # the warnings the helper's figures raised
    if helper is not None:
        threading.Thread(target=_feed, args=(helper, specs, todo, out, done, caught),
                         daemon=True).start()
    start, mine = time.perf_counter(), 0
    try:
        while todo:
            try:
                i = todo.popleft()
            except IndexError:  # the helper took the last one
                break
            out[i] = draw(specs[i])
            mine += 1
    finally:
        if helper is not None:
            todo.clear()  # after an error here: the helper stops after its current spec
            # its spec in hand takes about as long as one of ours; far longer: stuck
            if not done.wait(max(1.0, 3 * (time.perf_counter() - start) / max(mine, 1))):
                helper.kill()  # its spec is drawn below
    for message, category, filename, lineno in caught[:]:  # a copy: the thread may add
        warnings.warn_explicit(message, category, filename, lineno)
    return [png if png is not None else draw(s) for png, s in zip(out, specs)]


def _start():
    """The helper process, or None when it cannot be started."""
    if not sys.executable:  # embedded interpreter
        return None
    root = str(Path(plots.__file__).resolve().parents[2])  # collapsekit's parent folder
    code = f"import sys; sys.path.insert(0, {root!r}); " \
           "from collapsekit.report.drawing import serve; serve()"
    try:  # its stderr is quiet: what it cannot draw is drawn (and reported) here
        return subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    except (OSError, ValueError):
        return None


def _feed(helper, specs, todo, out, done, caught) -> None:
    """Send the helper the next spec until none is left, storing what it returns (its
    warnings in ``caught``); then set ``done``, close its stdin (it exits), wait for it."""
    try:
        while True:
            try:
                i = todo.popleft()
            except IndexError:
                break
            _send(helper.stdin, pickle.dumps(specs[i]))
            reply = _receive(helper.stdout)
            if reply is None:
                break  # the helper is gone: specs[i] is drawn by draw_all
            ok, png, raised = pickle.loads(reply)
            if ok:
                out[i] = png
                caught.extend(raised)
    except Exception:  # noqa: BLE001, S110 - a broken pipe, a spec pickle cannot send:
        pass  # what is left is drawn by draw_all
    finally:
        done.set()
        for pipe in (helper.stdin, helper.stdout):
            try:
                pipe.close()
            except OSError:
                pass
        try:
            helper.wait(10)
        except subprocess.TimeoutExpired:
            helper.kill()
            helper.wait()


def _send(pipe, data: bytes) -> None:
    pipe.write(_LEN.pack(len(data)) + data)
    pipe.flush()


def _receive(pipe) -> bytes | None:
    head = pipe.read(_LEN.size)
    if len(head) < _LEN.size:
        return None
    (n,) = _LEN.unpack(head)
    data = pipe.read(n)
    return data if len(data) == n else None


def serve(stdin=None, stdout=None) -> None:
    """The helper's loop: a pickled spec in, ``(True, png, warnings)`` or ``(False,
    error, [])`` out, until stdin closes. Stray prints go to stderr, not into the
    replies."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    sys.stdout = sys.stderr
    while (data := _receive(stdin)) is not None:
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                png = draw(pickle.loads(data))
            reply = pickle.dumps((True, png, [(str(w.message), w.category, w.filename,
                                               w.lineno) for w in caught]))
        except Exception as err:  # noqa: BLE001 - drawn again, and raised, by draw_all
            reply = pickle.dumps((False, repr(err), []))
        _send(stdout, reply)
