"""``collapsekit simulate``: a sweep of strategies × seeds for one learner, resumable.

Each finished (strategy, seed) is appended to ``checkpoints/curves.jsonl`` in the run
folder, so an interrupted sweep continues with ``--resume`` where it stopped. metrics.json
holds, per (metric, strategy, generation), the mean over seeds with a 95% Student-t
interval (``source="simulation"``; seeds are i.i.d., and the t-interval costs nothing at
100 seeds × 100 generations, unlike a bootstrap) with the closed form where one exists in
its ``closed_form`` field, and the closed form again as its own records (same scope,
``source="closed_form"``) that the report draws as dashed lines. Tables: ``curves`` (every seed's value) and
``provenance`` (the first seed's training rows by birth generation).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
from scipy import stats

from ...params import check_int
from .engine import run_lanes
from .learners import LEARNERS, make_learner
from .strategies import parse_strategies

_KEYS = ("learner", "strategies", "generations", "seeds", "params")
GENERATIONS = 10  # when neither --generations nor the sweep file gives them
_DATA_METRICS = ("real_fraction", "mean_age")


def mean_ci(values, level: float = 0.95) -> tuple[float, float | None, float | None, int]:
    """(mean, low, high, n) of the finite values: Student-t interval mean ± t·s/√n; no
    interval (None) with fewer than two values, mean NaN with none."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), None, None, 0
    mean = float(x.mean())
    if x.size < 2:
        return mean, None, None, 1
    half = stats.t.ppf((1 + level) / 2, x.size - 1) * x.std(ddof=1) / np.sqrt(x.size)
    return mean, mean - float(half), mean + float(half), int(x.size)


def read_sweep(path) -> dict:
    """A sweep file (TOML, or YAML when PyYAML is installed) with keys among
    learner, strategies, generations, seeds and a params table."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"sweep file {path} does not exist: check the --config path")
    text = path.read_text(encoding="utf-8")
    if path.suffix in (".yaml", ".yml"):
        try:
            import yaml
        except ImportError:
            raise ValueError("YAML sweep files need PyYAML: pip install pyyaml, or write the "
                             "sweep as TOML") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ValueError(f"{path} is not valid YAML ({e})") from None
    else:
        try:
            import tomllib
        except ImportError:  # Python 3.10
            raise ValueError("TOML sweep files need Python 3.11 or newer") from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as e:
            raise ValueError(f"{path} is not valid TOML ({e})") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path} must hold a table of settings")
    unknown = sorted(set(data) - set(_KEYS))
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}; use {', '.join(_KEYS)}")
    if not isinstance(data.get("params", {}), dict):
        raise ValueError(f"{path}: params must be a table of name = value")
    return data


def plan(*, learner, strategies, generations, seeds, params, config_file=None, **objects):
    """Validate a sweep before any work: returns (learner, strategies, generations, seeds,
    config). Explicit arguments override the sweep file's; None means 'not given'."""
    sweep = read_sweep(config_file) if config_file else {}
    name = learner if learner is not None else sweep.get("learner")
    if name is None:
        raise ValueError(f"no learner given: pass --learner, one of {', '.join(LEARNERS)}")
    merged = {**sweep.get("params", {}), **(params or {})}
    lrn = make_learner(name, merged, **objects)
    strats = parse_strategies(strategies if strategies else sweep.get("strategies"))
    gens = check_int("generations", generations if generations is not None
                     else sweep.get("generations", GENERATIONS), 1)
    n_seeds = check_int("seeds", seeds if seeds is not None else sweep.get("seeds", 1), 1)
    for s in strats:
        s.check(lrn.n)
        bad = sorted(set(s.sampling) - lrn.sampling)
        if bad:
            raise ValueError(f"{s.label}: learner {name!r} does not support "
                             f"{', '.join(bad)} (it supports "
                             f"{', '.join(sorted(lrn.sampling)) or 'no sampling settings'})")
        if s.filter and not (lrn.has_verifier or s.verifier):
            raise ValueError(f"{s.label}: learner {name!r} has no verifier to filter with; "
                             "drop filter= or pass a verifier from Python")
        have = lrn.real_available()
        if have is not None and s.real_needed(lrn.n, gens) > have:
            raise ValueError(f"{s.label} needs {s.real_needed(lrn.n, gens)} real examples "
                             f"but {name!r} has {have}: lower n_train, the fresh fraction or "
                             "the generations")
    config = {"learner": name, "learner_params": lrn.p, "strategies": [s.label for s in strats],
              "generations": gens, "seeds": n_seeds}
    return lrn, strats, gens, n_seeds, config


