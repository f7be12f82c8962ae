"""Spectral geometry of representations: eigen-spectra, effective ranks, isotropy, rank collapse.

Data arguments ``x`` are an (N, D) array (numpy, torch, lists; cast to float64) or a
:class:`~collapsekit.stats.moments.Moments` accumulated over a stream. Everything goes through
the D×D covariance or Gram matrix and ``eigh`` (O(N·D²) time, O(D²) memory): no SVD of N×D.
Eigenvalue arguments ``eigvals`` are 1-D, non-negative, and sorted descending here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from collapsekit.stats.moments import Moments, to_numpy64

__all__ = ["spectrum", "rankme", "matrix_entropy_rank", "participation_ratio", "dim_eff",
           "AlphaReq", "alpha_req", "anisotropy", "isoscore", "rank_collapse_residual",
           "rank_collapse_residual_batch", "top_coordinate_share"]

_CHUNK = 16384  # rows per Moments.update when reducing an in-memory array
_U = np.finfo(np.float64).eps


def _data_2d(x, what: str) -> np.ndarray:
    arr = to_numpy64(x)
    if arr.ndim != 2:
        raise ValueError(f"{what}: expected an (N, D) array of N vectors, got shape {arr.shape}; "
                         "reshape with x.reshape(-1, D)")
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{what}: need at least 2 rows and 1 column, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what}: input contains NaN or inf; fix or drop those rows first")
    return arr


def _moments(x, what: str) -> Moments:
    if isinstance(x, Moments):
        if x.n < 2:
            raise ValueError(f"{what}: the Moments holds {x.n} rows, need at least 2")
        return x
    arr = _data_2d(x, what)
    m = Moments(arr.shape[1], unit_sum=False, name=what)
    for i in range(0, arr.shape[0], _CHUNK):
        m.update(arr[i:i + _CHUNK])
    return m


def _eigh_desc(mat: np.ndarray) -> np.ndarray:
    """Eigenvalues descending; those below the round-off floor ``D·u·λ_max`` of eigh are 0."""
    ev = np.linalg.eigvalsh(mat)[::-1]
    ev[ev < max(ev[0], 0.0) * len(ev) * _U] = 0.0
    return ev


def _eigvals(eigvals, what: str) -> np.ndarray:
    ev = to_numpy64(eigvals)
    if ev.ndim != 1 or ev.size == 0:
        raise ValueError(f"{what}: expected a non-empty 1-D array of eigenvalues, got shape "
                         f"{ev.shape}; compute them with spectrum(x)")
    if not np.isfinite(ev).all():
        raise ValueError(f"{what}: eigenvalues contain NaN or inf; check the input data")
    top = np.abs(ev).max()
    if ev.min() < -1e-10 * top:
        raise ValueError(f"{what}: negative eigenvalue {ev.min():.3g}; covariance eigenvalues "
                         "are >= 0, pass spectrum(x)")
    if top == 0:
        raise ValueError(f"{what}: all eigenvalues are zero (the data has no variance)")
    return np.sort(np.clip(ev, 0.0, None))[::-1]


def spectrum(x, *, center: bool = True) -> np.ndarray:
    """Eigenvalues of the covariance ``Σ (x-μ)(x-μ)ᵀ / N`` (1/N, not 1/(N-1)), descending, float64.

    ``center=False`` gives the eigenvalues of the uncentred Gram ``Σ x xᵀ / N``. Length D.
    Values below ``D·u·λ_max`` (u = float64 epsilon: eigh's round-off level, where the
    eigenvalue is indistinguishable from 0, as in numpy ``matrix_rank``) and round-off
    negatives are set to exactly 0, so the N - 1 < D case yields true zeros.
    """
    m = _moments(x, "spectrum")
    return _eigh_desc(m.cov() if center else m.gram())


def rankme(x, *, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023, "RankMe: Assessing the downstream performance of
    pretrained self-supervised representations by their rank", eq. 1):

        p_k = σ_k / ‖σ‖₁ + ε,   RankMe = exp(-Σ_{k=1}^{min(N,D)} p_k log p_k)

    with σ the singular values of the **uncentred** N×D matrix; ε is added after the
    normalisation, as in the paper and its code. Here σ_k² = N·λ_k(Σ x xᵀ / N) (eigh of the
    D×D Gram, see :func:`spectrum`): singular values below σ_max·sqrt(D·u) are not resolved
    this way and count as 0 (a full SVD would report them as round-off noise instead).
    """
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"rankme: eps must be a finite number >= 0, got {eps!r}")
    m = _moments(x, "rankme")
    sigma = np.sqrt(_eigh_desc(m.gram()) * m.n)[:min(m.n, m.dim)]
    if sigma[0] == 0:
        raise ValueError("rankme: the data matrix is all zeros; RankMe is undefined")
    p = sigma / sigma.sum() + eps
    return float(np.exp(entr(p).sum()))


