"""The learner interface and typed ``--param k=v`` parsing.

A learner simulates ``lanes`` independent worlds at once (one lane per seed; learners
with ``batched = False`` are run one lane at a time). Items are numpy arrays of shape
(lanes, n, ...) (dtype object for texts); ``rngs`` holds one generator per lane, the
stream of that (seed, generation).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ....params import Param, parse_params


class Learner:
    """Base class. Subclasses set ``name``, ``PARAMS`` and implement the methods below."""

    name: ClassVar[str] = ""
    doc: ClassVar[str] = ""
    PARAMS: ClassVar[dict[str, Param]] = {}
    batched: ClassVar[bool] = True       # many seeds as lanes of one array
    additive: ClassVar[bool] = False     # fit takes merged ``summarize`` statistics
    needs_samples: ClassVar[bool] = False  # evaluate() uses samples of the model
    sampling: ClassVar[frozenset] = frozenset()  # supported temperature / top_k / top_p
    has_verifier: ClassVar[bool] = False

    def __init__(self, params: dict | None = None):
        self.p = parse_params(f"learner {self.name!r}", self.PARAMS, params)
        self.check()

    def check(self) -> None:
        """Cross-parameter validation; raise ValueError."""

    @property
    def n(self) -> int:
        """Examples per generation (the real data size)."""
        raise NotImplementedError

    def real_available(self) -> int | None:
        """How many real training examples exist (None: unlimited)."""
        return None

    def close(self) -> None:
        """Release what the learner holds (models); called once at the end."""

    # the simulation ------------------------------------------------------------------
    def world(self, rngs) -> Any:
        """Per-lane truth and held-out real test data."""
        raise NotImplementedError

    def real(self, world, n: int, rngs, start: int = 0) -> np.ndarray:
        """``n`` real examples per lane; ``start`` counts real rows drawn before (finite
        corpora hand out new ones)."""
        raise NotImplementedError

    def summarize(self, world, items) -> Any:
        """Additive statistics of ``items`` (only when ``additive``)."""
        raise NotImplementedError

    def merge(self, a, b):
        """Statistics of the union of two parts (default: add dict entries)."""
        return {k: a[k] + b[k] for k in a}

    def fit(self, world, data, rngs) -> Any:
        """The model per lane from ``data`` (items, or merged statistics if additive)."""
        raise NotImplementedError

    def sample(self, world, model, n: int, rngs, settings: dict) -> np.ndarray:
        """``n`` synthetic examples per lane under sampling ``settings``."""
        raise NotImplementedError

    def evaluate(self, world, model, samples) -> dict[str, np.ndarray]:
        """Metrics per lane (arrays of shape (lanes,))."""
        raise NotImplementedError

    def verify(self, world, items) -> np.ndarray:
        """(lanes, n) verifier scores, higher = better (only when ``has_verifier``)."""
        raise NotImplementedError

    def initial(self, world) -> dict[str, np.ndarray]:
        """Metrics of the generation-0 model (e.g. the base LM), or {}."""
        return {}

    def summaries(self, curves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-lane scalars from the (lanes, generations) curves, or {}."""
        return {}

    def closed_forms(self, strategy, generations: int) -> dict[str, np.ndarray]:
        """Expected curves (generation 1..G) that hold exactly or approximately, or {}."""
        return {}

    def summary_closed_forms(self, strategy) -> dict[str, float]:
        """Closed forms of the ``summaries`` scalars, or {}."""
        return {}

    def describe(self) -> dict:
        """What the run metadata records about the learner (beyond its parameters)."""
        return {}


def stack(rngs, draw) -> np.ndarray:
    """``np.stack([draw(g) for g in rngs])``: one independent draw per lane."""
    return np.stack([draw(g) for g in rngs])
