"""Context-driven geometry of number representations ("The Geometric Price of Discrete
Logic: Context-driven Manifold Dynamics of Number Representations", 2026; numbers seed paper).

The paper splits residual-stream activations of number tokens, by Gram–Schmidt, into a
class-agnostic component (the global structure every class shares, which keeps the numbers
from collapsing onto each other) and a class-specific divergence component (what tears the
task's classes, e.g. odd and even, apart); task context acts on them as a non-isometric
operator, and erasing the divergence component should bring parity to chance. Its code is
not public: the construction below is this package's reading of that definition.

All functions take one layer's states ``x`` (N items, D dimensions) as arrays and compute
in float64.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import check_int

__all__ = ["Decomposition", "component_shares", "decompose", "distortion", "gram_schmidt",
           "probe_accuracy", "project_out", "random_basis", "task_accuracy", "three_phases"]


def _states(x, what: str, min_rows: int = 2) -> np.ndarray:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected numbers, got {type(x).__name__}") from None
    if arr.ndim != 2 or arr.shape[0] < min_rows or arr.shape[1] == 0:
        raise ValueError(f"{what}: expected an (N, D) array with N >= {min_rows} items, got "
                         f"shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: states contain NaN or inf; run the model in float32")
    return arr


def _labels(labels, n: int, what: str) -> np.ndarray:
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"{what}: labels must be a 1-D array of {n} items, got shape {y.shape}")
    classes = np.unique(y)
    if classes.size < 2:
        raise ValueError(f"{what}: all {n} items are in one class ({classes[0]!r}); the "
                         "decomposition needs at least 2 classes: widen the number range")
    return y


def gram_schmidt(vectors, *, tol: float = 1e-10) -> np.ndarray:
    """Orthonormal columns (D, r) spanning ``vectors`` (k, D) taken in order: classical
    Gram–Schmidt with one re-orthogonalisation pass; a vector whose remainder has norm
    <= ``tol`` × its own norm (already in the span of earlier ones, or zero) is dropped."""
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim != 2 or not np.isfinite(v).all():
        raise ValueError(f"gram_schmidt: expected a finite (k, D) array, got shape {v.shape}")
    basis: list[np.ndarray] = []
    for row in v:
        norm = np.linalg.norm(row)
        r = row.copy()
        for _ in range(2):
            for q in basis:
                r -= (q @ r) * q
        rn = np.linalg.norm(r)
        if norm > 0 and rn > tol * norm:
            basis.append(r / rn)
    return np.array(basis).T if basis else np.zeros((v.shape[1], 0))


@dataclass(frozen=True)
class Decomposition:
    """``shared`` (D, a) and ``divergence`` (D, b) orthonormal bases, mutually orthogonal;
    ``classes``: the class labels in the order their mean differences were taken."""

    shared: np.ndarray
    divergence: np.ndarray
    classes: tuple


def decompose(x, labels, *, shared_rank: int = 0) -> Decomposition:
    """The shared / divergence split of one layer's states ``x`` (N, D) for class ``labels``.

    With μ the mean of all items, μ_k the mean of class k (classes c_1 < … < c_K) and W the
    within-class-centred states (x_i − μ_{y_i}):

    - shared candidates: μ (the offset all numbers share), then the top ``shared_rank``
      right singular vectors of W (directions along which items vary inside every class,
      e.g. magnitude);
    - divergence candidates: μ_{c_k} − μ_{c_1}, k = 2..K (the class-mean differences);
    - Gram–Schmidt over (shared candidates, divergence candidates) in that order: the first
      orthonormal vectors span the class-agnostic subspace S, the rest the class-specific
      divergence subspace Δ ⊥ S (what separates the class means beyond S). dim Δ <= K − 1.

    Each state is then x = P_S x + P_Δ x + rest (orthogonal parts; see
    :func:`component_shares`).
    """
    x = _states(x, "decompose")
    y = _labels(labels, x.shape[0], "decompose")
    shared_rank = check_int("decompose: shared_rank", shared_rank, 0, min(x.shape) - 1)
    classes = tuple(np.unique(y).tolist())
    means = np.stack([x[y == c].mean(0) for c in classes])
    shared = [x.mean(0)]
    if shared_rank:
        within = x - means[np.searchsorted(classes, y)]
        shared += list(np.linalg.svd(within, full_matrices=False)[2][:shared_rank])
    q_shared = gram_schmidt(shared)
    both = gram_schmidt(np.vstack([q_shared.T, means[1:] - means[0]]))
    a = q_shared.shape[1]
    return Decomposition(both[:, :a], both[:, a:], classes)


def component_shares(x, dec: Decomposition) -> dict:
    """Norm shares of the components of ``x`` (N, D) in ``dec``:

    - ``shared_share`` = Σ_i ‖P_S x_i‖² / Σ_i ‖x_i‖²,
    - ``divergence_share`` = Σ_i ‖P_Δ x_i‖² / Σ_i ‖x_i‖² (the two and the rest sum to 1),
    - ``divergence_variance`` = Σ_i ‖P_Δ (x_i − μ)‖² / Σ_i ‖x_i − μ‖²: the fraction of the
      items' spread about their mean μ that lies in the class-specific subspace (None when
      the items do not vary).
    """
    x = _states(x, "component_shares")
    if dec.shared.shape[0] != x.shape[1]:
        raise ValueError(f"component_shares: the bases have D={dec.shared.shape[0]}, the states "
                         f"D={x.shape[1]}: decompose the same layer's states")
    total = float((x ** 2).sum())
    if total == 0:
        raise ValueError("component_shares: every state is zero")
    centred = x - x.mean(0)
    spread = float((centred ** 2).sum())
    div_c = float(((centred @ dec.divergence) ** 2).sum())
    return {"shared_share": float(((x @ dec.shared) ** 2).sum()) / total,
            "divergence_share": float(((x @ dec.divergence) ** 2).sum()) / total,
            "divergence_variance": div_c / spread if spread > 0 else None}


def distortion(x, reference) -> float:
    """Non-isometry of the map reference_i ↦ x_i (same N items, any dimensions): the
    standard deviation over pairs i < j of log(‖x_i − x_j‖ / ‖ref_i − ref_j‖).

    0 exactly when the map is a similarity on these points (rotation, reflection, shift and
    one global scale: every distance ratio equal); it grows as context stretches some
    distances more than others. Coincident points (a zero distance) are refused.
    """
    x = _states(x, "distortion", 3)
    ref = _states(reference, "distortion: reference", 3)
    if x.shape[0] != ref.shape[0]:
        raise ValueError(f"distortion: {x.shape[0]} states vs {ref.shape[0]} reference states: "
                         "pass the same items in both contexts")
    i, j = np.triu_indices(x.shape[0], 1)
    dx = np.linalg.norm(x[i] - x[j], axis=1)
    dr = np.linalg.norm(ref[i] - ref[j], axis=1)
    bad = np.flatnonzero((dx <= 0) | (dr <= 0))
    if bad.size:
        k = bad[0]
        raise ValueError(f"distortion: items {i[k]} and {j[k]} coincide "
                         f"({'states' if dx[k] <= 0 else 'reference'}); distance ratios are "
                         "undefined: drop duplicate items")
    return float(np.std(np.log(dx / dr)))


def probe_accuracy(x, labels, *, folds: int = 5, seed: int = 0, c: float = 1.0,
                   erase=None) -> dict:
    """Held-out balanced accuracy (mean recall over classes; chance = 0.5 for two classes
    whatever their sizes) of a logistic-regression probe (L2, inverse strength ``c``,
    features standardised on each training fold) predicting ``labels`` from ``x`` (N, D).

    Stratified ``folds``-fold cross-validation shuffled with ``seed``, folds lowered to the
    smallest class's size; each item is predicted by the probe of the fold that left it out.
    ``erase(x_train, y_train) -> Q`` (D, k orthonormal), when given, is fitted on each
    training fold and span(Q) is projected out of that fold's training and test states
    before the probe: the accuracy after an ablation, cross-fitted so that the erased
    subspace never saw the test items (erasing the class-mean difference of all items
    would push held-out items to the wrong side, below chance). Returns ``accuracy``,
    ``folds`` used and ``n``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x = _states(x, "probe_accuracy")
    y = _labels(labels, x.shape[0], "probe_accuracy")
    folds = check_int("probe_accuracy: folds", folds, 2)
    smallest = int(np.unique(y, return_counts=True)[1].min())
    if smallest < 2:
        raise ValueError(f"probe_accuracy: a class has {smallest} item; a held-out probe "
                         "needs at least 2 per class: widen the number range")
    k = min(folds, smallest)
    pred = np.empty_like(y)
    for train, test in StratifiedKFold(k, shuffle=True, random_state=seed).split(x, y):
        xtr, xte = x[train], x[test]
        if erase is not None:
            q = erase(xtr, y[train])
            xtr, xte = project_out(xtr, q), project_out(xte, q)
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
        pred[test] = probe.fit(xtr, y[train]).predict(xte)
    return {"accuracy": float(balanced_accuracy_score(y, pred)), "folds": k, "n": int(y.size)}


