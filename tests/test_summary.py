"""The report's summary (report/summary.py): every verdict branch of every reference kind on
hand-made records, compare mode, skipped probes, and the rendered section."""

import re

import pytest

from collapsekit.report.html import render
from collapsekit.report.summary import (
    COLLAPSED,
    HEALTHY,
    INCONCLUSIVE,
    Rule,
    summarize,
    verdict,
)
from collapsekit.results import Run


def rec(metric, value, section, lo=None, hi=None, **scope):
    r = {"metric": metric, "value": value, "section": section, **scope}
    if lo is not None:
        r.update(ci_low=lo, ci_high=hi)
    return r


def diversity(model_ci, human=0.8):
    return [rec("mean_distinct_2", (model_ci[0] + model_ci[1]) / 2, "diversity", *model_ci,
                source="model", model="m", temperature=1.0),
            rec("mean_distinct_2", human, "diversity", human - 0.01, human + 0.01,
                source="human")]


@pytest.mark.parametrize("ci, want", [((0.5, 0.6), COLLAPSED),    # wholly < 0.9 × 0.8
                                      ((0.75, 0.9), HEALTHY),     # wholly >= 0.72
                                      ((0.7, 0.8), INCONCLUSIVE)])  # straddles 0.72
def test_baseline_against_human_text(ci, want):
    (f,) = summarize(diversity(ci))
    assert (f.metric, f.verdict, f.ci) == ("mean_distinct_2", want, ci)
    assert f.scope == "model=m, temperature=1.0"
    assert f.reference.startswith("human text: 0.8 [0.79, 0.81]")
    assert "0.72" in f.rule and "0.9 ×" in f.rule


def test_baseline_without_reference_is_inconclusive():
    (f,) = summarize(diversity((0.1, 0.2))[:1])
    assert f.verdict == INCONCLUSIVE and f.reference == "not recorded"


def layers(values, metric="rankme"):
    return [rec(metric, v, "geometry", layer=i, layer_name=f"l{i}", source="wikipedia")
            for i, v in enumerate(values)]


def test_first_point_along_layers_worst_point_and_point_values():
    (f,) = summarize(layers([20.0, 18.0, 9.0, 15.0]))  # worst 9 < 0.5 × 20
    assert (f.value, f.verdict, f.point) == (9.0, COLLAPSED, "most collapsed point at layer 2")
    assert f.reference == "layer 0: 20" and "no interval recorded" in f.rule
    (f,) = summarize(layers([20.0, 18.0, 12.0, 15.0]))
    assert f.verdict == HEALTHY
    (f,) = summarize(layers([20.0]))
    assert f.verdict == INCONCLUSIVE and "one layer only" in f.rule
    (f,) = summarize(layers([0.0, 1.0]))
    assert f.verdict == INCONCLUSIVE and "nothing to fall from" in f.rule


def test_higher_is_collapse_along_rounds_uses_the_last_point():
    recs = [rec("cosine_to_anchor", v, "agents", round=t, decoding="greedy")
            for t, v in enumerate([0.5, 0.9, 0.52])]
    (f,) = summarize(recs)
    assert (f.value, f.verdict) == (0.52, HEALTHY)  # last point, not the worst
    recs[-1]["value"] = 0.6  # > 1.1 × 0.5
    assert summarize(recs)[0].verdict == COLLAPSED


def test_one_row_per_layer_of_a_training_monitor():
    recs = [rec("rankme", v, "monitor", step=s, layer_name=name)
            for name, vals in (("block_1", [10.0, 9.0]), ("block_2", [10.0, 4.0]))
            for s, v in zip((0, 50), vals)]
    got = {f.scope: f.verdict for f in summarize(recs)}
    assert got == {"layer_name=block_1": HEALTHY, "layer_name=block_2": COLLAPSED}


