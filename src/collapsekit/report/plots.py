"""Figures for the HTML report: PNG bytes from plain data, one consistent style.

matplotlib is imported inside the functions and drawn with the Agg canvas through the
object-oriented API (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global backend
switch, so rendering a report inside a notebook does not disturb the user's plots.

Each figure is laid out once and drawn once (:func:`_figure`): ``savefig`` with a layout
engine draws twice and constrained layout measures every text twice, which made the
report's ~65 figures take 0.12 s each.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import numbers

from collapsekit.metrics.catalog import lookup

DPI = 110
PAD = 3 / 72  # inches between the figure's edge and its outermost text (constrained's)
PNG_LEVEL = 6  # zlib level: 1 saves 3 ms a figure and makes the report 12% larger
# Okabe & Ito (2008) colour-blind-safe palette, strongest contrasts first (yellow last).
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000",
          "#F0E442")
LINESTYLES = ("-", "--", ":", "-.")
REF_GREYS = ("#555555", "#888888", "#333333")
STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.8, "lines.markersize": 4, "legend.frameon": False,
    "image.cmap": "viridis", "text.parse_math": False,  # labels may hold '$' from users
    "svg.fonttype": "none",
}


def metric_info(metric: str) -> dict:
    """The catalogue entry (:data:`collapsekit.metrics.CATALOG`) of ``metric``, or of the
    metric it summarises (``mean_rankme``...), as a dict; {} when unknown."""
    info = lookup(metric)
    return {} if info is None else dataclasses.asdict(info)


def metric_label(metric: str, sep: str = "  ") -> str:
    """Axis label: the metric's name and, where known, which direction means collapse."""
    info = metric_info(metric)
    if not info:
        return metric
    if not info.get("collapse"):
        return info["label"]
    return f"{info['label']}{sep}({info['collapse']}er = more collapsed)"


def _short(text, n=40) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


@contextlib.contextmanager
def _figure(width: float, height: float):
    """Yield (figure, buffer); on exit the figure is laid out (one axes: :func:`_fit`;
    more, e.g. panels and a colour bar: constrained layout run once), drawn once and
    written into the buffer as an opaque RGB PNG."""
    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from PIL import Image

    buf = io.BytesIO()
    with style():
        fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        canvas = FigureCanvasAgg(fig)
        yield fig, buf
        if len(fig.axes) == 1:
            fig.set_layout_engine(None)
            _fit(fig.axes[0], canvas.get_renderer())
        else:
            fig.get_layout_engine().execute(fig)
            fig.set_layout_engine(None)  # laid out: the draw below does not redo it
        canvas.draw()
    rgb = np.asarray(canvas.buffer_rgba())[..., :3]  # the white figure is opaque
    Image.fromarray(rgb).save(buf, format="png", dpi=(DPI, DPI), compress_level=PNG_LEVEL)


@contextlib.contextmanager
def style():
    """The report's figures' rcParams: those matplotlib read from the matplotlibrc files at
    import (``rc_file_defaults``: not what was changed since, e.g. a notebook's style; a
    helper process, :mod:`collapsekit.report.drawing`, draws the same), then
    :data:`STYLE`."""
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rc_file_defaults()
        matplotlib.rcParams.update(STYLE)
        yield


def _fit(ax, renderer) -> None:
    """Move the figure's only axes so that what surrounds it (tick and axis labels, title,
    a legend or text outside) ends ``PAD`` inches from the figure's edges, as constrained
    layout places it. The axis decorations keep their distance to the axes' edges: they are
    measured once (again only if the move changed the ticks); unclipped artists placed in
    data or axes coordinates (a legend anchored beside the axes, annotations) move with its
    size, so they are re-measured after each move until they stay put (within 0.1 px)."""
    fig = ax.get_figure()
    width, height = fig.bbox.width, fig.bbox.height
    pad = PAD * fig.dpi
    spines, start = set(ax.spines.values()), ax.get_position()
    moving = [a for a in ax.get_default_bbox_extra_artists() if a not in spines and (
        not a.get_clip_on() or a.get_clip_box() is None and a.get_clip_path() is None)]
    for _ in range(3):
        ticks = _ticks(ax)
        box, axes = ax.get_tightbbox(renderer, for_layout_only=True, bbox_extra_artists=[]), \
            ax.bbox
        fixed = (axes.x0 - box.x0, axes.y0 - box.y0, box.x1 - axes.x1, box.y1 - axes.y1)
        margins = None
        for _ in range(6):
            axes = ax.bbox
            new = list(fixed)
            for b in (a.get_tightbbox(renderer) for a in moving):
                if b is not None and 0 < b.width < float("inf"):  # null: not drawn
                    new = [max(new[0], axes.x0 - b.x0), max(new[1], axes.y0 - b.y0),
                           max(new[2], b.x1 - axes.x1), max(new[3], b.y1 - axes.y1)]
            if margins is not None and max(abs(m - n) for m, n in zip(margins, new)) < 0.1:
                break
            margins = new
            left, bottom, right, top = (m + pad for m in margins)
            if left + right >= width or bottom + top >= height:  # no room: left in place,
                ax.set_position(start)  # as constrained layout leaves it
                return
            ax.set_position([left / width, bottom / height, 1 - (left + right) / width,
                             1 - (bottom + top) / height])
        if _ticks(ax) == ticks:
            return


