"""Report layout: which plot (kind, axes, series) each metric gets, averages, tables."""

import math

from collapsekit.metrics import CATALOG
from collapsekit.report.layout import PlotSpec, Row, TableSpec, plan


def rec(metric="m", value=1.0, **scope):
    return {"metric": metric, "value": value, **scope}


def only_plot(records) -> PlotSpec:
    (section,) = plan(records)
    (spec,) = section.plots
    return spec


def test_kind_and_axes_from_the_scope_fields():
    cases = [  # scope of the records -> kind, x, y, view, by
        ({"layer": 0, "head": 1}, ("heatmap", "head", "layer", "heatmap", "by layer × head")),
        ({"depth": 0.5, "length": 64}, ("heatmap", "length", "depth", "heatmap",
                                        "by depth × length")),
        ({"row": "a", "col": "b"}, ("heatmap", "col", "row", "heatmap", "by row × col")),
        ({"layer": 3, "length": 64}, ("line", "layer", None, "layer", "by layer")),
        ({"generation": 1, "temperature": 0.7}, ("line", "generation", None, "generation",
                                                 "by generation")),
        ({"length": 64}, ("line", "length", None, "length", "by input length")),
        ({"round": 2}, ("line", "round", None, "round", "by round")),
        ({"step": 2, "prompt_id": 0}, ("line", "step", None, "step", "by step")),
        ({"temperature": 0.7}, ("line", "temperature", None, "temperature",
                                "by temperature")),
        ({"prompt_id": 4, "temperature": 0.7}, ("strip", "prompt_id", None, "prompt",
                                                "per prompt")),
    ]
    for scope, expected in cases:
        spec = only_plot([rec(**scope)])
        assert (spec.kind, spec.x, spec.y, spec.view, spec.by) == expected, scope
    (section,) = plan([rec(model="a", seed=0)])  # no axis: a table row
    assert section.plots == [] and section.table.rows[0].scope == {"model": "a", "seed": 0}


def test_one_plot_per_metric_and_view_in_order_of_appearance():
    (section,) = plan([rec("a", layer=0), rec("b", generation=0), rec("a", prompt_id=0),
                       rec("a", layer=1), rec("b")])
    assert [(p.metric, p.view) for p in section.plots] == [
        ("a", "layer"), ("a", "prompt"), ("b", "generation")]
    assert [r.metric for r in section.table.rows] == ["b"]


def test_lines_average_over_seeds_with_a_range_band():
    recs = [rec(value=v, generation=g, seed=s, strategy="r")
            for g, s, v in ((0, 0, 1.0), (0, 1, 3.0), (1, 0, 5.0), (1, 1, 5.0))]
    spec = only_plot(recs)
    assert spec.series == {"r": {"x": [0, 1], "y": [2.0, 5.0], "lo": [1.0, 5.0],
                                 "hi": [3.0, 5.0]}}
    assert "2 point(s) are means of several records" in spec.caption
    assert "Shaded band: min to max" in spec.caption
    # prompts are averaged too; x values are sorted numerically
    recs = [rec(value=v, layer=x, prompt_id=p)
            for x, p, v in ((2, 0, 1.0), (2, 1, 2.0), (2, 2, 6.0), (1, 0, 4.0))]
    spec = only_plot(recs)
    assert spec.series == {"": {"x": [1, 2], "y": [4.0, 3.0], "lo": [4.0, 1.0],
                                "hi": [4.0, 6.0]}}
    assert "1 point(s) are means" in spec.caption


def test_lines_with_confidence_intervals():
    spec = only_plot([rec(value=2.0, layer=1, ci_low=1.0, ci_high=4.0),
                      rec(value=1.0, layer=0, ci_low=0.5, ci_high=1.5)])
    assert spec.series == {"": {"x": [0, 1], "y": [1.0, 2.0], "lo": [0.5, 1.0],
                                "hi": [1.5, 4.0]}}
    assert "Shaded band: the confidence interval" in spec.caption
    assert "means" not in spec.caption
    spec = only_plot([rec(value=2.0, layer=1, ci_low=1.0, ci_high=4.0),
                      rec(value=1.0, layer=0, ci_low=0.5, ci_high=None)])
    assert spec.series == {"": {"x": [0, 1], "y": [1.0, 2.0]}}  # one CI missing: no band
    assert "Shaded band" not in spec.caption


