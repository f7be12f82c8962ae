"""Spectral geometry metrics against closed forms, hand computations and streaming."""

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from collapsekit.metrics.spectrum import (
    AlphaReq, TopCoordinate, alpha_req, anisotropy, constant_coordinates, dim_eff, isoscore,
    matrix_entropy_rank, participation_ratio, rank_collapse_residual,
    rank_collapse_residual_batch, rank_collapse_residuals, rankme, spectrum, top_coordinate,
    top_coordinate_share,
)
from collapsekit.stats.moments import Moments


def entropy_rank(p):
    """exp(-Σ p log p) written out independently of the library (0 log 0 = 0)."""
    p = np.asarray(p, dtype=float)
    p = p[p > 0]
    return float(np.exp(-np.sum(p * np.log(p))))


def with_singular_values(sigma, n, d, seed=0):
    """An n×d matrix whose singular values are exactly ``sigma`` (up to round-off)."""
    k = len(sigma)
    u = ortho_group.rvs(n, random_state=seed)[:, :k]
    v = ortho_group.rvs(d, random_state=seed + 1)[:, :k]
    return (u * sigma) @ v.T


# -- spectrum -------------------------------------------------------------------------------
def test_spectrum_hand_computed():
    x = np.array([[1.0, 0.0], [-1.0, 0.0], [0.0, 2.0], [0.0, -2.0]])  # mean 0, cov diag(.5, 2)
    np.testing.assert_allclose(spectrum(x), [2.0, 0.5], rtol=1e-14)
    np.testing.assert_allclose(spectrum(x, center=False), [2.0, 0.5], rtol=1e-14)
    y = np.array([[1.0, 1.0], [3.0, 1.0]])  # cov [[1,0],[0,0]], Gram [[5,2],[2,1]]
    np.testing.assert_allclose(spectrum(y), [1.0, 0.0], atol=1e-14)
    np.testing.assert_allclose(spectrum(y, center=False), [3 + 2 * np.sqrt(2), 3 - 2 * np.sqrt(2)],
                               rtol=1e-13)


def test_spectrum_matches_numpy_and_keeps_zeros_when_n_below_d():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((500, 12)) * np.arange(1, 13) + 3.0
    ref = np.linalg.eigvalsh(np.cov(x.T, ddof=0))[::-1]
    ev = spectrum(x)
    assert ev.dtype == np.float64 and np.all(np.diff(ev) <= 0)
    np.testing.assert_allclose(ev, ref, rtol=1e-12)
    small = spectrum(rng.standard_normal((4, 10)))
    assert small.shape == (10,) and np.all(small[:3] > 0)
    assert np.all(small[3:] == 0)  # rank N - 1 = 3 after centring: round-off set to exactly 0


# -- eigenvalue summaries -------------------------------------------------------------------
def test_participation_ratio_and_dim_eff_by_hand():
    assert participation_ratio([3.0, 1.0]) == pytest.approx(16 / 10, rel=1e-15)
    assert participation_ratio(np.ones(7)) == pytest.approx(7, rel=1e-15)
    assert participation_ratio([5.0, 0.0, 0.0]) == pytest.approx(1, rel=1e-15)
    ev = [1.0, 5.0, 1.0, 3.0]  # unsorted on purpose: fractions .5, .8, .9, 1
    assert dim_eff(ev) == 3
    assert dim_eff(ev, threshold=0.5) == 1
    assert dim_eff(ev, threshold=0.81) == 3
    assert dim_eff(ev, threshold=1.0) == 4
    assert dim_eff([1.0, 0.0], threshold=1.0) == 1


def test_matrix_entropy_rank_closed_forms():
    assert matrix_entropy_rank([2.0, 2.0, 2.0, 0.0, 0.0]) == pytest.approx(3, rel=1e-14)
    assert matrix_entropy_rank([3.0, 1.0]) == pytest.approx(entropy_rank([0.75, 0.25]), rel=1e-14)
    eps = 1e-7
    p = np.array([0.75, 0.25]) + eps
    assert matrix_entropy_rank([3.0, 1.0], eps=eps) == pytest.approx(
        np.exp(-np.sum(p * np.log(p))), rel=1e-14)


