"""Intention-level metrics (Vera 2026, "Intention Collapse: Intention-Level Metrics for
Reasoning in Language Models", arXiv:2601.01011) and the answer parsing they need.

- intention entropy ``H_int(I) = H[p(y_1 | I, x)] = -Σ_v p(v) log2 p(v)``: entropy of the
  next-token distribution at the position just before the answer; the paper's code computes it
  on the top-100 tokens, renormalised (``top_k=100``);
- recoverability ``Recov(I; Z)``: how well a linear probe on the hidden state I predicts the
  eventual correctness Z, scored by AUROC — here held out (stratified k-fold), never in-sample;
- effective dimensionality is :func:`collapsekit.metrics.dim_eff` (smallest k with 90 % of
  the variance) and :func:`collapsekit.metrics.participation_ratio` of the item×hidden matrix.
"""

from __future__ import annotations

import math
import re

import numpy as np
from scipy.special import logsumexp
from scipy.stats import rankdata

from ..params import check_int, check_number

__all__ = ["intention_entropy", "auroc", "probe_auroc", "parse_answer"]

_NUMBER = re.compile(r"(?<![\d.])-?\d+(?:,\d{3})*(?:\.\d+)?")


def _matrix(x, what: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected numbers, got {type(x).__name__}") from None
    if arr.ndim not in (1, 2) or arr.size == 0 or arr.shape[-1] == 0:
        raise ValueError(f"{what}: expected a non-empty (V,) or (N, V) array, got shape "
                         f"{arr.shape}")
    return arr


def intention_entropy(logits_or_probs, *, top_k: int | None = None, base: float = 2,
                      kind: str = "auto"):
    """Shannon entropy ``-Σ p log_base p`` (0·log 0 = 0) of next-token distributions.

    Input: one distribution (V,) -> float, or N of them (N, V) -> (N,) array. ``kind``:
    "logits" (softmax is taken; -inf allowed), "probs" (non-negative rows summing to 1), or
    "auto": probs when every row is non-negative and sums to 1 within 1e-6, else logits.
    ``top_k``: keep the k most likely tokens and renormalise (the paper's code: k = 100);
    None or k ≥ V: the full vocabulary (the paper's definition). Default base 2: bits.
    """
    x = _matrix(logits_or_probs, "intention_entropy")
    if kind not in ("auto", "logits", "probs"):
        raise ValueError(f"intention_entropy: kind={kind!r}; use 'auto', 'logits' or 'probs'")
    top_k = check_int("intention_entropy: top_k", top_k, 1, optional=True)
    if check_number("intention_entropy: base", base, 0, open_low=True) == 1:
        raise ValueError(f"intention_entropy: base={base!r} must be a positive number != 1")
    if np.isnan(x).any() or np.isposinf(x).any():
        raise ValueError("intention_entropy: input contains NaN or +inf; check the model's "
                         "logits (run it in float32)")
    rows = x.reshape(-1, x.shape[-1])
    is_probs = bool((rows >= 0).all() and np.allclose(rows.sum(-1), 1.0, rtol=0, atol=1e-6))
    if kind == "probs" and not is_probs:
        raise ValueError("intention_entropy: kind='probs' but a row is negative or does not "
                         "sum to 1; pass logits with kind='logits'")
    if kind == "probs" or (kind == "auto" and is_probs):
        with np.errstate(divide="ignore"):
            rows = np.log(rows)  # log-probabilities are logits of the same distribution
    elif np.isneginf(rows).all(-1).any():
        raise ValueError("intention_entropy: a row of logits is all -inf (no token possible)")
    if top_k is not None and top_k < rows.shape[-1]:
        rows = -np.partition(-rows, top_k - 1, axis=-1)[:, :top_k]
    logp = rows - logsumexp(rows, axis=-1, keepdims=True)
    p = np.exp(logp)
    h = -(p * np.where(p > 0, logp, 0.0)).sum(-1) / math.log(base)
    h = np.maximum(h, 0.0)
    return float(h[0]) if x.ndim == 1 else h


def _binary(labels, n: int, what: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{what}: labels must be a 1-D array of {n} items, got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int64)
    if not np.issubdtype(y.dtype, np.number) or not np.isin(y, (0, 1)).all():
        raise ValueError(f"{what}: labels must be booleans or 0/1 (1 = correct)")
    return y.astype(np.int64)


def _auroc_rows(scores: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mann–Whitney AUROC of each row of ``scores`` (R, N) against labels (R, N); ties 1/2."""
    ranks = rankdata(scores, axis=-1)
    n1 = y.sum(-1)
    n0 = y.shape[-1] - n1
    with np.errstate(invalid="ignore", divide="ignore"):
        return ((ranks * y).sum(-1) - n1 * (n1 + 1) / 2) / (n1 * n0)


def auroc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for ``labels`` (1 = positive): the probability
    that a random positive scores above a random negative, ties counting 1/2 (Mann–Whitney U
    / (n₁ n₀), Hanley & McNeil 1982). Both classes must be present."""
    s = _matrix(scores, "auroc")
    if s.ndim != 1 or not np.isfinite(s).all():
        raise ValueError("auroc: scores must be a 1-D array of finite numbers")
    y = _binary(labels, s.shape[0], "auroc")
    if y.min() == y.max():
        raise ValueError("auroc: labels hold one class only; AUROC needs both")
    return float(_auroc_rows(s[None], y[None])[0])


def probe_auroc(features, labels, *, folds: int = 5, seed: int = 0, c: float = 1.0,
                n_boot: int = 1000, level: float = 0.95) -> dict:
    """Recoverability Recov(I; Z): held-out AUROC of a logistic-regression probe (L2, inverse
    strength ``c``, features standardised on each training fold) predicting ``labels``
    from ``features`` (N, D).

    Stratified ``folds``-fold cross-validation, shuffled with ``seed`` (folds are lowered to
    the minority-class count so that every test fold holds both classes): each fold's probe
    scores only items it never saw. ``auroc`` is the mean of the test folds' AUROCs (as
    scikit-learn's ``cross_val_score(scoring="roc_auc")``); ``ci_low``/``ci_high`` a
    percentile bootstrap of that mean, resampling each test fold's items (``n_boot``
    resamples, same seed; the probes are not refitted, so refitting variance is left out).
    Also ``pooled_auroc`` (one AUROC over all out-of-fold scores, which mixes the folds'
    score scales), ``fold_auroc_std``, ``folds`` used, ``n``, ``n_positive``. With fewer than 2
    items in a class every score is None and ``note`` says why (not an error: a model may
    simply be always right or always wrong).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _matrix(features, "probe_auroc")
    if x.ndim != 2:
        raise ValueError(f"probe_auroc: features must be (N, D), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("probe_auroc: features contain NaN or inf; fix or drop those items")
    y = _binary(labels, x.shape[0], "probe_auroc")
    folds = check_int("probe_auroc: folds", folds, 2)
    n_boot = check_int("probe_auroc: n_boot", n_boot, 1)
    if not 0 < level < 1:
        raise ValueError(f"probe_auroc: level={level!r} must be in (0, 1)")
    n_pos = int(y.sum())
    out = {"auroc": None, "ci_low": None, "ci_high": None, "pooled_auroc": None,
           "fold_auroc_std": None, "folds": 0, "n": int(y.size), "n_positive": n_pos}
    minority = min(n_pos, y.size - n_pos)
    if minority < 2:
        out["note"] = (f"{minority} item(s) in the smaller class ({n_pos} of {y.size} "
                       "positive): a held-out probe needs at least 2 per class")
        return out
    k = min(int(folds), minority)
    rng = np.random.default_rng(seed)
    oof, per_fold, boot = np.zeros(y.size), [], []
    for train, test in StratifiedKFold(n_splits=k, shuffle=True,
                                       random_state=seed).split(x, y):
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        probe.fit(x[train], y[train])
        oof[test] = probe.decision_function(x[test])
        per_fold.append(_auroc_rows(oof[test][None], y[test][None])[0])
        idx = rng.integers(0, test.size, size=(n_boot, test.size))
        boot.append(_auroc_rows(oof[test][idx], y[test][idx]))  # NaN: resample of one class
    boot = np.array(boot)
    ok = np.isfinite(boot)
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.where(ok, boot, 0.0).sum(0) / ok.sum(0)
    means = means[np.isfinite(means)]
    out.update(auroc=float(np.mean(per_fold)), fold_auroc_std=float(np.std(per_fold)),
               pooled_auroc=float(_auroc_rows(oof[None], y[None])[0]), folds=k)
    if means.size:
        low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
        out["ci_low"], out["ci_high"] = float(low), float(high)
    return out


def parse_answer(text: str) -> int | None:
    """The first number written in ``text`` as an integer (``"1,200"`` -> 1200, ``"-3"`` ->
    -3, ``"12.0"`` -> 12), or None when there is none or the first one is not a whole number
    (``"2.5"``). Number words are not read."""
    if not isinstance(text, str):
        raise ValueError(f"parse_answer: expected a str, got {type(text).__name__}")
    m = _NUMBER.search(text)
    if m is None:
        return None
    value = float(m.group().replace(",", "")) if "." in m.group() else None
    if value is not None:
        return int(value) if value.is_integer() else None
    return int(m.group().replace(",", ""))
