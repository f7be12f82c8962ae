"""Neural collapse (NC1–NC4) and CDNV at vocabulary scale, from class statistics.

Notation: K included classes (seen at least twice), N samples, class means μ_c, global mean
μ_G (mean of class means by default, or the sample mean — they differ under Zipfian class
frequencies), centred means M̃ = [μ_c − μ_G] (K×D), within-class covariance
Σ_W = (1/N) Σ_c Σ_{i∈c} (x_i − μ_c)(x_i − μ_c)ᵀ, between-class Σ_B = M̃ᵀM̃ / K. Sources:
Papyan, Han & Donoho 2020 (PNAS, "Prevalence of neural collapse during the terminal phase
of deep learning training"); Galanti, György & Hutter 2022 (ICLR, "On the role of neural
collapse in transfer learning"); Wu & Papyan 2024 (NeurIPS, "Linguistic Collapse: neural
collapse in (large) language models"); Dang et al. 2023 (ICML, "Neural collapse in deep
linear networks: from balanced to imbalanced data"), who show that with imbalanced classes
the collapsed (bias-free) means are orthogonal with norms set by n_c — so equinorm_cv and
etf_error need not reach 0 there. Σ_W averages over samples (Papyan's Ave_{i,c}), so
frequent classes weigh more; CDNV and the NC2 quantities weigh classes equally.

Nothing K×K is ever formed: NC1, NC2 and the cosine statistics go through D×D matrices
(O(K·D²)), CDNV through row tiles of the upper triangle (O(K²·D) time, O(tile) memory).
"""

from __future__ import annotations

import math

import numpy as np

from collapsekit.stats.classes import SINGLETONS, ClassMoments, ClassStats
from collapsekit.stats.moments import to_numpy64

__all__ = ["neural_collapse", "collapse_metrics", "nc1", "cdnv", "cdnv_pairs", "equinorm_cv",
           "etf_error",
           "mean_cosine", "self_duality", "nc4_predictions", "ncc_agreement"]

_U = np.finfo(np.float64).eps
_TILE_BYTES = 2**25


def _matrix(x, what: str, *, rows: int = 1, cols: int | None = None) -> np.ndarray:
    arr = to_numpy64(x)
    if arr.ndim != 2 or arr.shape[0] < rows or arr.shape[1] < 1:
        raise ValueError(f"{what}: expected a 2-D array with at least {rows} rows, got shape "
                         f"{arr.shape}")
    if cols is not None and arr.shape[1] != cols:
        raise ValueError(f"{what}: expected {cols} columns (the feature dimension), got "
                         f"{arr.shape[1]}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: contains NaN or inf; fix or drop those rows first")
    return arr


def _sq_dist_to_scaled_identity(gram: np.ndarray, weights: np.ndarray, k: int, c: float) -> float:
    """‖N diag(w) Nᵀ − c I_k‖_F² from the m×m Gram C = NᵀN of a k×m matrix N, in O(m³).

    N diag(w) Nᵀ has the eigenvalues of C^{1/2} diag(w) C^{1/2} (m of them, of which the
    m − k smallest in magnitude are zero when m > k) plus k − m zeros: summing (λ − c)² over
    them never subtracts two large numbers, so a perfect fit gives 0 to round-off.
    """
    ev, vec = np.linalg.eigh(gram)
    root = vec * np.sqrt(np.clip(ev, 0.0, None))
    lam = np.linalg.eigvalsh((root.T * weights) @ root)
    m = len(lam)
    if m > k:
        lam = lam[np.argsort(np.abs(lam))[m - k:]]
    return float(np.sum((lam - c) ** 2) + max(k - m, 0) * c * c)


