"""Model-free agent dynamics on the unit sphere ("Asymptotic Semantic Collapse in
Hierarchical Optimization", seed paper; the LM version is :mod:`.agents`).

States on the unit sphere in R^d,
x ← normalise(x + η(a − x)) (smooth: a gradient step on ½‖x − a‖² then the projection
retraction) or with added Gaussian noise σ_t ξ, σ_t = σ0 / (1 + t)^decay (noisy). Both
start from the same states; the records show the geodesic distance to the anchor and the
state entropy going to 0 for both, and ``endpoint_gap`` (mean geodesic distance between the
two runs' final states) shows path independence.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..metrics import consensus as cs
from ..params import check_int, check_number

SECTION = "agents manifold"


class Manifold(NamedTuple):
    """Rows per (update rule, round) and the gap between the two rules' final states."""

    rows: list  # {update, round, geodesic_distance_to_anchor, max_..., state_entropy, sigma}
    endpoint_gap: float  # mean geodesic distance between the smooth and noisy final states


def _geodesic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Great-circle distance between unit rows, 2·arcsin(‖x − y‖ / 2) (exact near 0)."""
    return 2 * np.arcsin(np.clip(np.linalg.norm(x - y, axis=-1) / 2, 0, 1))


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if (n < 1e-12).any():
        raise ValueError("an agent landed on the origin (it started opposite the anchor with "
                         "eta=0.5): use another eta or seed")
    return x / n


def manifold_dynamics(*, n_agents=8, dim=16, rounds=200, eta=0.3, sigma=0.2, decay=1.0,
                      seed=0) -> Manifold:
    """Projection dynamics of ``n_agents`` states toward a fixed anchor on the unit sphere in
    R^dim (see the module docstring); rows for rounds 0..rounds of both update rules."""
    for name, v, lo in (("agents", n_agents, 1), ("dim", dim, 2), ("rounds", rounds, 1)):
        check_int(name, v, lo)
    check_number("eta", eta, 0, 1, open_low=True)
    check_number("sigma", sigma, 0)
    check_number("decay", decay, 0, open_low=True)
    rng = np.random.default_rng(seed)
    anchor = _normalise(rng.standard_normal((1, dim)))
    start = _normalise(rng.standard_normal((n_agents, dim)))
    rows, final = [], {}
    for update in ("smooth", "noisy"):
        noise = np.random.default_rng([seed, 1])
        x = start
        for t in range(rounds + 1):
            sig = sigma / (1 + t) ** decay if update == "noisy" else 0.0
            d = _geodesic(x, anchor)
            rows.append({"update": update, "round": t,
                         "geodesic_distance_to_anchor": float(d.mean()),
                         "max_geodesic_distance_to_anchor": float(d.max()),
                         "state_entropy": cs.von_neumann_entropy(x), "sigma": sig})
            if t < rounds:
                x = _normalise(x + eta * (anchor - x) + sig * noise.standard_normal(x.shape))
        final[update] = x
    return Manifold(rows, float(_geodesic(final["smooth"], final["noisy"]).mean()))


def manifold_stage(run, lm, s) -> None:
    """``collapsekit manifold``: records (section ``agents manifold``, scope update and
    round) and ``endpoint_gap``; ``lm`` is unused (the dynamics are model-free)."""
    params = {k: s[k] for k in ("n_agents", "dim", "rounds", "eta", "sigma", "decay")}
    res = manifold_dynamics(seed=s.seed, **params)
    for row in res.rows:
        for metric in ("geodesic_distance_to_anchor", "max_geodesic_distance_to_anchor",
                       "state_entropy"):
            run.add(metric, row[metric], section=SECTION, update=row["update"],
                    round=row["round"])
    run.add("endpoint_gap", res.endpoint_gap, section=SECTION)
    run.table("manifold", res.rows)
