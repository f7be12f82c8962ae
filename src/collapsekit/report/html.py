"""A results folder as one self-contained HTML page (``index.html``) plus PNG files.

What is shown comes from :func:`collapsekit.report.layout.plan`; this module writes it,
with the figures of :func:`collapsekit.report.drawing.draw_all`.
The page needs no network: CSS is inline and every plot is embedded as a base64 PNG (and
also saved in ``plots/``, whose old ``*.png`` files are replaced on each render).
Everything taken from the run is passed through ``html.escape``: model outputs are
untrusted text. Tables named in the metadata ``samples_table`` are shown as example texts,
a few per prompt, in collapsible blocks.
"""

from __future__ import annotations

import base64
import html
import json
import numbers
import re
from importlib import resources
from pathlib import Path

from collapsekit.errors import InputFileError
from collapsekit.report import drawing, layout, summary
from collapsekit.results import GENERATOR, PLOTS_MANIFEST, ours, written_plots, REPORT, atomic_write, load_run, read_table

_TEXT_COLUMNS = ("text", "sample", "output", "completion", "response")
# sample tables the bundled studies write: all shown (a scan's studies each name theirs)
_SAMPLE_TABLES = ("samples", "agent_texts", "ambiguity_samples")


def e(x) -> str:
    """Escape anything for HTML text or attribute values."""
    return html.escape(str(x), quote=True)


def _fmt(v) -> str:
    if v is None:
        return "NaN"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _href(url) -> str:
    """``url`` when it is a relative path inside the folder or an http(s) address; else
    "#" (a hand-edited metrics.json must not plant a ``javascript:`` link)."""
    url = str(url or "")
    if re.fullmatch(r"https?://[^\s'\"<>]+", url) or (
            re.fullmatch(r"[\w./-]+", url) and not url.startswith("/") and ".." not in url):
        return url
    return "#"


def _slug(*parts) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", "-".join(map(str, parts))).strip("-.")[:80]


def _figure(section: str, spec: layout.PlotSpec, plots_dir: Path, used: set,
            pngs: dict) -> str:
    """The plot's heading and figure; its PNG (``pngs[id(spec)]``) is written to
    ``plots_dir`` under a name not in ``used``."""
    if not spec.series:
        return (f"<h3>{e(spec.title)}</h3><p class='warn'>All {spec.missing} values are "
                "missing.</p>")
    png = pngs[id(spec)]
    slug = base = _slug(section, spec.metric, spec.view)
    i = 1
    while slug in used:
        i += 1
        slug = f"{base}-{i}"
    used.add(slug)
    (plots_dir / f"{slug}.png").write_bytes(png)
    data = base64.b64encode(png).decode("ascii")
    return (f"<h3>{e(spec.title)}</h3><figure><img src=\"data:image/png;base64,{data}\" "
            f"alt=\"{e(f'{spec.metric} {spec.by}')}\"><figcaption>{e(spec.caption)} "
            f"<a href=\"plots/{e(slug)}.png\">PNG</a></figcaption></figure>")


def _table(table: layout.TableSpec) -> str:
    rows = []
    for r in table.rows:
        scope = ", ".join(f"{k}={v}" for k, v in r.scope.items())
        ci = f"[{_fmt(r.ci[0])}, {_fmt(r.ci[1])}]" if r.ci else ""
        rows.append(f"<tr><td>{e(r.metric)}</td><td>{e(scope)}</td>"
                    f"<td class='num'>{e(_fmt(r.value))}</td><td>{e(ci)}</td>"
                    f"<td>{e(r.direction)}</td><td>{e(r.note)}</td></tr>")
    return ("<div class='scroll'><table><tr><th>metric</th><th>scope</th><th>value</th>"
            "<th>CI</th><th>direction</th><th>note</th></tr>" + "".join(rows)
            + "</table></div>")


