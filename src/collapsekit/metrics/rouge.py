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


def _lcs_lanes(table: np.ndarray, symbols: np.ndarray) -> np.ndarray:
    """LCS per lane: ``symbols`` (steps, lanes) are row indices into ``table`` (row -> W words of
    the lane's pattern bitmask); padding rows have a zero mask and leave the state unchanged.
    Words are little-endian; the carry of V + U runs from word 0 up, the top carry is dropped."""
    n_words, lanes = table.shape[1], symbols.shape[1]
    masks = [np.ascontiguousarray(table[:, w]) for w in range(n_words)]
    v = [np.full(lanes, np.uint64(0xFFFFFFFFFFFFFFFF)) for _ in range(n_words)]
    m, u, s = (np.empty(lanes, dtype=np.uint64) for _ in range(3))
    carry = np.zeros(lanes, dtype=bool)
    carry_in = np.empty(lanes, dtype=bool)
    for row in symbols:
        for w in range(n_words):
            vw = v[w]
            masks[w].take(row, out=m)
            np.bitwise_and(vw, m, out=u)
            np.bitwise_not(m, out=m)
            np.bitwise_and(vw, m, out=m)  # V & ~M
            np.add(vw, u, out=s)
            if w > 0:
                np.add(s, carry, out=s, casting="unsafe")
            if w < n_words - 1:
                if w > 0:
                    np.equal(s, vw, out=carry_in)
                    np.logical_and(carry_in, carry, out=carry_in)
                    np.less(s, vw, out=carry)
                    np.logical_or(carry, carry_in, out=carry)
                else:
                    np.less(s, vw, out=carry)
            np.bitwise_or(s, m, out=vw)
    zeros = 64 * n_words - sum(np.bitwise_count(vw).astype(np.int64) for vw in v)
    return np.asarray(zeros, dtype=np.int64)


def rougel_f1_row_sums(seqs: list[np.ndarray], lanes: int = 1 << 13) -> np.ndarray:
    """For each sequence i, the sum over j != i of ROUGE-L F1(i, j).

    ``seqs`` are int token-id arrays. Sequences are sorted by length; each one is the bit
    pattern against all shorter ones, several patterns per batch of about ``lanes`` pairs;
    the mask table holds only the (pattern, symbol) pairs present.
    Cost: O(Σ_pairs |shorter| · ⌈|longer|/64⌉) word operations."""
    n = len(seqs)
    lengths = np.array([len(s) for s in seqs], dtype=np.int64)
    order = np.argsort(-lengths, kind="stable")
    lengths_sorted = lengths[order]
    n_symbols = int(max((s.max() for s in seqs if len(s)), default=-1)) + 2  # last: padding
    padded = np.full((n, max(int(lengths.max(initial=0)), 1)), n_symbols - 1, dtype=np.int64)
    for row, i in enumerate(order):
        padded[row, : lengths[i]] = seqs[i]
    sums = np.zeros(n, dtype=np.float64)
    a = 0
    while a < n - 1 and lengths_sorted[a] > 0:
        pairs = np.cumsum(n - 1 - np.arange(a, n - 1))
        b = a + max(1, int(np.searchsorted(pairs, lanes, "right")))
        slots = np.arange(b - a)
        pattern_keys = np.repeat(slots, lengths_sorted[a:b]) * n_symbols + np.concatenate(
            [seqs[i] for i in order[a:b]])
        keys = np.unique(pattern_keys)  # (slot, symbol) pairs present; others: zero row
        table = np.zeros((len(keys) + 1, -(-int(lengths_sorted[a]) // 64)), dtype=np.uint64)
        pos = np.concatenate([np.arange(m) for m in lengths_sorted[a:b]])
        bits = np.uint64(1) << (pos & 63).astype(np.uint64)
        np.bitwise_or.at(table, (np.searchsorted(keys, pattern_keys), pos >> 6), bits)
        lane_slot = np.repeat(slots, n - 1 - np.arange(a, b))
        lane_row = np.concatenate([np.arange(x + 1, n) for x in range(a, b)])
        steps = int(lengths_sorted[a + 1])
        lane_keys = padded[lane_row, :steps].T + lane_slot * n_symbols
        idx = np.minimum(np.searchsorted(keys, lane_keys), len(keys) - 1)
        symbols = np.ascontiguousarray(np.where(keys[idx] == lane_keys, idx, len(keys)))
        lcs = _lcs_lanes(table, symbols)
        with np.errstate(divide="ignore", invalid="ignore"):
            p = lcs / lengths_sorted[lane_row]
            r = lcs / lengths_sorted[a + lane_slot]
            f = np.where(lcs > 0, 2 * p * r / (p + r), 0.0)
        sums[order[a:b]] += np.bincount(lane_slot, weights=f, minlength=b - a)
        sums[order] += np.bincount(lane_row, weights=f, minlength=n)
        a = b
    return sums
