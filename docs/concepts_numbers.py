"""Regenerate the measured numbers of docs/concepts.md: ``collapsekit concepts`` at its full
settings on both embedded models, on the input embeddings and at a middle block (seed 0),
and the wall time of ``collapsekit concepts --quick`` on 2 threads. Writes
docs/concepts_numbers.json (the prose marks its numbers with it) and rewrites the table
between the ``<!-- numbers:concepts -->`` markers. Run by ``make docs-numbers``.

    .venv/bin/python docs/concepts_numbers.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from collapsekit.studies import run_study
from regenerate import replace_block  # docs/ is on the path of a docs script

DOCS = Path(__file__).resolve().parent
DOC, OUT = DOCS / "concepts.md", DOCS / "concepts_numbers.json"
MODELS = {"smollm2": ("SmolLM2-135M-Instruct", "embedded:smollm2-135m-instruct", 15),
          "gemma3": ("Gemma-3-270M", "embedded:gemma3-270m", 9)}  # middle of 30 / 18 blocks
ROWS = {"rate_human": ("rate I(X;C), human categories (bits)", "concept_rate",
                       {"partition": "human"}),
        "rate_k10": ("rate, k-means k=10 (bits)", "concept_rate",
                     {"partition": "kmeans", "k": 10}),
        "distortion_human": ("distortion, human categories", "concept_distortion",
                             {"partition": "human"}),
        "distortion_k10": ("distortion, k-means k=10", "concept_distortion",
                           {"partition": "kmeans", "k": 10}),
        "L_human": ("L = rate + distortion (β=1), human", "concept_ib_objective",
                    {"partition": "human"}),
        "L_k10": ("L (β=1), k-means k=10", "concept_ib_objective",
                  {"partition": "kmeans", "k": 10}),
        "gap_k10": ("L(human) − L(k-means), k=10", "concept_ib_gap", {}),
        "ami_k5": ("AMI with human categories, k=5", "concept_ami", {"k": 5}),
        "ami_k10": ("AMI with human categories, k=10", "concept_ami", {"k": 10}),
        "ami_k20": ("AMI with human categories, k=20", "concept_ami", {"k": 20}),
        "split_items": ("items split into several tokens", "concept_split_items", {})}


def measure(spec: str, layer: int | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        params = {} if layer is None else {"layer": layer}
        run_study("concepts", Path(tmp) / "run", model=spec, params=params, report=False)
        recs = json.loads((Path(tmp) / "run" / "metrics.json").read_text())["records"]
    out = {}
    for key, (_, metric, where) in ROWS.items():
        hits = [r["value"] for r in recs if r["metric"] == metric
                and all(r.get(k) == v for k, v in where.items())]
        if len(hits) != 1:
            raise SystemExit(f"{metric} {where}: {len(hits)} records, expected 1")
        out[key] = hits[0]
    return out


def quick_wall(spec: str) -> float:
    """Seconds of ``collapsekit concepts --quick`` in a fresh process on 2 threads."""
    exe = Path(sys.executable).with_name("collapsekit")
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([str(exe), "concepts", "--quick", "--model", spec, "--out",
                        str(Path(tmp) / "q")], check=True, capture_output=True,
                       env={**os.environ, "OMP_NUM_THREADS": "2"})
        return round(time.perf_counter() - t0, 1)


def table(data: dict) -> str:
    cols = [(m, part) for m in MODELS for part in ("input_embeddings", "block")]
    head = [f"{MODELS[m][0]}, " + ("input embeddings" if p == "input_embeddings"
                                   else f"block {MODELS[m][2]}") for m, p in cols]
    lines = ["| metric | " + " | ".join(head) + " |", "|---" * (len(cols) + 1) + "|"]
    lines += [f"| {label} | " + " | ".join(f"{data[m][p][key]:.3f}" for m, p in cols) + " |"
              for key, (label, _, _) in ROWS.items()]
    return "\n".join(lines)


def main() -> None:
    data = {m: {"input_embeddings": measure(spec, None), "block": measure(spec, block),
                "block_index": block, "quick_wall_s": quick_wall(spec)}
            for m, (_, spec, block) in MODELS.items()}
    OUT.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    replace_block(DOC, "concepts", table(data))
    print(f"wrote {OUT} and the table of {DOC}")


if __name__ == "__main__":
    main()
