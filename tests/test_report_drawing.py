"""The report's figures: one layout pass placing the axes where constrained layout does,
the same PNG bytes whether a helper process drew them or not (and whatever the caller's
rcParams), and a helper that dies or fails never costs a figure."""

import subprocess
import sys

import pytest
from test_report import build

from collapsekit.report import drawing, layout, plots
from collapsekit.results import load_run


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    """The 8 figures of test_report's run: lines (bands, log scale), heatmaps, strips."""
    d = tmp_path_factory.mktemp("run")
    build(d)
    data = load_run(d)
    return [p for s in layout.plan(data["records"], data) for p in s.plots if p.series]


def _content(fig):
    ax = fig.subplots()
    for i in range(6):
        ax.plot(range(12), [i * x for x in range(12)], label=f"model=m{i}, strategy=replace")
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
    ax.set(title="RankMe by layer", xlabel="layer", ylabel="RankMe\n(lower = more collapsed)")
    return ax


def test_fit_leaves_pad_at_the_edges_as_constrained_layout_does():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with plots._figure(7.0, 3.8) as (fig, _):
        ax = _content(fig)
    box = fig.get_tightbbox(fig.canvas.get_renderer())  # inches
    px = 1 / plots.DPI
    assert box.x0 == pytest.approx(plots.PAD, abs=px)  # the y label's left edge
    assert 7.0 - box.x1 == pytest.approx(plots.PAD, abs=px)  # the legend's right edge
    assert box.y0 == pytest.approx(plots.PAD, abs=px)  # the x label's bottom
    assert 3.8 - box.y1 == pytest.approx(plots.PAD, abs=px)  # the title's top
    ref = Figure(figsize=(7.0, 3.8), dpi=plots.DPI, layout="constrained")
    FigureCanvasAgg(ref)
    with plots.style():
        ref_ax = _content(ref)
        ref.get_layout_engine().execute(ref)
    assert ax.bbox.bounds == pytest.approx(ref_ax.bbox.bounds, abs=1.5)  # pixels


def test_helper_draws_the_same_bytes(specs):
    assert len(specs) == 8 and {s.kind for s in specs} == {"line", "heatmap", "strip"}
    assert drawing.draw_all(specs, parallel=True) == drawing.draw_all(specs, parallel=False)


def test_figures_ignore_the_callers_rcparams(specs):
    import matplotlib

    before = drawing.draw(specs[0])
    with matplotlib.rc_context({"font.size": 20, "lines.linewidth": 5, "axes.grid": False}):
        assert drawing.draw(specs[0]) == before


def test_what_a_dead_helper_held_is_drawn_here(specs, monkeypatch):
    # the helper reads one spec's length and exits without replying
    monkeypatch.setattr(drawing, "_start", lambda: subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.buffer.read(8)"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE))
    assert drawing.draw_all(specs, parallel=True) == drawing.draw_all(specs, parallel=False)
    monkeypatch.setattr(drawing, "_start", lambda: None)  # could not start
    assert drawing.draw_all(specs, parallel=True) == drawing.draw_all(specs, parallel=False)


def test_a_failing_figure_raises_here_and_the_helper_exits(specs, monkeypatch):
    started = []
    start = drawing._start
    monkeypatch.setattr(drawing, "_start", lambda: started.append(start()) or started[-1])
    bad = layout.PlotSpec(kind="line", metric="rankme", x="layer", y=None,
                          series={"a": {"y": [1.0]}}, view="layer", label="RankMe",
                          by="by layer", caption="", missing=0)
    for where in (0, len(specs)):  # taken first here, or last, maybe by the helper
        with pytest.raises(KeyError, match="'x'"):
            drawing.draw_all([*specs[:where], bad, *specs[where:]], parallel=True)
        assert started[-1].wait(timeout=30) is not None


def test_the_helpers_warnings_are_raised_here(specs):
    import dataclasses

    (strip,) = [s for s in specs if s.kind == "strip"]
    flat = dataclasses.replace(strip, ylim=(0.5, 0.5))  # matplotlib widens it, warning
    with pytest.warns(UserWarning, match="identical low and high xlims") as caught:
        drawing.draw_all([flat] * 6, parallel=True)
    assert len([w for w in caught if "identical" in str(w.message)]) == 6


def test_no_room_for_the_axes_leaves_it_in_place():
    # an unclipped point far outside a (widened) empty range: constrained layout gives up
    # with a warning; _fit keeps the axes where it was
    with pytest.warns(UserWarning, match="identical low and high ylims"):
        png = plots.line_plot({"a": {"x": [0, 1], "y": [1.0, 1.0]}}, metric="m",
                              x_label="x", title="t", ylim=(0.5, 0.5))
    assert png.startswith(b"\x89PNG")
