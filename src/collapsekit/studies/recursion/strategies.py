"""Data strategies: what each generation trains on.

Written as ``NAME[:key=value[:key=value...]]`` (e.g. ``mix:alpha=0.5:beta=0.3:gamma=0.2``,
``replace:top_k=20``). ``n`` is the learner's examples per generation (its real data size).
Generation 1 trains on the n real examples (``accumulate-subsample``: ``budget`` of them);
generation t ≥ 2 adds the synthetic rows S drawn from model t−1 and trains on:

- ``replace``: S (n rows) — Shumailov et al. 2024, Dohmatob et al. 2024.
- ``accumulate``: every row so far, real and synthetic (n new rows each generation) —
  Gerstgrasser et al. 2024, "Is Model Collapse Inevitable?".
- ``accumulate-subsample``: ``budget`` (default n) rows drawn uniformly without replacement
  from every row so far — Kazdan et al. 2024, "Collapse or Thrive?".
- ``replace-multiple``: S of k·n rows (``k`` an integer, or ``k=t`` (default): t·n rows at
  generation t, the size accumulate trains on).
- ``keep-real``: n − r synthetic rows plus a fixed r = round(fraction·n) of the original real
  rows (the first r; real rows are i.i.d.).
- ``fresh``: n − r synthetic rows plus r = round(fraction·n) new real rows each generation
  (Alemohammad et al. 2024, "fresh data loop").
- ``mix``: p_{t+1} = α·p_θ + β·p_t + γ·p_0 as a finite set: round(α·n) synthetic rows,
  round(β·n) rows resampled (without replacement) from the previous training set, and the
  rest from the original real rows; α + β + γ = 1 (β = 0 is the real/synthetic mix of
  Bertrand et al. 2024, "On the Stability of Iterative Retraining").

Any strategy also takes sampling settings ``temperature``, ``top_k``, ``top_p`` (tail
truncation when the synthetic rows are drawn; each learner says which it supports) and
``filter=q`` (0 < q ≤ 1): draw ⌈size/q⌉ candidates and keep the ``size`` that the learner's
verifier scores highest; from Python, ``dataclasses.replace(strategy, verifier=fn)`` with
``fn(world, items) -> (lanes, n) scores`` replaces the learner's.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .pool import Pool, Selection

NAMES = ("replace", "accumulate", "accumulate-subsample", "replace-multiple", "keep-real",
         "fresh", "mix")
SAMPLING = ("temperature", "top_k", "top_p")
_OWN = {"replace": {}, "accumulate": {}, "accumulate-subsample": {"budget": None},
        "replace-multiple": {"k": "t"}, "keep-real": {"fraction": 0.1},
        "fresh": {"fraction": 0.1}, "mix": {"alpha": None, "beta": None, "gamma": None}}


@dataclass(frozen=True)
class Strategy:
    """A parsed strategy: ``name``, its own parameters, sampling settings and filter."""

    name: str
    params: dict = field(default_factory=dict)
    sampling: dict = field(default_factory=dict)
    filter: float | None = None
    verifier: Callable | None = None

    @property
    def label(self) -> str:
        """The canonical spec string (used as the ``strategy`` field of records)."""
        own = {k: v for k, v in self.params.items() if v != _OWN[self.name][k]}
        kv = {**own, **self.sampling, **({"filter": self.filter} if self.filter else {})}
        return ":".join([self.name, *(f"{k}={_fmt(v)}" for k, v in kv.items())])

    @property
    def plain(self) -> bool:
        """No sampling settings and no filter (closed forms hold only then)."""
        return not self.sampling and self.filter is None

    @property
    def keeps_all(self) -> bool:
        """Whether later generations may read any row ever added."""
        return self.name in ("accumulate", "accumulate-subsample")

    # sizes ---------------------------------------------------------------------------
    def budget(self, n: int) -> int:
        """Training rows per generation of accumulate-subsample (default n)."""
        return n if self.params.get("budget") is None else self.params["budget"]

    def _r(self, n: int) -> int:
        return int(round(self.params["fraction"] * n))

    def synthetic_size(self, t: int, n: int) -> int:
        """Synthetic rows the generation-t training set needs (t ≥ 2)."""
        if self.name == "replace-multiple":
            k = self.params["k"]
            return (t if k == "t" else k) * n
        if self.name in ("keep-real", "fresh"):
            return n - self._r(n)
        if self.name == "mix":
            return int(round(self.params["alpha"] * n))
        return n

    def fresh_size(self, n: int) -> int:
        """New real rows per generation t ≥ 2."""
        return self._r(n) if self.name == "fresh" else 0

    def real_needed(self, n: int, generations: int) -> int:
        """Real rows used in total (generation 1 plus fresh ones)."""
        return n + (generations - 1) * self.fresh_size(n)

    def check(self, n: int) -> None:
        """Raise ValueError when the strategy cannot run with n examples per generation."""
        if self.name == "accumulate-subsample" and self.budget(n) > n:
            raise ValueError(f"{self.label}: budget {self.budget(n)} is larger than "
                             f"the pool at generation 1 ({n} real examples): lower the "
                             "budget or raise the learner's examples per generation")

    # the training set ----------------------------------------------------------------
    def select(self, pool: Pool, t: int, new: list[int], prev: Selection | None,
               rngs: list[np.random.Generator]) -> Selection:
        """The generation-t training set; ``new`` are the chunk ids added for t (synthetic
        first, then fresh real), ``prev`` the generation t−1 training set."""
        real = 0  # chunk 0 holds the original real rows
        n = pool.chunks[real].stop
        everything = tuple(range(len(pool.chunks)))
        if self.name == "accumulate-subsample":
            return Selection(rows=_draw(rngs, len(pool), self.budget(n)))
        if t == 1:
            return Selection(chunks=(real,))
        if self.name in ("replace", "replace-multiple", "fresh"):
            return Selection(chunks=tuple(new))
        if self.name == "accumulate":
            return Selection(chunks=everything)
        if self.name == "keep-real":
            keep = np.broadcast_to(np.arange(self._r(n)), (pool.lanes, self._r(n)))
            return Selection(chunks=tuple(new), rows=keep)
        # mix: alpha part = the new synthetic chunk; beta from prev; gamma from real rows
        a = self.synthetic_size(t, n)
        b = min(int(round(self.params["beta"] * n)), n - a)
        g = n - a - b  # rounding leftovers go to the real part
        prev_rows = pool.indices(prev)
        pick = _draw(rngs, prev_rows.shape[1], b)
        rows = np.concatenate([np.take_along_axis(prev_rows, pick, axis=1),
                               _draw(rngs, n, g)], axis=1)
        return Selection(chunks=tuple(new), rows=rows)


def _draw(rngs, population: int, k: int) -> np.ndarray:
    """(lanes, k) indices drawn without replacement from range(population), per lane."""
    return np.stack([g.choice(population, size=k, replace=False) for g in rngs]).reshape(
        len(rngs), k).astype(np.int64)


def _fmt(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _number(name: str, key: str, raw: str, kind):
    try:
        return kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise ValueError(f"strategy {name!r}: {key}={raw!r} is not {what}") from None


def parse_strategy(spec: str) -> Strategy:
    """A :class:`Strategy` from ``NAME[:key=value...]``. Raises ValueError naming the
    problem and the fix."""
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"empty strategy: choose from {', '.join(NAMES)}")
    name, *pairs = [p.strip() for p in spec.strip().split(":")]
    if name not in NAMES:
        raise ValueError(f"unknown strategy {name!r}: choose from {', '.join(NAMES)}")
    params, sampling, filt = dict(_OWN[name]), {}, None
    allowed = (*params, *SAMPLING, "filter")
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        raw = raw.strip()
        if not sep or key not in allowed:
            raise ValueError(f"strategy {name!r}: {pair!r} is not key=value with key in "
                             f"{', '.join(allowed)}")
        if key == "k":
            params["k"] = "t" if raw == "t" else _number(name, key, raw, int)
        elif key in ("budget", "top_k"):
            (params if key == "budget" else sampling)[key] = _number(name, key, raw, int)
        elif key == "filter":
            filt = _number(name, key, raw, float)
        else:
            (sampling if key in SAMPLING else params)[key] = _number(name, key, raw, float)
    _validate(name, params, sampling, filt)
    return Strategy(name, params, sampling, filt)


def _validate(name, params, sampling, filt) -> None:
    if name == "mix":
        missing = [k for k, v in params.items() if v is None]
        if missing:
            raise ValueError(f"strategy 'mix' needs {', '.join(missing)}: write e.g. "
                             "mix:alpha=0.5:beta=0.3:gamma=0.2")
        if any(v < 0 for v in params.values()) or not math.isclose(sum(params.values()), 1):
            raise ValueError(f"strategy 'mix': alpha, beta, gamma {tuple(params.values())} "
                             "must be ≥ 0 and sum to 1")
    if "fraction" in params and not 0 <= params["fraction"] <= 1:
        raise ValueError(f"strategy {name!r}: fraction={params['fraction']} must be in [0, 1]")
    if params.get("budget") is not None and params["budget"] < 1:
        raise ValueError(f"strategy {name!r}: budget must be at least 1")
    if isinstance(params.get("k"), int) and params["k"] < 1:
        raise ValueError(f"strategy {name!r}: k must be a positive integer or t")
    if "temperature" in sampling and not sampling["temperature"] > 0:
        raise ValueError("temperature must be > 0")
    if "top_k" in sampling and sampling["top_k"] < 1:
        raise ValueError("top_k must be at least 1")
    if "top_p" in sampling and not 0 < sampling["top_p"] <= 1:
        raise ValueError("top_p must be in (0, 1]")
    if filt is not None and not 0 < filt <= 1:
        raise ValueError(f"filter={filt} must be in (0, 1]: the fraction of candidates kept")


def parse_strategies(specs) -> list[Strategy]:
    """Parse a list (or a comma-separated string) of specs; duplicates are an error."""
    if isinstance(specs, str):
        specs = [s for s in specs.split(",") if s.strip()]
    if not specs:
        raise ValueError(f"no strategy given: choose from {', '.join(NAMES)}")
    out = [parse_strategy(s) for s in specs]
    labels = [s.label for s in out]
    if len(set(labels)) != len(labels):
        raise ValueError(f"strategy listed twice in {labels}: give each once")
    return out
