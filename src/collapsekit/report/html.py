"""A results folder as one self-contained HTML page (``index.html``) plus PNG files.

The page needs no network: CSS is inline and every plot is embedded as a base64 PNG (and
also saved in ``plots/``, whose old ``*.png`` files are replaced on each render).
Everything taken from the run is passed through ``html.escape``: model outputs are
untrusted text.

Generic layout: one section per ``section`` field of the records ("other" for records
without one); within it, each metric's records are drawn by their scope fields:
``layer`` and ``head``, ``depth`` and ``length``, or any ``row`` and ``col`` (e.g.
model × model) -> heatmap;
``layer`` -> line over layers; ``generation``, ``length``, ``round`` or ``step`` -> line over
that axis; ``prompt_id`` ->
strip plot of per-prompt values with the mean; ``temperature`` -> line over temperature;
else a table row. One line/panel/strip per combination of the other scope fields (model,
strategy, ...); records sharing a point (e.g. several seeds or prompts) are averaged and
the caption says so. Tables named in the metadata ``samples_table`` are shown as example
texts, a few per prompt, in collapsible blocks.
"""

from __future__ import annotations

import base64
import html
import json
import numbers
import re
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from collapsekit.errors import InputFileError
from collapsekit.report import plots
from collapsekit.results import REPORT, atomic_write, load_run, read_table

# Fields that are not scope: never axes, never series.
_NOT_SCOPE = {"metric", "value", "study", "section", "ci_low", "ci_high", "note",
              "closed_form"}
_AVERAGED = {"seed", "prompt_id"}  # averaged over in plots (points in strip plots)
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
_TEXT_COLUMNS = ("text", "sample", "output", "completion", "response")


def e(x) -> str:
    """Escape anything for HTML text or attribute values."""
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "NaN"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _slug(*parts) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(map(str, parts))).strip("-.")[:80]


def _hashable(v):
    return v if isinstance(v, (str, numbers.Number, type(None))) else json.dumps(v)


# heatmap axes, first pair present wins
_GRIDS = (("layer", "head"), ("depth", "length"), ("row", "col"))
_LINES = ("layer", "generation", "length", "round", "step")  # line-plot axes, in priority


def _grid(recs) -> tuple[str, str]:
    return next(g for g in _GRIDS if all(r.get(g[0]) is not None for r in recs))


def _kind(rec: dict) -> str:
    has = {k for k in ("layer", "head", "depth", "row", "col", "generation", "length",
                       "round", "step", "prompt_id", "temperature") if rec.get(k) is not None}
    if any(set(g) <= has for g in _GRIDS):
        return "heatmap"
    for kind in _LINES:
        if kind in has:
            return kind
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
    point = [tuple(_hashable(r.get(a)) for a in axes) for r in recs]

    def names_point(k):
        seen: dict = {}
        for p, r in zip(point, recs):
            seen.setdefault(p, set()).add(_hashable(r.get(k)))
        return len({v for vs in seen.values() for v in vs}) > 1 and all(
            len(vs) == 1 for vs in seen.values())

    fields = [k for k in fields if not names_point(k)]
    varying = [k for k in fields if len({_hashable(r.get(k)) for r in recs}) > 1]
    fields = varying or fields  # constant fields do not tell lines apart
    if len(fields) == 1:
        return lambda r: "" if r.get(fields[0]) is None else str(r[fields[0]])
    return lambda r: ", ".join(f"{k}={r[k]}" for k in fields if r.get(k) is not None)


def _sorted(values) -> list:
    vals = list(dict.fromkeys(map(_hashable, values)))
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in vals):
        return sorted(vals)
    return vals


def _group(recs, keyf) -> dict:
    out: dict = {}
    for r in recs:
        out.setdefault(keyf(r), []).append(r)
    return out


def _line_data(recs, xkey) -> tuple[dict, int, set]:
    """{series: {x, y, lo?, hi?}}, how many points average several records, and the band
    kinds drawn: "ci" (each point one record with ci_low/ci_high) or "range" (min-max of
    the records averaged into each point)."""
    series, merged, bands = {}, 0, set()
    for label, rs in _group(recs, _series_of(recs, (xkey,))).items():
        by_x = _group(rs, lambda r: _hashable(r[xkey]))
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


def _heatmap_data(recs, grid=("layer", "head")) -> tuple[dict, int]:
    rk, ck = grid
    rows = _sorted(r[rk] for r in recs)
    cols = _sorted(r[ck] for r in recs)
    panels, merged = {}, 0
    for label, rs in _group(recs, _series_of(recs, grid)).items():
        mat = [[float("nan")] * len(cols) for _ in rows]
        for (li, hi), cell in _group(rs, lambda r: (_hashable(r[rk]),
                                                    _hashable(r[ck]))).items():
            mat[rows.index(li)][cols.index(hi)] = sum(r["value"] for r in cell) / len(cell)
            merged += len(cell) > 1
        panels[label] = (mat, rows, cols)
    return panels, merged


