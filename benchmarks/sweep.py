"""Wall-clock of a 4-run sweep on a local Ray cluster vs the same 4 runs one after another
in this process, in one run, and Ray's fixed overhead per task.

The sweep: ``geometry`` on one model (default the embedded SmolLM2-135M) over a grid of
2 ``max_length`` values × 2 seeds, ``report=False``. Sequential: ``run_sweep(use_ray=False)``
(torch uses every thread). Ray: ``ray.init(num_cpus=WORKERS)`` then the same sweep as Ray
tasks (one CPU each, so each worker runs torch on one thread); its time includes starting
the cluster and the workers (each imports torch and loads the model itself). Both sweeps
must give the same records (float32 forward passes on different thread counts may differ
in the last digits: the largest relative difference is printed).

Fixed overhead: the mean time of 200 no-op Ray tasks on warm workers (scheduling and
serialisation), and the first task on a fresh cluster (worker start-up).

    python benchmarks/sweep.py                       # SmolLM2-135M, 2 workers
    python benchmarks/sweep.py --model ./my-model --workers 4 --n 64
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import ray

from collapsekit.results import load_run
from collapsekit.studies.sweep import run_sweep


def noop(x):
    return x


def overhead(workers: int) -> tuple[float, float, float]:
    """(seconds to start the cluster, first task on it, mean seconds per warm no-op task)."""
    t0 = time.perf_counter()
    ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    t1 = time.perf_counter()
    task = ray.remote(noop)
    ray.get(task.remote(0))
    t2 = time.perf_counter()
    ray.get([task.remote(i) for i in range(workers * 4)])  # warm every worker
    t3 = time.perf_counter()
    ray.get([task.remote(i) for i in range(200)])
    per_task = (time.perf_counter() - t3) / 200
    ray.shutdown()
    return t1 - t0, t2 - t1, per_task


def max_rel_diff(a: Path, b: Path) -> float:
    worst = 0.0
    for d in sorted((a / "runs").iterdir()):
        ra, rb = load_run(d)["records"], load_run(b / "runs" / d.name)["records"]
        assert [r["metric"] for r in ra] == [r["metric"] for r in rb], d.name
        for x, y in zip(ra, rb):
            if isinstance(x["value"], float) and isinstance(y["value"], float):
                worst = max(worst, abs(x["value"] - y["value"]) / max(abs(x["value"]), 1e-300))
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--n", type=int, default=24, help="texts per geometry run")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    sweep = dict(studies=["geometry"], models=[args.model], seeds=[0, 1], device="cpu",
                 params={"n": args.n, "batch_size": 8}, grid={"max_length": [48, 64]},
                 report=False)
    tmp = Path(tempfile.mkdtemp(prefix="collapsekit-sweep-bench-"))
    from collapsekit.models.registry import load_model

    load_model(args.model)  # a GGUF is converted once: not part of either timing
    t0 = time.perf_counter()
    run_sweep(tmp / "seq", use_ray=False, **sweep)
    seq = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_sweep(tmp / "ray", workers=args.workers, **sweep)
    par = time.perf_counter() - t0
    start, first, per_task = overhead(args.workers)
    print(f"4 runs of geometry on {args.model} (n={args.n}, max_length 48/64, seeds 0/1)")
    print(f"  sequential, in process:     {seq:7.1f} s")
    print(f"  local Ray, {args.workers} workers:      {par:7.1f} s (cluster start included)")
    print(f"  ratio sequential / Ray:     {seq / par:7.2f}x")
    worst = max_rel_diff(tmp / "seq", tmp / "ray")
    print(f"  largest relative difference of the records: {worst:.1e}")
    print(f"Ray fixed overhead: cluster start {start:.1f} s, first task {first:.2f} s "
          f"(worker start-up), {per_task * 1e3:.2f} ms per warm task")


if __name__ == "__main__":
    main()