def nc1(sigma_w, centred_means, *, rtol: float | None = None) -> float:
    """NC1 = Tr(Σ_W Σ_B⁺) / K (Papyan et al. 2020), Σ_B = M̃ᵀM̃ / K.

    Σ_B⁺ from ``eigh``: eigenvalues at most ``rtol · λ_max`` (default D·u, u = float64
    epsilon) count as zero. Papyan's code inverts the top K − 1 singular directions (scipy
    ``svds``), the same thing when Σ_B has rank K − 1 < D. 0 for exact collapse.
    """
    m = _matrix(centred_means, "nc1 centred_means", rows=2)
    k, d = m.shape
    sw = _matrix(sigma_w, "nc1 sigma_w", rows=d, cols=d)
    if sw.shape[0] != d:
        raise ValueError(f"nc1: sigma_w must be {d}×{d} like the means' dimension, got {sw.shape}")
    ev, vec = np.linalg.eigh(m.T @ m / k)
    tol = (d * _U if rtol is None else rtol) * max(ev[-1], 0.0)
    keep = ev > tol
    if not keep.any():
        raise ValueError("nc1: the class means are all equal (Σ_B = 0), so NC1 is undefined")
    v = vec[:, keep]
    return float(np.einsum("ij,ij->j", v, sw @ v) @ (1.0 / ev[keep]) / k)


def cdnv(centred_means, variances, *, p: float = 1, tile_bytes: int = _TILE_BYTES) -> float:
    """Mean class-distance normalised variance over class pairs i < j (Galanti et al. 2022):

        CDNV = mean_{i<j} (var_i + var_j) / (2 ‖μ_i − μ_j‖^{2p}),  var_c = E_{x∈c} ‖x − μ_c‖².

    ``p = 1`` is the paper; ``p = 2`` reproduces the Linguistic-Collapse code (Wu & Papyan
    2024), which divides by ‖μ_i − μ_j‖⁴. Distances come from ‖a‖² + ‖b‖² − 2a·b in tiles
    of ≤ ``tile_bytes`` per array, upper triangle only; pairs where that cancels badly are
    recomputed directly. Coincident means give ``inf``, except a pair with coincident
    means *and* zero variances (e.g. two classes seen once at the same point): 0/0 is
    undefined and that pair is left out of the mean (see :func:`cdnv_pairs`; the LC code
    gives NaN there, which makes its whole mean NaN). NaN when no pair is defined.
    """
    return cdnv_pairs(centred_means, variances, p=p, tile_bytes=tile_bytes)[0]


