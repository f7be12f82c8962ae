"""Human-vs-model divergence of text distributions (The Necessity of Imperfection, 2025).

Jensen–Shannon divergence in bits (Lin 1991), bounded by 1:

    JS(P, Q) = H(M) − (H(P) + H(Q)) / 2,   M = (P + Q) / 2,   H(P) = −Σ p log2 p,

between the pooled n-gram distributions of two text sets (tokens: whitespace words unless a
``tokenizer`` is given), and between the distributions of three stylometric features:
sentence length in words (every sentence of every text), type-token ratio per text, and
punctuation rate per text (Unicode punctuation characters / non-space characters).
Feature distributions are compared on shared histogram bins cut at the inner quantiles
q_1 < … < q_m of the pooled values (``bins`` equal-mass bins of the mixture, duplicate
edges merged): the open intervals between them and the edge values themselves, so a value
shared by many texts keeps a bin of its own. The result does not depend on the units.

JS of plug-in estimates is biased upwards for small samples (unseen n-grams look like
divergence): compare sets of similar size and text length, and read the value against a
null level such as the divergence between two halves of the same human corpus. Bootstrap
intervals resample texts within each set (bins fixed from the full sample) and are the
basic (reverse-percentile) interval [2v − q_hi, 2v − q_lo] (Davison & Hinkley 1997): resampling
with replacement duplicates texts, which raises the plug-in value, and the basic interval
reflects that shift back instead of reporting it as upper uncertainty. It can therefore lie
below the plug-in value, which is itself biased upwards.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import scipy.sparse as sp

from collapsekit.metrics.lexical import Tokenizer, _check_texts, _encode, _grams
from collapsekit.params import check_int

FEATURES = ("sentence_length", "type_token_ratio", "punctuation_rate")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_WORD = re.compile(r"\w+(?:['’]\w+)*")


def js_from_counts(p, q) -> float:
    """JS divergence in bits between two count (or probability) vectors on the same support."""
    p, q = (np.asarray(v, dtype=np.float64).ravel() for v in (p, q))
    if p.shape != q.shape or p.size == 0:
        raise ValueError(f"count vectors must be non-empty and equally long, got {p.size} and "
                         f"{q.size}")
    if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))) or (p < 0).any() or (q < 0).any():
        raise ValueError("counts must be finite and >= 0")
    if p.sum() == 0 or q.sum() == 0:
        raise ValueError("a distribution with zero total count: give some mass to each side")
    return float(_js_rows(p[None], q[None])[0])


def _js_rows(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Row-wise JS (bits) of count matrices B×V; one vectorised pass."""
    p = p / p.sum(axis=1, keepdims=True)
    q = q / q.sum(axis=1, keepdims=True)
    m = (p + q) / 2

    def kl_to_m(a):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.where(a > 0, a * np.log2(a / m), 0.0)
        return t.sum(axis=1)

    return np.clip((kl_to_m(p) + kl_to_m(q)) / 2, 0.0, 1.0)


def _ngram_matrix(p_texts, q_texts, n, tokenizer):
    """Per-text n-gram count matrices (texts × shared n-gram codes) of both sets."""
    p_texts = _check_texts(p_texts)
    q_texts = _check_texts(q_texts)
    n = check_int("n", n, 1)
    flat, lengths = _encode(p_texts + q_texts, tokenizer)
    code, doc = _grams(flat, lengths, n)
    in_p = doc < len(p_texts)
    if not in_p.any() or in_p.all():
        where = "q_texts" if in_p.any() else "p_texts"
        raise ValueError(f"{where} has no {n}-grams (every text has fewer than {n} tokens): "
                         "use a smaller n or longer texts")
    m = sp.csr_matrix((np.ones(code.size), (doc, code)),
                      shape=(len(p_texts) + len(q_texts), int(code.max()) + 1))
    return m[:len(p_texts)], m[len(p_texts):]


def js_divergence(p_texts, q_texts, n: int = 1, *, tokenizer: Tokenizer | None = None) -> float:
    """JS divergence (bits, in [0, 1]) between the pooled n-gram distributions of two text sets.

    0 for identical distributions, 1 for disjoint vocabularies (see the module docstring)."""
    mp, mq = _ngram_matrix(p_texts, q_texts, n, tokenizer)
    return js_from_counts(np.asarray(mp.sum(axis=0)), np.asarray(mq.sum(axis=0)))


def _weights(rng, n_texts: int, n_boot: int) -> sp.csr_matrix:
    """Bootstrap resampling of texts as an n_boot × n_texts matrix of draw counts."""
    draws = rng.integers(0, n_texts, size=(n_boot, n_texts))
    rows = np.repeat(np.arange(n_boot), n_texts)
    return sp.csr_matrix((np.ones(draws.size), (rows, draws.ravel())), shape=(n_boot, n_texts))