def task_accuracy(margins, labels) -> float:
    """Balanced accuracy of the model's answers: item i is answered "1" when its margin
    logit(answer for 1) − logit(answer for 0) is > 0; the mean over the two classes of the
    fraction answered right (chance = 0.5; always the same answer = 0.5)."""
    m = np.asarray(margins, dtype=np.float64)
    y = np.asarray(labels)
    if m.ndim != 1 or y.shape != m.shape or not np.isfinite(m).all():
        raise ValueError(f"task_accuracy: margins {m.shape} and labels {y.shape} must be equal "
                         "1-D arrays of finite numbers")
    if not np.isin(y, (0, 1)).all() or y.min() == y.max():
        raise ValueError("task_accuracy: labels must be 0/1 with both classes present")
    said = m > 0
    return float(np.mean([np.mean(said[y == 1]), np.mean(~said[y == 0])]))


def project_out(x, basis) -> np.ndarray:
    """x − x Q Qᵀ for orthonormal columns Q = ``basis`` (D, k): ``x`` with the subspace
    removed (x itself when k = 0)."""
    x = np.asarray(x, dtype=np.float64)
    q = np.asarray(basis, dtype=np.float64)
    if q.ndim != 2 or q.shape[0] != x.shape[-1]:
        raise ValueError(f"project_out: basis must be (D={x.shape[-1]}, k), got {q.shape}")
    return x - (x @ q) @ q.T