def _section(spec: layout.SectionSpec, plots_dir: Path, used: set, pngs: dict) -> str:
    return (f"<h2 id='{e(_slug('s', spec.name))}'>{e(spec.name)}</h2>"
            f"<p class='howto'>{e(spec.info)}</p>"
            + "".join(f"<p class='warn'>{e(n)}</p>" for n in spec.notes)
            + "".join(_figure(spec.name, p, plots_dir, used, pngs) for p in spec.plots)
            + ("<h3>Values</h3>" + _table(spec.table) if spec.table else ""))


def _summary(data: dict) -> str:
    """``<section id="summary">``: one row per finding of :mod:`collapsekit.report.summary`,
    the rule behind each verdict on hover and as a numbered footnote; for ``simulate``
    also the closed-form coverage."""
    found = summary.summarize(data.get("records") or [])
    compare = any(isinstance(r, dict) and r.get("run") is not None
                  for r in data.get("records") or [])
    rows, rules = [], []
    for f in found:
        rules.append(f.rule)
        sub = "; ".join(x for x in (f.scope, f.point) if x)
        value = summary.fmt(f.value) + (f" [{summary.fmt(f.ci[0])}, {summary.fmt(f.ci[1])}]"
                                         if f.ci else "")
        rows.append(
            f"<tr><td><a href='#{e(_slug('s', f.section))}'>{e(f.phenomenon)}</a></td>"
            f"<td>{e(f.label)}" + (f"<br><span class='meta'>{e(sub)}</span>" if sub else "")
            + f"</td><td class='num' data-label='value'>"
            f"{e(value if f.metric != 'probe_skipped' else '')}</td>"
            f"<td data-label='reference'>{e(f.reference)}</td><td><span class='verdict {e(f.verdict)}' "
            f"title='{e(f.rule)}'>{e(f.verdict)}</span><sup>{len(rules)}</sup></td></tr>")
    head = ("<section id='summary'><h2>Summary</h2><p class='howto'>Each phenomenon's "
            "headline metric, " + ("each later run's value against its reference (the first run's value; for "
                                   "homogeneity, the models' own within-model similarity)"
                                   if compare else "this model's value [interval] against its "
                                   "reference") + " and a verdict; hover a verdict or see the "
            "numbered rules below the table for the rule that produced it.</p>")
    if rows:
        body = ("<div class='scroll'><table class='summary'><tr><th>phenomenon</th>"
                "<th>headline metric</th><th>" + ("value" if compare else "this model")
                + "</th><th>reference</th><th>verdict</th></tr>" + "".join(rows)
                + "</table></div><ol class='rules'>"
                + "".join(f"<li>{e(r)}</li>" for r in rules) + "</ol>")
    else:
        body = ("<p class='note'>No summary rule covers these records (rules: "
                "collapsekit.report.summary.RULES).</p>")
    missing = summary.unjudged(data.get("records") or [], found)
    if missing:
        body += ("<p class='note'>No verdict for these sections:</p><ul class='unjudged'>"
                 + "".join(f"<li><a href='#{e(_slug('s', s))}'>{e(s)}</a>: {e(why)}</li>"
                           for s, why in missing) + "</ul>")
    coverage = data.get("closed_form_coverage")
    if isinstance(coverage, dict) and coverage:
        cells = "".join(
            f"<tr><td>{e(s)}</td><td>{e(m)}</td><td class='num'>"
            f"{e('n/a' if not isinstance(v, numbers.Real) else f'{v:.0%}')}</td></tr>"
            for s, per in coverage.items() if isinstance(per, dict) for m, v in per.items())
        body += ("<h3>Closed-form coverage</h3><p class='note'>Share of generations whose "
                 "closed form lies inside the simulated 95% interval (about 95% expected when "
                 "simulation and theory agree).</p><table><tr><th>strategy</th><th>metric</th>"
                 f"<th>coverage</th></tr>{cells}</table>")
    return head + body + "</section>"


