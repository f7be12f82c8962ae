"""Helpers shared by the benchmark scripts (run as ``python benchmarks/NAME.py``)."""

import time
import tracemalloc


def traced(fn):
    """(result, seconds, peak bytes allocated during fn)."""
    tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    out = fn()
    secs = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return out, secs, peak
