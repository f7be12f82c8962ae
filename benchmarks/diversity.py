"""Diversity benchmark on real text: self-BLEU vs NLTK's loop and ROUGE-L homogenization vs
rouge_score pairs (from ``diversity_lexical``), plus the Vendi score from the d×d dual vs the
n×n eigendecomposition of the cosine kernel (Friedman & Dieng 2023), on sentence embeddings
of the same texts. Same values, speedups printed. Not a timed test.

    python benchmarks/diversity.py --n 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import diversity_lexical as lex  # noqa: E402

from collapsekit.metrics import vendi_score  # noqa: E402


def vendi_nxn(x: np.ndarray, q: float = 1.0) -> float:
    """Reference: eigenvalues of the n×n cosine kernel / n, exp of the Rényi entropy."""
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    lam = np.clip(np.linalg.eigvalsh(u @ u.T / len(u)), 0, None)
    lam = lam[lam > 0]
    if q == 1:
        return float(np.exp(-(lam * np.log(lam)).sum()))
    return float(np.exp(np.log((lam ** q).sum()) / (1 - q)))


def bench_vendi(texts: list[str]) -> None:
    from collapsekit.models.embedders import embed

    x = embed(texts).astype(np.float64)
    for q in (1.0, 2.0, 0.5):
        t0 = time.perf_counter()
        fast = vendi_score(x, q=q)
        t1 = time.perf_counter()
        ref = vendi_nxn(x, q)
        t2 = time.perf_counter()
        print(f"vendi q={q}: dual {fast:.10g} ({t1 - t0:.3f} s)  n×n {ref:.10g} "
              f"({t2 - t1:.3f} s)  |diff| {abs(fast - ref):.2e}  speedup "
              f"{(t2 - t1) / max(t1 - t0, 1e-9):.1f}x  (n={len(x)}, d={x.shape[1]})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="number of texts")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    texts = lex.passages(lex.kjv_verses(), args.n, 40, 120, np.random.default_rng(args.seed))
    sys.argv = [sys.argv[0], "--n", str(args.n)]
    lex.main()
    bench_vendi(texts)


if __name__ == "__main__":
    main()