def test_rankme_known_singular_values_vs_matrix_entropy_rank():
    sigma = np.array([5.0, 3.0, 1.0, 0.5])
    x = with_singular_values(sigma, 40, 9)
    assert rankme(x, eps=0) == pytest.approx(entropy_rank(sigma / sigma.sum()), rel=1e-12)
    p = np.r_[sigma / sigma.sum(), np.zeros(5)] + 1e-7  # ε is added to all min(N, D) = 9 terms
    assert rankme(x) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-10)
    # matrix_entropy_rank of the Gram spectrum uses σ², a different (smaller) number
    lam = sigma ** 2
    assert matrix_entropy_rank(spectrum(x, center=False)) == pytest.approx(
        entropy_rank(lam / lam.sum()), rel=1e-10)


def test_rankme_rank_one_is_one_up_to_eps():
    rng = np.random.default_rng(1)
    x = np.outer(rng.uniform(1, 2, 300), rng.standard_normal(50)) + 0.0
    k, eps = 50, 1e-7
    p = np.r_[1 + eps, np.full(k - 1, eps)]
    assert rankme(x, eps=eps) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-9)
    assert rankme(x, eps=0) == pytest.approx(1.0, rel=1e-12)


def test_rankme_uses_min_n_d_terms():
    sigma = np.array([2.0, 1.0, 1.0])
    x = with_singular_values(sigma, 3, 20)  # N = 3 < D = 20
    p = sigma / sigma.sum() + 1e-7
    assert rankme(x) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-10)


def test_alpha_req_exact_power_law():
    r = np.arange(1, 301, dtype=float)
    ev = 7.0 * r ** -1.3
    fit = alpha_req(ev)
    assert isinstance(fit, AlphaReq)
    assert fit.alpha == pytest.approx(1.3, abs=1e-9)
    assert fit.r2 == pytest.approx(1.0, abs=1e-12)
    assert fit.n_used == 90
    assert alpha_req(ev, weighted=True).alpha == pytest.approx(1.3, abs=1e-9)
    clipped = alpha_req(np.r_[ev[:40], np.zeros(20)])  # only 40 positive: ranks 11..40
    assert clipped.n_used == 30 and clipped.alpha == pytest.approx(1.3, abs=1e-9)
    flat = alpha_req(np.ones(120))
    assert flat.alpha == pytest.approx(0.0, abs=1e-12) and flat.r2 == 1.0


def test_alpha_req_ignores_round_off_eigenvalues_when_n_below_d():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((20, 200)) * np.arange(1, 201) ** -0.5  # rank 19 after centring
    ev = spectrum(x)
    fit = alpha_req(ev)
    assert fit.n_used == 9  # ranks 11..19, not the 181 round-off values after them
    lr, le = np.log(np.arange(11, 20)), np.log(ev[10:19])
    assert fit.alpha == pytest.approx(-np.polyfit(lr, le, 1)[0], rel=1e-12)


def test_alpha_req_matches_independent_polyfit():
    rng = np.random.default_rng(2)
    ev = np.sort(rng.uniform(0.1, 10, 60) * np.arange(1, 61) ** -0.8)[::-1]
    lr, le = np.log(np.arange(5, 41)), np.log(ev[4:40])
    slope, icpt = np.polyfit(lr, le, 1)
    r2 = 1 - np.sum((le - icpt - slope * lr) ** 2) / np.sum((le - le.mean()) ** 2)
    fit = alpha_req(ev, ranks=(5, 40))
    assert fit.alpha == pytest.approx(-slope, rel=1e-12)
    assert fit.r2 == pytest.approx(r2, rel=1e-12)
    w_slope = np.polyfit(lr, le, 1, w=np.arange(5, 41) ** -0.5)[0]  # polyfit squares w
    assert alpha_req(ev, ranks=(5, 40), weighted=True).alpha == pytest.approx(-w_slope, rel=1e-12)