def _figure_html(png: bytes, path: Path, alt: str, caption: str) -> str:
    path.write_bytes(png)
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{e(alt)}">'
            f'<figcaption>{caption} <a href="plots/{e(path.name)}">PNG</a></figcaption>'
            "</figure>")


def _metric_plot(section, metric, kind, recs, plots_dir: Path, used: set) -> str:
    valid = [r for r in recs if isinstance(r.get("value"), numbers.Real)
             and not isinstance(r["value"], bool)]
    missing = len(recs) - len(valid)
    notes = [f"{missing} value(s) missing (NaN/null) are left out."] if missing else []
    grid = _grid(recs) if kind == "heatmap" else None
    name = {"layer": "by layer", "generation": "by generation", "temperature": "by temperature",
            "length": "by input length", "round": "by round", "step": "by step",
            "heatmap": f"by {grid[0]} × {grid[1]}" if grid else "", "prompt": "per prompt"}[kind]
    title = f"{plots.metric_info(metric).get('label', metric)} {name}"
    if not valid:
        return f"<h3>{e(title)}</h3><p class='warn'>All {len(recs)} values are missing.</p>"
    if kind in (*_LINES, "temperature"):
        series, merged, bands = _line_data(valid, kind)
        notes += [_BANDS[b] for b in sorted(bands)]
        png = plots.line_plot(series, metric=metric, x_label=kind, title=title)
    elif kind == "heatmap":
        panels, merged = _heatmap_data(valid, grid)
        png = plots.heatmap(panels, metric=metric, row_label=grid[0], col_label=grid[1],
                            title=title)
    else:
        groups = _group(valid, _series_of(valid, ("prompt_id",)))
        merged = 0
        png = plots.strip_plot({k: [r["value"] for r in v] for k, v in groups.items()},
                               metric=metric, title=title)
    if merged:
        notes.insert(0, f"{merged} point(s) are means of several records (seeds or "
                        "prompts).")
    slug = base = _slug(section, metric, kind)
    i = 1
    while slug in used:
        i += 1
        slug = f"{base}-{i}"
    used.add(slug)
    doc = plots.metric_info(metric).get("doc", "")
    caption = " ".join(e(t) for t in (doc, _HOWTO[kind], *notes) if t)
    return f"<h3>{e(title)}</h3>" + _figure_html(png, plots_dir / f"{slug}.png",
                                                 f"{metric} {name}", caption)


def _scalar_table(recs) -> str:
    rows = []
    for r in recs:
        scope = ", ".join(f"{k}={v}" for k, v in r.items() if k not in _NOT_SCOPE)
        ci = (f"[{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
              if r.get("ci_low") is not None or r.get("ci_high") is not None else "")
        info = plots.metric_info(str(r["metric"]))
        direction = f"{info['collapse']}er = collapse" if info.get("collapse") else ""
        rows.append(f"<tr><td>{e(r['metric'])}</td><td>{e(scope)}</td>"
                    f"<td class='num'>{e(_fmt(r.get('value')))}</td><td>{e(ci)}</td>"
                    f"<td>{e(direction)}</td><td>{e(r.get('note') or '')}</td></tr>")
    return ("<table><tr><th>metric</th><th>scope</th><th>value</th><th>CI</th>"
            "<th>direction</th><th>note</th></tr>" + "".join(rows) + "</table>")


def _section_info(name: str) -> str:
    """SECTION_INFO of the section, of its underscored name, or of its first word."""
    for key in (name, name.replace(" ", "_"), name.split(" ")[0]):
        if key in SECTION_INFO:
            return SECTION_INFO[key]
    return _DEFAULT_INFO


def _section(name, recs, plots_dir, used) -> str:
    parts = [f"<h2 id='{e(_slug('s', name))}'>{e(name)}</h2>",
             f"<p class='howto'>{e(_section_info(name))}</p>"]
    scalars = []
    for metric, mrecs in _group(recs, lambda r: str(r["metric"])).items():
        for kind, krecs in _group(mrecs, _kind).items():
            if kind == "scalar":
                scalars.extend(krecs)
            else:
                parts.append(_metric_plot(name, metric, kind, krecs, plots_dir, used))
    if scalars:
        parts.append("<h3>Values</h3>" + _scalar_table(scalars))
    return "".join(parts)


