"""Benchmark: collapsekit's own sampling loop (``models.sampling.sample``: content-keyed
uniforms, shared prompt prefill, KV cache) against ``transformers``' ``generate`` on the same
batch, side by side in one run, and the machine's limit for that batch.

The same P bundled prompts (chat template, left-padded) × k samples × T new tokens, pure
sampling (temperature 1, no top-k/top-p), for
  own/eager, own/sdpa:  ``sample()`` with the model's attention set to eager / sdpa,
  generate/eager, generate/sdpa: ``model.generate(do_sample=True, num_return_sequences=k)``.
  own-before/sdpa: the own loop with the whole-row sort and the concatenating KV cache it
  had before (``decoding.TOP`` and ``kvcache.preallocate`` switched off; same tokens).
Each configuration runs ``--repeats`` times, rotating the order, after one warm-up; the
cost per token is the best wall time / (rows × decode steps actually run), so early stops
do not favour either side. Ratios are own / generate (< 1: the own loop is faster).

Limit: every matrix product of one decode step (each ``nn.Linear`` weight, the LM head
included) timed alone at M = rows, giving the matmul GFLOP/s at this batch size and the
decode step time that matmuls alone would need.

    python benchmarks/sampling.py                          # SmolLM2, 4 prompts x 4 x 24, 1 thread
    python benchmarks/sampling.py --prompts 4 --k 8 --tokens 40 --threads 2
"""

from __future__ import annotations

import argparse
import time

import torch

from collapsekit.io import read_prompts
from collapsekit.models.decoding import Decoding
from collapsekit.models.registry import load_model
from collapsekit.models.sampling import sample
from collapsekit.models.scoring import chat_context


def own(lm, prompts, k, tokens, seed):
    out = sample(lm.model, lm.tokenizer, prompts, k=k, decoding=Decoding(max_new_tokens=tokens),
                 seed=seed, model_key=lm.spec, batch_size=len(prompts) * k)
    return max(len(s.token_ids) for s in out)


def own_before(lm, prompts, k, tokens, seed):
    """:func:`own` as it was before the in-place KV cache and the top-``TOP`` draw: every
    row sorted whole, the cache concatenated at each step (same tokens)."""
    from collapsekit.models import decoding, kvcache

    top, prealloc = decoding.TOP, kvcache.preallocate
    decoding.TOP, kvcache.preallocate = 10 ** 9, lambda cache, capacity: cache
    try:
        return own(lm, prompts, k, tokens, seed)
    finally:
        decoding.TOP, kvcache.preallocate = top, prealloc


def generate(lm, prompts, k, tokens, seed):
    tok, model = lm.tokenizer, lm.model
    ids = [chat_context(tok, [{"role": "user", "content": p}]) for p in prompts]
    width = max(map(len, ids))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    inp = torch.tensor([[pad] * (width - len(x)) + x for x in ids])
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids])
    torch.manual_seed(seed)
    with torch.inference_mode():
        out = model.generate(input_ids=inp, attention_mask=mask, do_sample=True,
                             temperature=1.0, top_k=0, top_p=1.0, max_new_tokens=tokens,
                             num_return_sequences=k, pad_token_id=pad)
    return out.shape[1] - width


def matmul_limit(model, rows, repeats=5):
    """(GFLOP per decode step, seconds of its matmuls alone) at M = rows."""
    flops, secs = 0.0, 0.0
    with torch.inference_mode():
        for mod in model.modules():
            if isinstance(mod, torch.nn.Linear):
                w = mod.weight
                x = torch.randn(rows, w.shape[1], dtype=w.dtype)
                torch.nn.functional.linear(x, w)
                best = float("inf")
                for _ in range(repeats):
                    t0 = time.perf_counter()
                    torch.nn.functional.linear(x, w)
                    best = min(best, time.perf_counter() - t0)
                flops += 2.0 * rows * w.shape[0] * w.shape[1]
                secs += best
    return flops / 1e9, secs


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="embedded:smollm2-135m-instruct")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lm = load_model(a.model)
    prompts = read_prompts()[:a.prompts]
    rows = a.prompts * a.k
    configs = [("own", "eager", own), ("own", "sdpa", own), ("own-before", "sdpa", own_before),
               ("generate", "eager", generate), ("generate", "sdpa", generate)]
    best = {}
    for rep in range(a.repeats + 1):  # rep 0: warm-up
        for j in range(len(configs)):
            name, impl, fn = configs[(j + rep) % len(configs)]
            lm.model.set_attn_implementation(impl)
            t0 = time.perf_counter()
            steps = fn(lm, prompts, a.k, a.tokens, seed=rep)
            per = (time.perf_counter() - t0) / (rows * steps)
            if rep:
                best[name, impl] = min(best.get((name, impl), float("inf")), per)
    gflop, secs = matmul_limit(lm.model, rows)
    print(f"{a.model}: {a.prompts} prompts x k={a.k} x {a.tokens} tokens ({rows} rows), "
          f"{a.threads} thread(s), best of {a.repeats}; ms per token (row x step):")
    for (name, impl), per in best.items():
        print(f"  {name:9s} {impl:6s} {per * 1e3:7.2f} ms")
    for impl in ("eager", "sdpa"):
        print(f"  own/generate ({impl}): {best['own', impl] / best['generate', impl]:.2f}x "
              "its time")
    print(f"  own/own-before (sdpa): {best['own', 'sdpa'] / best['own-before', 'sdpa']:.2f}x "
          "its time (in-place KV cache, top-TOP draw)")
    fastest = min(best["own", "eager"], best["own", "sdpa"])
    print(f"  own (faster attention) / generate (faster attention): "
          f"{fastest / min(best['generate', 'eager'], best['generate', 'sdpa']):.2f}x")
    print(f"limit: the decode step's matmuls at M={rows}: {gflop:.1f} GFLOP in "
          f"{secs * 1e3:.1f} ms = {gflop / secs:.0f} GFLOP/s, i.e. {secs / rows * 1e3:.2f} ms "
          f"per token; the own loop reaches {secs / rows / fastest:.0%} of it")


if __name__ == "__main__":
    main()
