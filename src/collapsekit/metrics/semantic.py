"""Semantic diversity of a set of embeddings: mean pairwise cosine, Chamfer distance, Vendi
score and Semantic Volume.

Inputs are (n, d) arrays of any real dtype; all arithmetic is float64. Cosine-based metrics
reject zero rows (a zero vector has no direction) instead of silently producing NaN.
"""

from __future__ import annotations

import math

import numpy as np

_BLOCK = 2048  # rows of `a` per block in chamfer_distance: memory stays at _BLOCK × len(b)


def as_matrix(x, name: str = "embeddings", *, min_rows: int = 1) -> np.ndarray:
    """`x` as a finite float64 (n, d) array with n >= min_rows and d >= 1, else ValueError."""
    if x is None:
        raise ValueError(f"{name} is None: pass an (n, d) array of embeddings")
    try:
        a = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a numeric (n, d) array, got {type(x).__name__}") from None
    if a.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, d), got shape {a.shape}: "
                         "stack one embedding per row")
    if a.shape[0] < min_rows:
        raise ValueError(f"{name} has {a.shape[0]} rows, needs at least {min_rows}: "
                         "pass more samples")
    if a.shape[1] == 0:
        raise ValueError(f"{name} has 0 columns: pass embeddings with d >= 1")
    bad = ~np.isfinite(a).all(axis=1)
    if bad.any():
        raise ValueError(f"{name} row {int(np.flatnonzero(bad)[0])} contains NaN or inf: "
                         "drop or recompute those rows")
    return a


def unit_rows(x, name: str = "embeddings", *, min_rows: int = 1) -> np.ndarray:
    """Rows of `x` scaled to unit L2 norm (overflow-safe); ValueError on zero rows."""
    a = as_matrix(x, name, min_rows=min_rows)
    scale = np.abs(a).max(axis=1)
    zero = np.flatnonzero(scale == 0)
    if zero.size:
        raise ValueError(f"{name} row {int(zero[0])} is a zero vector, which has no direction: "
                         "drop zero rows before computing cosines")
    a = a / scale[:, None]
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def mean_pairwise_cosine(embeddings) -> float:
    """Exact mean cosine similarity over the n(n-1)/2 distinct pairs, in O(nd).

    With unit rows û_i and s = Σ_i û_i:  mean_{i<j} cos(x_i, x_j) = (‖s‖² − Σ_i ‖û_i‖²) / (n(n−1)),
    the identity behind anisotropy (Ethayarajh 2019). Needs n >= 2.
    """
    u = unit_rows(embeddings, min_rows=2)
    n = u.shape[0]
    s = u.sum(axis=0)
    return float((s @ s - np.einsum("ij,ij->", u, u)) / (n * (n - 1)))


def _pair(a, b) -> tuple[np.ndarray, np.ndarray]:
    ua, ub = unit_rows(a, "a"), unit_rows(b, "b")
    if ua.shape[1] != ub.shape[1]:
        raise ValueError(f"a has dimension {ua.shape[1]} but b has {ub.shape[1]}: "
                         "embed both sets with the same model")
    return ua, ub


def mean_pairwise_cosine_between(a, b) -> float:
    """Mean cosine over all n·m cross pairs (a_i, b_j), in O((n+m)d):
    (Σ_i â_i)·(Σ_j b̂_j) / (n·m). Cross-set homogeneity (e.g. two models' outputs)."""
    ua, ub = _pair(a, b)
    return float(ua.sum(axis=0) @ ub.sum(axis=0) / (ua.shape[0] * ub.shape[0]))


def chamfer_distance(a, b) -> float:
    """Symmetric Chamfer distance with cosine distance d(x, y) = 1 − cos(x, y):

        CD(A, B) = 1/|A| Σ_{a∈A} min_{b∈B} d(a, b) + 1/|B| Σ_{b∈B} min_{a∈A} d(a, b)

    The sum of the two directed mean nearest-neighbour distances, as in the point-set Chamfer
    distance of Fan, Su & Guibas 2017 (CVPR, "A Point Set Generation Network"), with the
    squared Euclidean distance replaced by cosine distance. Range [0, 4]; 0 iff every point
    of each set has a same-direction point in the other. O(n·m·d) time, blocked memory.
    """
    ua, ub = _pair(a, b)
    best_b = np.full(ub.shape[0], -np.inf)
    sum_a = 0.0
    for start in range(0, ua.shape[0], _BLOCK):
        sim = ua[start:start + _BLOCK] @ ub.T
        sum_a += np.minimum(sim.max(axis=1), 1.0).sum()
        np.maximum(best_b, sim.max(axis=0), out=best_b)
    return float((1.0 - sum_a / ua.shape[0]) + (1.0 - np.minimum(best_b, 1.0).mean()))


def _order(q) -> float:
    if isinstance(q, str) and q.lower() == "inf":
        return math.inf
    try:
        q = float(q)
    except (TypeError, ValueError):
        raise ValueError(f"q must be a number >= 0 or inf, got {q!r}") from None
    if math.isnan(q) or q < 0:
        raise ValueError(f"q must be a number >= 0 or inf, got {q!r}")
    return q