def test_participation_ratio_of_isotropic_gaussian_follows_marchenko_pastur():
    n, d = 2000, 50
    x = np.random.default_rng(3).standard_normal((n, d))
    # E tr S² ≈ D (N + D) / N and (tr S)² ≈ D² for S = XᵀX / N  =>  PR ≈ N D / (N + D)
    assert participation_ratio(spectrum(x)) == pytest.approx(n * d / (n + d), rel=0.01)


# -- anisotropy -----------------------------------------------------------------------------
def test_anisotropy_closed_forms():
    rng = np.random.default_rng(4)
    assert anisotropy(np.outer(rng.uniform(0.5, 3, 40), rng.standard_normal(8))) == \
        pytest.approx(1.0, abs=1e-13)
    assert anisotropy(ortho_group.rvs(16, random_state=5)) == pytest.approx(0.0, abs=1e-13)
    assert anisotropy([[1.0, 0.0], [-2.0, 0.0]]) == pytest.approx(-1.0, abs=1e-15)
    assert anisotropy([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]]) == pytest.approx(np.sqrt(2) / 3,
                                                                             rel=1e-14)


def test_anisotropy_equals_brute_force_pairwise_mean():
    x = np.random.default_rng(6).standard_normal((60, 5)) + 0.7
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    c = u @ u.T
    brute = (c.sum() - np.trace(c)) / (60 * 59)
    assert anisotropy(x) == pytest.approx(brute, rel=1e-12)


# -- isoscore -------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 10])
def test_isoscore_of_k_uniformly_used_dimensions(k):
    d = 10
    axes = np.eye(d)[:k] * 2.5
    x = np.vstack([axes, -axes])  # mean 0, covariance eigenvalues: k equal, d - k zeros
    assert isoscore(x) == pytest.approx((k - 1) / (d - 1), abs=1e-12)


def test_isoscore_rank_one_isotropic_and_pr_identity():
    rng = np.random.default_rng(7)
    assert isoscore(np.outer(rng.standard_normal(200), rng.standard_normal(30))) == \
        pytest.approx(0.0, abs=1e-10)
    assert isoscore(rng.standard_normal((5000, 10))) > 0.99
    x = rng.standard_normal((300, 15)) * np.linspace(0.1, 3, 15)
    pr = participation_ratio(spectrum(x))
    assert isoscore(x) == pytest.approx((pr - 1) / 14, rel=1e-12)


# -- streaming == in memory -------------------------------------------------------------------
def test_every_metric_agrees_between_moments_and_array():
    rng = np.random.default_rng(8)
    x = rng.standard_normal((3000, 40)) @ np.diag(np.arange(1, 41) ** -0.7) + 2.0
    shards = [Moments(name="layer 0").update(b) for b in np.array_split(x, [700, 701, 2100])]
    m = shards[2].merge(shards[0]).merge(shards[3]).merge(shards[1])
    for center in (True, False):
        a, b = spectrum(m, center=center), spectrum(x, center=center)
        assert np.max(np.abs(a - b)) <= 1e-9 * b[0]
    ev_m, ev_x = spectrum(m), spectrum(x)
    def alpha(e):
        return alpha_req(e, ranks=(2, 40)).alpha

    for f in (participation_ratio, matrix_entropy_rank, alpha):
        assert f(ev_m) == pytest.approx(f(ev_x), rel=1e-9)
    assert dim_eff(ev_m) == dim_eff(ev_x)
    for f in (rankme, anisotropy, isoscore):
        assert f(m) == pytest.approx(f(x), rel=1e-9)


