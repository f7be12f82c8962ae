"""Attention entropy per head, and entropy-collapse / entropic-overload flags.

For query row i with allowed keys K_i (causal, non-padding):

    H_i = −Σ_{j∈K_i} a_ij log a_ij        (0·log 0 = 0)
    Ĥ_i = H_i / log|K_i|                   (rows with |K_i| ≥ 2; Ĥ ∈ [0, 1])

A head's mean entropy is the average of H_i over all valid query rows of a corpus, its
normalised entropy the average of Ĥ_i. A head is flagged *collapsed* when its mean Ĥ is
below ``collapse`` (attention locked on ~one key: Zhai et al. 2023, "Stabilizing
Transformer Training by Preventing Attention Entropy Collapse") and *overloaded* when above
``overload`` (near-uniform attention: Jha & Reagen 2025, "Entropy-Guided Attention for
Private LLMs", entropic overload). Corpus means come from per-batch sums (see
``models.capture.attention_entropy_reducer``): Σ H_i, Σ Ĥ_i, #rows, #rows with ≥ 2 keys.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

COLLAPSE = 0.1
OVERLOAD = 0.9


@dataclass(frozen=True)
class AttentionEntropy:
    """Per-head means (shape (..., H)) and flags; NaN where a head saw no valid row."""

    mean: np.ndarray
    normalised: np.ndarray
    collapsed: np.ndarray
    overloaded: np.ndarray


def _sums(x, name: str) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be numeric, got {type(x).__name__}") from None
    if arr.size == 0:
        raise ValueError(f"{name} is empty: pass per-head sums of shape (..., H) with H >= 1")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf: the attention probabilities overflowed; "
                         "recompute them in float32")
    if (arr < 0).any():
        raise ValueError(f"{name} has negative entries: sums of entropies and counts are >= 0")
    return arr


def _thresholds(collapse: float, overload: float) -> None:
    if not 0 <= collapse < overload <= 1:
        raise ValueError(f"thresholds must satisfy 0 <= collapse < overload <= 1, got "
                         f"collapse={collapse}, overload={overload}")


def attention_entropy_from_sums(entropy_sum, norm_entropy_sum, rows, norm_rows, *,
                                collapse: float = COLLAPSE,
                                overload: float = OVERLOAD) -> AttentionEntropy:
    """Mean H and mean Ĥ per head from summed statistics; see the module docstring.

    ``entropy_sum``/``norm_entropy_sum``: (..., H) sums over rows (e.g. (L, H) for all
    layers); ``rows``/``norm_rows``: counts broadcastable to them (per layer, or scalars).
    """
    _thresholds(collapse, overload)
    h, hn = _sums(entropy_sum, "entropy_sum"), _sums(norm_entropy_sum, "norm_entropy_sum")
    r, rn = _sums(rows, "rows"), _sums(norm_rows, "norm_rows")
    if h.shape != hn.shape:
        raise ValueError(f"entropy_sum {h.shape} and norm_entropy_sum {hn.shape} must have "
                         "the same shape (..., H)")
    r, rn = (c[..., None] if c.ndim and c.shape == h.shape[:-1] else c for c in (r, rn))
    try:
        r, rn = np.broadcast_to(r, h.shape), np.broadcast_to(rn, h.shape)
    except ValueError:
        raise ValueError(f"rows {np.shape(rows)} / norm_rows {np.shape(norm_rows)} do not "
                         f"broadcast to the sums' shape {h.shape}") from None
    if (rn > r).any():
        raise ValueError("norm_rows exceeds rows: rows with >= 2 keys are a subset of all rows")
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(r > 0, h / r, np.nan)
        norm = np.where(rn > 0, hn / rn, np.nan)
    if (norm > 1 + 1e-9).any():
        raise ValueError("normalised entropy above 1: norm_entropy_sum must sum H_i/log|K_i| "
                         "over the rows counted in norm_rows")
    return AttentionEntropy(mean, norm, norm < collapse, norm > overload)


def attention_entropy(probs, mask=None, *, collapse: float = COLLAPSE,
                      overload: float = OVERLOAD) -> AttentionEntropy:
    """Per-head attention entropy of probabilities ``probs`` (B, H, Tq, Tk) or (H, Tq, Tk).

    ``mask``: bool (B, Tq, Tk) / (Tq, Tk) of keys each query may attend to (default: all);
    rows with no allowed key are skipped. Probabilities outside the mask are ignored.
    Returns per-head means over all valid rows of all sequences.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim == 3:
        p = p[None]
    if p.ndim != 4 or 0 in p.shape:
        raise ValueError(f"probs must be a non-empty (B, H, Tq, Tk) or (H, Tq, Tk) array, got "
                         f"shape {np.shape(probs)}")
    b, _, tq, tk = p.shape
    m = np.ones((b, tq, tk), dtype=bool) if mask is None else np.asarray(mask)
    if m.ndim == 2:
        m = m[None]
    if m.dtype != bool or m.shape != (b, tq, tk):
        raise ValueError(f"mask must be bool of shape {(b, tq, tk)} (or {(tq, tk)}), got "
                         f"{m.dtype} {np.shape(mask)}")
    m = m[:, None]
    if not np.isfinite(p[np.broadcast_to(m, p.shape)]).all():
        raise ValueError("probs contain NaN or inf: recompute attention in float32")
    pm = np.where(m, p, 0.0)
    if (pm < 0).any():
        raise ValueError("probs has negative entries: pass softmax probabilities, not logits")
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.where(pm > 0, pm * np.log(pm), 0.0).sum(-1)  # (B, H, Tq)
    keys = m[:, 0].sum(-1)  # (B, Tq)
    valid, normed = keys > 0, keys > 1
    inv_log = np.where(normed, 1.0 / np.log(np.maximum(keys, 2)), 0.0)
    return attention_entropy_from_sums(
        (ent * valid[:, None]).sum((0, 2)), (ent * inv_log[:, None]).sum((0, 2)),
        int(valid.sum()), int(normed.sum()), collapse=collapse, overload=overload)
