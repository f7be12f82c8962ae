"""Regenerate the measured numbers of docs/concepts.md (the block between the
``<!-- numbers:concepts -->`` markers): ``collapsekit concepts`` at its full settings on
both embedded models, on the input embeddings and at a middle block, with seed 0.

    .venv/bin/python docs/concepts_numbers.py          # rewrites docs/concepts.md
    .venv/bin/python docs/concepts_numbers.py --print  # prints the block only
"""

from __future__ import annotations

import json
import re
import sys
import tempfile
from pathlib import Path

from collapsekit.studies import run_study

DOC = Path(__file__).with_name("concepts.md")
MODELS = {"SmolLM2-135M-Instruct": ("embedded:smollm2-135m-instruct", 15),
          "Gemma-3-270M": ("embedded:gemma3-270m", 9)}  # (spec, middle block of 30 / 18)
ROWS = [("rate I(X;C), human categories (bits)", "concept_rate", {"partition": "human"}),
        ("rate, k-means k=10 (bits)", "concept_rate", {"partition": "kmeans", "k": 10}),
        ("distortion, human categories", "concept_distortion", {"partition": "human"}),
        ("distortion, k-means k=10", "concept_distortion", {"partition": "kmeans", "k": 10}),
        ("L = rate + distortion (β=1), human", "concept_ib_objective", {"partition": "human"}),
        ("L (β=1), k-means k=10", "concept_ib_objective", {"partition": "kmeans", "k": 10}),
        ("L(human) − L(k-means), k=10", "concept_ib_gap", {}),
        ("AMI with human categories, k=5", "concept_ami", {"k": 5}),
        ("AMI with human categories, k=10", "concept_ami", {"k": 10}),
        ("AMI with human categories, k=20", "concept_ami", {"k": 20}),
        ("items split into several tokens", "concept_split_items", {})]


def measure(spec: str, layer: int | None) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        params = {} if layer is None else {"layer": layer}
        run_study("concepts", Path(tmp) / "run", model=spec, params=params, report=False)
        return json.loads((Path(tmp) / "run" / "metrics.json").read_text())["records"]


def value(records: list[dict], metric: str, where: dict) -> str:
    hits = [r["value"] for r in records if r["metric"] == metric
            and all(r.get(k) == v for k, v in where.items())]
    if len(hits) != 1:
        raise SystemExit(f"{metric} {where}: {len(hits)} records, expected 1")
    return f"{hits[0]:.3f}"


def block() -> str:
    cols, runs = [], []
    for name, (spec, middle) in MODELS.items():
        for layer in (None, middle):
            cols.append(f"{name}, {'input embeddings' if layer is None else f'block {middle}'}")
            runs.append(measure(spec, layer))
    lines = ["| metric | " + " | ".join(cols) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(value(r, m, w) for r in runs) + " |"
              for label, m, w in ROWS]
    return "\n".join(lines)


def main() -> None:
    text = block()
    if "--print" in sys.argv:
        print(text)
        return
    doc = DOC.read_text(encoding="utf-8")
    new, n = re.subn(r"(<!-- numbers:concepts -->\n).*?(<!-- /numbers:concepts -->)",
                     lambda m: m.group(1) + text + "\n" + m.group(2), doc, flags=re.DOTALL)
    if n != 1:
        raise SystemExit(f"{DOC}: expected one <!-- numbers:concepts --> block, found {n}")
    DOC.write_text(new, encoding="utf-8")
    print(f"updated {DOC}")


if __name__ == "__main__":
    main()
