"""The report's answer first: per phenomenon, the headline metric, this model's value, the
reference it is judged against and a verdict (collapsed / healthy / inconclusive), computed
from the records by the rules in :data:`RULES`.

A :class:`Rule` is plain data. Its reference is one of

- ``"baseline"``: records of the same metric matching ``ref_where`` (the human-text
  baseline, the human-vs-human null);
- ``"first"``: the first point along ``axis`` (layer 0 = embeddings, generation 0, round 0,
  step 0, the shortest length); the value is the ``pick`` of the later points;
- ``"bound"``: fixed edges ``bounds = (healthy edge, collapsed edge)``.

The verdict compares the value's interval ``[ci_low, ci_high]`` (the value itself when none
is recorded) with a threshold on the collapse side of the reference (``margin`` × |ref|, the
direction from the metric catalogue): collapsed when the whole interval lies beyond it,
healthy when it lies wholly on the other side, inconclusive when it straddles it or a
number is missing. In a ``compare`` the reference is the first run's value instead.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from collapsekit.metrics.catalog import lookup

COLLAPSED, HEALTHY, INCONCLUSIVE = "collapsed", "healthy", "inconclusive"
# scope fields that never split a summary row
_IGNORED = {"metric", "value", "study", "section", "ci_low", "ci_high", "note",
            "closed_form", "n_groups", "n_items", "n_prompts", "texts", "words",
            "seed", "prompt_id", "tokens", "threshold", "compared_by"}


@dataclass(frozen=True)
class Rule:
    """How one phenomenon is judged; see the module docstring."""

    phenomenon: str
    metric: str | tuple  # the headline metric; a tuple: the first one recorded
    section: str
    reference: str  # "baseline", "first" or "bound"
    where: dict = field(default_factory=dict)  # scope the judged records match
    ref_where: dict = field(default_factory=dict)  # baseline: the reference records
    ref_label: str = ""  # how the reference is named ("human text", ...)
    axis: str | None = None  # first (and bound over a curve): the curve's field
    pick: str = "last"  # "last", "worst" (most collapsed) or "mean" of the points
    margin: float = 0.1  # relative change from the reference that counts as collapse
    bounds: tuple | None = None  # bound: (healthy edge, collapsed edge)


RULES: list[Rule] = [
    Rule("representation collapse", "rankme", "geometry", "first", axis="layer",
         pick="worst", margin=0.5),
    Rule("attention entropy collapse", "attention_collapsed_heads", "attention heads",
         "bound", axis="layer", pick="mean", bounds=(0.1, 0.25)),
    Rule("diversity collapse (lexical)", "mean_distinct_2", "diversity", "baseline",
         where={"source": "model"}, ref_where={"source": "human"}, ref_label="human text"),
    Rule("diversity collapse (semantic)", "mean_vendi_score", "diversity", "baseline",
         where={"source": "model"}, ref_where={"source": "human"}, ref_label="human text"),
    Rule("degeneration into loops", "loop_rate", "degeneration", "bound",
         bounds=(0.05, 0.25)),
    Rule("distance from human text", "js_ngram_2", "divergence", "baseline",
         where={"pair": "model_vs_human"}, ref_where={"pair": "human_vs_human"},
         ref_label="human-vs-human null", margin=0.5),
    Rule("semantic collapse of agents", "cosine_to_anchor", "agents", "first", axis="round"),
    Rule("agents on the sphere", "geodesic_distance_to_anchor", "agents manifold", "first",
         axis="round", margin=0.5),
    Rule("intention collapse", "intention_entropy", "intention", "baseline",
         where={"regime": "cot"}, ref_where={"regime": "direct"},
         ref_label="direct answers"),
    Rule("premature semantic collapse", "mean_normalized_candidate_entropy", "ambiguity",
         "bound", where={"turn": 1}, bounds=(0.5, 0.2)),
    Rule("tokenizer phantom edits", "phantom_edit_rate", "tokenizer", "bound",
         where={"kind": "any"}, bounds=(0.05, 0.2)),
    Rule("state collapse (passkey)", "passkey_accuracy", "passkey", "first", axis="length",
         margin=0.5),
    Rule("collapse after editing", ("perplexity_ratio", "bits_per_byte_ratio"), "drift",
         "bound", bounds=(2.0, 2.0)),
    Rule("model collapse (fine-tuning)", "policy_entropy", "finetune", "first",
         axis="generation"),
    Rule("model collapse (recursion)", ("test_error", "cov_trace", "entropy",
                                         "cross_entropy", "kl_real_model"), "recursion",
         "first", axis="generation", where={"source": "simulation"}),
    Rule("collapse during training", "rankme", "monitor", "first", axis="step",
         margin=0.5),
    # concepts: AMI ≈ 0 = the model's clusters ignore the human categories (chance level)
    Rule("concepts vs human categories", "concept_ami", "concepts", "bound",
         where={"k_vs_categories": "equal"}, bounds=(0.3, 0.1)),
    Rule("loss of the typicality gradient", "mean_typicality_spearman", "concepts", "bound",
         bounds=(0.2, 0.05)),
    # numbers: peak divergence under social pressure / without; < 1 = manifold entanglement
    Rule("manifold entanglement under pressure", "numbers_pressure_divergence_ratio",
         "numbers", "bound", bounds=(0.9, 0.5)),
]


@dataclass(frozen=True)
class Finding:
    """One summary row."""

    phenomenon: str
    section: str
    metric: str
    label: str  # the metric's catalogue label
    scope: str  # what the row is about ("model=..., temperature=1.0"); "" for all
    point: str  # which point of a curve stands for it ("last point at layer 4"); ""
    value: float | None
    ci: tuple | None
    reference: str  # "human text: 0.91 [0.88, 0.93]"
    verdict: str
    rule: str  # why: the comparison that produced the verdict


def _num(v) -> float | None:
    ok = isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
    return float(v) if ok else None


def fmt(v) -> str:
    return "n/a" if _num(v) is None else f"{v:.4g}"


def _with_ci(value, ci) -> str:
    return fmt(value) + (f" [{fmt(ci[0])}, {fmt(ci[1])}]" if ci else "")


def _interval(rec: dict) -> tuple:
    """(value, (lo, hi) or None) of a record."""
    lo, hi = _num(rec.get("ci_low")), _num(rec.get("ci_high"))
    return _num(rec.get("value")), ((lo, hi) if lo is not None and hi is not None else None)


def _matches(rec: dict, where: dict) -> bool:
    return all(rec.get(k) == v for k, v in where.items())


def _key(rec: dict, rule: Rule, extra=()) -> tuple:
    drop = (_IGNORED | set(rule.where) | set(rule.ref_where) | {rule.axis, f"{rule.axis}_name"}
            | set(extra))
    return tuple(sorted((k, str(v)) for k, v in rec.items() if k not in drop and v is not None))


def verdict(value, ci, threshold, collapse: str, healthy_edge=None) -> str:
    """collapsed when the interval (``ci`` or the value) lies wholly past ``threshold`` on
    the ``collapse`` ("low"/"high") side, healthy when wholly on the other side of
    ``healthy_edge`` (default: the threshold), else inconclusive."""
    if _num(value) is None or _num(threshold) is None or collapse not in ("low", "high"):
        return INCONCLUSIVE
    lo, hi = ci if ci else (value, value)
    edge = threshold if healthy_edge is None else healthy_edge
    if collapse == "low":
        return COLLAPSED if hi < threshold else HEALTHY if lo >= edge else INCONCLUSIVE
    return COLLAPSED if lo > threshold else HEALTHY if hi <= edge else INCONCLUSIVE


def _threshold(ref: float, margin: float, collapse: str) -> float:
    return ref - margin * abs(ref) if collapse == "low" else ref + margin * abs(ref)


def _relative(value, ci, ref, ref_text: str, rule: Rule, collapse: str) -> tuple[str, str]:
    """(verdict, rule text) for a value judged against a reference value."""
    word = "below" if collapse == "low" else "above"
    if _num(ref) is None:
        return INCONCLUSIVE, f"no reference value ({ref_text}) to compare with"
    if collapse == "low" and ref <= 0:
        return INCONCLUSIVE, f"the reference ({ref_text}) is {fmt(ref)}: nothing to fall from"
    t = _threshold(ref, rule.margin, collapse)
    factor = 1 - rule.margin if collapse == "low" else 1 + rule.margin
    how = "interval" if ci else "value (no interval recorded)"
    return verdict(value, ci, t, collapse), (
        f"{collapse}er = collapse. collapsed if the {how} lies wholly {word} {factor:g} × "
        f"{ref_text} = {fmt(t)}; healthy if wholly on the other side; else inconclusive")


def _pick(points: list[dict], pick: str, collapse: str | None) -> tuple[dict | None, str]:
    """The record standing for a curve's points and how it was chosen."""
    vals = [(r, _num(r.get("value"))) for r in points]
    vals = [(r, v) for r, v in vals if v is not None]
    if not vals:
        return None, ""
    if pick == "mean":
        n = len(vals)
        return {"value": sum(v for _, v in vals) / n}, f"mean of {n} point{'s' * (n > 1)}"
    if pick == "worst" and collapse in ("low", "high"):
        r, _ = (min if collapse == "low" else max)(vals, key=lambda p: p[1])
        return r, "most collapsed point"
    return vals[-1][0], "last point"


