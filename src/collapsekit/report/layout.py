"""What the report shows for a run's records, as plain data: :func:`plan`.

One section per ``section`` field of the records ("other", last, for records without one);
within it, each metric's records are drawn by their scope fields: ``layer`` and ``head``,
``depth`` and ``length``, or ``row`` and ``col`` -> heatmap; ``layer``, ``generation``,
``length``, ``round``, ``step`` or ``temperature`` -> line over that field (first present
wins; records of checkpoints, with ``checkpoint``, ``layer`` and ``step`` -> layer × step
heatmap); ``prompt_id`` -> strip plot of per-prompt values; else a table row. One line, panel
or strip per combination of the other scope fields (model, strategy, ...); records sharing
a point (several seeds or prompts) are averaged and the caption says so.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Callable
from dataclasses import dataclass

from collapsekit.metrics.catalog import judge_note, lookup
from collapsekit.report import flags, references

# Fields that are not scope: never axes, never series.
_NOT_SCOPE = {"metric", "value", "study", "section", "ci_low", "ci_high", "note",
              "closed_form"}
_AVERAGED = {"seed", "prompt_id"}  # averaged over in plots (points in strip plots)
_IMPLIED = {"basis": "raw"}  # the value a field's absence stands for (series labels)
SECTION_INFO = {
    "geometry": "How the hidden representations spread over dimensions, layer by layer: "
                "rank-like metrics falling or anisotropy rising = representation collapse.",
    "attention": "Attention entropy per layer and head: near 0 = a head locked on one "
                 "token (entropy collapse); near log(length) = uniform attention.",
    "diversity": "How different the samples for one prompt are, lexically and in meaning: "
                 "low distinct-n / Vendi or high Self-BLEU / cosine = diversity collapse.",
    "recursion": "Models trained on their own outputs, generation after generation: a "
                 "steady drift with generation = model collapse; compare the strategies.",
    "neural_collapse": "How tightly last-layer features gather at their class means: "
                       "NC1 and CDNV near 0 = neural collapse.",
    "divergence": "How far the model's samples are from human text (Jensen-Shannon, bits): "
                  "model_vs_human against the human_vs_human null level of the same size.",
    "agents": "Peripheral agents rewriting their statements next to a fixed anchor, round "
              "by round (greedy vs stochastic): rising similarity to the anchor and to each "
              "other, collisions, or falling entropy = semantic collapse.",
    "agents manifold": "Model-free dynamics on the unit sphere: smooth and noisy updates "
                       "reach the same anchor (path independence) and entropy goes to 0.",
    "intention": "The state just before the answer, for direct answers, chain of thought "
                 "and a babble control: low entropy and dimensionality with a probe that "
                 "cannot recover correctness = intention collapse.",
    "ambiguity": "Whether the model keeps the readings of an ambiguous input open until "
                 "context arrives: low entropy over interpretations at the ambiguous turn, or "
                 "one meaning among sampled answers = premature semantic collapse.",
    "tokenizer": "How many token-id sequences spell the same words (non-unique encodings), "
                 "and whether the model's word replacements differ from the target only by "
                 "tokenizer artifacts (phantom edits).",
    "passkey": "Can the model find a 5-digit key hidden in real text as the prompt grows: "
               "accuracy falling with length = state collapse.",
    "drift": "Perplexity of reference text after edits or between checkpoints: a ratio "
             "well above 1 (flag at 2×) = collapse after editing.",
    "finetune": "The model fine-tuned on its own samples, generation after generation, "
                "replace vs accumulate: held-out perplexity rising and policy entropy or "
                "diversity falling under one strategy only = model collapse.",
    "monitor": "Collapse metrics measured during training, one curve per layer over the "
               "training steps; alerts compare each value with the first measured step.",
    "concepts": "Item words of human categories in the model's embedding space: rate "
                "(bits) and distortion of the human categories and of k-means clusters, "
                "L = rate + β·distortion (lower = more compressed), AMI with the human "
                "categories (≈ 0 = the model's clusters ignore them) and, with typicality "
                "ratings, Spearman ρ of closeness to the centroid (≈ 0 = nuance lost).",
    "numbers": "The integers 0..n in plain, parity and primality contexts (and under social "
               "pressure), per layer: the number token's class-agnostic (shared) and "
               "class-specific (divergence) norm shares, probe accuracy, distortion against "
               "the plain context; then the divergence erased at a layer vs a random "
               "subspace of equal rank. Little divergence, or less under pressure (manifold "
               "entanglement), with task accuracy near 0.5 = the classes collapse together.",
}
_DEFAULT_INFO = ("Each plot shows one metric; its axis label says which direction means "
                 "collapse where that is known.")
_HOWTO = {
    "layer": "Value at each layer (0 = embeddings), one line per setting.",
    "generation": "Value at each generation of recursive training, one line per setting.",
    "temperature": "Value at each sampling temperature, one line per setting.",
    "length": "Value at each input length in tokens, one line per setting.",
    "round": "Value at each round of agent interaction, one line per setting.",
    "step": "Value after each step (e.g. each model edit), one line per setting.",
    "heatmap": "One cell per row and column; the colour scale is shared by the panels.",
    "prompt": "One point per prompt (vertical jitter only separates points); the black "
              "bar is the mean.",
}
_BANDS = {"ci": "Shaded band: the confidence interval (ci_low, ci_high).",
          "range": "Shaded band: min to max of the records averaged into each point."}
# heatmap axes (row, column), first pair present wins
_GRIDS = (("layer", "head"), ("depth", "length"), ("row", "col"))
_TRAJECTORY = ("layer", "step")  # heatmap of per-layer records of checkpoints (trajectory)
_LINES = ("layer", "generation", "length", "round", "step")  # line-plot axes, in priority


@dataclass(frozen=True)
class PlotSpec:
    """One figure. ``series`` holds the data as the drawing function of ``kind`` takes it:
    line -> ``{label: {"x", "y", "lo"?, "hi"?}}``; heatmap -> ``{label: (matrix, row
    values, column values)}``; strip -> ``{label: [values]}``. It is empty when every value
    is missing."""

    kind: str  # "line", "heatmap" or "strip"
    metric: str
    x: str  # the line's x field, the heatmap's column field, or "prompt_id" (strip)
    y: str | None  # the heatmap's row field; None otherwise
    series: dict
    view: str  # the line's x field, "heatmap" or "prompt": names the plot within a metric
    label: str  # the metric's label from the catalogue (its name when unknown)
    by: str  # "by layer", "by layer × head", "per prompt", ...
    caption: str  # plain text: the metric's doc, how to read the plot, notes
    missing: int  # records whose value is missing (left out)
    refs: tuple = ()  # references.RefLine: maximum possible, layer 0, human text
    ylim: tuple | None = None  # the metric's feasible range (None: automatic)

    @property
    def title(self) -> str:
        return f"{self.label} {self.by}"


@dataclass(frozen=True)
class Row:
    """One record shown as a table row."""

    metric: str
    scope: dict  # every field but metric, value, section and annotations
    value: object
    ci: tuple | None  # (ci_low, ci_high) when either is given
    direction: str  # "lower = collapse", "higher = collapse" or ""
    note: str


@dataclass(frozen=True)
class TableSpec:
    rows: list[Row]


@dataclass(frozen=True)
class SectionSpec:
    name: str
    info: str  # what the section measures and what collapse looks like
    plots: list[PlotSpec]
    table: TableSpec | None  # the records that are not plotted
    notes: tuple = ()  # warnings from the records (report.flags): outlier layers, K/D


def plan(records, meta: dict | None = None, depth: str = "auto") -> list[SectionSpec]:
    """The report's sections for ``records`` (dicts; entries without ``metric`` are
    ignored), in order of first appearance with "other" last; ``meta`` (the run's
    metadata) and ``depth`` feed the plots' references (:mod:`.references`)."""
    records = [r for r in records if isinstance(r, dict) and "metric" in r]
    records, relative = references.relative_depth(records, depth)
    sections = group_by(records, lambda r: str(r.get("section") or "other"))
    if "other" in sections:
        sections["other"] = sections.pop("other")
    return [_section(n, rs, meta or {}, relative) for n, rs in sections.items()]