def random_basis(dim: int, rank: int, seed: int = 0) -> np.ndarray:
    """``rank`` orthonormal columns (dim, rank) spanning a uniformly random subspace (QR of
    a seeded Gaussian matrix): the equal-rank control of an ablation."""
    dim = check_int("random_basis: dim", dim, 1)
    rank = check_int("random_basis: rank", rank, 0, dim)
    g = np.random.default_rng(seed).standard_normal((dim, rank))
    return np.linalg.qr(g)[0] if rank else np.zeros((dim, 0))


def three_phases(values, *, rise: float = 0.5, fall: float = 0.25) -> dict:
    """Whether a curve over depth v_0..v_{P−1} (e.g. a task's divergence per layer) shows
    three phases: preservation (low), divergence (rise to a peak), consolidation (fall).

    Rule: with R = max − min and the peak p = argmax, three phases appear when p is not the
    first or last point, v_p − v_0 >= ``rise``·R and v_p − v_{P−1} >= ``fall``·R. Then phase
    1 is the points before the curve first reaches v_0 + rise·(v_p − v_0), phase 2 runs to
    p, phase 3 after p. Returns ``found``, ``peak``, ``onset`` (first point of phase 2;
    None when not found).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or v.size < 3 or not np.isfinite(v).all():
        raise ValueError(f"three_phases: need a finite curve of at least 3 points, got shape "
                         f"{v.shape}")
    p = int(np.argmax(v))
    r = float(v.max() - v.min())
    found = bool(r > 0 and 0 < p < v.size - 1 and v[p] - v[0] >= rise * r
                 and v[p] - v[-1] >= fall * r)
    onset = int(np.argmax(v >= v[0] + rise * (v[p] - v[0]))) if found else None
    return {"found": found, "peak": p, "onset": onset}
