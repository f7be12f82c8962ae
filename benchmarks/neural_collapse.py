"""Neural collapse at vocabulary scale: scatter vs one-hot-matmul class accumulation, and the
O(K·D²) NC2 forms (ETF error, pairwise-cosine mean/std) vs the K×K forms.

1. Accumulation, on the same Zipf-labelled float64 tokens: ``ClassMoments.update`` (sort +
   segment sum, O(B·D) per batch) against the approach of existing NC tooling (a B×K one-hot
   matrix times the batch, O(B·K·D)); both also feed the same global ``Moments``. The
   per-class counts, sums and squared norms must agree.
2. NC2 on K random class means: ``etf_error`` and ``mean_cosine`` (D×D work) against forming
   the K×K Gram and cosine matrices. K×K float64 needs K²·8 bytes per matrix (19.3 GB at
   K = 49152), so the K×K side runs on the first ``--kk-classes`` means (the O(K·D²) side is
   timed on both sizes). CDNV (tiled, upper triangle) is timed at full K.

Peak memory is the tracemalloc peak of each step (numpy reports its buffers to it).

    python benchmarks/neural_collapse.py                         # K=49152, D=576
    python benchmarks/neural_collapse.py --classes 8192 --dim 128 --tokens 4096 --kk-classes 2048

On a shared machine set OPENBLAS_NUM_THREADS=1 for stable ratios (applies to both sides).
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from collapsekit.metrics.neural_collapse import cdnv, etf_error, mean_cosine
from collapsekit.stats.classes import ClassMoments, memory_bytes
from collapsekit.stats.moments import Moments
from _common import traced


class OneHotAccumulator:
    """Per-class counts/sums/squared norms by one-hot matrix products (the reference)."""

    def __init__(self, k: int, d: int):
        self.n, self.sums, self.sq = np.zeros(k), np.zeros((k, d)), np.zeros(k)
        self.shift, self.moments = None, Moments(d, unit_sum=False)

    def update(self, x, labels):
        if self.shift is None:
            self.shift = x.mean(axis=0)
        self.moments.update(x)
        y = x - self.shift
        onehot = np.zeros((len(labels), len(self.n)))
        onehot[np.arange(len(labels)), labels] = 1.0
        self.n += onehot.sum(axis=0)
        self.sums += onehot.T @ y
        self.sq += onehot.T @ np.einsum("ij,ij->i", y, y)


def kk_forms(m: np.ndarray) -> tuple[float, float, float]:
    """ETF error and pairwise-cosine mean/std by forming K×K matrices."""
    k = len(m)
    gram = m @ m.T
    gram /= np.linalg.norm(gram)
    gram -= (np.eye(k) - 1.0 / k) / math.sqrt(k - 1)
    etf = float(np.linalg.norm(gram))
    del gram
    u = m / np.linalg.norm(m, axis=1, keepdims=True)
    cos = u @ u.T
    iu = np.triu_indices(k, 1)
    vals = cos[iu]
    return etf, float(vals.mean()), float(vals.std())


def rel(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300))


def mb(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--classes", type=int, default=49152)
    ap.add_argument("--dim", type=int, default=576)
    ap.add_argument("--tokens", type=int, default=16384, help="tokens accumulated by both sides")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--kk-classes", type=int, default=8192,
                    help="classes for the K×K forms (0 = all; needs ~3·K²·8 bytes)")
    ap.add_argument("--zipf", type=float, default=1.1, help="label frequency ∝ rank^-zipf")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    k, d = a.classes, a.dim
    rng = np.random.default_rng(a.seed)
    p = np.arange(1, k + 1) ** -a.zipf
    labels = rng.choice(k, size=a.tokens, p=p / p.sum())
    centres = rng.standard_normal((k, d))
    x = centres[labels] + 0.5 * rng.standard_normal((a.tokens, d)) + 3.0
    print(f"K={k} classes, D={d}, {a.tokens} tokens in batches of {a.batch}, "
          f"{len(np.unique(labels))} distinct labels")

    def run(acc):
        for i in range(0, a.tokens, a.batch):
            acc.update(x[i:i + a.batch], labels[i:i + a.batch])
        return acc

    scat, t_s, m_s = traced(lambda: run(ClassMoments(k, d)))
    ref, t_o, m_o = traced(lambda: run(OneHotAccumulator(k, d)))
    print("\n1. accumulation (class counts, sums, squared norms + global scatter)")
    print(f"   scatter  {t_s:8.2f} s  {a.tokens / t_s:10,.0f} tok/s  peak {mb(m_s)} "
          f"(state {mb(memory_bytes(k, d))})")
    print(f"   one-hot  {t_o:8.2f} s  {a.tokens / t_o:10,.0f} tok/s  peak {mb(m_o)} "
          f"(B×K one-hot {mb(a.batch * k * 8)})")
    print(f"   speedup  {t_o / t_s:8.1f}x   max rel diff: counts {rel(scat.n, ref.n):.1e}, "
          f"sums {rel(scat.sums, ref.sums):.1e}, sq {rel(scat.sq, ref.sq):.1e}")

    kk = k if a.kk_classes in (0, None) else min(a.kk_classes, k)
    m = centres - centres.mean(axis=0)
    sub = m[:kk] - m[:kk].mean(axis=0)
    print(f"\n2. NC2 forms (K×K side on {kk} classes: {mb(kk * kk * 8)} per K×K matrix; at "
          f"K={k} it would need {mb(k * k * 8)} each)")
    (etf_k, cm_k, cs_k), t_k, m_k = traced(lambda: kk_forms(sub))
    (etf_f, (cm_f, cs_f)), t_f, m_f = traced(lambda: (etf_error(sub), mean_cosine(sub)))
    for name, t, mem, etf, cm, cs in (("K×K    ", t_k, m_k, etf_k, cm_k, cs_k),
                                      ("O(K·D²)", t_f, m_f, etf_f, cm_f, cs_f)):
        print(f"   {name}  {t:8.2f} s  peak {mb(mem)}   etf {etf:.12f}  cos {cm:.3e} ± {cs:.6f}")
    print(f"   speedup  {t_k / t_f:8.1f}x   rel diff: etf {abs(etf_f - etf_k) / etf_k:.1e}, "
          f"cos mean {abs(cm_f - cm_k) / abs(cm_k):.1e}, cos std {abs(cs_f - cs_k) / cs_k:.1e}")
    if kk < k:
        (etf_full, _), t_full, m_full = traced(lambda: (etf_error(m), mean_cosine(m)))
        print(f"   O(K·D²) at K={k}: {t_full:.2f} s, peak {mb(m_full)} (etf {etf_full:.6f})")
    var = np.full(k, 0.25 * d)
    val, t_c, m_c = traced(lambda: cdnv(m, var))
    print(f"\n3. CDNV over {k * (k - 1) // 2:,} pairs (tiled upper triangle): {t_c:.2f} s, "
          f"peak {mb(m_c)}, value {val:.6f}")


if __name__ == "__main__":
    main()
