"""Closed forms: hand values, and simulated curves inside their confidence intervals."""

import numpy as np
import pytest
from scipy.stats import binom

from collapsekit.studies.recursion import closed_forms as cf
from collapsekit.studies.recursion import make_learner, mean_ci, parse_strategy, run_lanes


def _curves(learner, params, spec, generations, seeds):
    lrn = make_learner(learner, params)
    strategy = parse_strategy(spec)
    res = run_lanes(lrn, strategy, generations, list(range(seeds)))
    return lrn, strategy, res


def _inside(res, metric, curve):
    """Generations whose closed form lies outside the simulated interval (Bonferroni:
    simultaneous 99% over the generations)."""
    values = np.array([r["curves"][metric] for r in res])
    level = 1 - 0.01 / len(curve)
    out = []
    for t, v in enumerate(curve):
        _, lo, hi, _ = mean_ci(values[:, t], level)
        if not lo <= v <= hi:
            out.append((t + 1, v, lo, hi))
    return out


def test_hand_values():
    c = 1.0 * 5 / (30 - 5 - 1)
    np.testing.assert_allclose(cf.ols_replace(3, 1.0, 5, 30), [c, 2 * c, 3 * c])
    np.testing.assert_allclose(cf.ols_accumulate(3, 1.0, 5, 30), c * np.array(
        [1, 1 + 1 / 4, 1 + 1 / 4 + 1 / 9]))
    assert cf.ols_accumulate(10_000, 2.0, 5, 30)[-1] < np.pi ** 2 / 6 * 2 * c
    np.testing.assert_allclose(cf.ols_replace_multiple(3, 1.0, 5, 30, 2), c * np.array(
        [1, 1.5, 2]))
    np.testing.assert_allclose(cf.ols_replace_multiple(3, 1.0, 5, 30, "t"), c * np.array(
        [1, 1.5, 1.5 + 1 / 3]))
    np.testing.assert_allclose(cf.gaussian_trace_replace(2, 4, 2.0), [1.5, 1.125])
    np.testing.assert_allclose(cf.gaussian_trace_replace(2, 4, 2.0, "unbiased"), [2, 2])
    np.testing.assert_allclose(cf.gaussian_mean_error_replace(2, 4, 2.0), [0.5, 0.875])
    np.testing.assert_allclose(cf.gaussian_mean_error_replace(2, 4, 2.0, "unbiased"), [.5, 1])
    # KDE: c1 = r tr0, c2 = r (c1 + d h^2); model trace = c + d h^2
    r, h2 = 0.75, 0.25
    np.testing.assert_allclose(cf.kde_trace_replace(2, 4, 1.0, 1, 0.5),
                               [r + h2, r * (r + h2) + h2])
    np.testing.assert_allclose(cf.wright_fisher_heterozygosity(2, 10, 0.5), [0.45, 0.405])
    assert cf.wright_fisher_fixation([0.5, 0.5], 10) == pytest.approx(20 * np.log(2))
    assert cf.wright_fisher_fixation([1.0, 0.0], 10) == 0.0
    with pytest.raises(ValueError, match="must exceed d\\+1"):
        cf.ols_scale(1.0, 5, 6)


def test_gaussian_divergences_by_hand():
    # 1-D: W2^2 = (mu1 - mu2)^2 + (s1 - s2)^2; KL = ln(s1/s0) + (s0^2 + dmu^2)/(2 s1^2) - 1/2
    mu0, s0, mu1, s1 = np.array([[0.0]]), 1.0, np.array([[1.5]]), 2.0
    w2 = cf.gaussian_w2(mu1, np.array([[[s1 ** 2]]]), mu0, np.array([[[s0 ** 2]]]))
    assert w2[0] == pytest.approx(np.sqrt(1.5 ** 2 + 1.0))
    kl = cf.gaussian_kl(mu0, np.array([[[s0 ** 2]]]), mu1, np.array([[[s1 ** 2]]]))
    assert kl[0] == pytest.approx(np.log(2) + (1 + 2.25) / 8 - 0.5)
    # diagonal 2-D: sums over coordinates; W2 symmetric
    a, b = np.diag([1.0, 4.0]), np.diag([9.0, 1.0])
    w = cf.gaussian_w2(np.zeros(2), a, np.ones(2), b)
    assert w == pytest.approx(np.sqrt(2 + (1 - 3) ** 2 + (2 - 1) ** 2))
    assert cf.gaussian_w2(np.ones(2), b, np.zeros(2), a) == pytest.approx(w)
    assert cf.gaussian_entropy(np.eye(3)) == pytest.approx(1.5 * np.log(2 * np.pi * np.e))


