"""``collapsekit compare RUN_A RUN_B [RUN_C ...]``: results folders side by side.

- Every record of every run is copied with a ``run`` scope field (the model spec, or the
  folder name when the specs agree), so the report draws all runs' curves in one plot
  (e.g. RankMe by layer of a base and an instruct checkpoint).
- Records with the same metric and scope in two runs are matched into the table
  ``differences`` (a, b, b − a, (b − a)/|a|), largest relative change first; with more
  than two runs, records present in at least two runs go to the table ``comparison`` (one
  column per run, min, max and (max − min)/|mean|), largest relative spread first.
- When runs hold samples of the same prompts (``scan``, ``diversity``), the cross-model
  homogeneity of Artificial Hivemind (Jiang et al. 2025): per prompt shared by all runs,
  the mean cosine between two models' sample embeddings against each model's own mean
  pairwise cosine (section "homogeneity"); cross ≈ within means the models answer alike.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..io import read_samples
from ..results import ANNOTATIONS, Run, load_run

_NOT_MATCHED = {"metric", "value", "study", "run", *ANNOTATIONS}


def run_labels(a: dict, b: dict, path_a: Path, path_b: Path) -> tuple[str, str]:
    """Model specs when they differ, else folder names, else "A" and "B"."""
    for la, lb in (((a.get("model") or {}).get("spec"), (b.get("model") or {}).get("spec")),
                   (path_a.resolve().name, path_b.resolve().name)):
        if la and lb and la != lb:
            return str(la), str(lb)
    return "A", "B"


def labels_of(datas: list[dict], paths: list[Path]) -> list[str]:
    """Labels of several runs: model specs when all differ, else folder names, else
    run1, run2, ... (two runs: :func:`run_labels`)."""
    if len(datas) == 2:
        return list(run_labels(*datas, *paths))
    for labels in ([(d.get("model") or {}).get("spec") for d in datas],
                   [p.resolve().name for p in paths]):
        if all(labels) and len(set(labels)) == len(labels):
            return [str(x) for x in labels]
    return [f"run{i}" for i in range(1, len(datas) + 1)]


def _scope(rec: dict) -> tuple:
    return (rec["metric"],) + tuple(sorted((k, json.dumps(v)) for k, v in rec.items()
                                           if k not in _NOT_MATCHED))


def differences(recs_a: list[dict], recs_b: list[dict]) -> list[dict]:
    """Rows {metric, scope, a, b, diff, rel_diff} for records present in both runs with
    numbers, sorted by |rel_diff| (largest first; rel_diff is None when a = 0)."""
    index_b = {_scope(r): r for r in recs_b}
    rows = []
    for r in recs_a:
        other = index_b.get(_scope(r))
        va, vb = r.get("value"), (other or {}).get("value")
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (va, vb)):
            continue
        scope = {k: v for k, v in r.items() if k not in _NOT_MATCHED}
        rows.append({"metric": r["metric"], "scope": json.dumps(scope, sort_keys=True),
                     "a": va, "b": vb, "diff": vb - va,
                     "rel_diff": (vb - va) / abs(va) if va else None})
    rows.sort(key=lambda x: -abs(x["rel_diff"]) if x["rel_diff"] is not None else 0.0)
    return rows


def comparison(records: dict[str, list[dict]]) -> list[dict]:
    """Rows {metric, scope, <label>: value, ..., min, max, rel_spread} for each metric and
    scope with a finite number in at least two of the runs ``records`` (label → records),
    sorted by rel_spread = (max − min)/|mean| (largest first; None when the mean is 0)."""
    table: dict[tuple, dict] = {}
    for label, recs in records.items():
        for r in recs:
            v = r.get("value")
            if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v):
                table.setdefault(_scope(r), {"rec": r, "values": {}})["values"][label] = v
    rows = []
    for entry in table.values():
        vals = entry["values"]
        if len(vals) < 2:
            continue
        r, lo, hi = entry["rec"], min(vals.values()), max(vals.values())
        mean = sum(vals.values()) / len(vals)
        scope = {k: v for k, v in r.items() if k not in _NOT_MATCHED}
        rows.append({"metric": r["metric"], "scope": json.dumps(scope, sort_keys=True),
                     **{label: vals.get(label) for label in records}, "min": lo, "max": hi,
                     "rel_spread": (hi - lo) / abs(mean) if mean else None})
    rows.sort(key=lambda x: -x["rel_spread"] if x["rel_spread"] is not None else 0.0)
    return rows


def _samples_by_prompt(run_dir: Path, data: dict) -> dict[str, list[str]]:
    """Sample texts of a run grouped by prompt text ({} when the run holds no samples)."""
    file = run_dir / data.get("samples_file", "samples.jsonl")
    return read_samples(file, by="prompt") if file.is_file() else {}


def homogeneity_stage(run, samples: dict[str, dict[str, list[str]]], *, seed: int = 0,
                      embedder=None) -> int:
    """Cross-model homogeneity records over the prompts every run sampled (≥ 2 samples
    each; ``samples``: label → prompt → texts); returns the number of shared prompts."""
    from .diversity import homogeneity, record_homogeneity

    if embedder is None:
        from ..models.embedders import embed as embedder
    labels = list(samples)
    shared = [p for p in samples[labels[0]]
              if all(len(samples[m].get(p, ())) >= 2 for m in labels)]
    if not shared:
        return 0
    groups = {m: {p: samples[m][p] for p in shared} for m in labels}
    texts = [t for m in labels for p in shared for t in groups[m][p]]
    emb = np.asarray(embedder(texts), dtype=np.float64)
    embs, start = {}, 0
    for m in labels:
        n = sum(len(g) for g in groups[m].values())
        embs[m], start = emb[start:start + n], start + n
    rows = homogeneity(embs, groups)
    ids = {p: i for i, p in enumerate(shared)}
    for r in rows:
        run.add("hivemind_similarity", r["value"], section="homogeneity",
                prompt_id=ids[r["prompt_id"]], row=r["row"], col=r["col"])
    record_homogeneity(run, rows, labels, seed=seed)
    run.table("homogeneity", [{**r, "prompt": r["prompt_id"]} for r in rows])
    return len(shared)


def run_compare(run_a, run_b, out, *, seed: int = 0, force: bool = False, embedder=None,
                console=None) -> Path:
    """Compare two results folders into ``out`` (see the module docstring); returns the
    path of ``index.html``."""
    return run_compare_many([run_a, run_b], out, seed=seed, force=force, embedder=embedder,
                            console=console)


def compare_into(run: Run, paths: list[Path], datas: list[dict], labels: list[str], *,
                 fields: list[dict] | None = None, seed: int = 0, embedder=None,
                 console=None) -> None:
    """Write the comparison of the runs ``datas`` (loaded from ``paths``) into ``run``;
    ``fields[i]`` (e.g. a sweep run's settings) are added to the records of run i."""
    for i, (label, data) in enumerate(zip(labels, datas)):
        run.add_many({**r, "run": label, **(fields[i] if fields else {})}
                     for r in data["records"])
    if len(datas) == 2:
        rows = differences(datas[0]["records"], datas[1]["records"])
        if rows:
            run.table("differences", rows)
    else:
        rows = comparison({lb: d["records"] for lb, d in zip(labels, datas)})
        if rows:
            run.table("comparison", rows)
    run.add("matched_records", len(rows), section="comparison")
    samples = {lb: _samples_by_prompt(p, d) for lb, p, d in zip(labels, paths, datas)}
    with run.timer("homogeneity"):
        shared = homogeneity_stage(run, samples, seed=seed, embedder=embedder)
    run.meta(shared_prompts=shared)
    if console is not None:
        console.print(f"{len(rows)} matched records; {shared} shared prompt(s) for homogeneity")
        for r in rows[:10] if len(datas) == 2 else ():
            console.print(f"  {r['metric']} {r['scope']}: {r['a']:.4g} → {r['b']:.4g}")


def run_compare_many(runs, out, *, seed: int = 0, force: bool = False, embedder=None,
                     console=None) -> Path:
    """Compare two or more results folders into ``out`` (see the module docstring);
    returns the path of ``index.html``."""
    from ..report.html import render

    paths = [Path(r) for r in runs]
    if len(paths) < 2:
        raise InputFileError(f"compare needs at least two results folders, got {len(paths)}")
    if Path(out).resolve() in {p.resolve() for p in paths}:
        raise InputFileError(f"--out {out} is one of the compared runs: choose another folder")
    if len({p.resolve() for p in paths}) < len(paths):
        raise InputFileError("a results folder is given twice: compare distinct runs")
    datas = [load_run(p) for p in paths]
    for p, d in zip(paths, datas):
        if not d["records"]:
            raise InputFileError(f"{p} holds no records yet: finish (or --resume) that run "
                                 "before comparing it")
    labels = labels_of(datas, paths)
    config = ({"run_a": str(paths[0].resolve()), "run_b": str(paths[1].resolve())}
              if len(paths) == 2 else {"runs": [str(p.resolve()) for p in paths]})
    run = Run(out, study="compare", config={**config, "labels": labels, "seed": seed},
              force=force)
    run.meta(compared={lb: {"study": d.get("study"), "model": d.get("model")}
                       for lb, d in zip(labels, datas)})
    compare_into(run, paths, datas, labels, seed=seed, embedder=embedder, console=console)
    run.finish()
    return render(run.path)
