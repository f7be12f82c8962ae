"""Categorical learners: Wright–Fisher drift and the Zipf memoriser (tail cutting).

The model is the empirical distribution of its training draws (counts / total): under
replace this is the Wright–Fisher model with m haploid draws per generation (Wright 1931;
Fisher 1930). With a Zipf truth p_i ∝ i^(−β) the same learner is the memoriser of
Dohmatob et al. 2024, "A Tale of Tails": items unseen once are lost for good, and top-k /
top-p / temperature sampling cuts the tail faster. Metrics: entropy (nats), support size,
Gini–Simpson 1 − Σp² (heterozygosity), missing mass (real mass outside the model's
support, the memoriser's test error), TV, JS (nats) and KL(model ‖ real) to the truth, and
for Zipf the model's mass on the real tail (items ranked beyond ``head``).
"""

from __future__ import annotations

import numpy as np

from .. import closed_forms as cf
from .base import Learner, Param, stack


def truncate(p: np.ndarray, settings: dict) -> np.ndarray:
    """Rows of ``p`` after temperature (p^(1/τ)), then top-k, then top-p (nucleus: the
    smallest set of most likely items whose mass reaches top_p), renormalised."""
    q = np.asarray(p, dtype=np.float64)
    if settings.get("temperature", 1.0) != 1.0:
        with np.errstate(divide="ignore"):
            logq = np.log(q) / settings["temperature"]
        q = np.exp(logq - logq.max(axis=1, keepdims=True))
    q = q / q.sum(axis=1, keepdims=True)
    order = np.argsort(-q, axis=1, kind="stable")
    ranked = np.take_along_axis(q, order, axis=1)
    keep = np.ones_like(ranked, dtype=bool)
    if "top_k" in settings:
        keep[:, settings["top_k"]:] = False
    if "top_p" in settings:
        before = np.cumsum(ranked, axis=1) - ranked  # mass of the items ranked above
        keep &= before < settings["top_p"]
    out = np.zeros_like(q)
    np.put_along_axis(out, order, np.where(keep, ranked, 0.0), axis=1)
    return out / out.sum(axis=1, keepdims=True)


def js_nats(p, q):
    """Jensen–Shannon divergence (nats) between the rows of two distributions."""
    m = 0.5 * (p + q)
    return 0.5 * (kl_nats(p, m) + kl_nats(q, m))


def kl_nats(p, q):
    """KL(p ‖ q) in nats over the last axis (0·log 0 = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sum(np.where(p > 0, p * np.log(p / q), 0.0), axis=-1)


class CategoricalLearner(Learner):
    name = "categorical"
    doc = "empirical categorical distribution (Wright–Fisher drift)"
    PARAMS = {
        "K": Param(int, 10, "categories", low=2),
        "m": Param(int, 100, "draws per generation", low=1),
        "init": Param(str, "uniform", "true distribution: uniform or zipf",
                      choices=("uniform", "zipf")),
        "beta": Param(float, 1.5, "Zipf exponent β (p_i ∝ i^−β) when init=zipf", low=0.0),
        "head": Param(int, 0, "real top items excluded from the tail (0 = K/10)", low=0),
    }
    additive = True
    has_verifier = True
    sampling = frozenset({"temperature", "top_k", "top_p"})

    def check(self) -> None:
        if self.p["head"] >= self.p["K"]:
            raise ValueError(f"{self.name} learner: head={self.p['head']} must be below "
                             f"K={self.p['K']}")

    @property
    def n(self) -> int:
        return self.p["m"]

    def truth(self) -> np.ndarray:
        K = self.p["K"]
        if self.p["init"] == "uniform":
            return np.full(K, 1.0 / K)
        w = np.arange(1, K + 1, dtype=np.float64) ** -self.p["beta"]
        return w / w.sum()

    def world(self, rngs):
        return {"p0": np.broadcast_to(self.truth(), (len(rngs), self.p["K"]))}

    @staticmethod
    def _draw(p, n, rngs):
        """n i.i.d. draws per lane by inverting each lane's CDF (one searchsorted)."""
        lanes, K = p.shape
        cum = np.cumsum(p, axis=1)
        cum[:, -1] = 1.0
        offset = np.arange(lanes)[:, None]
        u = stack(rngs, lambda g: g.random(n)) + offset
        return np.searchsorted((cum + offset).ravel(), u, side="right") - K * offset

    def real(self, world, n, rngs, start=0):
        return self._draw(world["p0"], n, rngs)

    def summarize(self, world, items):
        lanes, K = items.shape[0], self.p["K"]
        flat = (items + K * np.arange(lanes)[:, None]).ravel()
        return {"counts": np.bincount(flat, minlength=lanes * K).reshape(lanes, K)}

    def fit(self, world, data, rngs):
        c = data["counts"].astype(np.float64)
        return c / c.sum(axis=1, keepdims=True)

    def sample(self, world, model, n, rngs, settings):
        return self._draw(truncate(model, settings), n, rngs)

    def evaluate(self, world, model, samples):
        p, p0 = model, world["p0"]
        with np.errstate(divide="ignore", invalid="ignore"):
            ent = -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=1)
        out = {"entropy": ent, "support_size": np.sum(p > 0, axis=1).astype(np.float64),
               "gini_simpson": 1 - np.sum(p ** 2, axis=1),
               "missing_mass": np.sum(np.where(p > 0, 0.0, p0), axis=1),
               "tv_real": 0.5 * np.sum(np.abs(p - p0), axis=1), "js_real": js_nats(p, p0),
               "kl_model_real": kl_nats(p, p0)}
        if self.p["init"] == "zipf":
            out["tail_mass"] = p[:, self._head():].sum(axis=1)
        return out

    def _head(self) -> int:
        return self.p["head"] or max(1, self.p["K"] // 10)

    def verify(self, world, items):
        """Log-probability of each item under the truth."""
        return np.log(np.take_along_axis(world["p0"], items, axis=1))

    def summaries(self, curves):
        fixed = curves["support_size"] == 1
        first = np.argmax(fixed, axis=1) + 1.0
        return {"fixation_generation": np.where(fixed.any(axis=1), first, np.nan)}

    def closed_forms(self, strategy, generations):
        if strategy.name != "replace" or not strategy.plain:
            return {}
        h0 = 1 - np.sum(self.truth() ** 2)
        return {"gini_simpson": cf.wright_fisher_heterozygosity(generations, self.p["m"], h0)}

    def summary_closed_forms(self, strategy):
        if strategy.name != "replace" or not strategy.plain:
            return {}
        return {"fixation_generation": cf.wright_fisher_fixation(self.truth(), self.p["m"])}


class ZipfLearner(CategoricalLearner):
    name = "zipf"
    doc = "memoriser of a Zipf distribution (tail cutting; Dohmatob et al. 2024)"
    PARAMS = {**CategoricalLearner.PARAMS,
              "K": Param(int, 2000, "categories", low=2),
              "m": Param(int, 2000, "draws per generation", low=1),
              "init": Param(str, "zipf", "true distribution: zipf or uniform",
                            choices=("zipf", "uniform")),
              "beta": Param(float, 1.2, "Zipf exponent β (p_i ∝ i^−β)", low=0.0)}
