"""Benchmark: ``score_continuations`` with each distinct context prefilled once and its KV
cache shared by the candidates (``share_context=True``, the default) against one forward
pass per context + candidate (``share_context=False``), side by side in one run, on the
scan's ambiguity scoring: the bundled items' turn-1 and turn-2 dialogues with their
candidates (``studies.probes.ambiguity.item_contexts``), batch size 16 as in the scan.

Each path runs ``--repeats`` times, alternating, after one warm-up; times are the best wall
time. Also printed: tokens fed through the model by each path, and the largest difference
of a candidate's log-probability between the two (float32 round-off).

    python benchmarks/scoring.py                 # SmolLM2-135M, 2 threads
"""

from __future__ import annotations

import argparse
import time

import torch

from collapsekit.models.registry import load_model
from collapsekit.models.scoring import score_continuations
from collapsekit.studies.probes.ambiguity import item_contexts, load_items


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    lm = load_model(args.model, device="cpu")
    contexts, cands = item_contexts(lm.tokenizer, load_items())
    rows = sum(map(len, cands))
    conts = [[len(lm.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in cs]
             for cs in cands]
    fed_plain = sum(len(x) * len(n) + sum(n) for x, n in zip(contexts, conts))
    fed_shared = sum(len(x) + sum(n) - len(n) for x, n in zip(contexts, conts))
    print(f"{args.model}: {len(contexts)} contexts, {rows} candidates, {args.threads} threads; "
          f"tokens fed: {fed_plain} one pass per row, {fed_shared} shared (unpadded)")
    score_continuations(lm.model, lm.tokenizer, contexts[:4], cands[:4])  # warm-up
    best = {True: float("inf"), False: float("inf")}
    out = {}
    for _ in range(args.repeats):
        for share in (False, True):
            t0 = time.perf_counter()
            out[share] = score_continuations(lm.model, lm.tokenizer, contexts, cands,
                                             batch_size=args.batch_size, share_context=share)
            best[share] = min(best[share], time.perf_counter() - t0)
    diff = max(abs(a.logprob - b.logprob) for ra, rb in zip(out[False], out[True])
               for a, b in zip(ra, rb))
    print(f"one pass per row: {best[False]:.2f} s   shared context: {best[True]:.2f} s   "
          f"ratio {best[True] / best[False]:.2f}x ({best[False] / best[True]:.1f}x faster)   "
          f"max |d logprob| {diff:.1e}")


if __name__ == "__main__":
    main()
