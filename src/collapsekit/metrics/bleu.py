"""Vectorised sentence BLEU kernels (Papineni et al. 2002) reproducing NLTK's ``sentence_bleu``
with uniform weights 1/max_n and ``SmoothingFunction().method1`` (Chen & Cherry 2014, ε = 0.1).

For hypothesis h and references R:
  p_n = Σ_g min(c_h(g), max_{r∈R} c_r(g)) / max(1, |h|-n+1), replaced by 0.1/max(1, |h|-n+1)
        when the numerator is 0;  BLEU = 0 if p_1 has no match, else BP · exp(Σ_n log(p_n)/max_n);
  BP = 1 if |h| > r*, 0 if |h| = 0, else exp(1 - r*/|h|), r* the reference length closest
        to |h| (ties: the shorter one).

Inputs are n-gram occurrences as (code, doc) int arrays, one pair per order n, from
``collapsekit.metrics.lexical``.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

_FAR = np.int64(1) << 40


def _doc_counts(code: np.ndarray, doc: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(doc, gram, count) for each distinct n-gram of each doc."""
    n_codes = int(code.max()) + 1 if code.size else 1
    key, count = np.unique(doc * n_codes + code, return_counts=True)
    return key // n_codes, key % n_codes, count


def _loo_max_clipped(code: np.ndarray, doc: np.ndarray, n_docs: int) -> np.ndarray:
    """Per doc i: Σ_g min(c_i(g), max_{j≠i} c_j(g)), from the top two counts of each n-gram."""
    d, g, c = _doc_counts(code, doc)
    if c.size == 0:
        return np.zeros(n_docs)
    order = np.lexsort((-c, g))
    gs, cs = g[order], c[order]
    first = np.r_[True, gs[1:] != gs[:-1]]
    second = np.r_[False, first[:-1]] & ~first
    n_codes = int(g.max()) + 1
    top1 = np.zeros(n_codes, dtype=np.int64)
    top2 = np.zeros(n_codes, dtype=np.int64)
    top1[gs[first]] = cs[first]
    top2[gs[second]] = cs[second]
    others_max = np.where(c == top1[g], top2[g], top1[g])
    return np.bincount(d, weights=np.minimum(c, others_max), minlength=n_docs)


def _loo_closest_length(lengths: np.ndarray) -> np.ndarray:
    """Per doc i: NLTK's closest reference length among the other docs' lengths."""
    s = np.sort(lengths)
    lo = np.searchsorted(s, lengths, "left")
    hi = np.searchsorted(s, lengths, "right")
    below = np.where(lo > 0, s[np.maximum(lo - 1, 0)], -_FAR)
    above = np.where(hi < len(s), s[np.minimum(hi, len(s) - 1)], _FAR)
    nearest = np.where(lengths - below <= above - lengths, below, above)
    return np.where(hi - lo >= 2, lengths, nearest)


def _combine(num: np.ndarray, den: np.ndarray, hyp_len, ref_len, max_n: int) -> np.ndarray:
    """BLEU from matches ``num`` (max_n, ...), denominators ``den`` and lengths (broadcast)."""
    p = np.where(num == 0, 0.1 / den, num / den)
    log_sum = (np.log(p) * (1.0 / max_n)).sum(axis=0)  # NLTK: Σ w_n log p_n, w_n = 1/max_n
    hyp = np.broadcast_to(hyp_len, log_sum.shape).astype(np.float64)
    ref = np.broadcast_to(ref_len, log_sum.shape).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        bp = np.where(hyp > ref, 1.0, np.where(hyp == 0, 0.0, np.exp(1.0 - ref / hyp)))
    return np.where(num[0] == 0, 0.0, bp * np.exp(log_sum))


def self_bleu_scores(grams: list[tuple[np.ndarray, np.ndarray]], lengths: np.ndarray) -> np.ndarray:
    """BLEU of each doc (hypothesis) against all other docs (references); O(total n-grams)."""
    n_docs, max_n = len(lengths), len(grams)
    num = np.stack([_loo_max_clipped(code, doc, n_docs) for code, doc in grams])
    den = np.maximum(1, lengths[None, :] - np.arange(max_n)[:, None]).astype(np.float64)
    return _combine(num, den, lengths, _loo_closest_length(lengths), max_n)


def _presence_matrix(code: np.ndarray, doc: np.ndarray, n_docs: int) -> sparse.csr_matrix:
    """Binary doc × (gram, t) matrix, t = 1..count: row products give Σ_g min(c_i(g), c_j(g))."""
    d, g, c = _doc_counts(code, doc)
    rep = np.repeat(np.arange(len(c)), c)
    t = np.arange(len(rep)) - np.repeat(np.cumsum(c) - c, c)
    feature = np.unique(g[rep] * (int(c.max(initial=0)) + 1) + t, return_inverse=True)[1]
    data = np.ones(len(rep), dtype=np.int64)
    shape = (n_docs, int(feature.max(initial=-1)) + 1)
    return sparse.csr_matrix((data, (d[rep], feature)), shape=shape)


def pairwise_bleu_row_sums(
    grams: list[tuple[np.ndarray, np.ndarray]], lengths: np.ndarray, block: int = 512
) -> np.ndarray:
    """For each doc i, Σ_{j≠i} BLEU(hypothesis j, single reference i)."""
    n_docs, max_n = len(lengths), len(grams)
    mats = [_presence_matrix(code, doc, n_docs) for code, doc in grams]
    sums = np.zeros(n_docs, dtype=np.float64)
    for b0 in range(0, n_docs, block):
        b1 = min(b0 + block, n_docs)
        num = np.stack([(m[b0:b1] @ m.T).toarray() for m in mats])  # hyp rows, ref columns
        hyp = lengths[b0:b1]
        den = np.maximum(1, hyp[None, :] - np.arange(max_n)[:, None]).astype(np.float64)
        scores = _combine(num, den[:, :, None], hyp[:, None], lengths[None, :], max_n)
        scores[np.arange(b1 - b0), np.arange(b0, b1)] = 0.0
        sums += scores.sum(axis=0)
    return sums
