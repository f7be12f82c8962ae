"""The report's answer first: per phenomenon, the headline metric, this model's value, the
reference it is judged against and a verdict (collapsed / healthy / inconclusive), computed
from the records by the rules in :data:`RULES`.

A :class:`Rule` is plain data. Its reference is one of

- ``"baseline"``: records of the same metric (or ``ref_metric``) and run matching
  ``ref_where`` (the human-text baseline, the human-vs-human null); with ``ref_join`` the
  mean of several (the two within-model cosines of a cross-model pair);
- ``"first"``: the first point along ``axis`` (layer 0 = embeddings, generation 0, round 0,
  step 0, the shortest length); the value is the ``pick`` of the later points;
- ``"bound"``: fixed edges ``bounds = (healthy edge, collapsed edge)``.

The verdict compares the value's interval ``[ci_low, ci_high]`` (the value itself when none
is recorded) with a threshold ``max(|margin| × |ref|, min_gap)`` away from the reference on
its collapse side (the direction from the metric catalogue): collapsed when the whole
interval lies beyond it, healthy when it lies wholly on the other side, inconclusive when it
straddles it or a number is missing. In a ``compare`` the reference is the first run's value
instead (bound rules too). A negative ``margin`` puts the threshold on the healthy side: the
reference is itself the collapsed state (cross-model cosine reaching the within-model one).

Guards against a degenerate threshold: ``min_gap`` (metric units) keeps a reference near 0
from pulling the threshold onto itself, where ``margin`` × |ref| alone would call noise a
collapse; and a threshold outside ``span``, the values the metric can take (0..1 for
fractions, −1..1 for cosines, else from 0, unless the rule sets it), cannot be passed, so
the verdict is inconclusive (nothing to fall from, nothing to rise to). ``guard`` names a
check in :data:`GUARDS` that makes a record's verdict inconclusive with its reason (NC1 where
K/D ≥ 0.5). :func:`unjudged` says, per section with records but no row, why it has none.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

from collapsekit.metrics.catalog import lookup
from collapsekit.report.flags import KD_WARN

COLLAPSED, HEALTHY, INCONCLUSIVE = "collapsed", "healthy", "inconclusive"
# scope fields that never split a summary row
_IGNORED = {"metric", "value", "study", "section", "ci_low", "ci_high", "note",
            "closed_form", "n_groups", "n_items", "n_prompts", "texts", "words",
            "seed", "prompt_id", "tokens", "threshold", "compared_by", "documents"}


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
    margin: float = 0.1  # relative change from the reference that counts as collapse (< 0:
    # the reference is the collapsed state, the threshold lies on the healthy side)
    bounds: tuple | None = None  # bound: (healthy edge, collapsed edge)
    min_gap: float = 0.0  # the smallest |threshold − reference|, in the metric's units
    span: tuple | None = None  # (lo, hi) the metric can take; None: from its unit
    ref_metric: str | None = None  # baseline: the reference records' metric (default: metric)
    ref_join: dict = field(default_factory=dict)  # baseline: {ref field: (judged fields)}:
    # the reference is the mean of the records whose field equals each judged field's value
    guard: str | None = None  # a check in GUARDS (inconclusive, with its reason)


# min_gap on rules whose reference can sit at or near 0 (bound rules use it in a compare,
# where the first run is the reference): 0.05 on fractions, cosines and correlations, about
# one head, sample or item in 20, within the noise of what a scan measures; every threshold
# here is collapsekit's own choice (the reasons beside the rules).
RULES: list[Rule] = [
    Rule("representation collapse", "rankme", "geometry", "first", axis="layer",
         pick="worst", margin=0.5),
    Rule("attention entropy collapse", "attention_collapsed_heads", "attention heads",
         "bound", axis="layer", pick="mean", bounds=(0.1, 0.25), min_gap=0.05),
    Rule("diversity collapse (lexical)", "mean_distinct_2", "diversity", "baseline",
         where={"source": "model"}, ref_where={"source": "human"}, ref_label="human text"),
    Rule("diversity collapse (semantic)", "mean_vendi_score", "diversity", "baseline",
         where={"source": "model"}, ref_where={"source": "human"}, ref_label="human text"),
    Rule("degeneration into loops", "loop_rate", "degeneration", "bound",
         bounds=(0.05, 0.25), min_gap=0.05),
    # JS divergence is at most 1 bit: a null near 1 (tiny samples) leaves nothing to judge
    Rule("distance from human text", "js_ngram_2", "divergence", "baseline",
         where={"pair": "model_vs_human"}, ref_where={"pair": "human_vs_human"},
         ref_label="human-vs-human null", margin=0.5, min_gap=0.05, span=(0.0, 1.0)),
    # round-0 cosines to the anchor can be near 0: a rise of at least 0.05 (the margin's
    # gap at cosine 0.5)
    Rule("semantic collapse of agents", "cosine_to_anchor", "agents", "first", axis="round",
         min_gap=0.05),
    Rule("agents on the sphere", "geodesic_distance_to_anchor", "agents manifold", "first",
         axis="round", margin=0.5),
    # direct answers can be near-certain (entropy ~0 bits): a fall of at least 0.1 bit
    Rule("intention collapse", "intention_entropy", "intention", "baseline",
         where={"regime": "cot"}, ref_where={"regime": "direct"},
         ref_label="direct answers", min_gap=0.1),
    Rule("premature semantic collapse", "mean_normalized_candidate_entropy", "ambiguity",
         "bound", where={"turn": 1}, bounds=(0.5, 0.2), min_gap=0.05),
    Rule("tokenizer phantom edits", "phantom_edit_rate", "tokenizer", "bound",
         where={"kind": "any"}, bounds=(0.05, 0.2), min_gap=0.05),
    # an accuracy of at most 0.1 at the shortest length has nothing to fall from
    Rule("state collapse (passkey)", "passkey_accuracy", "passkey", "first", axis="length",
         margin=0.5, min_gap=0.1),
    Rule("collapse after editing", ("perplexity_ratio", "bits_per_byte_ratio"), "drift",
         "bound", bounds=(2.0, 2.0)),
    Rule("model collapse (fine-tuning)", "policy_entropy", "finetune", "first",
         axis="generation"),
    # the samples' diversity over self-consuming generations (Shumailov et al. 2024: the
    # tails go first), against generation 0's samples; the same 10% as policy entropy
    Rule("model collapse (sample diversity)", "distinct_2", "finetune diversity", "first",
         axis="generation"),
    Rule("model collapse (recursion)", ("test_error", "cov_trace", "entropy",
                                         "cross_entropy", "kl_real_model"), "recursion",
         "first", axis="generation", where={"source": "simulation"}),
    Rule("collapse during training", "rankme", "monitor", "first", axis="step",
         margin=0.5),
    # concepts: AMI ≈ 0 = the model's clusters ignore the human categories (chance level)
    Rule("concepts vs human categories", "concept_ami", "concepts", "bound",
         where={"k_vs_categories": "equal"}, bounds=(0.3, 0.1), min_gap=0.05),
    Rule("loss of the typicality gradient", "mean_typicality_spearman", "concepts", "bound",
         bounds=(0.2, 0.05), min_gap=0.05, span=(-1.0, 1.0)),
    # numbers: peak divergence under social pressure / without; < 1 = manifold entanglement
    Rule("manifold entanglement under pressure", "numbers_pressure_divergence_ratio",
         "numbers", "bound", bounds=(0.9, 0.5)),
    # neural collapse at the top layer (Papyan, Han & Donoho 2020). For K − 1 ≤ D, NC1 =
    # Tr(Σ_W Σ_B⁺)/K is (K − 1)/K × the mean over the between-class directions of within- /
    # between-class variance: no collapse from 1 (classes as wide as they are apart),
    # collapse below 0.1 (ten times tighter). Judged only at K/D < 0.5 (GUARDS["k_over_d"]).
    # CDNV (Galanti et al. 2022, p = 1; Wu & Papyan 2024 use it at vocabulary scale, K ≫ D)
    # puts (var_i + var_j)/2 against ‖μ_i − μ_j‖² for every K: the same edges. margin 0.5:
    # in a compare, half the first run's value (NC spans orders of magnitude).
    Rule("neural collapse (NC1)", "nc1", "neural collapse", "bound", axis="layer",
         where={"layer_name": "final_norm"}, bounds=(1.0, 0.1), margin=0.5,
         guard="k_over_d"),
    Rule("neural collapse (CDNV)", "cdnv", "neural collapse", "bound", axis="layer",
         where={"layer_name": "final_norm", "power": 1}, bounds=(1.0, 0.1), margin=0.5),
    # length collapse (Zhou et al. 2024): the same documents cut to each length; their unit
    # embeddings' spread around the centroid, at the longest length against the shortest;
    # one row per TempScale τ (τ < 1 mitigates)
    Rule("length collapse (embedder)", "centroid_distance", "length collapse", "first",
         axis="length"),
    # compare: two models answer alike when the cosine between their samples reaches each
    # one's own (Jiang et al. 2025). The reference, the mean of the two within-model cosines,
    # is the collapsed state (for unit embeddings it exceeds the cross-model cosine by
    # ≈ ‖μ_A − μ_B‖²/2, the mean embeddings' distance), so the margin is negative: collapsed
    # above 0.9 × it; span from 0: within-model cosines near 0 leave no answer to share.
    Rule("cross-model homogeneity", "cross_model_cosine", "homogeneity", "baseline",
         ref_metric="within_model_cosine", ref_join={"model": ("model_a", "model_b")},
         ref_label="within-model cosine", margin=-0.1, min_gap=0.05, span=(0.0, 1.0)),
]


def _k_over_d(rec: dict) -> str | None:
    """NC1 is read against fixed edges only where K/D < KD_WARN[0] (see the NC1 rule)."""
    k, d = rec.get("K"), rec.get("D")
    if not (isinstance(k, int) and isinstance(d, int) and d > 0):
        return "K and D are not recorded, and NC1's scale depends on K/D"
    if k / d < KD_WARN[0]:
        return None
    return (f"K/D = {k}/{d} = {k / d:.2f} ≥ {KD_WARN[0]:g}: NC1 = Tr(Σ_W Σ_B⁺)/K is unstable "
            "near K ≈ D and for K > D sums D of the K − 1 between-class directions over K "
            "(shrinking as D/K), so fixed edges do not apply; read the CDNV row")


GUARDS = {"k_over_d": _k_over_d}  # record → the reason it is not judged, or None

# sections written without a verdict rule, and why (shown when a section gives no row)
NO_RULE = {
    "geometry summary": "extremes over layers of the geometry curves; the representation "
                        "collapse row judges the RankMe curve itself",
    "attention": "per-head entropies; the attention-heads row judges the share of collapsed "
                 "heads",
    "diversity pooled": "all prompts' samples pooled; the diversity rows judge the "
                        "per-prompt means against human text",
    "logit lens": "a diagnostic of how early layers agree with the output, no collapse "
                  "direction",
    "logit lens summary": "the mean commitment layer, a diagnostic with no collapse direction",
    "finetune steps": "the training loss per step, a diagnostic",
    "finetune geometry": "per-layer geometry of each generation; the fine-tuning rows judge "
                         "policy entropy and sample diversity",
    "recursion data": "the training pool's own statistics; the recursion row judges the "
                      "learner",
    "recursion summary": "summaries of the curves the recursion row judges",
    "monitor alerts": "alerts raised during training; the monitor row judges RankMe",
    "comparison": "how many records matched across the runs",
    "sweep": "runs done and failed",
}


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


_SPANS = {"fraction": (0.0, 1.0), "cosine": (-1.0, 1.0)}  # by unit; else (0, inf)


def span(rule: Rule, metric: str) -> tuple:
    """The values ``metric`` can take under ``rule``: its ``span``, else from the unit."""
    info = lookup(metric)
    return rule.span or _SPANS.get(info.unit if info else "", (0.0, math.inf))


def _relative(value, ci, ref, ref_text: str, rule: Rule, collapse: str,
              lim: tuple = (0.0, math.inf)) -> tuple[str, str]:
    """(verdict, rule text) for a value judged against a reference value: the threshold
    lies max(|margin| × |ref|, min_gap) from ``ref``, on the collapse side (margin ≥ 0) or
    the healthy side (margin < 0); outside ``lim`` no value can pass it."""
    if _num(ref) is None:
        return INCONCLUSIVE, f"no reference value ({ref_text}) to compare with"
    if collapse not in ("low", "high"):
        return INCONCLUSIVE, "the metric has no collapse direction"
    rel = abs(rule.margin) * abs(ref)
    gap = max(rel, rule.min_gap)
    down = (collapse == "low") == (rule.margin >= 0)
    t = ref - gap if down else ref + gap
    if gap > rel:
        how = f"{ref_text} {'−' if down else '+'} {fmt(gap)} (the rule's smallest gap)"
    elif ref > 0:
        how = f"{1 - rule.margin if collapse == 'low' else 1 + rule.margin:g} × {ref_text}"
    else:
        how = f"{ref_text} {'−' if down else '+'} {abs(rule.margin):g} × |{fmt(ref)}|"
    if (t <= lim[0]) if down else (t >= lim[1]):
        side, edge = ("above", lim[0]) if down else ("below", lim[1])
        tail = ("the reference is too near the edge to be a collapsed state" if rule.margin < 0
                else "nothing to fall from" if down else "nothing to rise to")
        return INCONCLUSIVE, (f"the threshold {how} = {fmt(t)} is not {side} {fmt(edge)}, "
                              f"the edge of the values the metric can take: {tail}")
    word = "below" if collapse == "low" else "above"
    kind = "interval" if ci else "value (no interval recorded)"
    return verdict(value, ci, t, collapse), (
        f"{collapse}er = collapse. collapsed if the {kind} lies wholly {word} {how} = "
        f"{fmt(t)}; healthy if wholly on the other side; else inconclusive")


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


def _references(rule: Rule, rec: dict, refs: list[dict]) -> list[dict]:
    """The baseline records of a judged record: of its run; with ``ref_join`` one per
    judged field named there (all of them or none), agreeing with it on every other scope
    field both carry (e.g. the temperature of a diversity run)."""
    same = [x for x in refs if x.get("run") == rec.get("run")]
    if not rule.ref_join:
        return same[:1]
    joined = set(rule.ref_join) | {g for fields in rule.ref_join.values() for g in fields}
    same = [x for x in same if all(x[k] == rec[k] for k in set(x) & set(rec) - _IGNORED
                                   - joined)]
    found = [next((x for x in same if x.get(f) == rec.get(g)), None)
             for f, fields in rule.ref_join.items() for g in fields]
    return [] if any(x is None for x in found) else found


def _apply(rule: Rule, metric: str, recs: list[dict], pool=None, drop=(),
           base=None) -> list[Finding]:
    """The findings of one rule on the records of its metric and section. ``pool``: where
    baseline references are looked up (default ``recs``); ``drop``: scope fields that do not
    split rows; ``base``: (first run, later run, first run's findings by scope) in a
    compare, whose values replace the references."""
    info = lookup(metric)
    collapse = info.collapse if info else None
    label = info.label if info else metric
    lim = span(rule, metric)
    judged = [r for r in recs if _matches(r, rule.where)]
    groups: dict = {}
    for r in judged:
        groups.setdefault(_key(r, rule, drop), []).append(r)
    refs = [r for r in (recs if pool is None else pool)
            if (rule.ref_where or rule.ref_metric) and _matches(r, rule.ref_where)]
    out = []
    for key, rs in groups.items():
        scope, point, rec = ", ".join(f"{k}={v}" for k, v in key), "", None
        if rule.reference == "baseline":
            rec = rs[0]
            value, ci = _interval(rec)
            got = _references(rule, rec, refs)
            vals = [_num(x.get("value")) for x in got]
            rv = sum(vals) / len(vals) if got and None not in vals else None
            name = f"{rule.ref_label} ({fmt(rv)})" if got else rule.ref_label
            v, why = _relative(value, ci, rv, name, rule, collapse, lim)
            each = "; ".join(", ".join(f"{f}={x.get(f)}" for f in rule.ref_join) + ": "
                             + _with_ci(*_interval(x)) for x in got)
            reference = ("not recorded" if not got else
                         f"{rule.ref_label}: {_with_ci(*_interval(got[0]))}" if len(got) == 1
                         else f"{rule.ref_label}: {fmt(rv)}, the mean of {each}")
        elif rule.reference == "first":
            pts = _axis_sorted(rs, rule.axis)
            if len(pts) < 2:
                rec = pts[0] if pts else None
                value, ci = _interval(rec) if rec else (None, None)
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
                                   collapse, lim)
                reference = f"{name}: {_with_ci(rv, rci)}"
                cf = _num((rec or {}).get("closed_form"))
                if cf is not None:
                    reference += f"; closed form{at}: {fmt(cf)}"
        else:  # bound
            pts = _axis_sorted(rs, rule.axis) if rule.axis else rs
            rec, how = _pick(pts, rule.pick, collapse) if rule.axis else (pts[-1], "")
            value, ci = _interval(rec) if rec else (None, None)
            point = f"{how} over {rule.axis}" if how and rule.axis and len(pts) > 1 else ""
            h, c = rule.bounds
            v = verdict(value, ci, c, collapse, healthy_edge=h)
            side = ("below", "above") if collapse == "low" else ("above", "below")
            how = "interval" if ci else "value (no interval recorded)"
            why = (f"{collapse}er = collapse. collapsed if the {how} lies wholly {side[0]} "
                   f"{fmt(c)}; healthy if wholly {side[1]} {fmt(h)}; else inconclusive")
            reference = f"collapsed past {fmt(c)}, healthy {side[1]} {fmt(h)}"
        if base is not None:  # compare: against the first run's row of the same scope
            a, b, rows = base
            fa = rows.get(scope)
            ra = fa.value if fa else None
            v, why = _relative(value, ci, ra, f"run {a} ({fmt(ra)})", rule, collapse, lim)
            reference = f"run {a}: {_with_ci(ra, fa.ci)}" if fa else f"run {a}: not recorded"
            scope = ", ".join(x for x in (f"run={b}", scope) if x)
        reason = GUARDS[rule.guard](rec or {}) if rule.guard else None
        if value is None:
            v, why = INCONCLUSIVE, "the value is missing (see the section's notes)"
        elif reason:
            v, why = INCONCLUSIVE, reason
        out.append(Finding(rule.phenomenon, rule.section, metric, label, scope, point, value,
                           ci, reference, v, why))
    return out


def _versus(rule: Rule, metric: str, recs: list[dict], runs: list, pool) -> list[Finding]:
    """compare: each later run's value judged against the first run's at the same scope."""
    a, out = runs[0], []
    first = {f.scope: f for f in _apply(rule, metric, [r for r in recs if r.get("run") == a],
                                        pool, drop=("run",))}
    for b in runs[1:]:
        out += _apply(rule, metric, [r for r in recs if r.get("run") == b], pool,
                      drop=("run",), base=(a, b, first))
    return out


def summarize(records, rules=None) -> list[Finding]:
    """The findings of ``rules`` (default :data:`RULES`) on ``records`` (dicts), in rule
    order; a rule whose metric is not recorded gives none. With records of several runs (a
    ``compare``) each later run is judged against the first; records of no run (compare's
    own, e.g. homogeneity) by the rule itself. Records of skipped probes
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
                pool = recs if rule.ref_metric is None else [
                    r for r in records if r["metric"] == rule.ref_metric
                    and str(r.get("section")) == rule.section]
                if len(runs) > 1:
                    alone = [r for r in recs if r.get("run") is None]
                    out += _versus(rule, metric, recs, runs, pool)
                    out += _apply(rule, metric, alone, pool) if alone else []
                else:
                    out += _apply(rule, metric, recs, pool)
                break
    for r in records:
        if r["metric"] == "probe_skipped":
            out.append(Finding(f"{r.get('probe', 'probe')} (skipped)", str(r.get("section")),
                               "probe_skipped", "skipped", str(r.get("run") or ""), "", None,
                               None, "", INCONCLUSIVE, str(r.get("note") or "skipped")))
    return out


def unjudged(records, findings, rules=None) -> list[tuple[str, str]]:
    """(section, why) for each section of ``records`` that gives no row in ``findings``:
    the reason in :data:`NO_RULE`, else what its rules look for, else that no rule covers
    it."""
    rules = RULES if rules is None else rules
    rows = {f.section for f in findings}
    out = []
    for sec in dict.fromkeys(str(r["section"]) for r in records if isinstance(r, dict)
                             and "metric" in r and r.get("section") is not None):
        mine = [r for r in rules if r.section == sec]
        wants = "; ".join(" or ".join((r.metric,) if isinstance(r.metric, str) else r.metric)
                          + "".join(f", {k}={v}" for k, v in r.where.items()) for r in mine)
        if sec not in rows:
            out.append((sec, NO_RULE.get(sec) or (
                f"no record matches its rule ({wants})" if mine
                else "no rule in collapsekit.report.summary.RULES covers it")))
    return out