def _checkpoint(path: Path) -> dict:
    done = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
                done[(rec["strategy"], rec["seed"])] = rec
            except (json.JSONDecodeError, KeyError, TypeError):
                continue  # a line cut by an interruption: that pair runs again
    return done


def _append(path: Path, results: list[dict], label: str) -> None:
    cut = False
    if path.is_file() and path.stat().st_size:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            cut = f.read(1) != b"\n"
    with path.open("a", encoding="utf-8") as f:
        if cut:  # a line cut by an interruption: end it, so the new lines stay whole
            f.write("\n")
        for r in results:
            f.write(json.dumps({"strategy": label, **r}) + "\n")
        f.flush()
        os.fsync(f.fileno())


def simulate(run, learner, strategies, generations: int, seeds: int, console=None) -> dict:
    """Run every missing (strategy, seed) with a progress bar; returns all results by
    (strategy label, seed)."""
    from collapsekit.studies.progress import progress_bar

    ckpt = run.file("checkpoints/curves.jsonl")
    done = _checkpoint(ckpt)
    total = len(strategies) * seeds * generations
    with progress_bar(f"simulate {learner.name}", total, console) as tick:
        tick(sum(generations for s in strategies for i in range(seeds)
                 if (s.label, i) in done))
        for s in strategies:
            todo = [i for i in range(seeds) if (s.label, i) not in done]
            batches = [todo] if learner.batched else [[i] for i in todo]
            for batch in filter(None, batches):
                with run.timer(f"simulate {s.label}"):
                    results = run_lanes(learner, s, generations, batch, tick)
                _append(ckpt, results, s.label)
                done.update(((s.label, r["seed"]), {"strategy": s.label, **r})
                            for r in results)
    return done


def record(run, learner, strategies, generations: int, seeds: int, done: dict) -> dict:
    """Records (means, intervals, closed forms) and tables; returns the closed-form
    coverage: the fraction of generations whose closed form lies inside the simulated 95%
    interval (generations where every seed gave the same value are left out)."""
    coverage, rows = {}, {k: [] for k in ("strategy", "seed", "generation", "metric", "value")}
    for s in strategies:
        res = [done[(s.label, i)] for i in range(seeds)]
        closed = learner.closed_forms(s, generations)
        for metric in res[0]["curves"]:
            values = np.array([r["curves"][metric] for r in res], dtype=np.float64)
            section = "recursion data" if metric in _DATA_METRICS else "recursion"
            cis = [mean_ci(values[:, t]) for t in range(generations)]
            for t, (mean, lo, hi, _) in enumerate(cis, start=1):
                exact = {"closed_form": float(closed[metric][t - 1])} if metric in closed else {}
                run.add(metric, mean, section=section, strategy=s.label, generation=t,
                        source="simulation", ci_low=lo, ci_high=hi, **exact)
            if metric in res[0]["initial"]:
                mean, lo, hi, _ = mean_ci([r["initial"][metric] for r in res])
                run.add(metric, mean, section=section, strategy=s.label, generation=0,
                        source="simulation", ci_low=lo, ci_high=hi)
            rows["strategy"] += [s.label] * values.size
            rows["seed"] += np.repeat([r["seed"] for r in res], generations).tolist()
            rows["generation"] += np.tile(np.arange(1, generations + 1), len(res)).tolist()
            rows["metric"] += [metric] * values.size
            rows["value"] += values.ravel().tolist()
        for metric, curve in closed.items():
            cis = [mean_ci([r["curves"][metric][t] for r in res]) for t in range(generations)]
            for t, v in enumerate(curve, start=1):
                run.add(metric, float(v), section="recursion", strategy=s.label,
                        generation=t, source="closed_form")
            inside = [lo <= v <= hi for v, (_, lo, hi, _) in zip(curve, cis)
                      if lo is not None and lo < hi]  # zero-width intervals say nothing
            coverage.setdefault(s.label, {})[metric] = float(np.mean(inside)) if inside \
                else None
        for metric in res[0]["summary"]:
            mean, lo, hi, k = mean_ci([r["summary"][metric] for r in res])
            run.add(metric, mean, section="recursion summary", strategy=s.label,
                    source="simulation", ci_low=lo, ci_high=hi,
                    note=f"{k} of {seeds} seeds reached it within {generations} generations")
        for metric, v in learner.summary_closed_forms(s).items():
            run.add(metric, v, section="recursion summary", strategy=s.label,
                    source="closed_form")
    run.table("curves", rows)
    first = [{"strategy": s.label, "generation": t, "born": b, "rows": c}
             for s in strategies for t, hist in enumerate(done[(s.label, 0)]["ages"], start=1)
             for b, c in enumerate(hist) if c]
    run.table("provenance", first)
    return coverage


