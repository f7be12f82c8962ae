"""The report's figures: the previous drawing (constrained layout, ``savefig``: two draws a
figure, one process) against the current one (one layout pass and one draw a figure, a helper
process when there are >= 16 figures and 2 CPUs), on the same plot specs.

By default the specs are those of a run shaped like the default ``collapsekit scan`` of
SmolLM2-135M (65 figures: 13 per-layer geometry lines, 3 heatmaps, 11 per-prompt strips, 25
one-temperature points, 10 agent rounds, ...), from seeded random values; ``--run DIR`` takes
a finished run folder instead. The modes alternate ``--repeats`` times; medians of wall time
and of CPU time (this process and its helper) are printed, with the current drawing's PNGs
compared: helper or not (bytes), and against the previous drawing (share of pixels that
differ: the axes may sit a pixel apart).

    python benchmarks/report_render.py
    python benchmarks/report_render.py --run collapse-report/scan-smollm2-135m --repeats 5
"""

from __future__ import annotations

import argparse
import contextlib
import io
import resource
import statistics
import tempfile
import threading
import time

import numpy as np
from PIL import Image

from collapsekit.report import drawing, layout, plots
from collapsekit.results import Run, load_run


@contextlib.contextmanager
def previous_figure(width: float, height: float):
    """plots._figure before the change: constrained layout, savefig (it draws twice)."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    with matplotlib.rc_context(plots.STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig, buf
        fig.savefig(buf, format="png", dpi=plots.DPI, metadata={"Software": None})


def scan_like(path) -> None:
    """A run with the default scan's figure mix (metric names of the scan)."""
    rng = np.random.default_rng(0)
    run = Run(path, study="scan", config={})
    model = "embedded:smollm2-135m-instruct"
    geometry = ["rankme", "matrix_entropy_rank", "participation_ratio", "dim_eff",
                "alpha_req", "alpha_req_r2", "isoscore", "anisotropy", "top_coordinate_share",
                "top_coordinate", "top_coordinate_norm_share", "rank_collapse_residual",
                "rank_collapse_residual_l1linf"]
    for i, metric in enumerate(geometry):
        for basis in ("raw", "standardised") if i < 7 else ("raw",):
            for layer in range(32):
                run.add(metric, float(rng.uniform(1, 500)), layer=layer, basis=basis,
                        model=model, section="geometry")
    for metric in ("attention_entropy", "attention_entropy_normalised"):
        for layer in range(30):
            for head in range(9):
                run.add(metric, float(rng.uniform(0, 3)), layer=layer, head=head,
                        model=model, section="attention")
    for metric in ("attention_collapsed_heads", "attention_overloaded_heads"):
        for layer in range(30):
            run.add(metric, float(rng.integers(0, 4)), layer=layer, model=model,
                    section="attention heads")
    for metric in ("distinct_1", "distinct_2", "self_bleu", "semantic_spread", "vendi_score",
                   "semantic_entropy", "num_semantic_sets", "num_distinct_classes", "eigv",
                   "degmat", "semantic_entropy_likelihood"):
        values = rng.uniform(0.2, 0.9, 48)
        for p, v in enumerate(values):
            run.add(metric, float(v), prompt_id=p, model=model, section="diversity")
        m = float(values.mean())
        run.add(f"mean_{metric}", m, temperature=1.0, model=model, ci_low=m - 0.02,
                ci_high=m + 0.02, section="diversity")
    for metric in ("pooled_distinct_1", "pooled_distinct_2", "pooled_distinct_3",
                   "pooled_mean_pairwise_cosine"):
        run.add(metric, float(rng.uniform()), temperature=1.0, model=model,
                section="diversity pooled")
    for metric in ("loop_rate", "seq_rep_4"):
        run.add(metric, float(rng.uniform(0, 0.01)), temperature=1.0, model=model,
                section="degeneration")
    for metric in ("jaccard_to_anchor", "cosine_to_anchor", "compliance", "hash_collisions",
                   "hash_collision_fraction", "anchor_copy_fraction", "mean_pairwise_jaccard",
                   "mean_pairwise_cosine", "vocabulary_entropy", "state_entropy"):
        for mode in ("greedy", "stochastic"):
            for r in range(4):
                run.add(metric, float(rng.uniform()), round=r, mode=mode, model=model,
                        section="agents")
    for metric in ("dim_eff", "participation_ratio"):
        for condition in ("direct", "cot", "babble"):
            for layer in range(31):
                run.add(metric, float(rng.uniform(1, 50)), layer=layer, condition=condition,
                        model=model, section="intention")
    for depth in (0.0, 0.25, 0.5, 0.75, 1.0):
        for length in (256, 512, 1024, 2048):
            run.add("passkey_cell_accuracy", float(rng.uniform()), depth=depth, length=length,
                    model=model, section="passkey")
    for length in (256, 512, 1024, 2048):
        run.add("passkey_accuracy", float(rng.uniform()), length=length, model=model,
                section="passkey")
    for metric in ("bits_per_byte", "bits_per_byte_ratio", "perplexity", "perplexity_ratio",
                   "drift_collapse", "drift_collapsed_documents"):
        for step in range(4):
            run.add(metric, float(rng.uniform(1, 2)), step=step, model=model, section="drift")
    run.finish()


def specs_of(path) -> list:
    data = load_run(path)
    return [p for s in layout.plan(data["records"], data) for p in s.plots if p.series]


def timed(fn):
    """(result, wall s, CPU s of this process and its reaped helpers)."""
    def cpu():
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + kids.ru_utime + kids.ru_stime
    c0, t0 = cpu(), time.perf_counter()
    out = fn()
    wall = time.perf_counter() - t0
    for t in threading.enumerate():  # the thread that reaps the helper, to count its CPU
        if t is not threading.current_thread():
            t.join()
    return out, wall, cpu() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", help="a finished run folder (default: a scan-like run)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.run is None:
            scan_like(tmp)
        specs = specs_of(args.run or tmp)
    current = plots._figure

    def previous():
        plots._figure = previous_figure
        try:
            return [drawing.draw(s) for s in specs]
        finally:
            plots._figure = current

    modes = {"previous": previous,
             "current, one process": lambda: drawing.draw_all(specs, parallel=False),
             "current": lambda: drawing.draw_all(specs)}
    previous()  # imports, font cache
    results: dict = {m: [] for m in modes}
    for _ in range(args.repeats):
        for m, fn in modes.items():
            results[m].append(timed(fn))
    wall = {m: statistics.median(r[1] for r in rs) for m, rs in results.items()}
    cpu = {m: statistics.median(r[2] for r in rs) for m, rs in results.items()}
    print(f"{len(specs)} figures, {args.repeats} alternations, {drawing.cpus()} CPUs")
    for m in modes:
        print(f"  {m:22s} wall {wall[m]:6.2f} s ({wall[m] / wall['previous']:.2f}x the "
              f"previous)  CPU {cpu[m]:6.2f} s")
    old, one, cur = (results[m][-1][0] for m in modes)
    print(f"  current PNGs with and without the helper identical: {one == cur}")
    diff = [float(np.any(np.asarray(Image.open(io.BytesIO(a)).convert("RGB"))
                         != np.asarray(Image.open(io.BytesIO(b)).convert("RGB")), axis=2).mean())
            for a, b in zip(old, cur)]
    print(f"  pixels differing from the previous drawing: median {np.median(diff):.2%}, "
          f"max {max(diff):.2%} of a figure")


if __name__ == "__main__":
    main()