@pytest.mark.parametrize("spec", ["replace", "accumulate", "replace-multiple:k=2",
                                  "replace-multiple"])
def test_linear_ols_matches_closed_form(spec):
    lrn, s, res = _curves("linear", {"d": 5, "T": 30}, spec, 15, 300)
    curve = lrn.closed_forms(s, 15)["test_error"]
    assert _inside(res, "test_error", curve) == []


def test_linear_accumulate_subsample_between():
    lrn, _, res = _curves("linear", {"d": 5, "T": 30}, "accumulate-subsample", 15, 100)
    last = np.mean([r["curves"]["test_error"][-1] for r in res])
    c = cf.ols_scale(1.0, 5, 30)
    assert cf.ols_accumulate(15, 1.0, 5, 30)[-1] < last < 15 * c
    assert lrn.closed_forms(parse_strategy("accumulate-subsample"), 15) == {}
    assert make_learner("linear", {"ridge": "1"}).closed_forms(parse_strategy("replace"), 5) == {}


@pytest.mark.parametrize("variance", ["ml", "unbiased"])
def test_gaussian_replace_matches_closed_form(variance):
    lrn, s, res = _curves("gaussian", {"d": 2, "m": 50, "variance": variance}, "replace",
                          10, 400)
    forms = lrn.closed_forms(s, 10)
    for metric in ("cov_trace", "mean_error"):
        assert _inside(res, metric, forms[metric]) == [], metric
    if variance == "ml":
        assert np.mean([r["curves"]["cov_trace"][-1] for r in res]) < 2 * 0.85


def test_kde_replace_matches_closed_form():
    lrn, s, res = _curves("kde", {"m": 50, "bandwidth": 0.5, "n_test": 5}, "replace", 8, 300)
    assert _inside(res, "cov_trace", lrn.closed_forms(s, 8)["cov_trace"]) == []


def test_wright_fisher_heterozygosity_matches_closed_form():
    lrn, s, res = _curves("categorical", {"K": 4, "m": 20}, "replace", 25, 300)
    assert _inside(res, "gini_simpson", lrn.closed_forms(s, 25)["gini_simpson"]) == []


def _exact_fixation_two(m: int, i0: int) -> float:
    """Mean absorption time of the 2-allele Wright–Fisher chain (solve (I − Q) τ = 1)."""
    i = np.arange(1, m)
    q = binom.pmf(i[None, :], m, (i / m)[:, None])
    return float(np.linalg.solve(np.eye(m - 1) - q, np.ones(m - 1))[i0 - 1])


def test_wright_fisher_fixation_time():
    m, seeds = 16, 300
    lrn, s, res = _curves("categorical", {"K": 2, "m": m}, "replace", 220, seeds)
    times = [r["summary"]["fixation_generation"] for r in res]
    assert np.isfinite(times).all()  # every seed fixed within the horizon
    mean, lo, hi, _ = mean_ci(times, 0.99)
    exact = _exact_fixation_two(m, m // 2)
    assert lo <= exact <= hi
    # the diffusion approximation is O(1) generations high (-2m Σ(1-p)ln(1-p) = 22.2 here)
    approx = lrn.summary_closed_forms(s)["fixation_generation"]
    assert approx == pytest.approx(2 * m * np.log(2))
    assert 0 < approx - exact < 0.1 * exact