def test_rankme_and_isoscore_match_direct_svd_and_pca_recipes():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((400, 30)) * np.linspace(0.2, 4, 30) + 1.5
    s = np.linalg.svd(x, compute_uv=False)  # the paper's route: SVD of the N×D matrix
    p = s / s.sum() + 1e-7
    assert rankme(x) == pytest.approx(np.exp(-np.sum(p * np.log(p))), rel=1e-9)
    from sklearn.decomposition import PCA  # Rudman et al. Algorithm 1, step by step

    var = np.var(PCA(n_components=30).fit_transform(x), axis=0, ddof=1)
    var = np.sqrt(30) * var / np.linalg.norm(var)
    delta = np.linalg.norm(var - 1) / np.sqrt(2 * (30 - np.sqrt(30)))
    k = (30 - delta ** 2 * (30 - np.sqrt(30))) ** 2 / 30
    assert isoscore(x) == pytest.approx((k - 1) / 29, rel=1e-9)


def test_torch_input_accepted():
    x = np.random.default_rng(9).standard_normal((50, 6))
    t = torch.tensor(x, dtype=torch.float32)
    assert rankme(t) == pytest.approx(rankme(t.numpy().astype(np.float64)), rel=1e-14)


# -- rank collapse ----------------------------------------------------------------------------
def test_rank_collapse_residual_hand_computed():
    x = np.array([[1.0, 0.0], [3.0, 0.0]])  # R = [[-1,0],[1,0]]
    assert rank_collapse_residual(x) == pytest.approx(np.sqrt(2 / 10), rel=1e-15)
    # ‖R‖₁ = 2, ‖R‖∞ = 1; ‖X‖₁ = 4, ‖X‖∞ = 3
    assert rank_collapse_residual(x, norm="l1linf") == pytest.approx(np.sqrt(2 / 12), rel=1e-15)
    same = np.tile([0.3, -1.0, 2.0], (5, 1))
    assert rank_collapse_residual(same) == 0.0
    assert rank_collapse_residual(same, norm="l1linf") == 0.0


def test_rank_collapse_batch_with_mask_matches_single_sequences():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 7, 5))
    lengths = [7, 2, 5, 3]
    mask = np.arange(7)[None, :] < np.array(lengths)[:, None]
    x[~mask] = np.nan  # padding content must not matter
    for norm in ("fro", "l1linf"):
        got = rank_collapse_residual_batch(x, mask, norm=norm)
        want = [rank_collapse_residual(x[b, :n], norm=norm) for b, n in enumerate(lengths)]
        np.testing.assert_allclose(got, want, rtol=1e-14)
    both = rank_collapse_residuals(x, mask)  # one centring, both norms
    for norm in ("fro", "l1linf"):
        np.testing.assert_array_equal(both[norm], rank_collapse_residual_batch(x, mask, norm=norm))
    with pytest.raises(ValueError, match="'fro' or 'l1linf'"):
        rank_collapse_residuals(x, mask, norms=("fro", "nuc"))
    y = rng.standard_normal((3, 4, 2))
    np.testing.assert_allclose(rank_collapse_residual_batch(torch.tensor(y)),
                               [rank_collapse_residual(s) for s in y], rtol=1e-14)


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize("f", [spectrum, rankme, anisotropy, isoscore])
def test_data_metrics_reject_bad_input(f):
    for bad, msg in [(np.ones(5), "shape"), (np.ones((2, 3, 4)), "shape"),
                     (np.empty((0, 3)), "at least 2 rows"), (np.ones((1, 3)), "at least 2 rows"),
                     (np.array([[1.0, np.nan], [1.0, 2.0]]), "NaN or inf"),
                     (np.array([[1.0, np.inf], [1.0, 2.0]]), "NaN or inf"),
                     (Moments().update(np.ones((1, 3))), "need at least 2"),
                     ([["a", "b"], ["c", "d"]], "numeric")]:
        with pytest.raises(ValueError, match=msg):
            f(bad)