def _axis_sorted(recs: list[dict], axis: str) -> list[dict]:
    pts = [r for r in recs if _num(r.get(axis)) is not None]
    return sorted(pts, key=lambda r: r[axis])


def _apply(rule: Rule, metric: str, recs: list[dict], drop=()) -> list[Finding]:
    """The findings of one rule on the records of its metric and section (``drop``: scope
    fields that do not split rows)."""
    info = lookup(metric)
    collapse = info.collapse if info else None
    label = info.label if info else metric
    judged = [r for r in recs if _matches(r, rule.where)]
    groups: dict = {}
    for r in judged:
        groups.setdefault(_key(r, rule, drop), []).append(r)
    refs = [r for r in recs if rule.ref_where and _matches(r, rule.ref_where)]
    out = []
    for key, rs in groups.items():
        scope, point = ", ".join(f"{k}={v}" for k, v in key), ""
        if rule.reference == "baseline":
            rec = rs[0]
            value, ci = _interval(rec)
            ref = next((x for x in refs if x.get("run") == rec.get("run")), None)
            rv, rci = _interval(ref) if ref else (None, None)
            name = f"{rule.ref_label} ({fmt(rv)})" if ref else rule.ref_label
            v, why = _relative(value, ci, rv, name, rule, collapse)
            reference = f"{rule.ref_label}: {_with_ci(rv, rci)}" if ref else "not recorded"
        elif rule.reference == "first":
            pts = _axis_sorted(rs, rule.axis)
            if len(pts) < 2:
                value, ci = _interval(pts[0]) if pts else (None, None)
                v, why = INCONCLUSIVE, f"one {rule.axis} only: no trajectory to judge"
                reference = "not recorded"
            else:
                first = pts[0]
                rec, how = _pick(pts[1:], rule.pick, collapse)
                value, ci = _interval(rec) if rec else (None, None)
                rv, rci = _interval(first)
                at = f" at {rule.axis} {rec[rule.axis]}" if rec and rule.axis in rec else ""
                point = f"{how}{at}"
                name = f"{rule.axis} {first[rule.axis]}"
                v, why = _relative(value, ci, rv, f"the value at {name} ({fmt(rv)})", rule,
                                   collapse)
                reference = f"{name}: {_with_ci(rv, rci)}"
                cf = _num((rec or {}).get("closed_form"))
                if cf is not None:
                    reference += f"; closed form{at}: {fmt(cf)}"
        else:  # bound
            pts = _axis_sorted(rs, rule.axis) if rule.axis else rs
            rec, how = _pick(pts, rule.pick, collapse) if rule.axis else (pts[-1], "")
            value, ci = _interval(rec) if rec else (None, None)
            point = f"{how} over {rule.axis}" if how and rule.axis else ""
            h, c = rule.bounds
            v = verdict(value, ci, c, collapse, healthy_edge=h)
            side = ("below", "above") if collapse == "low" else ("above", "below")
            how = "interval" if ci else "value (no interval recorded)"
            why = (f"{collapse}er = collapse. collapsed if the {how} lies wholly {side[0]} "
                   f"{fmt(c)}; healthy if wholly {side[1]} {fmt(h)}; else inconclusive")
            reference = f"collapsed past {fmt(c)}, healthy {side[1]} {fmt(h)}"
        if value is None:
            v, why = INCONCLUSIVE, "the value is missing (see the section's notes)"
        out.append(Finding(rule.phenomenon, rule.section, metric, label, scope, point, value,
                           ci, reference, v, why))
    return out