def _ticks(ax) -> list:
    return [tuple(a.get_majorticklocs()) for a in (ax.xaxis, ax.yaxis)]


def _axis(values) -> tuple[list, list | None]:
    """Numeric positions for x values and tick labels when they are not all numbers."""
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return list(values), None
    order = list(dict.fromkeys(map(str, values)))
    return [order.index(str(v)) for v in values], order


def _reference(label: str) -> tuple[str, bool]:
    """Split a series label into (label without its source, is it a closed-form reference):
    a closed form is drawn dashed in the colour of the simulation it belongs to."""
    parts = [p for p in label.split(", ") if p]
    ref = "source=closed_form" in parts
    kept = [p for p in parts if p not in ("source=closed_form", "source=simulation")]
    return ", ".join(kept), ref


def _references(ax, refs, vertical: bool = False) -> None:
    """Grey reference lines (``references.RefLine``), dotted, each with its band."""
    for i, r in enumerate(refs):
        band = f" [{r.lo:.4g}, {r.hi:.4g}]" if r.lo is not None and r.hi is not None else ""
        style = dict(color=REF_GREYS[i % len(REF_GREYS)], linestyle=(":", "-.", "--")[i % 3],
                     linewidth=1.4, label=_short(f"{r.label}: {r.value:.4g}{band}", 70),
                     zorder=1)
        (ax.axvline if vertical else ax.axhline)(r.value, **style)
        if r.lo is not None and r.hi is not None:
            (ax.axvspan if vertical else ax.axhspan)(r.lo, r.hi, color=style["color"],
                                                     alpha=0.12, linewidth=0, zorder=0)


