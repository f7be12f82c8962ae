"""Learners of the recursive-training simulator, by name."""

from __future__ import annotations

from .base import Learner, Param
from .categorical import CategoricalLearner, ZipfLearner
from .density import KDELearner, MixtureLearner
from .gaussian import GaussianLearner
from .linear import LinearLearner
from .lm import LMLearner
from .ngram import NgramLearner

LEARNERS: dict[str, type[Learner]] = {c.name: c for c in (
    LinearLearner, GaussianLearner, CategoricalLearner, ZipfLearner, MixtureLearner,
    KDELearner, NgramLearner, LMLearner)}


def make_learner(name: str, params: dict | None = None, **objects) -> Learner:
    """The learner called ``name`` with parsed ``params`` (strings or typed values);
    ``objects`` go to its constructor (e.g. ``model=, tokenizer=, texts=`` for ``lm``)."""
    if name not in LEARNERS:
        raise ValueError(f"unknown learner {name!r}: choose from {', '.join(LEARNERS)}")
    return LEARNERS[name](params, **objects)


def describe_learners() -> str:
    """Every learner with its parameters, defaults and docs (for ``--help``)."""
    lines = []
    for name, cls in LEARNERS.items():
        lines.append(f"{name}: {cls.doc}")
        lines += [f"  {k}={p.default}  {p.doc}" for k, p in cls.PARAMS.items()]
    return "\n".join(lines)


__all__ = ["LEARNERS", "Learner", "Param", "describe_learners", "make_learner"]