def _header(data: dict) -> str:
    model = data.get("model") or {}
    items = [("study", data.get("study")), ("model", model.get("spec")),
             ("weight hash", model.get("weight_hash")),
             *((f"model {k}", v) for k, v in model.items() if k not in ("spec", "weight_hash")),
             ("created", data.get("created")),
             ("finished", data.get("finished") or "not finished: partial results"),
             ("collapsekit", data.get("collapsekit_version")),
             ("seeds", json.dumps(data.get("seeds"))),
             ("config hash", data.get("config_hash"))]
    data_links = ("<p>Data: <a href='metrics.json'>metrics.json</a> (every record and this "
                  "metadata); plots as PNG in <a href='plots/'>plots/</a>.</p>")
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in items if v not in (None, ""))
    timings = "".join(f"<tr><td>{e(k)}</td><td class='num'>{v:.3g} s</td></tr>"
                      for k, v in (data.get("timings") or {}).items()
                      if isinstance(v, numbers.Real))
    tables = "".join(f"<li><a href='{e(t.get('csv', ''))}'>{e(n)}</a> ({e(t.get('rows'))} "
                     f"rows; also {e(t.get('parquet', ''))})</li>"
                     for n, t in (data.get("tables") or {}).items() if isinstance(t, dict))
    return (f"<dl class='head'>{dl}</dl>{data_links}"
            + (f"<table><tr><th>stage</th><th>time</th></tr>{timings}</table>" if timings
               else "")
            + (f"<details><summary>tables</summary><ul>{tables}</ul></details>" if tables
               else "")
            + "<details><summary>config</summary><pre>"
            + e(json.dumps(data.get("config"), indent=1)) + "</pre></details>"
            + "<details><summary>package versions</summary><pre>"
            + e(json.dumps(data.get("packages"), indent=1)) + "</pre></details>")


def _samples(run_dir: Path, name: str, per_prompt: int, max_prompts: int) -> str:
    head = f"<h3>{e(name)}</h3>"
    try:
        cols = read_table(run_dir, name)
    except InputFileError as err:
        return head + f"<p class='warn'>{e(err)}</p>"
    n = len(next(iter(cols.values()), []))
    text_col = next((c for c in _TEXT_COLUMNS if c in cols), None) or next(
        (c for c in cols if any(isinstance(v, str) for v in cols[c])), None)
    if text_col is None or n == 0:
        return head + "<p class='note'>No text column to show.</p>"
    rows = [{c: cols[c][i] for c in cols} for i in range(n)]
    groups = _group(rows, lambda r: _hashable(r.get("prompt_id")))
    per = " (per model)" if "model" in cols else ""
    out = [head, f"<p class='note'>{e(n)} rows in {e(len(groups))} prompt group(s); showing "
                 f"up to {e(per_prompt)} per prompt{per} for the first "
                 f"{e(min(max_prompts, len(groups)))} prompt(s).</p>"]
    for pid, rs in list(groups.items())[:max_prompts]:
        shown = [r for rr in _group(rs, lambda r: _hashable(r.get("model"))).values()
                 for r in rr[:per_prompt]]
        prompt = rs[0].get("prompt")
        summary = (f"prompt {pid}" if pid is not None else "samples") + (
            f": {str(prompt)[:120]}" if prompt else "") + f" ({len(rs)} samples)"
        items = "".join(
            f"<li><pre>{e(_clip(r.get(text_col)))}</pre><span class='meta'>"
            + e(", ".join(f"{k}={_clip(v, 60)}" for k, v in r.items()
                          if k not in (text_col, "prompt", "prompt_id") and v is not None))
            + "</span></li>" for r in shown)
        out.append(f"<details><summary>{e(summary)}</summary>"
                   f"<ol class='samples'>{items}</ol></details>")
    return "".join(out)


def _clip(v, n=2000) -> str:
    s = "" if v is None else str(v)
    return s if len(s) <= n else s[:n] + " …[cut]"


def render(run_dir, *, samples_per_prompt: int = 3, max_prompts: int = 20) -> Path:
    """Write ``run_dir/index.html`` and ``run_dir/plots/*.png``; returns the HTML path."""
    if samples_per_prompt < 1 or max_prompts < 1:
        raise ValueError("samples_per_prompt and max_prompts must be at least 1")
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    for old in plots_dir.glob("*.png"):
        old.unlink()
    records = [r for r in data["records"] if isinstance(r, dict) and "metric" in r]
    sections = _group(records, lambda r: str(r.get("section") or "other"))
    if "other" in sections:
        sections["other"] = sections.pop("other")
    used: set = set()
    body = [_section(n, rs, plots_dir, used) for n, rs in sections.items()]
    names = data.get("samples_table") or []
    names = [names] if isinstance(names, str) else list(names)
    if names:
        body.append("<h2 id='s-samples'>samples</h2><p class='howto'>Example outputs "
                    "exactly as generated (click a prompt to open).</p>" + "".join(
                        _samples(run_dir, str(n), samples_per_prompt, max_prompts)
                        for n in names))
    nav = "".join(f"<a href='#{e(_slug('s', n))}'>{e(n)}</a>"
                  for n in [*sections, *(["samples"] if names else [])])
    css = resources.files("collapsekit.report").joinpath("templates/report.css").read_text(
        encoding="utf-8")
    title = f"collapsekit · {data.get('study', 'run')}"
    if not records:
        body.insert(0, "<p class='warn'>This run has no records yet.</p>")
    page = ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>{e(title)}</title><style>{css}</style></head><body>"
            f"<h1>{e(title)}</h1>{_header(data)}<nav>{nav}</nav>{''.join(body)}"
            "</body></html>\n")
    out = run_dir / REPORT
    atomic_write(out, lambda p: p.write_text(page, encoding="utf-8"))
    return out
