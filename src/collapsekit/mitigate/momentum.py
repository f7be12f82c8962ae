"""Momentum decoding (Lan, Su, Liu, Huang & Mao 2022, "Momentum Decoding: Open-ended Text
Generation As Graph Exploration", arXiv:2212.02175).

Generation walks a directed graph whose nodes are tokens; returning to a node already in
the graph (a token of the context, prompt included) can close a circular loop. Among the
k most likely next tokens V^(k) it picks

    x_t = argmax_{v ∈ V^(k)}  p(v | x_<t) − α · f(d(v))

where d(v) is the depth of the loop that v would close: 0 if v is a new node, else the
length of the longest n-gram (n ≤ ``max_n``) ending in v that already occurs in the
context (1 when only the token itself recurs), and f is the resistance function (f(0)=0).
Defaults α=0.2, k=5, max_n=5 as in the authors' released code.

Resistance functions (name → f(d) for d ≥ 1; f(0) = 0 for all):
  "linear"   f(d) = d (the authors' GPT2-XL table; the default here),
  "blocking" f(d) = 0 for d < 4, 5 for d = 4, ∞ beyond (the table that is active by
             default in the released code: an n-gram block for loops of 4+ tokens),
  "log"      f(d) = log_6(1 + d) / 0.2,   "exp"  f(d) = 1.5^d / 2,   "constant"  f(d) = 2
             (the alternatives of the released code's resistance ablation).
If every candidate has infinite resistance, the most likely one is taken.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..params import check_int

RESISTANCE = {
    "linear": lambda d: float(d),
    "blocking": lambda d: 0.0 if d < 4 else (5.0 if d == 4 else math.inf),
    "log": lambda d: math.log(1 + d, 6) / 0.2,
    "exp": lambda d: 1.5 ** d / 2,
    "constant": lambda d: 2.0,
}


def resistance(d: int, name: str = "linear") -> float:
    """f(d) of the named resistance function; 0 for a new node (d = 0)."""
    if name not in RESISTANCE:
        raise ValueError(f"resistance {name!r} is unknown; use one of {sorted(RESISTANCE)}")
    d = check_int("loop depth d", d, 0)
    return 0.0 if d == 0 else RESISTANCE[name](d)


class Graph:
    """The n-grams (n ≤ ``max_n``) of one context, updated token by token."""

    def __init__(self, tokens: Sequence[int] = (), max_n: int = 5):
        max_n = check_int("max_n", max_n, 1)
        self.max_n, self.tokens, self.seen = max_n, [], set()
        for t in tokens:
            self.add(int(t))

    def add(self, token: int) -> None:
        self.tokens.append(token)
        for n in range(1, min(self.max_n, len(self.tokens)) + 1):
            self.seen.add(tuple(self.tokens[-n:]))

    def depth(self, token: int) -> int:
        """d(token): the longest n ≤ max_n such that (last n−1 tokens, token) was seen."""
        d = 0
        for n in range(1, min(self.max_n, len(self.tokens) + 1) + 1):
            if tuple(self.tokens[len(self.tokens) - n + 1:] + [token]) not in self.seen:
                break
            d = n
        return d


def choose(logits, graphs: list[Graph], *, alpha: float = 0.2, k: int = 5,
           resistance_fn: str = "linear") -> np.ndarray:
    """One momentum-decoding step for each row of ``logits`` (rows × vocab array, computed
    in float64) with its own graph; returns the chosen token ids (does not add them to the
    graphs)."""
    logits = np.asarray(logits, dtype=np.float64)
    if logits.ndim != 2 or logits.shape[0] != len(graphs):
        raise ValueError(f"logits must be (rows, vocab) with one graph per row; got shape "
                         f"{tuple(logits.shape)} and {len(graphs)} graphs")
    k = min(k, logits.shape[-1])
    z = np.exp(logits - logits.max(-1, keepdims=True))
    probs = z / z.sum(-1, keepdims=True)
    top_i = np.argsort(-probs, axis=-1, kind="stable")[:, :k]  # ties: lower ids first
    top_p = np.take_along_axis(probs, top_i, -1)
    out = []
    for r, g in enumerate(graphs):
        pen = np.array([resistance(g.depth(int(v)), resistance_fn) for v in top_i[r]])
        best = 0 if np.isinf(pen).all() else int(np.argmax(top_p[r] - alpha * pen))
        out.append(int(top_i[r, best]))
    return np.array(out, dtype=np.int64)