def matrix_entropy_rank(eigvals, *, eps: float = 0.0) -> float:
    """exp of the Shannon entropy of the normalised covariance eigenvalues:

        p_k = λ_k / Σ λ (+ ε),   exp(-Σ p_k log p_k)

    Differs from :func:`rankme`: it uses eigenvalues of the *centred covariance* (σ²/N of
    centred data), not singular values of the uncentred matrix, so it weighs the top directions
    more and ignores the mean. This is the quantity the code of Li et al. 2025 ("Tracing the
    representation geometry of language models", ``utils/powerlaw.py: rankme``) computes;
    ``eps=1e-7`` reproduces that code exactly (default 0: the plain entropy, 0·log 0 = 0).
    """
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"matrix_entropy_rank: eps must be a finite number >= 0, got {eps!r}")
    ev = _eigvals(eigvals, "matrix_entropy_rank")
    return float(np.exp(entr(ev / ev.sum() + eps).sum()))


def participation_ratio(eigvals) -> float:
    """Participation ratio ``(Σ λ)² / Σ λ²`` (Gao et al. 2017; in [1, D])."""
    ev = _eigvals(eigvals, "participation_ratio")
    ev = ev / ev[0]  # scale-free, avoids overflow of the squares
    return float(ev.sum() ** 2 / (ev @ ev))


def dim_eff(eigvals, threshold: float = 0.9) -> int:
    """Smallest k with ``Σ_{i≤k} λ_i / Σ λ ≥ threshold`` (eigenvalues sorted descending).

    Cumulative fractions within 1e-12 of the threshold count as reaching it (round-off).
    """
    if not (0 < threshold <= 1):
        raise ValueError(f"dim_eff: threshold must be in (0, 1], got {threshold!r}")
    ev = _eigvals(eigvals, "dim_eff")
    frac = np.cumsum(ev) / ev.sum()
    return int(min(np.searchsorted(frac, threshold - 1e-12) + 1, ev.size))


@dataclass(frozen=True)
class AlphaReq:
    """Power-law fit ``λ_r ≈ C r^-alpha``: exponent, R² of the log-log fit, points used."""

    alpha: float
    r2: float
    n_used: int


def alpha_req(eigvals, *, ranks: tuple[int, int] = (11, 100), weighted: bool = False) -> AlphaReq:
    """α-ReQ (Agrawal et al. 2022, "α-ReQ: assessing representation quality by measuring
    eigenspectrum decay"): least-squares fit of ``log λ_r = c - α log r`` over the 1-based
    inclusive rank range ``ranks``, clipped to the positive eigenvalues available.

    ``r2`` is the coefficient of determination of that fit (1.0 when the points are exactly
    on a line, including a flat spectrum). ``weighted=True`` weighs each point by 1/r, as the
    Stringer et al. (2019) fit used in the code of Li et al. 2025; that code's
    ``np.arange(11, 100)`` is 1-based ranks 12..100, so ``ranks=(12, 100), weighted=True``
    reproduces its α (its R² is measured over a different range).
    """
    lo, hi = ranks if isinstance(ranks, (tuple, list)) and len(ranks) == 2 else (0, 0)
    if not (isinstance(lo, (int, np.integer)) and isinstance(hi, (int, np.integer))
            and 1 <= lo < hi):
        raise ValueError(f"alpha_req: ranks must be two ints 1 <= lo < hi, got {ranks!r}")
    ev = _eigvals(eigvals, "alpha_req")
    hi = min(hi, int((ev > 0).sum()))
    if hi - lo + 1 < 3:
        raise ValueError(f"alpha_req: only {max(hi - lo + 1, 0)} positive eigenvalues in ranks "
                         f"{ranks}; need 3 — lower ranks[0] or use more dimensions/samples")
    r = np.arange(lo, hi + 1, dtype=np.float64)
    xs, ys = np.log(r), np.log(ev[lo - 1:hi])
    w = 1.0 / r if weighted else np.ones_like(r)
    xm, ym = (w @ xs) / w.sum(), (w @ ys) / w.sum()
    slope = (w * (xs - xm)) @ (ys - ym) / ((w * (xs - xm)) @ (xs - xm))
    resid = ys - ym - slope * (xs - xm)
    ss_tot = (ys - ys.mean()) @ (ys - ys.mean())
    ss_res = resid @ resid
    r2 = 1.0 if ss_tot <= 1e-24 * (ys @ ys) else 1.0 - ss_res / ss_tot  # flat: exact fit
    return AlphaReq(alpha=float(-slope), r2=float(r2), n_used=int(r.size))