def test_bound_rules_and_the_mean_over_layers():
    heads = [rec("attention_collapsed_heads", v, "attention heads", layer=i)
             for i, v in enumerate([0.5, 0.25, 0.0])]
    (f,) = summarize(heads)
    assert (f.value, f.verdict, f.point) == (0.25, INCONCLUSIVE, "mean of 3 points over layer")
    heads[1]["value"] = 0.5
    assert summarize(heads)[0].verdict == COLLAPSED
    heads[0]["value"] = heads[1]["value"] = 0.0
    assert summarize(heads)[0].verdict == HEALTHY
    drift = [rec("perplexity_ratio", 2.5, "drift", 2.1, 3.0, step=1)]
    assert summarize(drift)[0].verdict == COLLAPSED
    drift[0].update(ci_low=1.5)
    assert summarize(drift)[0].verdict == INCONCLUSIVE


def test_missing_values_and_closed_forms():
    recs = [rec("cov_trace", v, "recursion", lo, hi, generation=g, strategy="replace",
                source="simulation", **cf)
            for g, v, lo, hi, cf in ((1, 1.0, 0.9, 1.1, {}),
                                     (5, 0.5, 0.4, 0.6, {"closed_form": 0.55}))]
    recs.append(rec("cov_trace", 0.55, "recursion", generation=5, strategy="replace",
                    source="closed_form"))
    (f,) = summarize(recs)
    assert f.verdict == COLLAPSED and f.reference == ("generation 1: 1 [0.9, 1.1]; closed "
                                                      "form at generation 5: 0.55")
    recs[1]["value"] = float("nan")
    assert summarize(recs)[0].verdict == INCONCLUSIVE


def test_compare_judges_the_second_run_against_the_first():
    recs = [dict(r, run=run) for run, vals in (("base", [20.0, 18.0]), ("tuned", [20.0, 8.0]))
            for r in layers(vals)]
    (f,) = summarize(recs)
    assert f.scope == "run=tuned, source=wikipedia"
    assert (f.value, f.verdict) == (8.0, COLLAPSED)  # < 0.5 × base's 18
    assert f.reference == "run base: 18"


def test_skipped_probes_and_custom_rules():
    skipped = rec("probe_skipped", 1, "probes", probe="passkey", note="context too short")
    (f,) = summarize([skipped])
    assert (f.phenomenon, f.verdict, f.rule) == ("passkey (skipped)", INCONCLUSIVE,
                                                 "context too short")
    mine = Rule("my collapse", "my_metric", "mine", "bound", bounds=(1.0, 2.0))
    assert summarize([rec("my_metric", 3.0, "mine")], rules=[mine])[0].verdict == INCONCLUSIVE
    assert summarize([rec("rankme", 3.0, "elsewhere", layer=0)]) == []


def test_verdict_edges():
    assert verdict(1.0, None, 1.0, "low") == HEALTHY  # on the threshold: not past it
    assert verdict(1.0, None, 1.0, "high") == HEALTHY
    assert verdict(None, None, 1.0, "low") == INCONCLUSIVE
    assert verdict(1.0, None, 1.0, None) == INCONCLUSIVE  # no collapse direction


def test_rendered_summary_section(tmp_path):
    run = Run(tmp_path, study="simulate", config={})
    for r in diversity((0.5, 0.6)) + [rec("probe_skipped", 1, "probes", probe="drift",
                                          note="<b>too long</b>")]:
        run.add(r.pop("metric"), r.pop("value"), **r)
    run.meta(closed_form_coverage={"replace": {"cov_trace": 0.95, "mean_error": None}},
             seeds={"seeds": list(range(100)), "streams": "x"})
    run.finish()
    page = render(tmp_path).read_text(encoding="utf-8")
    assert page.index("<section id='summary'>") < page.index("run details")
    section = page[page.index("<section id='summary'>"):page.index("</section>")]
    assert re.search(r"<span class='verdict collapsed' title='lower = collapse\. collapsed "
                     r"if the interval lies wholly below 0\.9 × human text", section)
    assert "&lt;b&gt;too long&lt;/b&gt;" in section and "<b>" not in section
    assert "<td>replace</td><td>cov_trace</td><td class='num'>95%</td>" in section
    assert "n/a" in section and "0–99 (100 seeds)" in page