def _pct(v) -> str:
    return "n/a" if v is None else f"{v:.0%}"


def _num(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def _print_closed_forms(run, learner, strategies, generations, coverage, console) -> None:
    from rich.table import Table

    table = Table(title="simulated mean [95% CI] vs closed form", show_lines=False)
    for col in ("strategy", "metric", "generation", "simulated", "closed form", "coverage"):
        table.add_column(col)
    recs = {(r["metric"], r["strategy"], r.get("generation"), r.get("source")): r
            for r in run.records}
    for s in strategies:
        for metric in learner.closed_forms(s, generations):
            for t in sorted({1, max(1, generations // 2), generations}):
                sim, cf = recs[(metric, s.label, t, "simulation")], recs[
                    (metric, s.label, t, "closed_form")]
                ci = (f" [{sim['ci_low']:.4g}, {sim['ci_high']:.4g}]"
                      if sim.get("ci_low") is not None else "")
                table.add_row(s.label, metric, str(t), f"{sim['value']:.4g}{ci}",
                              f"{cf['value']:.4g}", _pct(coverage[s.label][metric]))
        for metric, v in learner.summary_closed_forms(s).items():
            sim = recs[(metric, s.label, None, "simulation")]
            ci = (f" [{sim['ci_low']:.4g}, {sim['ci_high']:.4g}]"
                  if sim.get("ci_low") is not None else "")
            table.add_row(s.label, metric, "-", f"{_num(sim['value'])}{ci}", f"{v:.4g}", "")
    if table.row_count:
        console.print(table)


def run_simulate(out, *, learner: str | None, strategies, generations: int | None,
                 seeds: int | None, params: dict[str, str] | None = None,
                 config_file: str | None = None, resume=False, force=False,
                 console=None) -> Path:
    """``collapsekit simulate``: validate, simulate (resumable), record, render; returns
    the path of index.html. ``strategies``: list or comma-separated string of specs;
    ``params``: learner parameters as ``--param k=v`` strings. Arguments left None are
    taken from ``config_file`` (TOML/YAML), explicit ones override it."""
    from rich.console import Console

    from collapsekit.report.html import render
    from collapsekit.results import Run

    console = console or Console(stderr=True)
    lrn, strats, gens, n_seeds, config = plan(
        learner=learner, strategies=strategies, generations=generations, seeds=seeds,
        params=params, config_file=config_file)
    run = Run(out, study="simulate", config=config, resume=resume, force=force)
    try:
        run.meta(seeds={"seeds": list(range(n_seeds)), "streams": "numpy SeedSequence(seed, "
                        "spawn_key=(generation,))"},
                 learner={"name": lrn.name, "doc": lrn.doc, **lrn.describe()},
                 interval="95% Student-t over seeds")
        model = run.to_dict()["learner"].get("model")
        if isinstance(model, dict):
            run.meta(model=model)
        run.write()
        done = simulate(run, lrn, strats, gens, n_seeds, console)
        coverage = record(run, lrn, strats, gens, n_seeds, done)
        run.meta(closed_form_coverage=coverage)
        _print_closed_forms(run, lrn, strats, gens, coverage, console)
        run.finish()
    finally:
        lrn.close()
    return render(run.path)
