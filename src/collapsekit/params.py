"""Typed settings: one validator for every number a user passes, and :class:`Param`, the
typed ``--param NAME=VALUE`` of studies and learners.

Both raise ``ValueError`` with the name, the value and what is expected, in one line.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def check_int(name: str, value, low: int | None = None, high: int | None = None, *,
              optional: bool = False) -> int:
    """``value`` if it is an int (not a bool) in [low, high]; None passes when ``optional``."""
    if value is None and optional:
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
            low is not None and value < low) or (high is not None and value > high):
        rng = " and ".join(f"{op} {b}" for op, b in ((">=", low), ("<=", high)) if b is not None)
        raise ValueError(f"{name}={value!r} must be an integer{' ' + rng if rng else ''}")
    return int(value)


def check_number(name: str, value, low: float | None = None, high: float | None = None, *,
                 open_low: bool = False, optional: bool = False) -> float:
    """``value`` as a float if it is a finite real number in [low, high] ((low, high] when
    ``open_low``); None passes when ``optional``."""
    if value is None and optional:
        return value
    ok = (not isinstance(value, bool) and isinstance(value, numbers.Real)
          and math.isfinite(value))
    if ok and low is not None:
        ok = value > low if open_low else value >= low
    if ok and high is not None:
        ok = value <= high
    if not ok:
        lo = "" if low is None else f"{'>' if open_low else '>='} {low:g}"
        hi = "" if high is None else f"<= {high:g}"
        rng = " and ".join(x for x in (lo, hi) if x)
        raise ValueError(f"{name}={value!r} must be a finite number{' ' + rng if rng else ''}")
    return float(value)


_KIND = {int: "an integer", float: "a number", bool: "true or false", str: "text"}


@dataclass(frozen=True)
class Param:
    """A typed setting: ``kind`` (int, float, bool, str), ``default`` (None: not set),
    ``doc``, optional ``choices``, bounds ``low``/``high`` (inclusive; ``open_low``: the
    value must exceed ``low``), ``many`` (a
    comma-separated list of ``kind``) and ``flag`` (the CLI option, default ``--name``)."""

    kind: type
    default: Any
    doc: str
    choices: tuple = ()
    low: float | None = None
    open_low: bool = False
    high: float | None = None
    many: bool = False
    flag: str | None = None

    def parse(self, owner: str, name: str, raw) -> Any:
        """``raw`` (text from the command line or a Python value) as this type; raises
        ValueError naming ``--param name=raw for owner``."""
        shown = ",".join(map(str, raw)) if isinstance(raw, (list, tuple)) else raw
        where = f"--param {name}={shown} for {owner}"
        if raw is None:
            return None
        if self.many:
            items = raw.split(",") if isinstance(raw, str) else raw
            if not isinstance(items, (list, tuple)):
                raise ValueError(f"{where}: expected a comma-separated list")
            items = [x.strip() if isinstance(x, str) else x for x in items]
            values = [self._one(where, x) for x in items if x != ""]
            if not values:
                raise ValueError(f"{where}: expected at least one value")
            return tuple(values)
        return self._one(where, raw)

    def _one(self, where: str, raw) -> Any:
        if self.kind is bool:
            if isinstance(raw, bool):
                return raw
            if str(raw).lower() in _TRUE | _FALSE:
                return str(raw).lower() in _TRUE
            raise ValueError(f"{where}: expected true or false")
        try:
            if self.kind is not str and isinstance(raw, bool):
                raise ValueError
            value = self.kind(raw)
            if self.kind is int and isinstance(raw, float) and raw != int(raw):
                raise ValueError
        except (TypeError, ValueError):
            raise ValueError(f"{where}: expected {_KIND.get(self.kind, 'text')}") from None
        if self.kind is float and not math.isfinite(value):
            raise ValueError(f"{where}: expected a finite number")
        if self.choices and value not in self.choices:
            raise ValueError(f"{where}: choose one of {', '.join(map(str, self.choices))}")
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            raise ValueError(f"{where}: must be {'above' if self.open_low else 'at least'} "
                             f"{self.low:g}")
        if self.high is not None and value > self.high:
            raise ValueError(f"{where}: must be at most {self.high:g}")
        return value


def parse_params(owner: str, specs: dict[str, Param], given: dict | None,
                 base: dict | None = None) -> dict:
    """Every parameter of ``specs``: the parsed value from ``given``, else from ``base``,
    else its default; unknown names raise ValueError listing the known ones."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(specs))
    if unknown:
        raise ValueError(f"unknown parameter(s) {', '.join(unknown)} for {owner}: it takes "
                         f"{', '.join(specs) or 'none'}")
    base = {k: p.default for k, p in specs.items()} | dict(base or {})
    return {k: spec.parse(owner, k, given.get(k, base[k])) for k, spec in specs.items()}
