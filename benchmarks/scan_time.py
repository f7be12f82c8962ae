"""Benchmark: wall time of the default ``collapsekit scan`` (what ``make demo`` runs), with
the time of each stage from its ``metrics.json``; with ``--against SRC`` the same scan of
another checkout's ``src`` folder (e.g. a ``git worktree`` of an older commit) runs in the
same session, alternating, and the ratio is printed. The machine's speed drifts by tens of
percent over an hour, so only ratios measured side by side compare two versions.

    python benchmarks/scan_time.py                                   # this checkout, once
    git worktree add /tmp/old f3ad5e0
    python benchmarks/scan_time.py --against /tmp/old/src --repeats 2   # new, old, old, new
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1] / "src"
SCAN = ("import sys; sys.argv = ['collapsekit', 'scan', '--out', sys.argv[1]]; "
        "from collapsekit.cli import main; main()")


def scan(src: Path, out: Path) -> tuple[float, dict]:
    """(wall seconds, stage timings) of a default scan with ``collapsekit`` from ``src``."""
    env = dict(os.environ, PYTHONPATH=str(src))
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", SCAN, str(out)], env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    return wall, json.loads((out / "metrics.json").read_text())["timings"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--against", type=Path, help="another checkout's src folder")
    ap.add_argument("--repeats", type=int, default=1, help="runs of each version")
    a = ap.parse_args()
    versions = {"this": HERE}
    if a.against:
        if not (a.against / "collapsekit" / "__init__.py").is_file():
            sys.exit(f"--against {a.against}: no collapsekit package there; give a src folder")
        versions["against"] = a.against
    order = [v for r in range(a.repeats) for v in (list(versions) if r % 2 == 0
                                                   else list(versions)[::-1])]
    walls: dict = {v: [] for v in versions}
    stages: dict = {v: {} for v in versions}
    with tempfile.TemporaryDirectory() as tmp:
        for i, name in enumerate(order):
            wall, timings = scan(versions[name], Path(tmp) / f"{name}-{i}")
            walls[name].append(wall)
            for k, v in timings.items():
                stages[name].setdefault(k, []).append(v)
            print(f"run {i + 1}/{len(order)}: {name} {wall:.1f} s", flush=True)
    names = list(versions)
    print(f"{'stage (mean s)':44s}" + "".join(f"{n:>10s}" for n in names))
    for key in dict.fromkeys(k for n in names for k in stages[n]):
        cells = [stages[n].get(key) for n in names]
        print(f"{key[:44]:44s}" + "".join(
            f"{sum(c) / len(c):10.1f}" if c else f"{'-':>10s}" for c in cells))
    for n in names:
        print(f"wall {n}: " + ", ".join(f"{w:.1f}" for w in walls[n]) + " s")
    if a.against:
        ratio = sum(walls["this"]) / sum(walls["against"])
        print(f"this / against: {ratio:.2f}x the wall time")


if __name__ == "__main__":
    main()
