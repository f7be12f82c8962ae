"""Gaussian fitted by maximum likelihood, 1-D (d=1) or multivariate.

Truth N(0, σ²I_d); each generation fits μ̂ = mean and Σ̂ = scatter/m (``variance=ml``) or
scatter/(m−1) (``variance=unbiased``) on its training rows, then draws from N(μ̂, Σ̂)
(``temperature`` τ draws from N(μ̂, τΣ̂), the density raised to 1/τ). Under replace the ML
trace decays as ((m−1)/m)^t; the unbiased trace keeps its mean but still collapses
almost surely (Shumailov et al. 2024's Gaussian example). Metrics are exact functionals of
the fitted Gaussian against the truth: held-out real NLL (cross-entropy, nats),
KL(truth ‖ model), W₂, covariance trace, squared mean error.
"""

from __future__ import annotations

import numpy as np

from .. import closed_forms as cf
from .base import Learner, Param, stack


def chan_merge(a: dict, b: dict) -> dict:
    """Combine (n, mean, scatter) of two parts (Chan, Golub & LeVeque 1979)."""
    n = a["n"] + b["n"]
    delta = b["mean"] - a["mean"]
    w = (a["n"] * b["n"] / n)[:, None, None]
    return {"n": n, "mean": a["mean"] + delta * (b["n"] / n)[:, None],
            "m2": a["m2"] + b["m2"] + w * delta[:, :, None] * delta[:, None, :]}


class GaussianLearner(Learner):
    name = "gaussian"
    doc = "Gaussian (1-D or multivariate), ML or unbiased covariance"
    PARAMS = {
        "d": Param(int, 1, "dimension", low=1),
        "m": Param(int, 100, "samples per generation", low=2),
        "sigma2": Param(float, 1.0, "true variance per dimension (> 0)", low=0.0),
        "variance": Param(str, "ml", "covariance estimator: ml (divide by m) or unbiased "
                          "(by m − 1)", choices=("ml", "unbiased")),
    }
    additive = True
    has_verifier = True
    sampling = frozenset({"temperature"})

    def check(self) -> None:
        if self.p["sigma2"] <= 0:
            raise ValueError("gaussian learner: sigma2 must be > 0")
        if self.p["m"] <= self.p["d"]:
            raise ValueError(f"gaussian learner: m={self.p['m']} samples cannot give a "
                             f"full-rank covariance in d={self.p['d']} dimensions: use m > d")

    @property
    def n(self) -> int:
        return self.p["m"]

    def _truth(self, lanes: int):
        d = self.p["d"]
        return np.zeros((lanes, d)), np.broadcast_to(self.p["sigma2"] * np.eye(d), (lanes, d, d))

    def world(self, rngs):
        mu, cov = self._truth(len(rngs))
        return {"mu": mu, "cov": cov}

    def real(self, world, n, rngs, start=0):
        return self._draw(world["mu"], world["cov"], n, rngs)

    @staticmethod
    def _draw(mu, cov, n, rngs):
        z = stack(rngs, lambda g: g.standard_normal((n, mu.shape[1])))
        return mu[:, None, :] + z @ cf.sqrtm_psd(cov)

    def summarize(self, world, items):
        mean = items.mean(axis=1)
        c = items - mean[:, None, :]
        return {"n": np.full(items.shape[0], items.shape[1], dtype=np.float64), "mean": mean,
                "m2": np.einsum("lni,lnj->lij", c, c)}

    def merge(self, a, b):
        return chan_merge(a, b)

    def fit(self, world, data, rngs):
        ddof = 1 if self.p["variance"] == "unbiased" else 0
        return {"mu": data["mean"], "cov": data["m2"] / (data["n"] - ddof)[:, None, None]}

    def sample(self, world, model, n, rngs, settings):
        cov = model["cov"] * settings.get("temperature", 1.0)
        return self._draw(model["mu"], cov, n, rngs)

    def evaluate(self, world, model, samples):
        mu0, cov0, mu, cov = world["mu"], world["cov"], model["mu"], model["cov"]
        kl = cf.gaussian_kl(mu0, cov0, mu, cov)
        return {"nll_real": kl + cf.gaussian_entropy(cov0), "kl_real_model": kl,
                "w2": cf.gaussian_w2(mu, cov, mu0, cov0),
                "cov_trace": np.trace(cov, axis1=1, axis2=2),
                "mean_error": np.sum((mu - mu0) ** 2, axis=1)}

    def verify(self, world, items):
        """Log-density of each item under the truth (up to a constant)."""
        return -0.5 * np.sum((items - world["mu"][:, None]) ** 2, axis=2) / self.p["sigma2"]

    def closed_forms(self, strategy, generations):
        if strategy.name != "replace" or not strategy.plain:
            return {}
        m, v = self.p["m"], self.p["variance"]
        tr0 = self.p["d"] * self.p["sigma2"]
        return {"cov_trace": cf.gaussian_trace_replace(generations, m, tr0, v),
                "mean_error": cf.gaussian_mean_error_replace(generations, m, tr0, v)}