def anisotropy(x) -> float:
    """Exact mean cosine similarity over all N(N-1) ordered pairs i ≠ j, in O(N·D):

        (‖Σ_i û_i‖² - N) / (N (N - 1)),   û_i = x_i / ‖x_i‖

    (Ethayarajh 2019 estimates it from random pairs; this is the exact value.) From a Moments
    it uses ``unit_sum`` and ``n``. All-zero rows have no direction and raise.
    """
    if isinstance(x, Moments):
        if x.n < 2:
            raise ValueError(f"anisotropy: the Moments holds {x.n} rows, need at least 2")
        s, n = x.unit_sum, x.n
    else:
        arr = _data_2d(x, "anisotropy")
        norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
        if (norms == 0).any():
            raise ValueError(f"anisotropy: {int((norms == 0).sum())} all-zero rows have no "
                             "direction; drop them first")
        s, n = (arr / norms[:, None]).sum(axis=0), arr.shape[0]
    return float((s @ s - n) / (n * (n - 1)))


def top_coordinate_share(x) -> float:
    """Share of the total second moment held by the single largest coordinate:

        max_j E[x_j²] / Σ_j E[x_j²]      (in [1/D, 1])

    A massive-activation diagnostic (Sun et al. 2024, "Massive Activations in Large Language
    Models"): a few residual-stream coordinates with values 10³-10⁴ times the rest dominate
    the Gram matrix, so this share approaches 1 while it is ~1/D for isotropic data. From a
    Moments, E[x_j²] is the diagonal of the uncentred Gram ``M2 / n + m mᵀ``.
    """
    if isinstance(x, Moments):
        if x.n < 1:
            raise ValueError("top_coordinate_share: the Moments holds no rows")
        second = np.diag(x.gram()).copy()
    else:
        arr = to_numpy64(x)
        if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 1:
            raise ValueError(f"top_coordinate_share: expected a non-empty (N, D) array, got "
                             f"shape {arr.shape}; reshape with x.reshape(-1, D)")
        if not np.isfinite(arr).all():
            raise ValueError("top_coordinate_share: input contains NaN or inf; fix or drop "
                             "those rows first")
        scale = np.abs(arr).max()
        second = ((arr / scale) ** 2).mean(axis=0) if scale > 0 else np.zeros(arr.shape[1])
    total = second.sum()
    if not total > 0:
        raise ValueError("top_coordinate_share: the data is all zeros; the share is undefined")
    return float(second.max() / total)


def isoscore(x) -> float:
    """IsoScore (Rudman et al. 2022, "IsoScore: measuring the uniformity of embedding space
    utilization", Algorithm 1), in ambient dimension n = D:

    1-3. PCA-reorient; the variance vector Σ_D of the reoriented points is exactly the
         covariance eigenvalues λ (so a Moments suffices);
    4.   Σ̂ = √n · Σ_D / ‖Σ_D‖₂;
    5.   isotropy defect δ = ‖Σ̂ - 1‖₂ / √(2(n - √n));
    6.   dimensions used k = (n - δ²(n - √n))² / n;
    7.   IsoScore = (k - 1) / (n - 1)   (0 = one direction, 1 = isotropic).

    Algebraically k = (Σλ)²/Σλ², the participation ratio. The 1/N vs 1/(N-1) normalisation
    cancels in step 4. Zero eigenvalues (N ≤ D) are kept, as in the paper's definition; the
    reference package needs N > D and takes points as *columns* (D, N).
    """
    ev = _eigvals(spectrum(x), "isoscore")
    n = ev.size
    if n < 2:
        raise ValueError("isoscore: needs vectors of dimension D >= 2")
    var = np.sqrt(n) * ev / np.linalg.norm(ev)
    defect = np.linalg.norm(var - 1.0) / np.sqrt(2 * (n - np.sqrt(n)))
    k = (n - defect ** 2 * (n - np.sqrt(n))) ** 2 / n
    return float((k - 1) / (n - 1))


