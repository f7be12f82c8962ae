"""Word n-gram language model on real human text (``collapsekit.corpora``).

Texts are lower-cased word/punctuation tokens (at most ``max_words``) ending in </s>,
with order−1 <s> pads in front. The model is the n-gram counts of its training texts.
It *samples* from the unsmoothed maximum-likelihood conditionals (a memoriser, so n-grams
it never saw are never produced — the tail loss of Shumailov et al. 2024), and it is
*evaluated* with Jelinek–Mercer interpolation down to an add-k unigram over the
generation-1 vocabulary, P_k(w|h) = λ c(h,w)/c(h) + (1−λ) P_{k−1}(w|h') (c(h) = 0: the
lower order alone), so held-out real cross-entropy (nats per token, </s> included) stays
finite (Jelinek & Mercer 1980; Chen & Goodman 1999).
"""

from __future__ import annotations

import re
from functools import cached_property

import numpy as np

from .base import Learner, Param
from .categorical import js_nats

PAD, END, UNK = 0, 1, 2
_TOKEN = re.compile(r"[a-z0-9']+|[^\sa-z0-9']")


def tokenize(text: str, max_words: int) -> list[str]:
    return _TOKEN.findall(text.lower())[:max_words]


def split_corpus(corpus: list[str], n_test: int, rngs) -> tuple[list[str], list[list[str]]]:
    """The first ``n_test`` texts (held out, same for every seed) and, per lane, the rest in
    that lane's random order (real data is handed out from its front)."""
    test, train = corpus[:n_test], corpus[n_test:]
    return test, [[train[i] for i in g.permutation(len(train))] for g in rngs]


def _unique_sum(codes: np.ndarray, counts: np.ndarray):
    u, inv = np.unique(codes, return_inverse=True)
    return u, np.bincount(inv.ravel(), weights=counts, minlength=u.size)


