"""The generation loop: one strategy, many seeds as lanes of one simulation.

Generation t (1..G) in every lane: add the synthetic rows drawn from model t−1 (and fresh
real rows), select the training set, fit model t, draw the synthetic rows for t+1 (and the
samples evaluation needs), evaluate. Each (seed, generation) has its own random stream,
``SeedSequence(seed, spawn_key=(generation,))``; generation 0's stream draws the world
(truth, test data) and the real data, so every strategy of a seed starts from the same
real data (paired comparisons).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from .learners.base import Learner
from .pool import Pool
from .strategies import Strategy


def generation_rng(seed: int, generation: int) -> np.random.Generator:
    """The independent random stream of (seed, generation)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed), spawn_key=(generation,)))


def _keep_best(items: np.ndarray, scores: np.ndarray, size: int):
    """The ``size`` highest-scoring rows per lane, in their drawn order."""
    idx = np.sort(np.argsort(-scores, axis=1, kind="stable")[:, :size], axis=1)
    expand = idx.reshape(idx.shape + (1,) * (items.ndim - 2))
    return np.take_along_axis(items, expand, axis=1), np.take_along_axis(scores, idx, axis=1)


def run_lanes(learner: Learner, strategy: Strategy, generations: int, seeds: list[int],
              tick: Callable[[int], None] | None = None) -> list[dict]:
    """Simulate ``strategy`` for each seed; one dict per seed: ``curves`` (metric → values
    for generations 1..G), ``initial`` (generation-0 metrics), ``summary`` (scalars) and,
    for the first seed, ``ages`` (training rows by birth generation, per generation)."""
    lanes, n = len(seeds), learner.n
    rng0 = [generation_rng(s, 0) for s in seeds]
    world = learner.world(rng0)
    pool = Pool(lanes)
    pool.add(learner.real(world, n, rng0), origin="real", born=0, generator="real")
    real_used, prev, pending = n, None, None
    initial = learner.initial(world)
    curves: dict[str, list] = {}
    ages = []
    verifier = (strategy.verifier or learner.verify) if strategy.filter else None
    for t in range(1, generations + 1):
        rngs = [generation_rng(s, t) for s in seeds]
        new = []
        if pending is not None:
            items, scores, cand = pending
            new.append(pool.add(items, origin="synthetic", born=t - 1,
                                generator=f"{learner.name}@{t - 1}",
                                settings=strategy.sampling, candidates=cand, scores=scores,
                                filter=None if scores is None else f"top {strategy.filter:g}"))
        if t > 1:
            r = strategy.fresh_size(n)
            if r:
                new.append(pool.add(learner.real(world, r, rngs, start=real_used),
                                    origin="real", born=t - 1, generator="real"))
                real_used += r
        sel = strategy.select(pool, t, new, prev, rngs)
        if not strategy.keeps_all:  # free what no later generation reads
            pool.drop({0} | pool.chunks_of(sel))
        if learner.additive:
            data = pool.summarize(sel, lambda x: learner.summarize(world, x), learner.merge)
        else:
            data = pool.take(sel)
        model = learner.fit(world, data, rngs)
        size = strategy.synthetic_size(t + 1, n) if t < generations else 0
        cand = math.ceil(size / strategy.filter) if strategy.filter and size else size
        draw = max(cand, n if learner.needs_samples else 0)
        samples = learner.sample(world, model, draw, rngs, strategy.sampling) if draw else None
        metrics = learner.evaluate(world, model, samples[:, :n] if learner.needs_samples
                                   else None)
        pending = None
        if cand:
            items, scores = samples[:, :cand], None
            if verifier is not None:
                items, scores = _keep_best(items, np.asarray(verifier(world, items)), size)
            pending = (items, scores, cand)
        metrics.update(real_fraction=pool.real_fraction(sel), mean_age=pool.mean_age(sel, t))
        for key, value in metrics.items():
            curves.setdefault(key, []).append(np.broadcast_to(
                np.asarray(value, dtype=np.float64), (lanes,)))
        ages.append(pool.age_histogram(sel, t)[0].tolist())
        prev = sel
        if tick:
            tick(lanes)
    arrays = {k: np.stack(v, axis=1) for k, v in curves.items()}
    summary = learner.summaries(arrays)
    return [{"seed": int(s),
             "curves": {k: v[i].tolist() for k, v in arrays.items()},
             "initial": {k: float(np.asarray(v)[i]) for k, v in initial.items()},
             "summary": {k: float(v[i]) for k, v in summary.items()},
             **({"ages": ages} if i == 0 else {})}
            for i, s in enumerate(seeds)]
