"""``collapsekit compare RUN_A RUN_B``: two results folders side by side.

- Every record of both runs is copied with a ``run`` scope field (the model spec, or the
  folder name when the specs agree), so the report draws both runs' curves in one plot
  (e.g. RankMe by layer of a base and an instruct checkpoint).
- Records with the same metric and scope in both runs are matched into the table
  ``differences`` (a, b, b − a, (b − a)/|a|), largest relative change first.
- When both runs hold samples of the same prompts (``scan``, ``diversity``), the
  cross-model homogeneity of Artificial Hivemind (Jiang et al. 2025): per shared prompt, the
  mean cosine between the two models' sample embeddings against each model's own mean
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
from ..stats.bootstrap import bootstrap_mean_ci

_NOT_MATCHED = {"metric", "value", "study", "run", *ANNOTATIONS}


def run_labels(a: dict, b: dict, path_a: Path, path_b: Path) -> tuple[str, str]:
    """Model specs when they differ, else folder names, else "A" and "B"."""
    for la, lb in (((a.get("model") or {}).get("spec"), (b.get("model") or {}).get("spec")),
                   (path_a.resolve().name, path_b.resolve().name)):
        if la and lb and la != lb:
            return str(la), str(lb)
    return "A", "B"


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


def _samples_by_prompt(run_dir: Path, data: dict) -> dict[str, list[str]]:
    """Sample texts of a run grouped by prompt text ({} when the run holds no samples)."""
    file = run_dir / data.get("samples_file", "samples.jsonl")
    return read_samples(file, by="prompt") if file.is_file() else {}


def homogeneity_stage(run, samples: dict[str, dict[str, list[str]]], *, seed: int = 0,
                      embedder=None) -> int:
    """Cross-model homogeneity records over the prompts both runs sampled (≥ 2 samples
    each); returns the number of shared prompts."""
    from .diversity import homogeneity

    if embedder is None:
        from ..models.embedders import embed as embedder
    la, lb = samples
    shared = [p for p in samples[la] if p in samples[lb]
              and min(len(samples[la][p]), len(samples[lb][p])) >= 2]
    if not shared:
        return 0
    groups = {m: {p: samples[m][p] for p in shared} for m in (la, lb)}
    texts = [t for m in (la, lb) for p in shared for t in groups[m][p]]
    emb = np.asarray(embedder(texts), dtype=np.float64)
    n_a = sum(len(groups[la][p]) for p in shared)
    rows = homogeneity({la: emb[:n_a], lb: emb[n_a:]}, groups)
    ids = {p: i for i, p in enumerate(shared)}
    for r in rows:
        run.add("hivemind_similarity", r["value"], section="homogeneity",
                prompt_id=ids[r["prompt_id"]], row=r["row"], col=r["col"])
    for a, b, name in ((la, lb, "cross_model_cosine"), (la, la, "within_model_cosine"),
                       (lb, lb, "within_model_cosine")):
        vals = [r["value"] for r in rows if (r["row"], r["col"]) == (a, b)]
        mean, lo, hi = bootstrap_mean_ci(vals, seed=seed)
        scope = {"model": a} if a == b else {"model_a": a, "model_b": b}
        run.add(name, mean, ci_low=lo, ci_high=hi, section="homogeneity",
                n_prompts=len(shared), **scope)
    run.table("homogeneity", [{**r, "prompt": r["prompt_id"]} for r in rows])
    return len(shared)


def run_compare(run_a, run_b, out, *, seed: int = 0, force: bool = False, embedder=None,
                console=None) -> Path:
    """Compare two results folders into ``out`` (see the module docstring); returns the
    path of ``index.html``."""
    from ..report.html import render

    path_a, path_b = Path(run_a), Path(run_b)
    a, b = load_run(path_a), load_run(path_b)
    if not a["records"] or not b["records"]:
        empty = path_a if not a["records"] else path_b
        raise InputFileError(f"{empty} holds no records yet: finish (or --resume) that run "
                             "before comparing it")
    la, lb = run_labels(a, b, path_a, path_b)
    config = {"run_a": str(path_a.resolve()), "run_b": str(path_b.resolve()),
              "labels": [la, lb], "seed": seed}
    if Path(out).resolve() in (path_a.resolve(), path_b.resolve()):
        raise InputFileError(f"--out {out} is one of the compared runs: choose another folder")
    run = Run(out, study="compare", config=config, force=force)
    run.meta(compared={la: {"study": a.get("study"), "model": a.get("model")},
                       lb: {"study": b.get("study"), "model": b.get("model")}})
    for label, data in ((la, a), (lb, b)):
        run.add_many({**r, "run": label} for r in data["records"])
    rows = differences(a["records"], b["records"])
    if rows:
        run.table("differences", rows)
    run.add("matched_records", len(rows), section="comparison")
    samples = {la: _samples_by_prompt(path_a, a), lb: _samples_by_prompt(path_b, b)}
    with run.timer("homogeneity"):
        shared = homogeneity_stage(run, samples, seed=seed, embedder=embedder)
    run.meta(shared_prompts=shared)
    if console is not None:
        console.print(f"{len(rows)} matched records; {shared} shared prompt(s) for homogeneity")
        for r in rows[:10]:
            console.print(f"  {r['metric']} {r['scope']}: {r['a']:.4g} → {r['b']:.4g}")
    run.finish()
    return render(run.path)
