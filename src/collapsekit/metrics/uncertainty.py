"""Uncertainty from meaning classes of sampled answers: semantic equivalence classes, semantic
entropy, number of semantic sets, and Lin et al.'s graph-spectral EigV and Deg measures.

No model is imported here. Equivalence is decided by a pluggable judge: a callable
``judge(i, j) -> bool`` (higher layers wrap an NLI model this way) or a precomputed (n, n)
boolean matrix, such as the one returned by ``cosine_judge(threshold)(texts, embeddings)``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import logsumexp

from collapsekit.metrics.semantic import as_matrix, unit_rows

Judge = Callable[[int, int], bool]


def cosine_judge(threshold: float = 0.9) -> Callable[..., np.ndarray]:
    """Embedding judge: ``judge(texts, embeddings)`` -> (n, n) bool, True where cos >= threshold.

    The default stand-in for NLI bidirectional entailment when no NLI model is available;
    `texts` is only checked for length (pass None to skip).
    """
    try:
        threshold = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f"threshold must be a number in [-1, 1], got {threshold!r}") from None
    if not -1.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a cosine in [-1, 1], got {threshold!r}")

    def judge(texts: Sequence[str] | None, embeddings) -> np.ndarray:
        u = unit_rows(embeddings)
        if texts is not None and len(texts) != u.shape[0]:
            raise ValueError(f"{len(texts)} texts but {u.shape[0]} embeddings: "
                             "pass one embedding per text")
        eq = (u @ u.T) >= threshold
        np.fill_diagonal(eq, True)
        return eq

    return judge


def _count(n) -> int:
    if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer (the number of samples), got {n!r}")
    return int(n)


def _square(x, name: str, n: int | None = None) -> np.ndarray:
    a = as_matrix(x, name)
    if a.shape[0] != a.shape[1] or (n is not None and a.shape[0] != n):
        want = f"({n}, {n})" if n is not None else "square (n, n)"
        raise ValueError(f"{name} must be {want}, got shape {a.shape}")
    return a


def _adjacency(adj, n: int | None = None, threshold: float = 0.5) -> np.ndarray:
    """Boolean equivalence matrix: bool input as is, numeric input as ``value >= threshold``."""
    is_bool = np.asarray(adj).dtype == np.bool_
    a = _square(adj, "adjacency", n)
    a = a.astype(bool) if is_bool else a >= threshold
    if not np.array_equal(a, a.T):
        raise ValueError("adjacency is not symmetric: equivalence must hold both ways, "
                         "e.g. pass A & A.T for directional entailment A")
    return a


def semantic_classes(n: int, judge: Judge | np.ndarray) -> np.ndarray:
    """Semantic equivalence classes by Kuhn et al.'s greedy algorithm (Kuhn, Gal & Farquhar
    2023, "Semantic Uncertainty", ICLR, Algorithm 1).

    Samples are visited in order; each is compared with the first member of every existing
    class, in creation order, joins the first class it is equivalent to, else opens a new one.
    `judge` is ``judge(first_member, new) -> bool`` or a symmetric (n, n) bool matrix.
    Returns int labels 0..k-1 numbered by first appearance.
    """
    n = _count(n)
    if callable(judge):
        firsts: list[int] = []
        labels = np.empty(n, dtype=np.int64)
        for j in range(n):
            for c, r in enumerate(firsts):
                if _truth(judge(r, j), r, j):
                    labels[j] = c
                    break
            else:
                labels[j] = len(firsts)
                firsts.append(j)
        return labels
    a = _adjacency(judge, n)
    labels = np.full(n, -1, dtype=np.int64)
    c = 0
    while (free := np.flatnonzero(labels < 0)).size:
        first = free[0]
        labels[free[a[first, free]]] = c
        labels[first] = c
        c += 1
    return labels


def _truth(value, i: int, j: int) -> bool:
    try:
        return bool(value)
    except (TypeError, ValueError):
        raise ValueError(f"judge({i}, {j}) returned {type(value).__name__}, not a bool: "
                         "the judge must answer one pair with True or False") from None


def _labels(classes) -> np.ndarray:
    """Class labels (any hashable values) as inverse indices 0..k-1."""
    arr = np.asarray(classes)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"classes must be a non-empty 1-D sequence of labels, got shape "
                         f"{arr.shape}: pass one class label per sample")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise ValueError("classes contains NaN or inf: pass integer class labels")
    return np.unique(arr, return_inverse=True)[1].ravel()


def num_distinct_classes(classes) -> int:
    """Number of distinct equivalence classes among k samples (NoveltyBench's distinct_k,
    Zhang et al. 2025, "NoveltyBench: Evaluating Language Models for Humanlike Diversity")."""
    return int(_labels(classes).max() + 1)


def semantic_entropy(classes, *, logprobs=None, estimator: str = "kuhn2023") -> float:
    """Semantic entropy (natural log) of samples grouped into meaning classes C.

    logprobs None -> discrete form (Farquhar et al. 2024, Nature, "Detecting hallucinations
        in large language models using semantic entropy"): p_C = |C|/N, SE = −Σ_C p_C log p_C.
    logprobs given (one sequence log-probability per sample: the reference codes of both
    papers pass the mean token log-prob, i.e. length-normalised; the sum is the caller's
    other choice), p(C) = Σ_{s∈C} exp(logprob_s), and
      estimator="kuhn2023" (default; Kuhn, Gal & Farquhar 2023, ICLR, eq. 3):
          SE ≈ −(1/|C|) Σ_C log p(C), with p(C) unnormalised as in the paper. The reference
          code also subtracts a constant 5 from every log p(C) (shifts SE by +5; not applied).
      estimator="farquhar2024" (Nature 2024, Rao–Blackwellised): p̄(C) = p(C) / Σ_C' p(C')
          (logsumexp over all samples), SE = −Σ_C p̄(C) log p̄(C).
    Identical meanings give 0 for the discrete and farquhar2024 forms; kuhn2023 then gives
    −log p(C). `estimator` is ignored by the discrete form.
    """
    if estimator not in ("kuhn2023", "farquhar2024"):
        raise ValueError(f"estimator must be 'kuhn2023' or 'farquhar2024', got {estimator!r}")
    labels = _labels(classes)
    k = int(labels.max() + 1)
    if logprobs is None:
        p = np.bincount(labels) / labels.size
        return float(-(p * np.log(p)).sum()) + 0.0
    try:
        lp = np.asarray(logprobs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("logprobs must be a 1-D array of numbers") from None
    if lp.shape != labels.shape:
        raise ValueError(f"logprobs has shape {lp.shape} but classes has {labels.size} "
                         "labels: pass one log-probability per sample")
    if not np.isfinite(lp).all() or (lp > 0).any():
        raise ValueError("logprobs must be finite log-probabilities <= 0: "
                         "pass log p(sequence), not probabilities or scores")
    top = np.full(k, -np.inf)
    np.maximum.at(top, labels, lp)
    log_pc = top + np.log(np.bincount(labels, weights=np.exp(lp - top[labels]), minlength=k))
    if estimator == "kuhn2023":
        return float(-log_pc.mean())
    log_p = log_pc - logsumexp(log_pc)
    return float(-(np.exp(log_p) * log_p).sum()) + 0.0


def num_semantic_sets(similarity_or_adjacency, *, threshold: float = 0.5,
                      method: str = "components") -> int:
    """Number of semantic sets, U_NumSet (Lin, Trivedi & Sun 2023, "Generating with
    Confidence: Uncertainty Quantification for Black-box Large Language Models", TMLR 2024).

    The graph has an edge i–j where the symmetric equivalence matrix is True (bool input) or
    >= `threshold` (numeric similarity input). Three counts, equal whenever equivalence is
    transitive:
      "components" (default): connected components, as LM-Polygraph's NumSemSets;
      "lin": Lin et al.'s reference code (UQ-NLG ``pipeline/uq_bb.py:
          _create_semantic_sets``): for i = 0..n−1, for j > i equivalent to i, set
          id[j] ← id[i] (a chained, overwriting assignment); the count of distinct ids;
      "greedy": Kuhn et al.'s first-member classes (:func:`semantic_classes`).
    On A~B, B~C, A≁C: components 1, lin 1, greedy 2. On A~C, B~C, A≁B: components 1,
    lin 2 (C's id is overwritten by B's), greedy 2.
    """
    if method not in ("components", "lin", "greedy"):
        raise ValueError(f"method must be 'components', 'lin' or 'greedy', got {method!r}")
    a = _adjacency(similarity_or_adjacency, threshold=threshold)
    if method == "greedy":
        return int(semantic_classes(a.shape[0], a).max() + 1)
    if method == "lin":
        ids = np.arange(a.shape[0])
        for i in range(a.shape[0]):
            for j in np.flatnonzero(a[i, i + 1:]) + i + 1:
                ids[j] = ids[i]
        return int(np.unique(ids).size)
    return int(connected_components(csr_matrix(a), directed=False)[0])


def _similarity(w) -> np.ndarray:
    """Symmetric similarity matrix in [0, 1] with the diagonal set to 1 (self-similarity)."""
    w = _square(w, "similarity")
    if not np.allclose(w, w.T, rtol=0, atol=1e-6):
        raise ValueError("similarity is not symmetric: symmetrise it first, "
                         "W = (A + A.T) / 2 as in Lin et al. 2023")
    if (w < 0).any() or (w > 1).any():
        raise ValueError("similarity entries must lie in [0, 1]: map cosines with (1 + cos) / 2 "
                         "or clip negatives")
    w = (w + w.T) / 2
    np.fill_diagonal(w, 1.0)
    return w


def eigv(similarity) -> float:
    """U_EigV (Lin et al. 2023): Σ_k max(0, 1 − λ_k), λ_k the eigenvalues of the normalised
    graph Laplacian L = I − D^{-1/2} W D^{-1/2}, D = diag(Σ_j W_ij).

    A soft count of semantic sets: m disconnected answers give m, one clique gives 1.
    W is symmetric in [0, 1]; its diagonal is set to 1 as in the reference code.
    """
    w = _similarity(similarity)
    r = 1.0 / np.sqrt(w.sum(axis=1))
    return float(np.clip(np.linalg.eigvalsh(w * r[:, None] * r[None, :]), 0.0, None).sum())


def degmat(similarity) -> float:
    """U_Deg (Lin et al. 2023): trace(m·I − D) / m², D = diag(Σ_j W_ij), m answers.

    0 when all answers are equivalent, (m − 1)/m when none are. The reference code's
    average of Σ_j (1 − W_ij) equals m·U_Deg (same ranking for fixed m).
    W is symmetric in [0, 1]; its diagonal is set to 1.
    """
    w = _similarity(similarity)
    m = w.shape[0]
    return float((m * m - w.sum()) / (m * m))