def cdnv_pairs(centred_means, variances, *, p: float = 1,
               tile_bytes: int = _TILE_BYTES) -> tuple[float, int]:
    """(:func:`cdnv`, number of 0/0 pairs left out of its mean)."""
    m = _matrix(centred_means, "cdnv centred_means", rows=2)
    var = to_numpy64(variances)
    if var.shape != (len(m),) or not np.isfinite(var).all() or (var < 0).any():
        raise ValueError(f"cdnv: variances must be {len(m)} finite values >= 0 (one per class "
                         f"mean), got shape {var.shape}")
    if not (isinstance(p, (int, float)) and not isinstance(p, bool) and p > 0):
        raise ValueError(f"cdnv: p must be a positive number (1: paper, 2: LC code), got {p!r}")
    k = len(m)
    sq = np.einsum("ij,ij->i", m, m)
    step = max(1, int(tile_bytes) // (8 * k))
    total, undefined = 0.0, 0
    for i0 in range(0, k, step):
        i1 = min(k, i0 + step)
        d2 = sq[i0:i1, None] + sq[None, i0:] - 2.0 * (m[i0:i1] @ m[i0:].T)
        scale = sq[i0:i1, None] + sq[None, i0:]
        rows, cols = np.nonzero(d2 <= 1e-6 * scale)  # cancellation: recompute exactly
        if rows.size:
            diff = m[i0 + rows] - m[i0 + cols]
            d2[rows, cols] = np.einsum("ij,ij->i", diff, diff)
        upper = np.triu(np.ones((i1 - i0, k - i0), dtype=bool), k=1)
        d2 = d2[upper]
        num = (var[i0:i1, None] + var[None, i0:])[upper]
        zero = d2 <= 0
        if (zero & (num > 0)).any():
            return math.inf, undefined
        undefined += int(zero.sum())
        total += float(np.sum(num[~zero] / (2.0 * d2[~zero] ** p)))
    pairs = k * (k - 1) // 2 - undefined
    return (total / pairs if pairs else math.nan), undefined


def equinorm_cv(centred_means, *, ddof: int = 0) -> float:
    """NC2 equinorm: Std_c ‖μ_c − μ_G‖ / Avg_c ‖μ_c − μ_G‖ (Papyan et al. 2020, Fig. 2).

    ``ddof=0`` (population std) by default; Papyan's notebook uses ``torch.std`` (ddof=1).
    """
    m = _matrix(centred_means, "equinorm_cv centred_means", rows=2)
    norms = np.linalg.norm(m, axis=1)
    if norms.mean() == 0:
        raise ValueError("equinorm_cv: all class means equal the global mean")
    return float(np.std(norms, ddof=ddof) / norms.mean())


def etf_error(centred_means) -> float:
    """NC2 distance to a simplex ETF: ‖M̃M̃ᵀ/‖M̃M̃ᵀ‖_F − (I − 11ᵀ/K)/√(K−1)‖_F.

    In O(K·D²): with g = ‖M̃ᵀM̃‖_F (= ‖M̃M̃ᵀ‖_F) the difference is NNᵀ − I/√(K−1) for
    N = [M̃/√g, 1/√(K√(K−1))], whose Frobenius norm follows from the eigenvalues of NᵀN
    ((D+1)×(D+1)). 0 for a simplex ETF of any scale and rotation.
    """
    m = _matrix(centred_means, "etf_error centred_means", rows=2)
    k, d = m.shape
    mm = m.T @ m
    g = np.linalg.norm(mm)
    if g == 0:
        raise ValueError("etf_error: all class means equal the global mean")
    kappa = 1.0 / math.sqrt(k * math.sqrt(k - 1))
    col = kappa * m.sum(axis=0) / math.sqrt(g)
    gram = np.block([[mm / g, col[:, None]], [col[None, :], np.array([[kappa**2 * k]])]])
    return math.sqrt(_sq_dist_to_scaled_identity(gram, np.ones(d + 1), k, 1 / math.sqrt(k - 1)))


def _unit_rows(m: np.ndarray, what: str) -> np.ndarray:
    norms = np.linalg.norm(m, axis=1)
    if (norms == 0).any():
        raise ValueError(f"{what}: {int((norms == 0).sum())} row(s) are zero vectors (a class "
                         "mean equal to the global mean), whose direction is undefined")
    return m / norms[:, None]


def mean_cosine(centred_means) -> tuple[float, float]:
    """(mean, population std) of cos(μ_i − μ_G, μ_j − μ_G) over the K(K−1)/2 pairs i < j
    (Papyan et al. 2020, Fig. 3: equiangularity; a simplex ETF has mean −1/(K−1), std 0).

    With unit rows U: mean = (‖Σ_c u_c‖² − K) / (K(K−1)), and the squared deviations sum to
    ½‖UUᵀ − m 11ᵀ − (1 − m) I‖_F², from the (D+1)×(D+1) Gram of [U, 1] (O(K·D²)).
    """
    u = _unit_rows(_matrix(centred_means, "mean_cosine centred_means", rows=2), "mean_cosine")
    k, d = u.shape
    s = u.sum(axis=0)
    mean = (s @ s - k) / (k * (k - 1))
    gram = np.block([[u.T @ u, s[:, None]], [s[None, :], np.array([[float(k)]])]])
    weights = np.append(np.ones(d), -mean)
    ss = _sq_dist_to_scaled_identity(gram, weights, k, 1.0 - mean)
    return float(mean), math.sqrt(ss / (k * (k - 1)))


def self_duality(classifier, centred_means) -> dict[str, float]:
    """NC3 for classifier rows W_c aligned with the centred means (K×D each):

    ``duality_error`` = ‖W/‖W‖_F − M̃/‖M̃‖_F‖_F, unsquared (Papyan et al. 2020 plot its
    square; the Linguistic-Collapse code reported the unsquared form only for part of its
    history, so compare with the version you quote), ``duality_cos_mean`` =
    mean_c cos(W_c, μ_c − μ_G) and ``uniform_duality_cv`` = std/mean of those cosines
    (UNC3, Wu & Papyan 2024).
    """
    m = _matrix(centred_means, "self_duality centred_means", rows=2)
    w = _matrix(classifier, "self_duality classifier", rows=2, cols=m.shape[1])
    if w.shape != m.shape:
        raise ValueError(f"self_duality: classifier has {w.shape[0]} rows but there are "
                         f"{m.shape[0]} class means; pass the rows of the same classes")
    wn, mn = np.linalg.norm(w), np.linalg.norm(m)
    if wn == 0 or mn == 0:
        raise ValueError("self_duality: the classifier or the centred means are all zero")
    cos = np.einsum("ij,ij->i", _unit_rows(w, "self_duality classifier"),
                    _unit_rows(m, "self_duality centred_means"))
    return {"duality_error": float(np.linalg.norm(w / wn - m / mn)),
            "duality_cos_mean": float(cos.mean()),
            "uniform_duality_cv": float(cos.std() / abs(cos.mean())) if cos.mean() else math.inf}


def nc4_predictions(features, class_means, classifier, *, bias=None,
                    tile_bytes: int = _TILE_BYTES) -> tuple[np.ndarray, np.ndarray]:
    """NC4 (Papyan et al. 2020): per row x, (argmin_c ‖x − μ_c‖, argmax_c W_c·x + b_c), both
    indices into the K rows of ``class_means`` / ``classifier``. Tiled over rows."""
    mu = _matrix(class_means, "nc4 class_means", rows=2)
    w = _matrix(classifier, "nc4 classifier", rows=2, cols=mu.shape[1])
    if w.shape[0] != mu.shape[0]:
        raise ValueError(f"nc4: classifier has {w.shape[0]} rows but there are {mu.shape[0]} "
                         "class means; pass the rows of the same classes")
    x = _matrix(features, "nc4 features", rows=1, cols=mu.shape[1])
    b = np.zeros(len(w)) if bias is None else to_numpy64(bias)
    if b.shape != (len(w),) or not np.isfinite(b).all():
        raise ValueError(f"nc4: bias must hold {len(w)} finite values, got shape {b.shape}")
    centre = mu.mean(axis=0)  # distances are translation invariant; centring avoids cancellation
    mu_c = mu - centre
    half_sq = 0.5 * np.einsum("ij,ij->i", mu_c, mu_c)
    step = max(1, int(tile_bytes) // (8 * len(mu)))
    ncc, clf = np.empty(len(x), dtype=np.int64), np.empty(len(x), dtype=np.int64)
    for i in range(0, len(x), step):
        xi = x[i:i + step]
        ncc[i:i + step] = np.argmax((xi - centre) @ mu_c.T - half_sq, axis=1)
        clf[i:i + step] = np.argmax(xi @ w.T + b, axis=1)
    return ncc, clf


def ncc_agreement(features, class_means, classifier, *, bias=None) -> float:
    """NC4: fraction of rows where the nearest class mean equals the classifier's argmax."""
    ncc, clf = nc4_predictions(features, class_means, classifier, bias=bias)
    return float(np.mean(ncc == clf))


def collapse_metrics(stats: ClassStats, *, classifier=None, cdnv_power: float = 1,
                     rtol: float | None = None) -> dict:
    """All NC metrics of finalized class statistics; ``classifier`` (num_classes × D, row c
    for class id c) adds NC3. Also: the sizes K (``n_classes``) and D (``dim``), which set
    how NC1 can be compared (Tr(Σ_W Σ_B⁺)/K is unstable when K ≈ D: Σ_B has rank ≤ K − 1,
    so its smallest inverted eigenvalues blow up as K − 1 approaches D), counts (included
    samples, singleton and unseen classes, samples with untracked labels, 0/0 CDNV pairs
    left out), the global mean used, the singleton handling and the CDNV power."""
    m = stats.centred_means
    cd, undefined = cdnv_pairs(m, stats.variances, p=cdnv_power)
    out = {"nc1": nc1(stats.sigma_w, m, rtol=rtol), "cdnv": cd,
           "equinorm_cv": equinorm_cv(m), "etf_error": etf_error(m)}
    out["cos_mean"], out["cos_std"] = mean_cosine(m)
    if classifier is not None:
        w = to_numpy64(classifier)
        if w.ndim != 2 or w.shape[1] != m.shape[1] or w.shape[0] <= stats.classes.max():
            raise ValueError(f"classifier must be (num_classes, {m.shape[1]}) with row c for "
                             f"class id c, got shape {w.shape}")
        out.update(self_duality(w[stats.classes], m))
    out.update(n_classes=len(stats.classes), dim=m.shape[1], n_samples=stats.n_samples,
               singleton_classes=stats.singleton_classes, unseen_classes=stats.unseen_classes,
               ignored_samples=stats.ignored_samples, cdnv_undefined_pairs=undefined,
               global_mean=stats.global_mean_kind, singletons=stats.singletons,
               cdnv_power=cdnv_power)
    return out


def neural_collapse(features, labels=None, *, classifier=None, num_classes: int | None = None,
                    max_classes: int | None = None, min_count: int = 1,
                    global_mean: str = "class_means", cdnv_power: float = 1,
                    singletons: str = "exclude", rtol: float | None = None) -> dict:
    """NC1, CDNV, NC2 (equinorm, ETF error, pairwise cosines) and, given ``classifier``
    (rows indexed by class id), NC3 of labelled features — see the module docstring.

    ``features``: (N, D) with integer ``labels`` (N,), or a :class:`ClassMoments` filled
    over a stream (``labels`` None). Classes kept: ``counts >= min_count``, the
    ``max_classes`` most frequent when given; then classes seen once are excluded (no
    within-class variance) and counted in ``singleton_classes``, or with
    ``singletons="include"`` kept with variance 0 as the Linguistic-Collapse code does
    (:meth:`ClassMoments.finalize`). ``global_mean``: "class_means" (default) or "sample";
    ``cdnv_power``: see :func:`cdnv`.
    """
    if singletons not in SINGLETONS:
        raise ValueError(f"neural_collapse: singletons must be one of {SINGLETONS}, got "
                         f"{singletons!r}")
    if isinstance(features, ClassMoments):
        if labels is not None or max_classes is not None or min_count != 1:
            raise ValueError("neural_collapse: with a ClassMoments pass no labels; choose "
                             "classes when building it (ClassMoments.from_counts)")
        acc = features
    else:
        x = _matrix(features, "neural_collapse features", rows=1)
        lab = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
        if lab.ndim != 1 or len(lab) != len(x):
            raise ValueError(f"neural_collapse: labels must be 1-D with one label per feature "
                             f"row ({len(x)}), got shape {lab.shape}")
        if not np.issubdtype(lab.dtype, np.integer) or (lab < 0).any():
            raise ValueError("neural_collapse: labels must be non-negative integer class ids")
        if num_classes is None:
            num_classes = max(int(lab.max()) + 1, 2 if classifier is None else len(classifier))
        if lab.max() >= num_classes:
            raise ValueError(f"neural_collapse: label {int(lab.max())} is outside "
                             f"[0, {num_classes}); pass a larger num_classes")
        counts = np.bincount(lab, minlength=num_classes)
        least = 1 if singletons == "include" else 2
        if (counts >= least).sum() < 2:
            raise ValueError(f"neural_collapse: {int((counts >= least).sum())} class(es) have "
                             f"{least} or more samples; need at least 2 such classes: pass "
                             "more data")
        acc = ClassMoments.from_counts(counts, x.shape[1], max_classes=max_classes,
                                       min_count=min_count)
        acc.update(x, lab)
    return collapse_metrics(acc.finalize(global_mean=global_mean, singletons=singletons),
                            classifier=classifier, cdnv_power=cdnv_power, rtol=rtol)
