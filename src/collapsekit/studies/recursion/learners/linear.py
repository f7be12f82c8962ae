"""Linear regression with a fixed design (Dohmatob et al. 2024; Gerstgrasser et al. 2024).

Per seed: design X (T×d) with N(0, I) rows, w* ~ N(0, I/d), real labels y = Xw* + ε,
ε ~ N(0, σ²I). A model ŵ labels the design again, y' = Xŵ + ε' (n·k rows cycle through
X's rows), and the next model is fitted on the pool's (x, y) rows:
OLS ŵ = (XᵀX)⁻¹Xᵀy, or ridge ŵ = (XᵀX + λI)⁻¹Xᵀy (penalty λ‖w‖² not scaled by the row
count, as in scikit-learn's ``Ridge``). Test error E_test(ŵ) = E_x (xᵀŵ − xᵀw*)² =
‖ŵ − w*‖² (x ~ N(0, I)), computed exactly (no test sample). Items are rows [x, y].
"""

from __future__ import annotations

import numpy as np

from .. import closed_forms as cf
from .base import Learner, Param, stack


class LinearLearner(Learner):
    name = "linear"
    doc = "fixed-design linear regression, OLS or ridge (closed forms for OLS)"
    PARAMS = {
        "d": Param(int, 10, "features", low=1),
        "T": Param(int, 100, "rows of the fixed design (examples per generation)", low=1),
        "sigma2": Param(float, 1.0, "label noise variance σ²", low=0.0),
        "ridge": Param(float, 0.0, "ridge penalty λ (0 = OLS)", low=0.0),
    }
    additive = True
    has_verifier = True

    def check(self) -> None:
        d, T = self.p["d"], self.p["T"]
        if self.p["ridge"] == 0 and T <= d + 1:
            raise ValueError(f"linear learner: OLS needs T > d + 1 (got T={T}, d={d}; the "
                             "test error has no finite mean otherwise): raise T, lower d, or "
                             "set ridge > 0")

    @property
    def n(self) -> int:
        return self.p["T"]

    def world(self, rngs):
        d, T = self.p["d"], self.p["T"]
        return {"X": stack(rngs, lambda g: g.standard_normal((T, d))),
                "w": stack(rngs, lambda g: g.standard_normal(d) / np.sqrt(d))}

    def _label(self, X, w, n, rngs):
        rows = X[:, np.arange(n) % X.shape[1]]
        noise = stack(rngs, lambda g: g.standard_normal(n)) * np.sqrt(self.p["sigma2"])
        y = np.einsum("lnd,ld->ln", rows, w) + noise
        return np.concatenate([rows, y[..., None]], axis=2)

    def real(self, world, n, rngs, start=0):
        return self._label(world["X"], world["w"], n, rngs)

    def summarize(self, world, items):
        x, y = items[..., :-1], items[..., -1]
        return {"xx": np.einsum("lni,lnj->lij", x, x), "xy": np.einsum("lni,ln->li", x, y)}

    def fit(self, world, data, rngs):
        a = data["xx"] + self.p["ridge"] * np.eye(self.p["d"])
        return np.linalg.solve(a, data["xy"][..., None])[..., 0]

    def sample(self, world, model, n, rngs, settings):
        return self._label(world["X"], model, n, rngs)

    def evaluate(self, world, model, samples):
        return {"test_error": np.sum((model - world["w"]) ** 2, axis=1)}

    def verify(self, world, items):
        """Minus the absolute residual against the true w*."""
        return -np.abs(items[..., -1] - np.einsum("lnd,ld->ln", items[..., :-1], world["w"]))

    def closed_forms(self, strategy, generations):
        if self.p["ridge"] != 0 or not strategy.plain:
            return {}
        args = (generations, self.p["sigma2"], self.p["d"], self.p["T"])
        if strategy.name == "replace":
            return {"test_error": cf.ols_replace(*args)}
        if strategy.name == "accumulate":
            return {"test_error": cf.ols_accumulate(*args)}
        if strategy.name == "replace-multiple":
            return {"test_error": cf.ols_replace_multiple(*args, strategy.params["k"])}
        return {}
