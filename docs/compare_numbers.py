"""Regenerate docs/compare_numbers.json: the README's `compare` numbers, from two quick
scans (``scan --quick --studies geometry,diversity``: 12 bundled prompts × k=4) of
SmolLM2-135M-Instruct and Gemma-3-270M compared with ``collapsekit compare``: cross-model
cosine (Artificial Hivemind) with its bootstrap interval, each model's within-model
cosine, and the number of matched records.

    .venv/bin/python docs/compare_numbers.py      # writes docs/compare_numbers.json
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from collapsekit.results import load_run
from collapsekit.studies import run_scan
from collapsekit.studies.compare import run_compare

MODELS = {"smollm2": "embedded:smollm2-135m-instruct", "gemma3": "embedded:gemma3-270m"}
OUT = Path(__file__).with_name("compare_numbers.json")


def main() -> None:
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_scan(Path(tmp) / name, model=spec, studies=["geometry", "diversity"],
                         quick=True, report=False).parent for name, spec in MODELS.items()]
        run_compare(runs[0], runs[1], Path(tmp) / "compare")
        recs = load_run(Path(tmp) / "compare")["records"]
    seconds = time.perf_counter() - t0
    one = {r["metric"]: r for r in recs if r["metric"] in ("cross_model_cosine",
                                                           "matched_records")}
    within = {r["model"]: r["value"] for r in recs if r["metric"] == "within_model_cosine"}
    cross = one["cross_model_cosine"]
    out = {"command": "scan --quick --studies geometry,diversity; compare",
           "cross_model_cosine": round(cross["value"], 4),
           "cross_model_ci": [round(cross["ci_low"], 4), round(cross["ci_high"], 4)],
           "within_model_cosine": {name: round(within[spec], 4)
                                   for name, spec in MODELS.items()},
           "n_prompts": cross["n_prompts"], "matched_records": int(one["matched_records"]["value"]),
           "seconds": round(seconds)}
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