def line_plot(series: dict, *, metric: str, x_label: str, title: str, refs=(),
              ylim=None) -> bytes:
    """One line per series ``{label: {"x", "y", "lo"?, "hi"?}}`` with an optional band;
    ``refs`` drawn as grey horizontal lines, ``ylim`` the value range (None: automatic).
    When every series has one point, points with error bars instead of lines."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    allx = [x for s in series.values() for x in s["x"]]
    _, ticks = _axis(allx)
    with _figure(7.0 if len(series) <= 4 else 8.6, 3.8) as (fig, buf):
        ax = fig.subplots()
        colours: dict[str, str] = {}
        points = all(len(s["x"]) == 1 for s in series.values())
        for i, (label, s) in enumerate(series.items()):
            xs = [ticks.index(str(x)) for x in s["x"]] if ticks else s["x"]
            base, reference = _reference(label)
            colour = colours.setdefault(base, COLORS[len(colours) % len(COLORS)])
            style = dict(color=colour, linestyle="--" if reference else
                         LINESTYLES[(len(colours) - 1) // len(COLORS) % len(LINESTYLES)])
            shown = f"{base} (closed form)" if reference else base
            if points:  # one point per series: a marker with its interval, no line
                err = None if s.get("lo") is None else [[s["y"][0] - s["lo"][0]],
                                                       [s["hi"][0] - s["y"][0]]]
                ax.errorbar(xs, s["y"], yerr=err, fmt="o", markersize=7, capsize=5,
                            color=colour, label=_short(shown) if shown else None, zorder=3)
                continue
            ax.plot(xs, s["y"], marker="o" if len(xs) <= 40 and not reference else None,
                    label=_short(shown) if shown else None, **style)
            if s.get("lo") is not None:
                ax.fill_between(xs, s["lo"], s["hi"], color=style["color"], alpha=0.18,
                                linewidth=0)
        _references(ax, refs)
        if ticks:
            ax.set_xticks(range(len(ticks)), [_short(t, 12) for t in ticks])
        elif points:
            xs = sorted(set(allx))
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
            pad = 0.5 * ((xs[-1] - xs[0]) or abs(xs[0]) or 1.0)
            ax.set_xlim(xs[0] - pad, xs[-1] + pad)
        elif all(float(x).is_integer() for x in allx):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ylim is not None:
            ax.set_ylim(*ylim)
            for artist in ax.lines:  # points on the range's edge (0, 1) drawn whole
                artist.set_clip_on(False)
        ax.set(xlabel=x_label, ylabel=metric_label(metric, "\n"), title=_short(title, 90))
        if metric_info(metric).get("scale") == "log" and all(
                y > 0 for s in series.values() for y in s["y"]):
            ax.set_yscale("log")  # plain tick labels: mathtext is off (user text has '$')
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
        if len(series) + len(refs) > 4:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        elif any(series) or refs:
            ax.legend()
    return buf.getvalue()


def heatmap(panels: dict, *, metric: str, row_label: str, col_label: str,
            title: str) -> bytes:
    """One heatmap per panel ``{label: (matrix, row_ticks, col_ticks)}`` (NaN = blank),
    sharing one colour scale."""
    import numpy as np

    mats = [np.asarray(m, dtype=np.float64) for m, _, _ in panels.values()]
    finite = np.concatenate([m[np.isfinite(m)] for m in mats])
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    rows, cols = mats[0].shape
    width = min(4.0 + len(panels) * (0.9 + 0.42 * cols), 14.0)
    with _figure(width, min(max(2.8, 1.4 + 0.3 * rows), 10.0)) as (fig, buf):
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (label, (_, rt, ct)), m in zip(axes, panels.items(), mats):
            im = ax.imshow(m, aspect="auto", vmin=lo, vmax=hi, interpolation="nearest")
            ax.grid(False)
            ax.set_xticks(range(m.shape[1]), [_short(t, 8) for t in ct])
            ax.set_yticks(range(m.shape[0]), [_short(t, 8) for t in rt])
            ax.set(xlabel=col_label, ylabel=row_label, title=_short(label, 40) or None)
            if m.size <= 160:
                for (r, c), v in np.ndenumerate(m):
                    if np.isfinite(v):
                        dark = (v - lo) / ((hi - lo) or 1.0) < 0.55
                        ax.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=7,
                                color="white" if dark else "black")
        cbar = fig.colorbar(im, ax=list(axes), shrink=0.9)
        cbar.set_label(metric_label(metric, "\n"))
        fig.suptitle(_short(title, 90), fontsize=STYLE["axes.titlesize"])
    return buf.getvalue()


def strip_plot(groups: dict, *, metric: str, title: str, refs=(), xlim=None) -> bytes:
    """Per-item values (e.g. one per prompt) as jittered points per group ``{label: [v]}``,
    the mean marked with a black bar and its value; ``refs`` as grey vertical lines,
    ``xlim`` the value range (None: automatic)."""
    import numpy as np

    rng = np.random.default_rng(0)
    with _figure(7.0, 1.5 + 0.62 * len(groups)) as (fig, buf):
        ax = fig.subplots()
        for i, (label, values) in enumerate(groups.items()):
            v = np.asarray(values, dtype=np.float64)
            y = i + rng.uniform(-0.16, 0.16, v.size)
            ax.scatter(v, y, s=16, color=COLORS[i % len(COLORS)],
                       alpha=0.75 if v.size <= 200 else 0.35, linewidths=0, zorder=3)
            mean = v.mean()
            ax.plot([mean, mean], [i - 0.3, i + 0.3], color="black", linewidth=2.2)
            ax.annotate(f"mean {mean:.3g}  (n={v.size})", (mean, i - 0.32), fontsize=8,
                        ha="center", va="bottom",
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
        ax.set_yticks(range(len(groups)), [_short(g, 24) or "all" for g in groups])
        ax.set_ylim(len(groups) - 0.4, -0.75)  # first group on top
        ax.grid(axis="y", visible=False)
        _references(ax, refs, vertical=True)
        if refs:
            ax.legend(loc="lower left", fontsize=7.5, framealpha=0.85, frameon=True)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set(xlabel=metric_label(metric), title=_short(title, 90))
    return buf.getvalue()
