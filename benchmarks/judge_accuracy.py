"""Accuracy of the meaning judges on the bundled labelled pairs
(``collapsekit/data/judge_pairs.jsonl``: 16 paraphrase, 16 contradiction, 16 unrelated pairs
written for collapsekit). A judge is right on a pair when it calls a paraphrase "same
meaning" and a contradiction or an unrelated pair "different".

Rows: the cosine judge (all-MiniLM-L6-v2) at the diversity scan's threshold 0.9 and the
ambiguity probe's 0.6, the best single cosine threshold on these pairs (an oracle, fitted
on the test set), the LM judges on the embedded models, and ``nli`` on a tiny *random* BERT
(the all-MiniLM tokenizer, 1 layer, 16 dims): that row checks the NLI plumbing end to end
and its accuracy means nothing; a real NLI model (e.g. ``nli:microsoft/deberta-large-mnli``)
needs a download.

    python benchmarks/judge_accuracy.py [--out docs/judge_accuracy.json] [--lm smollm2,gemma3]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from importlib import resources
from pathlib import Path

import numpy as np

LABELS = ("paraphrase", "contradiction", "unrelated")


def load_pairs() -> list[dict]:
    text = resources.files("collapsekit.data").joinpath("judge_pairs.jsonl").read_text("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def score(pairs: list[dict], same: list[bool]) -> dict:
    """Accuracy overall and per label (share of that label's pairs judged right)."""
    right = [s == (p["label"] == "paraphrase") for p, s in zip(pairs, same)]
    out = {"accuracy": float(np.mean(right))}
    for lab in LABELS:
        out[lab] = float(np.mean([r for r, p in zip(right, pairs) if p["label"] == lab]))
    return out


def cosine_rows(pairs: list[dict]) -> list[dict]:
    from collapsekit.models.embedders import embed

    texts = list(dict.fromkeys(t for p in pairs for t in (p["a"], p["b"])))
    e = dict(zip(texts, embed(texts).astype(np.float64)))
    cos = np.array([e[p["a"]] @ e[p["b"]] / np.linalg.norm(e[p["a"]]) / np.linalg.norm(e[p["b"]])
                    for p in pairs])
    rows = [{"judge": f"cosine:{t:g}", **score(pairs, list(cos >= t))} for t in (0.9, 0.6)]
    best = max(np.unique(cos), key=lambda t: score(pairs, list(cos >= t))["accuracy"])
    rows.append({"judge": f"cosine:{best:.3f} (best on these pairs)",
                 **score(pairs, list(cos >= best))})
    return rows


def judge_row(name: str, judge, pairs: list[dict]) -> dict:
    t0 = time.perf_counter()
    verdicts = judge.pairs([(p["a"], p["b"]) for p in pairs])
    return {"judge": name, **score(pairs, [v[0] for v in verdicts]),
            "seconds": round(time.perf_counter() - t0, 1)}


def tiny_nli(folder: Path) -> Path:
    """A tiny random BERT NLI classifier with a real id2label, saved as safetensors."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from collapsekit.models.embedders import embedder_path

    torch.manual_seed(0)
    tok = AutoTokenizer.from_pretrained(embedder_path())
    id2label = {0: "contradiction", 1: "neutral", 2: "entailment"}
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, id2label=id2label,
                     label2id={v: k for k, v in id2label.items()})
    BertForSequenceClassification(cfg).save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/judge_accuracy.json")
    ap.add_argument("--lm", default="smollm2,gemma3", help="embedded models for lm: judges")
    args = ap.parse_args()
    from collapsekit.models.judges import make_judge

    pairs = load_pairs()
    rows = cosine_rows(pairs)
    for name in filter(None, args.lm.split(",")):
        rows.append(judge_row(f"lm:{name}", make_judge(f"lm:{name}", device="cpu"), pairs))
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_nli(Path(tmp) / "tiny-nli")
        row = judge_row("nli:<tiny random BERT>", make_judge(f"nli:{folder}", device="cpu"),
                        pairs)
    rows.append({**row, "note": "plumbing only: a random model; a real NLI model (e.g. "
                                "nli:microsoft/deberta-large-mnli) needs a download"})
    counts = {lab: sum(p["label"] == lab for p in pairs) for lab in LABELS}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"pairs": counts, "rows": rows}, indent=1) + "\n")
    print("| judge | accuracy | paraphrase | contradiction | unrelated |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['judge']}` | {r['accuracy']:.2f} | "
              + " | ".join(f"{r[lab]:.2f}" for lab in LABELS) + " |")


if __name__ == "__main__":
    main()
