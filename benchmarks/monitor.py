"""Benchmark: cost of the training monitor (``collapsekit.monitor.Monitor.step``) at
``every_n_steps`` = 50, relative to the training step it rides on.

For each model — a tiny random llama (conftest-sized, 3 blocks, d=32) and the embedded
SmolLM2-135M-Instruct — one process times, side by side and alternating: a plain training
step (forward + backward + AdamW step on a batch of short human texts) and one
``Monitor.step`` with its defaults (8 probe texts, 4 prompts × k=4 answers of 16 tokens,
every capture point). Reported: median step time, median monitor time, and the overhead

    ratio = monitor time / (every_n_steps × step time)       (target ≤ 5%)

and which part of the monitor dominates (geometry + attention on the probe texts, or the
sampled answers with their diversity and policy entropy).

    python benchmarks/monitor.py                 # both models
    python benchmarks/monitor.py --tiny          # the tiny model only (no weights needed)
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from collapsekit.corpora import human_texts
from collapsekit.monitor import Monitor


def tiny():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from conftest import make_model, make_tokenizer

    return make_model(), make_tokenizer(), "tiny random llama (3 blocks, d=32)"


def smollm():
    from collapsekit.models.registry import load_model

    lm = load_model("embedded:smollm2-135m-instruct")
    return lm.model, lm.tokenizer, "SmolLM2-135M-Instruct (fp32)"


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(model, tok, name, *, every: int, batch_size: int, max_length: int, reps: int):
    texts = human_texts("news", 64)
    enc = tok(texts[:batch_size], padding=True, truncation=True, max_length=max_length,
              return_tensors="pt")
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)

    def train_step():
        loss = model(**enc, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    monitor = Monitor(model, tok)
    parts = {"geometry+attention": monitor._geometry, "generation": monitor._generation}
    train_step()  # warm-up of both
    monitor.step(0)
    steps, mons, split = [], [], {k: [] for k in parts}
    for _ in range(reps):
        steps += [timed(train_step) for _ in range(3)]
        mons.append(timed(lambda: monitor.step(1)))
        model.eval()
        with torch.no_grad():
            for key, fn in parts.items():
                split[key].append(timed(fn))
        model.train()
    step_s, mon_s = statistics.median(steps), statistics.median(mons)
    ratio = mon_s / (every * step_s)
    top = max(split, key=lambda k: statistics.median(split[k]))
    print(f"{name}: train step {step_s * 1e3:.1f} ms (batch {batch_size} × ≤{max_length} "
          f"tokens), monitor.step {mon_s * 1e3:.1f} ms "
          f"({', '.join(f'{k} {statistics.median(v) * 1e3:.0f} ms' for k, v in split.items())})"
          f"; overhead at every_n_steps={every}: {ratio:.1%} "
          f"({'within' if ratio <= 0.05 else 'above'} the 5% target; dominated by {top})")
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="only the tiny random llama")
    ap.add_argument("--every", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=128)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"torch threads: {torch.get_num_threads()}, device: cpu")
    for load in (tiny,) if args.tiny else (tiny, smollm):
        model, tok, name = load()
        bench(model, tok, name, every=args.every, batch_size=args.batch_size,
              max_length=args.max_length, reps=args.reps)


if __name__ == "__main__":
    main()