def _kernel(kernel) -> np.ndarray:
    k = as_matrix(kernel, "kernel")
    n = k.shape[0]
    if k.shape != (n, n):
        raise ValueError(f"kernel must be a square (n, n) matrix, got shape {k.shape}")
    if not np.allclose(k, k.T, rtol=0, atol=1e-6):
        raise ValueError("kernel is not symmetric: pass a symmetric similarity matrix "
                         "(e.g. (K + K.T) / 2)")
    diag = np.diag(k)
    if not np.allclose(diag, 1.0, rtol=0, atol=1e-6):
        raise ValueError("kernel diagonal must be 1 (k(x, x) = 1, Friedman & Dieng 2023): "
                         "normalise with K / np.sqrt(np.outer(np.diag(K), np.diag(K)))")
    return (k + k.T) / 2


def _renyi(p: np.ndarray, q: float) -> float:
    """Order-q Rényi entropy (natural log) of a probability vector with positive entries."""
    if q == 0:
        return math.log(p.size)
    if q == 1:
        return float(-(p * np.log(p)).sum())
    if math.isinf(q):
        return float(-math.log(p.max()))
    return float(math.log((p ** q).sum()) / (1.0 - q))


def vendi_score(x=None, *, kernel=None, q=1) -> float:
    """Vendi score (Friedman & Dieng 2023, "The Vendi Score: A Diversity Evaluation Metric for
    Machine Learning", TMLR; order q from Pasarkar & Dieng 2024):

        VS_q = exp(H_q(λ)),  λ = eigenvalues of K/n,  H_q = log(Σ λ_i^q) / (1 − q)

    with the limits H_1 = −Σ λ log λ (Shannon, the paper's default), H_∞ = −log max λ and
    H_0 = log #{λ_i > 0}. VS ranges from 1 (all samples identical) to n (all dissimilar).

    Pass exactly one of
      x: (n, d) embeddings -> cosine kernel K = X̂X̂ᵀ on L2-normalised rows. When n > d the
         d×d dual X̂ᵀX̂/n is used (same nonzero eigenvalues), so the cost is O(n·min(n,d)²);
      kernel: (n, n) symmetric PSD similarity with unit diagonal, checked to 1e-6 (float32
         round-off passes) and never rescaled: a non-unit diagonal is an error.
    Eigenvalues below the numerical-rank tolerance (size · machine-eps · λ_max) count as 0.
    """
    if (x is None) == (kernel is None):
        raise ValueError("pass exactly one of x (an (n, d) embedding array) or "
                         "kernel (an (n, n) similarity matrix)")
    q = _order(q)
    if kernel is None:
        u = unit_rows(x, "x")
        n, d = u.shape
        m = (u.T @ u if n > d else u @ u.T) / n
    else:
        k = _kernel(kernel)
        n = k.shape[0]
        m = k / n
    lam = np.linalg.eigvalsh(m)
    if kernel is not None and lam[0] < -1e-6:
        raise ValueError(f"kernel is not positive semidefinite (smallest eigenvalue of K/n is "
                         f"{lam[0]:.3g}): use a PSD similarity such as cosine or RBF")
    lam = lam[lam > max(m.shape[0], n) * np.finfo(np.float64).eps * lam[-1]]
    return float(math.exp(_renyi(lam / lam.sum(), q)))


def semantic_volume(embeddings, *, eps: float = 1e-3) -> float:
    """Semantic Volume (Li et al. 2025, "Semantic Volume: Quantifying and Detecting both
    External and Internal Uncertainty in LLMs", arXiv:2502.21239):

        SV = log det(ṼᵀṼ + ε I_n),   Ṽ = [v_1/‖v_1‖, …, v_n/‖v_n‖] ∈ R^{d×n}

    the log of the (regularised) squared volume spanned by the n unit embeddings; larger means
    more dispersed samples (higher uncertainty). No centering. Computed from the singular
    values σ of the n×d matrix of unit rows: Σ log(σ_i² + ε) + (n − min(n, d)) log ε, i.e.
    O(n·d·min(n, d)), exact for n > d too (the Gram matrix then has rank ≤ d).

    ε keeps the log finite for duplicated samples or n > d; every rank-deficient direction
    contributes log ε. The paper's text gives the εI term but collapsekit could not confirm its
    value; the default 1e-3 follows EigenScore's α (Chen et al. 2024). The paper also reports
    an optional PCA of the embeddings beforehand; apply it to `embeddings` if wanted.
    Orthonormal embeddings give n·log(1 + ε); one sample gives log(1 + ε).
    """
    u = unit_rows(embeddings)
    try:
        eps = float(eps)
    except (TypeError, ValueError):
        raise ValueError(f"eps must be a positive number, got {eps!r}") from None
    if not (eps > 0 and math.isfinite(eps)):
        raise ValueError(f"eps must be a positive finite number, got {eps!r}")
    s = np.linalg.svd(u, compute_uv=False)
    return float(np.log(s * s + eps).sum() + (u.shape[0] - s.size) * math.log(eps))
