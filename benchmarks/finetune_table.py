"""The measured table of docs/finetune.md from a ``collapsekit finetune`` run folder.

    python benchmarks/finetune_table.py RUN_DIR            # print the Markdown
    python benchmarks/finetune_table.py RUN_DIR --write    # replace it in docs/finetune.md

Per strategy and generation: held-out perplexity, RankMe at the last layer (final norm) of
the probe batch, policy entropy (nats/token) and distinct-2 of the generation's samples;
then the run's settings and the stage's wall time from metrics.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from collapsekit.studies.finetune import generation_rows

DOC = Path(__file__).resolve().parents[1] / "docs" / "finetune.md"
BEGIN, END = "<!-- finetune-table:begin -->", "<!-- finetune-table:end -->"
COLUMNS = (("perplexity", "held-out perplexity", "{:.2f}"),
           ("rankme_last_layer", "RankMe (last layer)", "{:.1f}"),
           ("policy_entropy", "policy entropy (nats)", "{:.3f}"),
           ("distinct_2", "distinct-2", "{:.3f}"),
           ("train_loss", "train loss (nats)", "{:.3f}"))


def _fmt(fmt: str, v) -> str:
    return "–" if v is None else fmt.format(v)


def table(run_dir) -> str:
    data = json.loads((Path(run_dir) / "metrics.json").read_text())
    rows = generation_rows(data["records"])
    cfg = data["config"]
    lines = ["| strategy | generation | " + " | ".join(c[1] for c in COLUMNS) + " |",
             "|---|---|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append(f"| {r['strategy']} | {r['generation']} | "
                     + " | ".join(_fmt(f, r.get(k)) for k, _, f in COLUMNS) + " |")
    keys = ("strategies", "generations", "steps", "lr", "batch_size", "n_samples",
            "max_new_tokens", "prompt_tokens", "max_length", "train_blocks", "mix", "human",
            "n_real", "n_heldout", "n_probe")
    timings = data.get("timings", {})
    model = data.get("model", {})
    lines += ["", f"Model `{cfg.get('model')}` ({model.get('n_layers')} layers), seed "
              f"{cfg.get('seed')}, quick={cfg.get('quick')}: "
              + ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                          for k, v in cfg.items() if k in keys) + ".",
              f"Wall time of the study stage: {timings.get('finetune', float('nan')):.0f} s "
              f"(model load {timings.get('load_model', float('nan')):.0f} s; "
              + ", ".join(f"{k[len('finetune '):]} {v:.0f} s" for k, v in timings.items()
                          if k.startswith("finetune ")) + ")."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_dir")
    ap.add_argument("--write", action="store_true", help=f"replace the table in {DOC}")
    args = ap.parse_args()
    text = table(args.run_dir)
    if not args.write:
        print(text)
        return
    doc = DOC.read_text()
    head, _, rest = doc.partition(BEGIN)
    _, _, tail = rest.partition(END)
    DOC.write_text(f"{head}{BEGIN}\n{text}\n{END}{tail}")
    print(f"wrote {DOC}")


if __name__ == "__main__":
    main()
