"""Model collapse under recursive training on generated data: a simulator with closed-form
oracles (replace vs accumulate and friends). Entry point: :func:`run_simulate`."""

from .engine import generation_rng, run_lanes
from .learners import LEARNERS, Learner, describe_learners, make_learner
from .pool import Pool, Selection
from .run import mean_ci, plan, run_simulate
from .strategies import NAMES as STRATEGIES
from .strategies import Strategy, parse_strategies, parse_strategy

__all__ = ["LEARNERS", "STRATEGIES", "Learner", "Pool", "Selection", "Strategy",
           "describe_learners", "generation_rng", "make_learner", "mean_ci", "parse_strategies",
           "parse_strategy", "plan", "run_lanes", "run_simulate"]
