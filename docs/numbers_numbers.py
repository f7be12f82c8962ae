"""Regenerate the measured numbers of docs/numbers.md (the block between the
``<!-- numbers:numbers -->`` markers): ``collapsekit numbers --quick`` on both embedded
models with seed 0.

    .venv/bin/python docs/numbers_numbers.py          # rewrites docs/numbers.md
    .venv/bin/python docs/numbers_numbers.py --print  # prints the block only
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from collapsekit.studies import run_study
from regenerate import replace_block  # docs/ is on the path of a docs script

DOC = Path(__file__).with_name("numbers.md")
MODELS = {"SmolLM2-135M-Instruct": "embedded:smollm2-135m-instruct",
          "Gemma-3-270M": "embedded:gemma3-270m"}


def measure(spec: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        run_study("numbers", Path(tmp) / "run", model=spec, quick=True, report=False)
        return json.loads((Path(tmp) / "run" / "metrics.json").read_text())


def pick(recs: list[dict], metric: str, **where) -> list[dict]:
    return [r for r in recs if r["metric"] == metric
            and all(r.get(k) == v for k, v in where.items())]


def one(recs, metric, **where) -> float:
    hits = pick(recs, metric, **where)
    if len(hits) != 1:
        raise SystemExit(f"{metric} {where}: {len(hits)} records, expected 1")
    return hits[0]["value"]


def curve(recs, metric, **where) -> list[float]:
    hits = sorted(pick(recs, metric, **where), key=lambda r: r["layer"])
    if not hits:
        raise SystemExit(f"{metric} {where}: no records")
    return [r["value"] for r in hits]


def middle_block(recs) -> int:
    return sorted({r["layer"] for r in pick(recs, "numbers_ablation_task_accuracy")})[1]


def rows(data: dict) -> list[tuple[str, str]]:
    recs = data["records"]
    f = "{:.2f}".format
    out = []
    for task in ("parity", "primality"):
        p = f"{task}_pressure"
        out += [
            (f"{task}: model task accuracy (balanced), plain / pressure",
             f"{f(one(recs, 'numbers_task_accuracy', context=task))} / "
             f"{f(one(recs, 'numbers_task_accuracy', context=p))}"),
            (f"{task}: answer-margin AUROC, plain / pressure",
             f"{f(one(recs, 'numbers_task_auroc', context=task))} / "
             f"{f(one(recs, 'numbers_task_auroc', context=p))}"),
            (f"{task}: probe accuracy, mean over layers, {task} context / plain context",
             f"{f(mean(curve(recs, 'numbers_probe_accuracy', context=task)))} / "
             f"{f(mean(curve(recs, 'numbers_probe_accuracy', context='plain', classes=task)))}"),
            (f"{task}: peak divergence share of the spread, {task} / pressure / plain "
             f"(shuffled labels, same layer as the {task} peak)",
             " / ".join(f(max(curve(recs, "numbers_divergence_variance", context=c,
                                    classes=task))) for c in (task, p, "plain"))
             + f" ({f(null_at_peak(recs, task))})"),
            (f"{task}: pressure ratio (summary verdict)",
             f(one(recs, "numbers_pressure_divergence_ratio", context=p))),
            (f"{task}: peak distortion vs plain",
             f(max(curve(recs, "numbers_distortion", context=task)))),
            (f"{task}: three phases (rule in metrics.numbers.three_phases)",
             ("yes, " if one(recs, "numbers_three_phases", context=task) else "no, ")
             + pick(recs, "numbers_three_phases", context=task)[0]["note"].split(":")[0]),
        ]
        mid = middle_block(recs)
        for m, label in (("numbers_ablation_task_accuracy", "task accuracy"),
                         ("numbers_ablation_probe_accuracy", "probe accuracy")):
            vals = [one(recs, m, context=task, layer=mid, ablation=a)
                    for a in ("none", "divergence", "random")]
            out.append((f"{task}: {label} at the middle ablated block, clean / divergence "
                        "erased / random erased", f"block {mid}: " + " / ".join(map(f, vals))))
    t = data["timings"]
    out.append(("wall time of the stage + model load (s)",
                f"{t['numbers']:.0f} + {t['load_model']:.0f}"))
    return out


def null_at_peak(recs, task: str) -> float:
    div = pick(recs, "numbers_divergence_variance", context=task)
    top = max(div, key=lambda r: r["value"])["layer"]
    return one(recs, "numbers_divergence_variance_null", context=task, layer=top)


def mean(v: list[float]) -> float:
    return sum(v) / len(v)


def block() -> str:
    cols = {name: dict(rows(measure(spec))) for name, spec in MODELS.items()}
    labels = list(next(iter(cols.values())))
    lines = ["| quantity | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {lab} | " + " | ".join(c[lab] for c in cols.values()) + " |"
              for lab in labels]
    return "\n".join(lines)


def main() -> None:
    text = block()
    if "--print" in sys.argv:
        print(text)
        return
    replace_block(DOC, "numbers", text)
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
