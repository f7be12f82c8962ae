"""ROUGE-L F1 between all pairs of token sequences, with a bit-parallel LCS.

ROUGE-L (Lin 2004) as computed by Google's ``rouge_score`` package:
P = LCS/|prediction|, R = LCS/|target|, F1 = 2PR/(P+R) (0 when LCS = 0 or a side is empty).
F1 is symmetric, so each unordered pair is computed once.

The LCS uses the bit-vector recurrence of Hyyrö (2004), after Allison & Dix (1986):
with M[c] the bitmask of positions of symbol c in the pattern and V = all ones,
for each symbol b of the other sequence  V <- (V + (V & M[b])) | (V & ~M[b]);
LCS = number of zero bits of V.  One pattern is run against many sequences at once,
with numpy lanes of 64-bit words (carries propagated across words).
"""

from __future__ import annotations

import re

import numpy as np

_TOKEN = re.compile(r"[a-z0-9]+")


def rouge_tokenize(text: str) -> list[str]:
    """``rouge_score``'s default tokenizer (no stemmer): lowercase, keep runs of [a-z0-9]."""
    return _TOKEN.findall(text.lower())


def _add_words(v: np.ndarray, u: np.ndarray) -> np.ndarray:
    """(v + u) over rows of little-endian uint64 words, carry across words, top carry dropped."""
    out = np.empty_like(v)
    carry = np.zeros(v.shape[0], dtype=bool)
    for w in range(v.shape[1]):
        a = v[:, w]
        s = a + u[:, w] + carry.astype(np.uint64)
        carry = (s < a) | (carry & (s == a))
        out[:, w] = s
    return out


def _lcs_rows(table: np.ndarray, others: np.ndarray) -> np.ndarray:
    """LCS of the pattern encoded in ``table`` (symbol -> W words) with each row of ``others``
    (symbol ids, padded with a symbol whose mask is zero)."""
    n_words = table.shape[1]
    if n_words == 1:
        masks = table[:, 0]
        v = np.full(others.shape[0], np.uint64(0xFFFFFFFFFFFFFFFF))
        for k in range(others.shape[1]):
            m = masks[others[:, k]]
            v = (v + (v & m)) | (v & ~m)
        return 64 - np.bitwise_count(v).astype(np.int64)
    v = np.full((others.shape[0], n_words), np.uint64(0xFFFFFFFFFFFFFFFF))
    for k in range(others.shape[1]):
        m = table[others[:, k]]
        v = _add_words(v, v & m) | (v & ~m)
    return 64 * n_words - np.bitwise_count(v).astype(np.int64).sum(axis=1)


def rougel_f1_row_sums(seqs: list[np.ndarray]) -> np.ndarray:
    """For each sequence i, the sum over j != i of ROUGE-L F1(i, j).

    ``seqs`` are int token-id arrays. Cost: O(Σ_pairs |shorter| · ⌈|longer|/64⌉) word operations.
    """
    n = len(seqs)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    pad = int(max((s.max() for s in seqs if len(s)), default=-1)) + 1
    width = int(lengths.max()) if n else 0
    padded = np.full((n, max(width, 1)), pad, dtype=np.int64)
    for row, i in enumerate(order):
        padded[row, : lengths[i]] = seqs[i]
    n_words = max(1, -(-width // 64))
    table = np.zeros((pad + 1, n_words), dtype=np.uint64)
    sums = np.zeros(n, dtype=np.float64)
    for a in range(n - 1):
        i = order[a]
        m = int(lengths[i])
        if m == 0:
            break  # this and all shorter sequences score 0 with everything
        pattern = seqs[i]
        pos = np.arange(m)
        words = -(-m // 64)
        np.bitwise_or.at(table, (pattern, pos >> 6), np.uint64(1) << (pos & 63).astype(np.uint64))
        rest = order[a + 1 :]
        steps = int(lengths[rest[0]])
        lcs = _lcs_rows(table[:, :words], padded[a + 1 :, :steps])
        table[pattern] = 0
        other_len = lengths[rest]
        with np.errstate(divide="ignore", invalid="ignore"):
            p = lcs / other_len
            r = lcs / m
            f = np.where(lcs > 0, 2 * p * r / (p + r), 0.0)
        sums[i] += f.sum()
        sums[rest] += f
    return sums