def rank_collapse_residual_batch(x, mask=None, *, norm: str = "fro") -> np.ndarray:
    """Relative residual to rank one for each sequence of a batch (B, T, D); see
    :func:`rank_collapse_residual`. ``mask`` (B, T) bool marks real tokens (True) vs padding;
    padded positions are ignored (may hold anything). Returns shape (B,).
    """
    arr = to_numpy64(x)
    if arr.ndim != 3:
        raise ValueError(f"rank_collapse_residual_batch: expected (B, T, D), got shape "
                         f"{arr.shape}; for one sequence use rank_collapse_residual")
    if norm not in ("fro", "l1linf"):
        raise ValueError(f"rank_collapse_residual: norm must be 'fro' or 'l1linf', got {norm!r}")
    if mask is None:
        mask = np.ones(arr.shape[:2], dtype=bool)
    mask = np.asarray(mask.detach().cpu().numpy() if hasattr(mask, "detach") else mask)
    if mask.shape != arr.shape[:2] or mask.dtype != bool:
        raise ValueError(f"rank_collapse_residual_batch: mask must be a bool array of shape "
                         f"{arr.shape[:2]}, got {mask.dtype} {mask.shape}")
    ntok = mask.sum(axis=1)
    if arr.shape[0] == 0 or arr.shape[2] == 0:
        raise ValueError(f"rank_collapse_residual: empty input of shape {arr.shape}; need "
                         "B >= 1 sequences of D >= 1 features")
    if (ntok < 2).any():
        bad = np.flatnonzero(ntok < 2)[:5].tolist()
        raise ValueError(f"rank_collapse_residual: every sequence needs >= 2 tokens; "
                         f"sequences {bad} have fewer tokens")
    m3 = mask[:, :, None]
    if not np.isfinite(arr[mask]).all():
        raise ValueError("rank_collapse_residual: non-padded tokens contain NaN or inf")
    xm = np.where(m3, arr, 0.0)
    res = np.where(m3, xm - xm.sum(axis=1, keepdims=True) / ntok[:, None, None], 0.0)

    def size(a: np.ndarray) -> np.ndarray:
        if norm == "fro":
            return np.sqrt(np.einsum("btd,btd->b", a, a))
        absa = np.abs(a)  # ‖A‖₁ = max column abs sum, ‖A‖∞ = max row abs sum
        return np.sqrt(absa.sum(axis=1).max(axis=1) * absa.sum(axis=2).max(axis=1))

    denom = size(xm)
    if (denom == 0).any():
        raise ValueError(f"rank_collapse_residual: sequences "
                         f"{np.flatnonzero(denom == 0)[:5].tolist()} are all zeros")
    return size(res) / denom


def rank_collapse_residual(x, *, norm: str = "fro") -> float:
    """Relative distance of one sequence X (T, D) from rank one (Dong et al. 2021, "Attention
    is not all you need: pure attention loses rank doubly exponentially with depth"):

        ‖res(X)‖ / ‖X‖,   res(X) = X - 1 x̄ᵀ,   x̄ = mean of the rows (tokens)

    The paper takes x̄ = argmin_x ‖X - 1xᵀ‖; for ``norm="fro"`` the row mean is that argmin.
    ``norm="l1linf"`` is the paper's composite norm √(‖R‖₁‖R‖∞) (max column / max row abs
    sum); there the row mean is used, giving an upper bound on the argmin residual.
    """
    arr = to_numpy64(x)
    if arr.ndim != 2:
        raise ValueError(f"rank_collapse_residual: expected one sequence (T, D), got shape "
                         f"{arr.shape}; for batches use rank_collapse_residual_batch")
    return float(rank_collapse_residual_batch(arr[None], norm=norm)[0])
