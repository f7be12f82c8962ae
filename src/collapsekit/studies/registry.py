"""The study registry: every study a user can run, by name, with typed settings.

``STUDIES`` is a plain mutable dict name → :class:`Study`; the runner
(:func:`collapsekit.studies.runner.run_study`), the command line and ``scan`` look studies
up in it when they run, so registering or replacing an entry changes what runs::

    from collapsekit.params import Param
    from collapsekit.studies import STUDIES, Study

    def my_stage(run, lm, s):
        run.add("my_metric", float(len(s.word)), section="mine")

    STUDIES["mine"] = Study("mine", section="mine", doc="My study.", stage=my_stage,
                            params={"word": Param(str, "collapse", "a word")},
                            quick={"word": "c"}, scan={})

Settings resolve in one order: a parameter's default (the full setting) ← the study's
``scan`` overrides (inside ``scan`` only) ← its ``quick`` overrides (``--quick``, or always
inside ``scan`` when ``scan_quick``) ← what the user passes (``--param NAME=VALUE``).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from ..params import Param, parse_params

Hook = Union[Callable, str]  # a function, or "module:function" imported when first used


class Settings:
    """A study's resolved settings, read as attributes (``s.k``) or keys (``s["k"]``);
    ``dict(s)`` gives them all. Always holds ``seed``, ``quick`` and ``given`` (the names the
    user set), and ``model`` for studies that run on a model. (Not a dict subclass: a parameter may be called
    ``items``.)"""

    def __init__(self, values: dict | None = None, **more):
        self.__dict__.update(values or {}, **more)

    def __getattr__(self, name: str) -> Any:  # only called for names that are not set
        raise AttributeError(f"no setting {name!r}: it takes {', '.join(self.__dict__)}")

    def __getitem__(self, name: str) -> Any:
        return self.__dict__[name]

    def __setitem__(self, name: str, value) -> None:
        self.__dict__[name] = value

    def __contains__(self, name) -> bool:
        return name in self.__dict__

    def __iter__(self):
        return iter(self.__dict__)

    def keys(self):
        return self.__dict__.keys()

    def __repr__(self) -> str:
        return f"Settings({self.__dict__!r})"


def hook(fn: Hook | None) -> Callable | None:
    """``fn`` itself, or the function a ``"package.module:function"`` string names."""
    if fn is None or callable(fn):
        return fn
    module, _, name = fn.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass
class Study:
    """A unit of work that writes records into a results folder.

    ``stage(run, lm, settings)`` reads settings and writes records (``lm``: the loaded
    model, a :class:`Models` when ``many_models``, None when ``needs_model`` is false).
    ``check(settings)`` validates inputs before any folder is made and returns extra
    config fields (e.g. an input file's hash) or None. ``needs_model`` may be a function
    of the settings (the tokenizer-only search loads no weights). ``scan``: None keeps
    the study out of ``scan``; a dict puts it in with those setting overrides."""

    name: str
    section: str
    doc: str
    stage: Hook
    params: dict[str, Param] = field(default_factory=dict)
    quick: dict[str, Any] = field(default_factory=dict)
    needs_model: bool | Callable[[Settings], bool] = True
    many_models: bool = False
    check: Hook | None = None
    scan: dict[str, Any] | None = None
    scan_quick: bool = False

    def __post_init__(self):
        bad = sorted(set(self.quick) - set(self.params))
        bad += sorted(set(self.scan or {}) - set(self.params))
        if bad:
            raise ValueError(f"study {self.name!r}: quick/scan override unknown "
                             f"parameter(s) {', '.join(bad)}")

    def settings(self, given: dict | None = None, *, quick: bool = False, seed: int = 0,
                 in_scan: bool = False, model=None) -> Settings:
        """Resolved and validated settings (see the module docstring for the order)."""
        quick = bool(quick or (in_scan and self.scan_quick))
        base = {**((self.scan or {}) if in_scan else {}), **(self.quick if quick else {})}
        s = Settings(parse_params(f"study {self.name!r}", self.params, given, base),
                     seed=seed, quick=quick, given=tuple(sorted(given or ())))
        if self.takes_model:
            s["model"] = model
        return s

    @property
    def takes_model(self) -> bool:
        """Whether the study runs on a model (``needs_model`` not False)."""
        return self.needs_model is not False

    def uses_model(self, s: Settings) -> bool:
        """Whether the runner loads the model for these settings."""
        return self.needs_model(s) if callable(self.needs_model) else bool(self.needs_model)


class Models:
    """The models of a study that takes several ``--model``: ``specs``, and ``load(spec)``,
    which the runner provides (loads, times and records the model's metadata)."""

    def __init__(self, specs: tuple[str, ...], load: Callable):
        self.specs, self.load = tuple(specs), load


STUDIES: dict[str, Study] = {}


def get(name: str) -> Study:
    """The registered study ``name``; ValueError naming the registered ones."""
    if name not in STUDIES:
        raise ValueError(f"unknown study {name!r}: choose from {', '.join(STUDIES)}")
    return STUDIES[name]


def scan_studies() -> list[str]:
    """The studies ``scan`` runs by default, in registry order."""
    return [name for name, st in STUDIES.items() if st.scan is not None]