def test_heatmap_cells_are_means_and_empty_cells_nan():
    recs = [rec(value=v, layer=layer, head=h, model="x")
            for layer, h, v in ((1, 0, 2.0), (0, 1, 3.0), (1, 1, 4.0), (1, 1, 6.0))]
    spec = only_plot(recs)
    mat, rows, cols = spec.series["x"]
    assert rows == [0, 1] and cols == [0, 1]
    assert math.isnan(mat[0][0]) and mat[0][1] == 3.0 and mat[1] == [2.0, 5.0]
    assert "1 point(s) are means" in spec.caption
    # one panel per model; the axes are shared by the panels
    recs = [rec(value=float(r + c), row=r, col=c, model=m)
            for m in ("a", "b") for r in range(2) for c in range(3 if m == "a" else 2)]
    spec = only_plot(recs)
    assert list(spec.series) == ["a", "b"]
    mat, rows, cols = spec.series["b"]
    assert rows == [0, 1] and cols == [0, 1, 2]
    assert mat[1][:2] == [1.0, 2.0] and math.isnan(mat[1][2])


def test_strip_plots_keep_every_prompt_and_seed():
    recs = [rec(value=v, prompt_id=p, seed=s, model=m)
            for m, p, s, v in (("a", 0, 0, 1.0), ("a", 0, 1, 2.0), ("a", 1, 0, 4.0),
                               ("b", 0, 0, 8.0))]
    spec = only_plot(recs)
    assert spec.series == {"a": [1.0, 2.0, 4.0], "b": [8.0]}
    assert "means" not in spec.caption


def test_unknown_scope_fields_become_series():
    recs = [rec(value=float(x), layer=x, flavour=f) for f in ("sweet", "sour")
            for x in range(2)]
    assert only_plot(recs).series == {"sweet": {"x": [0, 1], "y": [0.0, 1.0]},
                                      "sour": {"x": [0, 1], "y": [0.0, 1.0]}}
    recs = [rec(layer=x, flavour=f, size=s) for f in ("sweet", "sour") for s in (1, 2)
            for x in range(2)]
    assert list(only_plot(recs).series) == ["flavour=sweet, size=1", "flavour=sweet, size=2",
                                            "flavour=sour, size=1", "flavour=sour, size=2"]


def test_labels_and_constant_fields_are_not_series():
    # layer_name only names the layer: not a series; model is.
    recs = [rec(value=float(i + j), layer=i, layer_name=f"h.{i}", model=m)
            for i in range(3) for j, m in enumerate(("a", "b"))]
    assert {k: v["y"] for k, v in only_plot(recs).series.items()} == {
        "a": [0.0, 1.0, 2.0], "b": [1.0, 2.0, 3.0]}
    # two runs whose depths differ name layer 2 differently; a constant field is no label
    recs = [rec(layer=i, source="wiki", run=r,
                layer_name="final_norm" if (r, i) == ("b", 2) else f"block_{i}")
            for i in range(3) for r in ("a", "b")]
    assert set(only_plot(recs).series) == {"a", "b"}


def test_study_ci_and_note_are_never_axes_or_series():
    recs = [rec(value=float(i), layer=i, study=f"s{i}", ci_low=i - 1.0, ci_high=None,
                note=f"n{i}", closed_form=i) for i in range(3)]
    spec = only_plot(recs)
    assert (spec.kind, spec.x, spec.y) == ("line", "layer", None)
    assert list(spec.series) == [""]
    (section,) = plan([rec("rankme", 3.0, study="scan", ci_low=2.5, note="n")])
    assert section.plots == []
    assert section.table == TableSpec([Row(metric="rankme", scope={}, value=3.0,
                                           ci=(2.5, None), direction="lower = collapse",
                                           note="n")])


def test_sections_in_order_with_other_last():
    sections = plan([rec(section="b"), rec(), rec(section="a"), rec(section="b"),
                     rec(section=""), "not a record", {"value": 1.0}])
    assert [s.name for s in sections] == ["b", "a", "other"]
    assert [len(s.table.rows) for s in sections] == [2, 1, 2]
    assert plan([]) == []


def test_section_info_and_titles():
    sections = plan([rec("rankme", layer=0, section="geometry"),
                     rec(section="agents manifold"), rec(section="neural collapse"),
                     rec(section="recursion 2"), rec(section="mine")])
    geometry, manifold, nc, rec2, mine = sections
    assert geometry.info.startswith("How the hidden representations")
    assert manifold.info.startswith("Model-free dynamics")
    assert nc.info.startswith("How tightly")  # by its underscored name
    assert rec2.info.startswith("Models trained")  # by its first word
    assert mine.info.startswith("Each plot shows one metric")
    (spec,) = geometry.plots
    assert spec.title == "RankMe by layer" and spec.caption.startswith(CATALOG["rankme"].doc)


def test_missing_values():
    spec = only_plot([rec(value=None, layer=0), rec(value="n/a", layer=1),
                      rec(value=True, layer=2)])
    assert spec.series == {} and spec.missing == 3
    spec = only_plot([rec(value=None, layer=0), rec(value=2.0, layer=1)])
    assert spec.series == {"": {"x": [1], "y": [2.0]}} and spec.missing == 1
    assert "1 value(s) missing (NaN/null) are left out." in spec.caption