def _ci(value: float, boot: np.ndarray, level: float) -> tuple[float, float]:
    """Basic (reverse-percentile) bootstrap interval [2v − q_hi, 2v − q_lo], clipped to [0, 1]."""
    lo, hi = np.quantile(boot, [(1 - level) / 2, (1 + level) / 2])
    return float(np.clip(2 * value - hi, 0, 1)), float(np.clip(2 * value - lo, 0, 1))


def _check_boot(n_boot, level):
    n_boot = check_int("n_boot", n_boot, 2)
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return n_boot


def js_divergence_ci(p_texts, q_texts, n: int = 1, *, tokenizer: Tokenizer | None = None,
                     n_boot: int = 200, level: float = 0.95, seed: int = 0
                     ) -> tuple[float, float, float]:
    """(JS, low, high): :func:`js_divergence` with a *basic* (reverse-percentile) bootstrap
    interval [2·JS − q_hi, 2·JS − q_lo] over texts resampled within each set (counts of all
    resamples from one sparse product), clipped to [0, 1]. Plug-in JS is biased upward, so
    resampled values sit above the estimate and the interval, which corrects for that
    bias, can lie entirely below it: the interval then excludes its own estimate."""
    n_boot = _check_boot(n_boot, level)
    mp, mq = _ngram_matrix(p_texts, q_texts, n, tokenizer)
    value = js_from_counts(np.asarray(mp.sum(axis=0)), np.asarray(mq.sum(axis=0)))
    rng = np.random.default_rng(seed)
    boot = []
    for start in range(0, n_boot, 64):  # chunks bound memory at 64 × vocabulary
        b = min(64, n_boot - start)
        cp = (_weights(rng, mp.shape[0], b) @ mp).toarray()
        cq = (_weights(rng, mq.shape[0], b) @ mq).toarray()
        ok = (cp.sum(axis=1) > 0) & (cq.sum(axis=1) > 0)
        boot.append(_js_rows(cp[ok], cq[ok]))
    return (value, *_ci(value, np.concatenate(boot), level))


def stylometric_features(texts) -> dict[str, list[np.ndarray]]:
    """Per text: the word counts of its sentences (split after . ! ? and whitespace), its
    type-token ratio (distinct lowercase words / words) and its punctuation rate (Unicode
    category P* characters / non-space characters). Texts without words give no TTR value;
    blank texts give no punctuation rate."""
    texts = _check_texts(texts)
    out: dict[str, list[np.ndarray]] = {f: [] for f in FEATURES}
    for text in texts:
        words = [w.lower() for w in _WORD.findall(text)]
        sentences = [len(_WORD.findall(s)) for s in _SENTENCE_END.split(text.strip())]
        out["sentence_length"].append(np.asarray([s for s in sentences if s], dtype=float))
        out["type_token_ratio"].append(np.asarray([len(set(words)) / len(words)] if words
                                                  else [], dtype=float))
        chars = [c for c in text if not c.isspace()]
        punct = sum(unicodedata.category(c).startswith("P") for c in chars)
        out["punctuation_rate"].append(np.asarray([punct / len(chars)] if chars else [],
                                                  dtype=float))
    return out


def _histograms(per_text: list[np.ndarray], inner: np.ndarray) -> np.ndarray:
    """texts × (2m + 1) count matrix over the m edges ``inner``: even bins are the open
    intervals between edges, odd bins the edge values themselves."""
    return np.stack([np.bincount(np.searchsorted(inner, v, side="left")
                                 + np.searchsorted(inner, v, side="right"),
                                 minlength=2 * inner.size + 1) for v in per_text])


def stylometric_divergence(p_texts, q_texts, *, bins: int = 10, n_boot: int = 200,
                           level: float = 0.95, seed: int = 0
                           ) -> dict[str, tuple[float, float, float]]:
    """{feature: (JS, low, high)} for each stylometric feature (see the module docstring);
    bins are pooled quantiles; ``n_boot`` texts-resampling bootstrap replicates."""
    bins = check_int("bins", bins, 2)
    n_boot = _check_boot(n_boot, level)
    fp, fq = stylometric_features(p_texts), stylometric_features(q_texts)
    rng = np.random.default_rng(seed)
    out = {}
    for name in FEATURES:
        pooled = np.concatenate(fp[name] + fq[name])
        if not any(v.size for v in fp[name]) or not any(v.size for v in fq[name]):
            raise ValueError(f"no {name.replace('_', ' ')} values in one of the sets (texts "
                             "without words): give texts with words")
        inner = np.unique(np.quantile(pooled, np.linspace(0, 1, bins + 1)[1:-1]))
        hp, hq = _histograms(fp[name], inner), _histograms(fq[name], inner)
        value = js_from_counts(hp.sum(0), hq.sum(0))
        cp = _weights(rng, len(hp), n_boot) @ hp
        cq = _weights(rng, len(hq), n_boot) @ hq
        ok = (cp.sum(axis=1) > 0) & (cq.sum(axis=1) > 0)
        out[name] = (value, *_ci(value, _js_rows(cp[ok], cq[ok]), level))
    return out
