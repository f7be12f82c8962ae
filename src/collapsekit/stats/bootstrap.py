"""Percentile bootstrap confidence intervals (Efron & Tibshirani 1993)."""

from __future__ import annotations

import numpy as np


def bootstrap_mean_ci(values, *, level: float = 0.95, n_boot: int = 2000,
                      seed: int = 0) -> tuple[float, float, float]:
    """(mean, low, high): the mean of ``values`` and the percentile bootstrap interval of it,
    from ``n_boot`` resamples with replacement drawn by a seeded generator. NaNs are an
    error; one value gives a zero-width interval."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("bootstrap of no values: give at least one")
    if not np.all(np.isfinite(x)):
        raise ValueError("bootstrap values contain NaN or inf: drop or fix them first")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    mean = float(x.mean())
    if x.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return mean, float(low), float(high)
