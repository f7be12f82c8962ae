"""What a plot is read against: reference lines and the feasible value range.

- the maximum possible value of a rank-like geometry metric (unit "dimensions"): min(N, D),
  N the tokens streamed and D the hidden size, from the run's metadata;
- the embedding-layer level (layer 0) of a single per-layer curve;
- the human-text baseline (records of the same metric, or of its ``mean_`` summary, with
  ``source="human"`` and no axis) in the model's plots;
- the y range the metric can take (0..1 for fractions, up to 1 for cosines, from 0 for
  dimensions) instead of a zoom on the data.

:func:`relative_depth` puts runs of different depth on one axis (layer / last layer).
"""

from __future__ import annotations

import dataclasses
import numbers

from collapsekit.metrics.catalog import lookup


@dataclasses.dataclass(frozen=True)
class RefLine:
    """A horizontal line (vertical in a strip plot) with an optional band [lo, hi]."""

    label: str
    value: float
    lo: float | None = None
    hi: float | None = None


def _num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def relative_depth(records: list[dict], depth: str = "auto") -> tuple[list[dict], bool]:
    """Records whose per-layer curves (``layer`` without ``head``) of runs of different
    depth (a ``compare``) carry ``layer / last layer`` instead; ``depth``: "auto" (only
    when the runs' last layers differ), "relative" or "absolute". Returns (records, whether
    the layers were rescaled)."""
    if depth not in ("auto", "relative", "absolute"):
        raise ValueError(f"depth={depth!r}: choose auto, relative or absolute")
    def curve(r):
        return (r.get("run") is not None and _num(r.get("layer")) and r.get("head") is None
                and r.get("checkpoint") is None)
    last: dict = {}
    for r in records:
        if curve(r):
            last[r["run"]] = max(last.get(r["run"], 0), r["layer"])
    if depth == "absolute" or len(last) < 2 or not all(last.values()) or (
            depth == "auto" and len(set(last.values())) == 1):
        return records, False
    return [{**r, "layer": round(r["layer"] / last[r["run"]], 4)} if curve(r) else r
            for r in records], True


def _max_dimensions(section: str, meta: dict) -> tuple[float, str] | None:
    """(min(N, D), its text) for the per-layer geometry of this run, when known."""
    d = (meta.get("model") or {}).get("hidden_size") if isinstance(meta, dict) else None
    n = meta.get("geometry_tokens") if isinstance(meta, dict) else None
    if section != "geometry" or not _num(d):
        return None
    if _num(n):
        return float(min(n, d)), f"maximum possible: min(N, D) = min({n}, {d})"
    return float(d), f"maximum possible: D = {d}"


def _human(spec, scalars: list[dict]) -> list[RefLine]:
    names = (spec.metric, "mean_" + spec.metric)
    for r in scalars:
        if r.get("metric") in names and r.get("source") == "human" and _num(r.get("value")):
            lo, hi = r.get("ci_low"), r.get("ci_high")
            band = (lo, hi) if _num(lo) and _num(hi) else (None, None)
            return [RefLine("human text", float(r["value"]), *band)]
    return []


def _ylim(spec, refs: list[RefLine], top: float | None) -> tuple | None:
    """The feasible range of the metric's axis, or None (automatic)."""
    info = lookup(spec.metric)
    if info is None or info.scale == "log":
        return None
    values = [y for s in spec.series.values()
              for y in (s["y"] if isinstance(s, dict) else s) if _num(y)]
    values += [v for r in refs for v in (r.value, r.lo, r.hi) if _num(v)]
    if not values:
        return None
    lo, hi = min(values), max(values)
    if info.unit == "fraction" and lo >= 0 and hi <= 1:
        return 0.0, 1.0
    if info.unit == "cosine" and hi <= 1:
        return min(0.0, lo), 1.0
    if info.unit == "dimensions" and lo >= 0:
        return 0.0, max(top or 0.0, hi) * 1.05
    return None


def annotate(spec, section: str, scalars: list[dict], meta: dict, relative: bool):
    """``spec`` (a line or strip :class:`~collapsekit.report.layout.PlotSpec`) with its
    reference lines, feasible range and, for rescaled layers, its axis name."""
    if spec.kind not in ("line", "strip") or not spec.series:
        return spec
    refs, notes = _human(spec, scalars), []
    top = None
    if spec.kind == "line" and spec.x == "layer":
        info = lookup(spec.metric)
        found = _max_dimensions(section, meta) if info and info.unit == "dimensions" else None
        if found and not relative:
            top, text = found
            refs.append(RefLine(text, top))
        (_, s), *more = spec.series.items()
        if not more and 0 in s["x"] and not relative:
            refs.append(RefLine("embedding layer (layer 0)", s["y"][s["x"].index(0)]))
    if refs:
        notes.append("Grey lines: " + "; ".join(r.label for r in refs) + ".")
    changes = {"refs": tuple(refs), "ylim": _ylim(spec, refs, top)}
    if changes["ylim"]:
        notes.append("The value axis shows the metric's whole feasible range.")
    if relative and spec.kind == "line" and spec.x == "layer":
        changes["x"] = "relative depth (layer / last layer)"
        notes.append("Runs of different depth: each layer index divided by its run's last "
                     "layer (--depth absolute of compare or report for layer indices).")
    return dataclasses.replace(spec, caption=" ".join([spec.caption, *notes]), **changes)