def _section(name: str, recs, meta: dict | None = None, relative: bool = False) -> SectionSpec:
    figures, scalars = [], []
    for metric, mrecs in group_by(recs, lambda r: str(r["metric"])).items():
        for view, vrecs in group_by(mrecs, _view).items():
            if view == "scalar":
                scalars.extend(vrecs)
            else:
                figures.append(_plot(metric, view, vrecs))
    table = TableSpec([_row(r) for r in scalars]) if scalars else None
    figures = [references.annotate(f, name, scalars, meta or {}, relative) for f in figures]
    return SectionSpec(name, _section_info(name), figures, table,
                       tuple(flags.section_notes(recs)))


def _section_info(name: str) -> str:
    """SECTION_INFO of the section, of its underscored name, or of its first word."""
    for key in (name, name.replace(" ", "_"), name.split(" ")[0]):
        if key in SECTION_INFO:
            return SECTION_INFO[key]
    return _DEFAULT_INFO


def hashable(v):
    """``v`` usable as a dict key: lists and dicts (from a hand-written metrics.json) as
    JSON text."""
    return v if isinstance(v, (str, numbers.Number, type(None))) else json.dumps(v)


def group_by(items, keyf) -> dict:
    """``{keyf(item): [items]}`` in order of first appearance."""
    out: dict = {}
    for r in items:
        out.setdefault(keyf(r), []).append(r)
    return out