class NgramLearner(Learner):
    name = "ngram"
    doc = "word n-gram LM on real text (kjv, news or wikipedia)"
    PARAMS = {
        "source": Param(str, "kjv", "human text: kjv, news or wikipedia",
                        choices=("kjv", "news", "wikipedia")),
        "order": Param(int, 2, "n of the n-grams (1–4)", low=1),
        "n_train": Param(int, 2000, "texts per generation", low=1),
        "n_test": Param(int, 1000, "held-out real texts", low=1),
        "max_words": Param(int, 40, "tokens kept per text", low=1),
        "lam": Param(float, 0.8, "interpolation weight λ of each order (0 ≤ λ < 1)", low=0.0),
        "add_k": Param(float, 0.01, "add-k of the unigram floor (> 0)", low=0.0),
    }
    batched = False
    additive = True
    needs_samples = True

    def __init__(self, params=None, *, texts: list[str] | None = None):
        self._given = texts
        super().__init__(params)

    def check(self) -> None:
        if self.p["order"] > 4:
            raise ValueError("ngram learner: order must be at most 4")
        if not 0 <= self.p["lam"] < 1 or self.p["add_k"] <= 0:
            raise ValueError("ngram learner: need 0 ≤ lam < 1 and add_k > 0")
        if self.p["n_test"] >= len(self.corpus):
            raise ValueError(f"ngram learner: n_test={self.p['n_test']} leaves no training "
                             f"text of the {len(self.corpus)} in {self.p['source']!r}")

    @cached_property
    def corpus(self) -> list[str]:
        """The tokenised texts (space-joined), shuffled once with a fixed seed."""
        from collapsekit.corpora import human_texts

        raw = self._given if self._given is not None else human_texts(self.p["source"])
        toks = [" ".join(tokenize(t, self.p["max_words"])) for t in raw]
        toks = [t for t in toks if t]
        return [toks[i] for i in np.random.default_rng(0).permutation(len(toks))]

    @property
    def n(self) -> int:
        return self.p["n_train"]

    def real_available(self) -> int:
        return len(self.corpus) - self.p["n_test"]

    def describe(self) -> dict:
        return {"corpus_texts": len(self.corpus)}

    # data ----------------------------------------------------------------------------
    def world(self, rngs):
        test, pool = split_corpus(self.corpus, self.p["n_test"], rngs)
        words = sorted({w for t in pool[0][:self.n] for w in t.split()})
        vocab = {w: i + 3 for i, w in enumerate(words)}
        world = {"train": pool, "vocab": vocab, "words": ["<s>", "</s>", "<unk>", *words]}
        world["test"] = self._encode(world, test)
        real = self.summarize(world, self.real(world, self.n, rngs))
        world["unigram"] = self._unigram(world, self.fit(world, real, rngs))
        return world

    @staticmethod
    def _unigram(world, model) -> np.ndarray:
        codes, counts, _, _ = model[1]
        uni = np.zeros(len(world["words"]))
        uni[codes] = counts
        return uni / uni.sum()

    def real(self, world, n, rngs, start=0):
        return np.array([p[start:start + n] for p in world["train"]], dtype=object)

    def _encode(self, world, texts) -> tuple[np.ndarray, np.ndarray]:
        """Padded flat ids and the positions of the predicted tokens."""
        pad = self.p["order"] - 1
        vocab, seq, pos = world["vocab"], [], []
        for t in texts:
            ids = [vocab.get(w, UNK) for w in t.split()] + [END]
            pos.extend(range(len(seq) + pad, len(seq) + pad + len(ids)))
            seq.extend([PAD] * pad + ids)
        return np.array(seq, dtype=np.int64), np.array(pos, dtype=np.int64)

    def _codes(self, seq, pos, k, V):
        code = np.zeros(pos.size, dtype=np.int64)
        for j in range(k - 1, -1, -1):
            code = code * V + seq[pos - j]
        return code

    # model ---------------------------------------------------------------------------
    def summarize(self, world, items):
        """Counts of every n-gram of order 1..n: {k: (sorted codes, counts)}."""
        V = len(world["words"])
        seq, pos = self._encode(world, items[0])
        return {k: _unique_sum(self._codes(seq, pos, k, V), np.ones(pos.size))
                for k in range(1, self.p["order"] + 1)}

    def merge(self, a, b):
        return {k: _unique_sum(np.concatenate([a[k][0], b[k][0]]),
                               np.concatenate([a[k][1], b[k][1]])) for k in a}

    def fit(self, world, data, rngs):
        V = len(world["words"])
        return {k: (codes, counts, *_unique_sum(codes // V, counts))
                for k, (codes, counts) in data.items()}

    def sample(self, world, model, n, rngs, settings):
        (g,) = rngs
        V, k, L = len(world["words"]), self.p["order"], self.p["max_words"]
        codes, counts, _, _ = model[k]
        cum = np.cumsum(counts)
        hist = np.full((n, k - 1), PAD, dtype=np.int64)
        out = np.full((n, L), END, dtype=np.int64)
        alive = np.ones(n, dtype=bool)
        for step in range(L):
            ctx = np.zeros(n, dtype=np.int64)
            for j in range(k - 1):
                ctx = ctx * V + hist[:, j]
            lo = np.searchsorted(codes, ctx * V)
            hi = np.searchsorted(codes, ctx * V + V)
            base = np.where(lo > 0, cum[np.maximum(lo - 1, 0)], 0.0)
            total = np.where(hi > lo, cum[np.maximum(hi - 1, 0)] - base, 0.0)
            r = base + np.floor(g.random(n) * total)
            w = np.where(total > 0, codes[np.minimum(np.searchsorted(cum, r, side="right"),
                                                     codes.size - 1)] % V, END)
            w = np.where(alive, w, END)
            out[:, step] = w
            alive &= w != END
            if k > 1:
                hist = np.concatenate([hist[:, 1:], w[:, None]], axis=1)
            if not alive.any():
                break
        words, texts = world["words"], []
        for row in out:
            end = int(np.argmax(row == END)) if (row == END).any() else L
            texts.append(" ".join(words[i] for i in row[:end]))
        return np.array([texts], dtype=object)

    def _logprob(self, world, model, seq, pos) -> np.ndarray:
        V, lam, add_k = len(world["words"]), self.p["lam"], self.p["add_k"]
        codes, counts, _, _ = model[1]
        uni = np.zeros(V)
        uni[codes % V] = counts
        uni[PAD] = 0
        prob = (uni + add_k) / (uni.sum() + add_k * (V - 1))
        p = prob[seq[pos]]
        for k in range(2, self.p["order"] + 1):
            codes, counts, ctx, tot = model[k]
            c = self._codes(seq, pos, k, V)
            i = np.minimum(np.searchsorted(codes, c), codes.size - 1)
            chw = np.where(codes[i] == c, counts[i], 0.0)
            j = np.minimum(np.searchsorted(ctx, c // V), ctx.size - 1)
            ch = np.where(ctx[j] == c // V, tot[j], 0.0)
            p = np.where(ch > 0, lam * chw / np.maximum(ch, 1) + (1 - lam) * p, p)
        return np.log(p)

    def evaluate(self, world, model, samples):
        from collapsekit.metrics import distinct_n

        seq, pos = world["test"]
        texts = list(samples[0])
        out = {"cross_entropy": -self._logprob(world, model, seq, pos).mean()}
        for k in (1, 2):
            try:
                out[f"distinct_{k}"] = distinct_n(texts, k)
            except ValueError:  # every sample shorter than k words
                out[f"distinct_{k}"] = np.nan
        out["mean_length"] = float(np.mean([len(t.split()) for t in texts]))
        uni = self._unigram(world, model)
        out["support_size"] = float(np.sum(uni[UNK + 1:] > 0))
        out["js_unigram_real"] = float(js_nats(uni, world["unigram"]))
        return {k: np.array([v], dtype=np.float64) for k, v in out.items()}