def _versus(rule: Rule, metric: str, recs: list[dict], runs: list) -> list[Finding]:
    """compare: each later run's value judged against the first run's at the same scope."""
    info = lookup(metric)
    collapse = info.collapse if info else None
    a, out = runs[0], []
    base = {f.scope: f for f in _apply(rule, metric, [r for r in recs if r.get("run") == a],
                                       drop=("run",))}
    for b in runs[1:]:
        for f in _apply(rule, metric, [r for r in recs if r.get("run") == b], drop=("run",)):
            fa = base.get(f.scope)
            ra = fa.value if fa else None
            v, why = _relative(f.value, f.ci, ra, f"run {a} ({fmt(ra)})", rule, collapse)
            ref = f"run {a}: {_with_ci(ra, fa.ci)}" if fa else f"run {a}: not recorded"
            scope = ", ".join(x for x in (f"run={b}", f.scope) if x)
            out.append(Finding(f.phenomenon, f.section, metric, f.label, scope, f.point,
                               f.value, f.ci, ref, v if f.value is not None else INCONCLUSIVE,
                               why))
    return out


def summarize(records, rules=None) -> list[Finding]:
    """The findings of ``rules`` (default :data:`RULES`) on ``records`` (dicts), in rule
    order; a rule whose metric is not recorded gives none. Records of skipped probes
    (``probe_skipped``) give an inconclusive row with the reason."""
    records = [r for r in records if isinstance(r, dict) and "metric" in r]
    runs = list(dict.fromkeys(r["run"] for r in records if r.get("run") is not None))
    out = []
    for rule in RULES if rules is None else rules:
        names = (rule.metric,) if isinstance(rule.metric, str) else rule.metric
        for metric in names:
            recs = [r for r in records if r["metric"] == metric
                    and str(r.get("section")) == rule.section]
            if recs:
                out += _versus(rule, metric, recs, runs) if len(runs) > 1 else _apply(
                    rule, metric, recs)
                break
    for r in records:
        if r["metric"] == "probe_skipped":
            out.append(Finding(f"{r.get('probe', 'probe')} (skipped)", str(r.get("section")),
                               "probe_skipped", "skipped", str(r.get("run") or ""), "", None,
                               None, "", INCONCLUSIVE, str(r.get("note") or "skipped")))
    return out