def _sorted(values) -> list:
    vals = list(dict.fromkeys(map(hashable, values)))
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in vals):
        return sorted(vals)
    return vals


def _grid(recs) -> tuple[str, str]:
    grids = _GRIDS + ((_TRAJECTORY,) if all(r.get("checkpoint") is not None
                                            for r in recs) else ())
    return next(g for g in grids if all(r.get(g[0]) is not None and r.get(g[1]) is not None
                                        for r in recs))


def _view(rec: dict) -> str:
    has = {k for k in ("layer", "head", "depth", "row", "col", "generation", "length",
                       "round", "step", "prompt_id", "temperature") if rec.get(k) is not None}
    if any(set(g) <= has for g in _GRIDS) or (
            rec.get("checkpoint") is not None and set(_TRAJECTORY) <= has):
        return "heatmap"
    for axis in _LINES:
        if axis in has:
            return axis
    if "prompt_id" in has:
        return "prompt"
    return "temperature" if "temperature" in has else "scalar"


def _series_of(recs, axes) -> Callable[[dict], str]:
    """A function giving each record's series label: its scope fields other than the
    axes, ``_AVERAGED`` ones, ``<axis>_name`` labels (e.g. ``layer_name``, even when two
    models name the same layer index differently), fields that only name an axis point (a
    field with one value per axis point), and fields with one value in all records when
    other fields vary."""
    labels = {f"{a}_name" for a in axes}
    fields = list(dict.fromkeys(k for r in recs for k, v in r.items()
                                if v is not None and k not in _NOT_SCOPE and k not in labels
                                and k not in axes and k not in _AVERAGED))
    point = [tuple(hashable(r.get(a)) for a in axes) for r in recs]

    def names_point(k):
        seen: dict = {}
        for p, r in zip(point, recs):
            seen.setdefault(p, set()).add(hashable(r.get(k)))
        return len({v for vs in seen.values() for v in vs}) > 1 and all(
            len(vs) == 1 for vs in seen.values())

    fields = [k for k in fields if not names_point(k)]
    varying = [k for k in fields if len({hashable(r.get(k)) for r in recs}) > 1]
    # constant fields do not tell lines apart; when none varies, the model names the line
    fields = varying or [k for k in fields if k in ("model", "run")] or fields
    if len(fields) == 1:
        return lambda r: "" if _field(r, fields[0]) is None else str(_field(r, fields[0]))
    return lambda r: ", ".join(f"{k}={_field(r, k)}" for k in fields
                               if _field(r, k) is not None)


def _field(r: dict, k: str):
    """``r[k]``, or what its absence means (``_IMPLIED``: a record without basis is raw)."""
    return r[k] if r.get(k) is not None else _IMPLIED.get(k)


