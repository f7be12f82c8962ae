"""Compression vs meaning of a hard clustering of item embeddings (Shani, Soffer, Jurafsky,
LeCun & Shwartz-Ziv 2025, "From Tokens to Thoughts: How LLMs and Humans Trade Compression
for Meaning", arXiv:2505.17117).

Items X (N rows of an embedding matrix, each item equally likely, p(x) = 1/N) are mapped
to clusters C by a hard assignment (a human category, or a k-means cluster). Then

- rate (complexity) I(X;C) = H(C) − H(C|X) = H(C) = log2 N − (1/N) Σ_c |c| log2 |c| bits
  (H(C|X) = 0 for a hard assignment);
- distortion = (1/N) Σ_c |c| σ_c², σ_c² = (1/|c|) Σ_{x∈c} ‖x − μ_c‖² (the mean squared
  Euclidean distance of an item to its cluster's centroid μ_c);
- the information-bottleneck objective L = I(X;C) + β·distortion. As β → 0 it is the rate
  (one cluster is optimal, L = 0); as β → ∞, L/β is the distortion (singletons are
  optimal).

Alignment with human categories is the adjusted mutual information (Vinh, Epps & Bailey
2010; scikit-learn) of the two labelings, and the typicality gradient is Spearman's ρ
between −‖x − μ_c‖ and the human typicality of the items of one category (ρ > 0: items the
model puts near the centroid are those humans rate typical).
"""

from __future__ import annotations

import numpy as np


def _codes(labels, name: str = "labels") -> np.ndarray:
    """Integer codes 0..K−1 of a 1-D sequence of hashable labels."""
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of cluster labels, got "
                         f"shape {arr.shape}")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError(f"{name} has NaN or infinite labels: give every item a cluster")
    return np.unique(arr, return_inverse=True)[1].reshape(-1)


def _matrix(x, n: int | None = None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"embeddings must be a non-empty (items, dim) matrix, got shape "
                         f"{x.shape}")
    if n is not None and x.shape[0] != n:
        raise ValueError(f"{x.shape[0]} embedding rows but {n} labels: give one label per "
                         "item")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf: check the model's output")
    return x


def partition_rate(labels) -> float:
    """I(X;C) in bits of the hard clustering ``labels`` of N equally likely items:
    log2 N − (1/N) Σ_c |c| log2 |c| (= H(C))."""
    sizes = np.bincount(_codes(labels)).astype(np.float64)
    n = sizes.sum()
    return float(max(np.log2(n) - (sizes * np.log2(sizes)).sum() / n, 0.0))


def centroid_distances(x, labels) -> np.ndarray:
    """‖x_i − μ_{c(i)}‖ for every item: Euclidean distance to its own cluster's centroid."""
    codes = _codes(labels)
    x = _matrix(x, codes.size)
    sums = np.zeros((codes.max() + 1, x.shape[1]))
    np.add.at(sums, codes, x)
    means = sums / np.bincount(codes)[:, None]
    return np.linalg.norm(x - means[codes], axis=1)


def partition_distortion(x, labels) -> float:
    """(1/N) Σ_c Σ_{x∈c} ‖x − μ_c‖²: the size-weighted mean of the within-cluster variances
    σ_c² (squared units of the embedding)."""
    return float(np.mean(centroid_distances(x, labels) ** 2))


def ib_objective(rate: float, distortion: float, beta: float) -> float:
    """L = rate + β·distortion (β ≥ 0: the price of one unit of distortion in bits)."""
    for name, v in (("rate", rate), ("distortion", distortion), ("beta", beta)):
        if not np.isfinite(v) or v < 0:
            raise ValueError(f"{name}={v!r} must be a finite number >= 0")
    return float(rate + beta * distortion)


def category_ami(human, model) -> float:
    """Adjusted mutual information (arithmetic normalisation, scikit-learn's default) between
    the human categories and the model's clusters: 1 = same partition, ≈ 0 = chance."""
    from sklearn.metrics import adjusted_mutual_info_score

    h, m = _codes(human, "human categories"), _codes(model, "model clusters")
    if h.size != m.size:
        raise ValueError(f"{h.size} human labels but {m.size} model labels: label the same "
                         "items")
    for name, codes in (("human categories", h), ("model clusters", m)):
        if codes.max() < 1:
            raise ValueError(f"the {name} form one cluster: AMI needs at least 2 on each side")
    return float(adjusted_mutual_info_score(h, m))


def typicality_spearman(distance, typicality) -> float:
    """Spearman's ρ between −distance (to the category centroid) and human typicality
    (higher = more typical) over the items of one category."""
    from scipy.stats import spearmanr

    d = np.asarray(distance, dtype=np.float64).reshape(-1)
    t = np.asarray(typicality, dtype=np.float64).reshape(-1)
    if d.size != t.size:
        raise ValueError(f"{d.size} distances but {t.size} typicality ratings: one per item")
    if d.size < 3:
        raise ValueError(f"a typicality correlation needs at least 3 items, got {d.size}")
    if not (np.isfinite(d).all() and np.isfinite(t).all()):
        raise ValueError("distances or typicality ratings contain NaN or inf: give every item "
                         "a number")
    if np.ptp(t) == 0 or np.ptp(d) == 0:
        raise ValueError("typicality ratings (or distances) are all equal: Spearman's rho is "
                         "undefined")
    return float(spearmanr(-d, t).statistic)


def kmeans_labels(x, k: int, *, seed: int = 0, n_init: int = 10) -> np.ndarray:
    """k-means (Lloyd, k-means++ starts, best of ``n_init`` by inertia; scikit-learn) cluster
    of each row of ``x``."""
    from sklearn.cluster import KMeans

    x = _matrix(x)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 2 <= k < x.shape[0]:
        raise ValueError(f"k={k!r} must be an integer in [2, {x.shape[0] - 1}] "
                         f"({x.shape[0]} items)")
    km = KMeans(n_clusters=int(k), n_init=n_init, random_state=seed).fit(x)
    return km.labels_.astype(np.int64)
