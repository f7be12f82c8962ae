"""Density learners: a Gaussian mixture fitted by EM (scikit-learn) and a Gaussian KDE
(the settings of Kazdan et al. 2024, "Collapse or Thrive?").

Held-out real NLL is the mean −log density of a fixed real test sample (nats per point).
"""

from __future__ import annotations

import numpy as np

from .. import closed_forms as cf
from .base import Learner, Param, stack


class MixtureLearner(Learner):
    name = "gmm"
    doc = "Gaussian mixture fitted by EM (scikit-learn GaussianMixture)"
    PARAMS = {
        "k": Param(int, 3, "mixture components (truth and model)", low=1),
        "d": Param(int, 2, "dimension", low=1),
        "m": Param(int, 300, "samples per generation", low=2),
        "separation": Param(float, 4.0, "distance of the true component means from 0",
                            low=0.0),
        "n_test": Param(int, 2000, "real held-out test points", low=1),
        "max_iter": Param(int, 100, "EM iterations", low=1),
    }
    batched = False

    def check(self) -> None:
        if self.p["m"] < self.p["k"]:
            raise ValueError(f"gmm learner: m={self.p['m']} samples cannot fit "
                             f"k={self.p['k']} components: use m ≥ k")

    @property
    def n(self) -> int:
        return self.p["m"]

    def _truth(self):
        k, d = self.p["k"], self.p["d"]
        angles = 2 * np.pi * np.arange(k) / k
        means = np.zeros((k, d))
        means[:, 0] = np.cos(angles)
        if d > 1:
            means[:, 1] = np.sin(angles)
        return means * self.p["separation"]

    def _real(self, n, g):
        comp = g.integers(0, self.p["k"], size=n)
        return self._truth()[comp] + g.standard_normal((n, self.p["d"]))

    def world(self, rngs):
        return {"test": stack(rngs, lambda g: self._real(self.p["n_test"], g))}

    def real(self, world, n, rngs, start=0):
        return stack(rngs, lambda g: self._real(n, g))

    def fit(self, world, data, rngs):
        from sklearn.mixture import GaussianMixture

        return [GaussianMixture(self.p["k"], max_iter=self.p["max_iter"],
                                random_state=int(g.integers(2 ** 31))).fit(x)
                for x, g in zip(data, rngs)]

    def sample(self, world, model, n, rngs, settings):
        out = []
        for gm, g in zip(model, rngs):
            gm.random_state = int(g.integers(2 ** 31))
            x = gm.sample(n)[0] if n else np.empty((0, self.p["d"]))
            out.append(x[g.permutation(n)])  # sklearn returns rows grouped by component
        return np.stack(out)

    def evaluate(self, world, model, samples):
        nll = [-gm.score_samples(t).mean() for gm, t in zip(model, world["test"])]
        trace = []
        for gm in model:
            mean = gm.weights_ @ gm.means_
            spread = gm.means_ - mean
            trace.append(float(gm.weights_ @ (np.trace(gm.covariances_, axis1=1, axis2=2)
                                              + np.sum(spread ** 2, axis=1))))
        return {"nll_real": np.array(nll), "cov_trace": np.array(trace)}


class KDELearner(Learner):
    name = "kde"
    doc = "Gaussian kernel density estimate with a fixed bandwidth"
    PARAMS = {
        "d": Param(int, 1, "dimension", low=1),
        "m": Param(int, 100, "samples per generation", low=2),
        "bandwidth": Param(float, 0.3, "kernel standard deviation h (> 0)", low=0.0),
        "n_test": Param(int, 500, "real held-out test points (truth N(0, I))", low=1),
    }

    def check(self) -> None:
        if self.p["bandwidth"] <= 0:
            raise ValueError("kde learner: bandwidth must be > 0")

    @property
    def n(self) -> int:
        return self.p["m"]

    def world(self, rngs):
        shape = (self.p["n_test"], self.p["d"])
        return {"test": stack(rngs, lambda g: g.standard_normal(shape))}

    def real(self, world, n, rngs, start=0):
        return stack(rngs, lambda g: g.standard_normal((n, self.p["d"])))

    def fit(self, world, data, rngs):
        return data

    def sample(self, world, model, n, rngs, settings):
        h, d = self.p["bandwidth"], self.p["d"]
        return stack(list(zip(rngs, model)), lambda gx: gx[1][gx[0].integers(
            0, len(gx[1]), size=n)] + h * gx[0].standard_normal((n, d)))

    def evaluate(self, world, model, samples):
        h, d = self.p["bandwidth"], self.p["d"]
        test = world["test"]
        step = max(1, int(1e6 // (test.shape[1] * model.shape[1])))  # cache-sized blocks
        nll = []
        for s in range(0, len(model), step):
            x, t = model[s:s + step], test[s:s + step]
            a = (t @ np.swapaxes(x, 1, 2) - 0.5 * np.sum(t ** 2, 2)[:, :, None]
                 - 0.5 * np.sum(x ** 2, 2)[:, None, :]) / h ** 2  # −‖t − x‖²/(2h²)
            amax = a.max(axis=2, keepdims=True)
            logp = (np.log(np.exp(a - amax).sum(axis=2)) + amax[..., 0]
                    - np.log(x.shape[1]) - 0.5 * d * np.log(2 * np.pi * h ** 2))
            nll.append(-logp.mean(axis=1))
        nll = np.concatenate(nll)
        var = model.var(axis=1).sum(axis=1)
        return {"nll_real": nll, "cov_trace": var + d * h ** 2}

    def closed_forms(self, strategy, generations):
        if strategy.name != "replace" or not strategy.plain:
            return {}
        p = self.p
        return {"cov_trace": cf.kde_trace_replace(generations, p["m"], p["d"], p["d"],
                                                  p["bandwidth"])}