def _line_data(recs, xkey) -> tuple[dict, int, set]:
    """{series: {x, y, lo?, hi?}}, how many points average several records, and the band
    kinds drawn: "ci" (each point one record with ci_low/ci_high) or "range" (min-max of
    the records averaged into each point)."""
    series, merged, bands = {}, 0, set()
    for label, rs in group_by(recs, _series_of(recs, (xkey,))).items():
        by_x = group_by(rs, lambda r: hashable(r[xkey]))
        xs = _sorted(by_x)
        vals = [[r["value"] for r in by_x[x]] for x in xs]
        s = {"x": xs, "y": [sum(v) / len(v) for v in vals]}
        merged += sum(len(v) > 1 for v in vals)
        ci = [(by_x[x][0].get("ci_low"), by_x[x][0].get("ci_high")) for x in xs]
        if all(len(v) == 1 for v in vals):
            if all(isinstance(c, numbers.Real) for pair in ci for c in pair):
                s["lo"], s["hi"] = [c[0] for c in ci], [c[1] for c in ci]
                bands.add("ci")
        else:
            s["lo"], s["hi"] = [min(v) for v in vals], [max(v) for v in vals]
            bands.add("range")
        series[label] = s
    return series, merged, bands


def _heatmap_data(recs, grid) -> tuple[dict, int]:
    rk, ck = grid
    rows = _sorted(r[rk] for r in recs)
    cols = _sorted(r[ck] for r in recs)
    panels, merged = {}, 0
    for label, rs in group_by(recs, _series_of(recs, grid)).items():
        mat = [[float("nan")] * len(cols) for _ in rows]
        for (li, hi), cell in group_by(rs, lambda r: (hashable(r[rk]),
                                                     hashable(r[ck]))).items():
            mat[rows.index(li)][cols.index(hi)] = sum(r["value"] for r in cell) / len(cell)
            merged += len(cell) > 1
        panels[label] = (mat, rows, cols)
    return panels, merged


def _plot(metric: str, view: str, recs) -> PlotSpec:
    valid = [r for r in recs if isinstance(r.get("value"), numbers.Real)
             and not isinstance(r["value"], bool)]
    missing = len(recs) - len(valid)
    notes = [f"{missing} value(s) missing (NaN/null) are left out."] if missing else []
    if view == "heatmap":
        (y, x), kind = _grid(recs), "heatmap"
        by = f"by {y} × {x}"
    elif view == "prompt":
        kind, x, y, by = "strip", "prompt_id", None, "per prompt"
    else:
        kind, x, y = "line", view, None
        by = "by input length" if view == "length" else f"by {view}"
    series, merged = {}, 0
    if valid and kind == "line":
        series, merged, bands = _line_data(valid, x)
        notes += [_BANDS[b] for b in sorted(bands)]
    elif valid and kind == "heatmap":
        series, merged = _heatmap_data(valid, (y, x))
    elif valid:
        series = {k: [r["value"] for r in v]
                  for k, v in group_by(valid, _series_of(valid, (x,))).items()}
    if merged:
        notes.insert(0, f"{merged} point(s) are means of several records (seeds or "
                        "prompts).")
    notes += [judge_note(j) for j in dict.fromkeys(r["judge"] for r in recs if r.get("judge"))]
    info = lookup(metric)
    doc = info.doc if info else ""
    return PlotSpec(kind=kind, metric=metric, x=x, y=y, series=series, view=view,
                    label=info.label if info else metric, by=by,
                    caption=" ".join(t for t in (doc, _HOWTO[view], *notes) if t),
                    missing=missing)


def _row(rec: dict) -> Row:
    info = lookup(str(rec["metric"]))
    lo, hi = rec.get("ci_low"), rec.get("ci_high")
    return Row(metric=str(rec["metric"]),
               scope={k: v for k, v in rec.items() if k not in _NOT_SCOPE},
               value=rec.get("value"), ci=None if lo is None and hi is None else (lo, hi),
               direction=f"{info.collapse}er = collapse" if info and info.collapse else "",
               note=str(rec.get("note") or (judge_note(rec["judge"]) if rec.get("judge")
                                            else "")))