def _seeds(seeds) -> str:
    """A run of consecutive seeds as "0–99 (100 seeds)"; anything else as JSON."""
    inner = seeds.get("seeds") if isinstance(seeds, dict) else seeds
    if (isinstance(inner, list) and len(inner) > 3 and all(type(x) is int for x in inner)
            and inner == list(range(inner[0], inner[0] + len(inner)))):
        text = f"{inner[0]}–{inner[-1]} ({len(inner)} seeds)"
        extra = {k: v for k, v in seeds.items() if k != "seeds"} if isinstance(seeds, dict) \
            else {}
        return text + (f"; {json.dumps(extra)}" if extra else "")
    return json.dumps(seeds)


def _header(data: dict) -> str:
    model = data.get("model") or {}
    items = [("study", data.get("study")), ("model", model.get("spec")),
             ("weight hash", model.get("weight_hash")),
             *((f"model {k}", v) for k, v in model.items() if k not in ("spec", "weight_hash")),
             ("created", data.get("created")),
             ("finished", data.get("finished") or "not finished: partial results"),
             ("collapsekit", data.get("collapsekit_version")),
             ("seeds", _seeds(data.get("seeds"))),
             ("config hash", data.get("config_hash"))]
    data_links = ("<p>Data: <a href='metrics.json'>metrics.json</a> (every record and this "
                  "metadata); plots as PNG in <a href='plots/'>plots/</a>.</p>")
    dl = "".join(f"<dt>{e(k)}</dt><dd>{e(v)}</dd>" for k, v in items if v not in (None, ""))
    timings = "".join(f"<tr><td>{e(k)}</td><td class='num'>{v:.3g} s</td></tr>"
                      for k, v in (data.get("timings") or {}).items()
                      if isinstance(v, numbers.Real))
    tables = "".join(f"<li><a href='{e(_href(t.get('csv')))}'>{e(n)}</a> ({e(t.get('rows'))} "
                     f"rows; also {e(t.get('parquet', ''))})</li>"
                     for n, t in (data.get("tables") or {}).items() if isinstance(t, dict))
    return ("<details class='run'><summary>run details: model, hashes, seeds, timings"
            f"</summary><dl class='head'>{dl}</dl>{data_links}"
            + (f"<table><tr><th>stage</th><th>time</th></tr>{timings}</table>" if timings
               else "")
            + (f"<details><summary>tables</summary><ul>{tables}</ul></details>" if tables
               else "")
            + "<details><summary>config</summary><pre>"
            + e(json.dumps(data.get("config"), indent=1)) + "</pre></details>"
            + "<details><summary>package versions</summary><pre>"
            + e(json.dumps(data.get("packages"), indent=1)) + "</pre></details></details>")


def _subtitle(data: dict) -> str:
    model = (data.get("model") or {}).get("spec")
    parts = [f"model {model}" if model else "",
             "finished " + str(data["finished"]) if data.get("finished")
             else "not finished: partial results",
             f"collapsekit {data.get('collapsekit_version', '')}"]
    return f"<p class='sub'>{e(' · '.join(p for p in parts if p))}</p>"


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
    groups = layout.group_by(rows, lambda r: layout.hashable(r.get("prompt_id")))
    per = " (per model)" if "model" in cols else ""
    out = [head, f"<p class='note'>{e(n)} rows in {e(len(groups))} prompt group(s); showing "
                 f"up to {e(per_prompt)} per prompt{per} for the first "
                 f"{e(min(max_prompts, len(groups)))} prompt(s).</p>"]
    for i, (pid, rs) in enumerate(list(groups.items())[:max_prompts]):
        by_model = layout.group_by(rs, lambda r: layout.hashable(r.get("model")))
        shown = [r for rr in by_model.values() for r in rr[:per_prompt]]
        prompt = rs[0].get("prompt")
        summary = (f"prompt {pid}" if pid is not None else "samples") + (
            f": {str(prompt)[:120]}" if prompt else "") + f" ({len(rs)} samples)"
        items = "".join(
            f"<li><pre>{e(_clip(r.get(text_col)))}</pre><details class='record'><summary>"
            "record</summary><dl class='meta'>"
            + "".join(f"<dt>{e(k)}</dt><dd>{e(_clip(v, 300))}</dd>" for k, v in r.items()
                      if k not in (text_col, "prompt", "prompt_id") and v is not None)
            + "</dl></details></li>" for r in shown)
        opened = " open" if i < 2 else ""  # the first two prompts open
        out.append(f"<details{opened}><summary>{e(summary)}</summary>"
                   f"<ol class='samples'>{items}</ol></details>")
    return "".join(out)


