import numpy as np
import pytest

from collapsekit.stats.bootstrap import bootstrap_mean_ci


def test_interval_brackets_mean_and_matches_normal_theory():
    x = np.random.default_rng(1).normal(3.0, 2.0, size=400)
    mean, lo, hi = bootstrap_mean_ci(x, n_boot=4000, seed=0)
    assert mean == pytest.approx(x.mean())
    assert lo < mean < hi
    # width of a 95% interval of a mean ≈ 2·1.96·s/√n
    expected = 2 * 1.96 * x.std(ddof=1) / np.sqrt(x.size)
    assert hi - lo == pytest.approx(expected, rel=0.1)


def test_constant_and_single_values_give_zero_width():
    assert bootstrap_mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert bootstrap_mean_ci([5.0]) == (5.0, 5.0, 5.0)


def test_same_seed_same_interval():
    x = np.arange(20.0)
    assert bootstrap_mean_ci(x, seed=3) == bootstrap_mean_ci(x, seed=3)


@pytest.mark.parametrize("bad", [[], [1.0, np.nan], [np.inf]])
def test_bad_input(bad):
    with pytest.raises(ValueError):
        bootstrap_mean_ci(bad)
