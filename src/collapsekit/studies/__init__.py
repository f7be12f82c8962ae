"""Studies: what a user runs. ``STUDIES`` (name → :class:`Study`) is the registry the
command line, :func:`run_study` and ``scan`` look studies up in."""

from . import builtin  # noqa: F401  (registers the bundled studies)
from .registry import STUDIES, Models, Settings, Study
from .runner import run_scan, run_study

__all__ = ["STUDIES", "Models", "Settings", "Study", "run_scan", "run_study"]