def _clip(v, n=2000) -> str:
    s = "" if v is None else str(v)
    return s if len(s) <= n else s[:n] + " …[cut]"


def render(run_dir, *, samples_per_prompt: int = 3, max_prompts: int = 20,
           depth: str = "auto") -> Path:
    """Write ``run_dir/index.html`` and ``run_dir/plots/*.png``; returns the HTML path.
    Files it did not write are never removed or overwritten: an ``index.html`` of someone
    else is refused, and a plot name taken by a user's PNG gets another name. ``depth``:
    per-layer curves of compared runs of different depth on "relative" depth (layer / last
    layer; "auto": when the depths differ) or "absolute" layer index."""
    if samples_per_prompt < 1 or max_prompts < 1:
        raise ValueError("samples_per_prompt and max_prompts must be at least 1")
    run_dir = Path(run_dir)
    data = load_run(run_dir)
    if not ours(run_dir / REPORT):
        raise InputFileError(f"{run_dir / REPORT} was not written by collapsekit: move it "
                             "away or choose another --out (collapsekit never overwrites it)")
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(exist_ok=True)
    for old in written_plots(run_dir):
        old.unlink(missing_ok=True)
    sections = layout.plan(data["records"], data, depth)
    theirs = {p.stem for p in plots_dir.glob("*.png")}
    used: set = set(theirs)
    specs = [p for s in sections for p in s.plots if p.series]
    pngs = dict(zip(map(id, specs), drawing.draw_all(specs)))
    body = [_section(s, plots_dir, used, pngs) for s in sections]
    atomic_write(run_dir / PLOTS_MANIFEST, lambda p: p.write_text(
        "".join(f"{n}.png\n" for n in sorted(used - theirs)), encoding="utf-8"))
    names = data.get("samples_table") or []
    names = [names] if isinstance(names, str) else list(names)
    if names:
        names = list(dict.fromkeys([*(t for t in _SAMPLE_TABLES
                                      if t in (data.get("tables") or {})), *names]))
        body.append("<h2 id='s-samples'>samples</h2><p class='howto'>Example outputs "
                    "exactly as generated, a few per prompt; click a prompt to open or "
                    "close it, and a sample's “record” for its other fields.</p>" + "".join(
                        _samples(run_dir, str(n), samples_per_prompt, max_prompts)
                        for n in names))
    nav = "<a href='#summary'>summary</a> " + "".join(
        f"<a href='#{e(_slug('s', n))}'>{e(n)}</a> "
        for n in [*(s.name for s in sections), *(["samples"] if names else [])])
    css = resources.files("collapsekit.report").joinpath("templates/report.css").read_text(
        encoding="utf-8")
    title = f"collapsekit · {data.get('study', 'run')}"
    if not sections:
        body.insert(0, "<p class='warn'>This run has no records yet.</p>")
    page = ("<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"{GENERATOR}"
            f"<title>{e(title)}</title><style>{css}</style></head><body>"
            f"<h1>{e(title)}</h1>{_subtitle(data)}<nav>{nav}</nav>{_summary(data)}"
            f"{_header(data)}{''.join(body)}"
            "</body></html>\n")
    out = run_dir / REPORT
    atomic_write(out, lambda p: p.write_text(page, encoding="utf-8"))
    return out
