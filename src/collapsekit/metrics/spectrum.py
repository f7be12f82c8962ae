"""Spectral geometry of representations: eigen-spectra, effective ranks, isotropy, rank collapse.

Data arguments ``x`` are an (N, D) array (numpy, torch, lists; cast to float64) or a
:class:`~collapsekit.stats.moments.Moments` accumulated over a stream. Everything goes through
the D×D covariance or Gram matrix and ``eigh`` (O(N·D²) time, O(D²) memory): no SVD of N×D.
Eigenvalue arguments ``eigvals`` are 1-D, non-negative, and sorted descending here.
``basis="standardised"`` (spectrum, rankme, isoscore) works on z-scored coordinates: the
correlation matrix of the same moments, so one outlier coordinate cannot pass for collapse.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import entr

from collapsekit.stats.moments import Moments, to_numpy64

__all__ = ["spectrum", "rankme", "matrix_entropy_rank", "participation_ratio", "dim_eff",
           "AlphaReq", "ALPHA_PRESETS", "alpha_req", "anisotropy", "isoscore",
           "rank_collapse_residual", "rank_collapse_residual_batch", "top_coordinate_share",
           "top_coordinate", "TopCoordinate", "constant_coordinates", "BASES"]

BASES = ("raw", "standardised")  # the coordinates a spectrum is computed in
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


def spectrum(x, *, center: bool = True, basis: str = "raw") -> np.ndarray:
    """Eigenvalues of the covariance ``Σ (x-μ)(x-μ)ᵀ / N`` (1/N, not 1/(N-1)), descending, float64.

    ``center=False`` gives the eigenvalues of the uncentred Gram ``Σ x xᵀ / N``. Length D.
    Values below ``D·u·λ_max`` (u = float64 epsilon: eigh's round-off level, where the
    eigenvalue is indistinguishable from 0, as in numpy ``matrix_rank``) and round-off
    negatives are set to exactly 0, so the N - 1 < D case yields true zeros.

    ``basis="standardised"``: the eigenvalues of the correlation matrix
    ``C = S^{-1/2} Σ S^{-1/2}`` (S = diag Σ), i.e. the covariance of the z-scored
    coordinates (x_j - μ_j)/σ_j, from the same accumulated moments (no second pass). One
    coordinate with a huge variance then weighs like any other. Constant coordinates
    (σ_j = 0, no z-score) are left out, so the length is D minus
    :func:`constant_coordinates`; the eigenvalues sum to that length.
    """
    _basis(basis)
    m = _moments(x, "spectrum")
    if basis == "standardised":
        if not center:
            raise ValueError("spectrum: basis='standardised' is centred (z-scores); drop "
                             "center=False")
        return _eigh_desc(_correlation(m, "spectrum"))
    return _eigh_desc(m.cov() if center else m.gram())


def rankme(x, *, eps: float = 1e-7, basis: str = "raw") -> float:
    """RankMe (Garrido et al. 2023, "RankMe: Assessing the downstream performance of
    pretrained self-supervised representations by their rank", eq. 1):

        p_k = σ_k / ‖σ‖₁ + ε,   RankMe = exp(-Σ_{k=1}^{min(N,D)} p_k log p_k)

    with σ the singular values of the **uncentred** N×D matrix; ε is added after the
    normalisation, as in the paper and its code. Here σ_k² = N·λ_k(Σ x xᵀ / N) (eigh of the
    D×D Gram, see :func:`spectrum`): singular values below σ_max·sqrt(D·u) are not resolved
    this way and count as 0 (a full SVD would report them as round-off noise instead).

    ``basis="standardised"``: the singular values of the z-scored matrix Z (centred, each
    coordinate scaled to unit variance; constant coordinates left out, see
    :func:`spectrum`), σ_k² = N·λ_k(C); a diagonal covariance then gives D.
    """
    if not (np.isfinite(eps) and eps >= 0):
        raise ValueError(f"rankme: eps must be a finite number >= 0, got {eps!r}")
    _basis(basis)
    m = _moments(x, "rankme")
    if basis == "standardised":
        ev = _eigh_desc(_correlation(m, "rankme"))
    else:
        ev = _eigh_desc(m.gram())
    sigma = np.sqrt(ev * m.n)[:min(m.n, ev.size)]
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
    representation geometry of language models", ``utils/powerlaw.py: rankme``) computes
    (default eps 0: the plain entropy, 0·log 0 = 0). With ``eps=1e-7`` it matches that code
    when both see the same eigenvalues: the code takes min(N, D) of them (sklearn PCA of the
    N×D matrix), this function all D of :func:`spectrum`, so for N < D each of the D − N
    extra zero eigenvalues adds ε|ln ε| to the entropy (log of the rank differs by
    (D − N)·ε|ln ε|); pass ``eigvals[:N]`` to reproduce it. Later torch versions of that
    code clamp inside the log instead (−Σ p log max(p, ε)), which equals ``eps=0`` whenever
    every nonzero p is ≥ ε.
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
    """Power-law fit ``λ_r ≈ C r^-alpha``: exponent, R² of the log-log fit, points used, and
    the preset named (``"custom"`` when ``ranks``/``weighted`` override it)."""

    alpha: float
    r2: float
    n_used: int
    preset: str = "paper"


# preset → (1-based inclusive ranks, 1/r weights), checked against each reference's code
ALPHA_PRESETS = {
    "paper": ((11, 100), False),  # collapsekit's default: plain least squares
    "reptrix": ((11, 100), True),  # the α-ReQ authors' library, reptrix 0.1.0 get_alpha
    "tracing": ((12, 100), True),  # Li et al. 2025: stringer_get_powerlaw(ev, arange(11, 100))
}


def alpha_req(eigvals, *, preset: str = "paper", ranks: tuple[int, int] | None = None,
              weighted: bool | None = None) -> AlphaReq:
    """α-ReQ (Agrawal et al. 2022, "α-ReQ: assessing representation quality by measuring
    eigenspectrum decay"): fit of ``log λ_r = c - α log r`` over a 1-based inclusive rank
    range, clipped to the positive eigenvalues available. Presets (``ALPHA_PRESETS``):

      "paper"   ranks 11–100, ordinary least squares: the power law as the paper defines
                it. The paper's own analysis scripts vary the range (e.g. 0-based
                ``np.arange(5, 50)``); 11–100 is collapsekit's choice, not a quoted one.
      "reptrix" ranks 11–100, weights 1/r: ``reptrix.alpha.get_alpha`` of the α-ReQ
                authors' library (PyPI 0.1.0: ``fit_range=np.arange(10, 100)``, 0-based,
                the Stringer et al. 2019 weighted fit). An earlier version of its
                repository defaulted to ``np.arange(5, 100)``, ranks 6–100
                (``ranks=(6, 100), weighted=True``).
      "tracing" ranks 12–100, weights 1/r: the code of Li et al. 2025 ("Tracing the
                representation geometry"), ``stringer_get_powerlaw(eigen, np.arange(11,
                100))``, whose 0-based indices are ranks 12–100.

    ``ranks``/``weighted`` override the preset (recorded as "custom"). The weighted
    presets reproduce their code's α (the reference casts 1/r to float32: ~1e-7 apart);
    ``r2`` here is the unweighted coefficient of determination over the fitted ranks (the
    references measure R² over other ranges), 1.0 when the points are exactly on a line.
    """
    if preset not in ALPHA_PRESETS:
        raise ValueError(f"alpha_req: preset must be one of {', '.join(ALPHA_PRESETS)}, got "
                         f"{preset!r}")
    name = preset if ranks is None and weighted is None else "custom"
    ranks = ALPHA_PRESETS[preset][0] if ranks is None else ranks
    weighted = ALPHA_PRESETS[preset][1] if weighted is None else weighted
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
    return AlphaReq(alpha=float(-slope), r2=float(r2), n_used=int(r.size), preset=name)


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


@dataclass(frozen=True)
class TopCoordinate:
    """The coordinate with the largest share (``index``, 0-based) and that share."""

    index: int
    share: float


def top_coordinate(x, *, center: bool = True) -> TopCoordinate:
    """The single coordinate holding the largest share of the total variance:

        j* = argmax_j Var(x_j),   share = Var(x_j*) / Σ_j Var(x_j)   (= Σ_j*j* / Tr Σ, in [1/D, 1])

    or, ``center=False``, of the squared norm: E[x_j²] / E‖x‖² (the diagonal of the
    uncentred Gram ``M2 / n + m mᵀ``). A massive-activation / rogue-dimension diagnostic
    (Sun et al. 2024, "Massive Activations in Large Language Models"; Timkey & van
    Schijndel 2021, "All bark and no bite"): a coordinate with values 10³-10⁴ times the
    rest takes a share near 1 (~1/D for isotropic data), and the covariance spectrum then
    describes that coordinate. Ties go to the lowest index. Data or a Moments.
    """
    m = _moments(x, "top_coordinate")
    diag = np.diag(m.cov() if center else m.gram())
    total = diag.sum()
    if not total > 0:
        what = "has no variance (every coordinate is constant)" if center else "is all zeros"
        raise ValueError(f"top_coordinate: the data {what}; the share is undefined")
    j = int(np.argmax(diag))
    return TopCoordinate(index=j, share=float(diag[j] / total))


def top_coordinate_share(x, *, center: bool = True) -> float:
    """``top_coordinate(x, center=center).share``: the variance share (default) or, with
    ``center=False``, the squared-norm share of the largest coordinate."""
    return top_coordinate(x, center=center).share


def constant_coordinates(x) -> int:
    """How many coordinates have zero variance (constant over every row): they have no
    z-score and are left out of the ``basis="standardised"`` spectrum."""
    return int(np.count_nonzero(np.diag(_moments(x, "constant_coordinates").cov()) == 0))


def _correlation(m: Moments, what: str) -> np.ndarray:
    """C = S^{-1/2} Σ S^{-1/2} (S = diag Σ) over the coordinates with non-zero variance."""
    cov = m.cov()
    var = np.diag(cov)
    keep = var > 0
    if not keep.any():
        raise ValueError(f"{what}: every coordinate is constant (zero variance); the "
                         "standardised spectrum is undefined")
    s = 1.0 / np.sqrt(var[keep])
    c = cov[np.ix_(keep, keep)] * s[:, None] * s[None, :]
    np.fill_diagonal(c, 1.0)
    return c


def _basis(basis) -> None:
    if basis not in BASES:
        raise ValueError(f"basis must be one of {BASES}, got {basis!r}")


def isoscore(x, *, basis: str = "raw") -> float:
    """IsoScore (Rudman et al. 2022, "IsoScore: measuring the uniformity of embedding space
    utilization", Algorithm 1), in ambient dimension n = D:

    1-3. PCA-reorient; the variance vector Σ_D of the reoriented points is exactly the
         covariance eigenvalues λ (so a Moments suffices);
    4.   Σ̂ = √n · Σ_D / ‖Σ_D‖₂;
    5.   isotropy defect δ = ‖Σ̂ - 1‖₂ / √(2(n - √n));
    6.   dimensions used k = (n - δ²(n - √n))² / n;
    7.   IsoScore = (k - 1) / (n - 1)   (0 = one direction, 1 = isotropic).

    Algebraically k = (Σλ)²/Σλ², the participation ratio. The 1/N vs 1/(N-1) normalisation
    cancels in step 4. Zero eigenvalues (N ≤ D) are kept, as in the paper's definition and
    as PyPI IsoScore 2.0.1 (``IsoScore.IsoScore(points)``: points as rows (N, D), the
    singular values of ``torch.cov(points.T)``, so N < D is accepted and gives D values).
    The first release (v1) took points as columns (D, N) and needed N > D.
    ``basis="standardised"``: of the correlation spectrum (n = D minus constant coordinates).
    """
    ev = _eigvals(spectrum(x, basis=basis), "isoscore")
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
    return rank_collapse_residuals(x, mask, norms=(norm,))[norm]


def rank_collapse_residuals(x, mask=None, *, norms=("fro", "l1linf")) -> dict:
    """:func:`rank_collapse_residual_batch` in each of ``norms`` from one centring of the
    batch: {norm: (B,) residuals}."""
    arr = to_numpy64(x)
    if arr.ndim != 3:
        raise ValueError(f"rank_collapse_residual_batch: expected (B, T, D), got shape "
                         f"{arr.shape}; for one sequence use rank_collapse_residual")
    for norm in norms:
        if norm not in ("fro", "l1linf"):
            raise ValueError(f"rank_collapse_residual: norm must be 'fro' or 'l1linf', got "
                             f"{norm!r}")
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

    def size(a: np.ndarray, norm: str) -> np.ndarray:
        if norm == "fro":
            return np.sqrt(np.einsum("btd,btd->b", a, a))
        absa = np.abs(a)  # ‖A‖₁ = max column abs sum, ‖A‖∞ = max row abs sum
        return np.sqrt(absa.sum(axis=1).max(axis=1) * absa.sum(axis=2).max(axis=1))

    out = {}
    for norm in norms:
        denom = size(xm, norm)
        if (denom == 0).any():
            raise ValueError(f"rank_collapse_residual: sequences "
                             f"{np.flatnonzero(denom == 0)[:5].tolist()} are all zeros")
        out[norm] = size(res, norm) / denom
    return out


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