def test_all_zero_and_degenerate_data_rejected():
    zeros = np.zeros((5, 3))
    with pytest.raises(ValueError, match="all zeros"):
        rankme(zeros)
    with pytest.raises(ValueError, match="all-zero rows"):
        anisotropy(zeros)
    with pytest.raises(ValueError, match="no variance"):
        isoscore(np.ones((5, 3)))
    with pytest.raises(ValueError, match="D >= 2"):
        isoscore(np.arange(6.0).reshape(6, 1))
    with pytest.raises(ValueError, match="unit_sum=True"):
        anisotropy(Moments(unit_sum=False).update(np.eye(3)))
    with pytest.raises(ValueError, match="eps"):
        rankme(np.eye(3), eps=-1)


@pytest.mark.parametrize("f", [participation_ratio, matrix_entropy_rank, dim_eff, alpha_req])
def test_eigenvalue_metrics_reject_bad_input(f):
    for bad, msg in [([], "non-empty 1-D"), (np.eye(3), "1-D"), ([1.0, np.nan], "NaN or inf"),
                     ([1.0, -0.5], "negative"), ([0.0, 0.0, 0.0], "all eigenvalues are zero")]:
        with pytest.raises(ValueError, match=msg):
            f(bad)


def test_eigenvalue_metric_parameters_validated():
    ev = np.arange(30.0, 0, -1)
    for t in (0, -0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            dim_eff(ev, threshold=t)
    for ranks in ((0, 10), (10, 10), (5, 2), (1.5, 9), 10, (1, 2, 3)):
        with pytest.raises(ValueError, match="ranks must be"):
            alpha_req(ev, ranks=ranks)
    with pytest.raises(ValueError, match="need 3"):
        alpha_req(ev[:12])  # ranks 11..12 only
    with pytest.raises(ValueError, match="eps"):
        matrix_entropy_rank(ev, eps=np.nan)
    np.testing.assert_allclose(participation_ratio([1.0, -1e-14]), 1.0)  # round-off clipped


def test_rank_collapse_rejects_bad_input():
    x = np.ones((2, 4, 3))
    cases = [
        (lambda: rank_collapse_residual(x), "one sequence"),
        (lambda: rank_collapse_residual_batch(x[0]), r"\(B, T, D\)"),
        (lambda: rank_collapse_residual_batch(np.empty((0, 4, 3))), "empty"),
        (lambda: rank_collapse_residual(x[0], norm="nuc"), "norm must be"),
        (lambda: rank_collapse_residual(x[0, :1]), ">= 2 tokens"),
        (lambda: rank_collapse_residual_batch(x, np.ones((2, 3), bool)), "mask must be"),
        (lambda: rank_collapse_residual_batch(x, np.ones((2, 4))), "mask must be"),
        (lambda: rank_collapse_residual(np.zeros((4, 3))), "all zeros"),
        (lambda: rank_collapse_residual(np.full((4, 3), np.nan)), "NaN or inf"),
    ]
    for call, msg in cases:
        with pytest.raises(ValueError, match=msg):
            call()


# -- outlier coordinates: top_coordinate and the standardised basis ---------------------------
def diagonal_rows(a):
    """Rows ±a_j e_j: mean 0, covariance = Gram = diag(2 a_j² / N) exactly (N = 2D)."""
    eye = np.diag(np.asarray(a, dtype=float))
    return np.vstack([eye, -eye])


def test_standardised_basis_of_a_diagonal_covariance_with_one_huge_variance():
    a = np.array([1e4, 1.0, 2.0, 3.0])
    x = diagonal_rows(a)
    # raw: singular values √2·a_j -> RankMe = exp H(a / Σa), dominated by the outlier
    assert rankme(x, eps=0) == pytest.approx(entropy_rank(a / a.sum()), rel=1e-12)
    assert rankme(x, eps=0) < 1.01
    # standardised: C = I, every eigenvalue 1 -> RankMe = D, flat spectrum, IsoScore 1
    np.testing.assert_allclose(spectrum(x, basis="standardised"), np.ones(4), rtol=1e-14)
    assert rankme(x, eps=0, basis="standardised") == pytest.approx(4.0, rel=1e-13)
    assert isoscore(x, basis="standardised") == pytest.approx(1.0, abs=1e-12)
    assert matrix_entropy_rank(spectrum(x, basis="standardised")) == pytest.approx(4.0)
    top = top_coordinate(x)
    assert (top.index, top.share) == (0, pytest.approx(a[0] ** 2 / (a ** 2).sum()))


def test_standardised_spectrum_is_the_correlation_spectrum_by_hand():
    # columns ±1 with correlation (1+1-1-1+1+1)/6 = 1/3 -> eigenvalues 1 ± 1/3, any scales
    s = np.array([[1, 1], [-1, -1], [1, -1], [-1, 1], [1, 1], [-1, -1]], dtype=float)
    for scale in ([1.0, 1.0], [1e3, 1e-3]):
        np.testing.assert_allclose(spectrum(s * scale, basis="standardised"), [4 / 3, 2 / 3],
                                   rtol=1e-13)
    # z-scores are centred: a shifted copy has the same standardised spectrum and RankMe
    m = Moments(2).update(s[:3] * [5, 7] + 1e4).update(s[3:] * [5, 7] + 1e4)
    np.testing.assert_allclose(spectrum(m, basis="standardised"), [4 / 3, 2 / 3], rtol=1e-9)
    sigma = np.sqrt(6 * np.array([4 / 3, 2 / 3]))  # singular values of the z-scored matrix
    assert rankme(m, eps=0, basis="standardised") == pytest.approx(
        entropy_rank(sigma / sigma.sum()), rel=1e-9)


def test_constant_coordinates_are_left_out_of_the_standardised_basis():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    with_const = np.hstack([x, np.full((40, 2), 7.0)])
    assert constant_coordinates(with_const) == 2 and constant_coordinates(x) == 0
    np.testing.assert_allclose(spectrum(with_const, basis="standardised"),
                               spectrum(x, basis="standardised"), rtol=1e-12)
    assert rankme(with_const, basis="standardised") == pytest.approx(
        rankme(x, basis="standardised"), rel=1e-12)
    assert spectrum(with_const, basis="standardised").sum() == pytest.approx(3.0)


def test_top_coordinate_variance_vs_squared_norm_by_hand():
    x = np.array([[100.0, 1.0], [100.0, -1.0]])
    # Var = (0, 1): coordinate 1 holds all the variance; E[x²] = (10000, 1): coordinate 0
    assert top_coordinate(x) == TopCoordinate(1, 1.0)
    assert top_coordinate(x, center=False) == TopCoordinate(0, pytest.approx(1e4 / 10001))
    y = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])  # Var = (1, 0, 1): tie -> lowest index
    assert top_coordinate(y) == TopCoordinate(0, 0.5)
    assert top_coordinate_share(np.eye(4)) == pytest.approx(0.25)


def test_standardised_basis_and_top_coordinate_reject_bad_input():
    x = np.random.default_rng(0).normal(size=(10, 3))
    for f in (spectrum, rankme, isoscore):
        with pytest.raises(ValueError, match="basis must be one of"):
            f(x, basis="zscore")
        with pytest.raises(ValueError, match="every coordinate is constant"):
            f(np.ones((5, 3)), basis="standardised")
    with pytest.raises(ValueError, match="centred"):
        spectrum(x, center=False, basis="standardised")
    with pytest.raises(ValueError, match="no variance"):
        top_coordinate(np.ones((4, 2)))
    with pytest.raises(ValueError, match="all zeros"):
        top_coordinate(np.zeros((4, 2)), center=False)
    for bad in (np.zeros((0, 3)), np.ones((1, 3)), np.array([[np.nan, 1.0], [1.0, 1.0]])):
        with pytest.raises(ValueError):
            top_coordinate(bad)
