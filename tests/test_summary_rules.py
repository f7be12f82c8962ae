"""Summary rules of neural collapse, length collapse, compare's homogeneity and fine-tuned
sample diversity on hand-built records (collapsed, healthy, inconclusive) and on the records
the studies write on tiny models; the min_gap / span guards of relative thresholds; the
sections without a verdict rule, named with the reason."""

import json
import warnings

import numpy as np
import pytest
import test_tempscale
from test_summary import rec  # records by hand
from test_tempscale import st  # noqa: F401 (fixture: a tiny random BERT embedder)

from collapsekit.report.html import render
from collapsekit.report.summary import (
    COLLAPSED,
    HEALTHY,
    INCONCLUSIVE,
    NO_RULE,
    RULES,
    Rule,
    summarize,
    unjudged,
)
from collapsekit.results import Run
from collapsekit.studies import STUDIES


def only(findings, phenomenon):
    (f,) = [f for f in findings if f.phenomenon == phenomenon]
    return f


# neural collapse: records per layer with K, D, singletons (and power on cdnv)

def nc(metric, value, k=100, d=576, layer_name="final_norm", **extra):
    layer = {"embed": 0, "block_15": 15, "final_norm": 31}[layer_name]
    return rec(metric, value, "neural collapse", layer=layer, layer_name=layer_name, K=k, D=d,
               singletons="exclude", **extra)


@pytest.mark.parametrize("value, want", [(0.05, COLLAPSED),      # < 0.1
                                         (6.5, HEALTHY),         # SmolLM2-135M at K = 100
                                         (0.5, INCONCLUSIVE)])   # between the edges
def test_nc1_at_the_final_layer_against_its_edges(value, want):
    recs = [nc("nc1", 35.8, layer_name="embed"), nc("nc1", value)]
    f = only(summarize(recs), "neural collapse (NC1)")
    assert (f.value, f.verdict, f.point) == (value, want, "")
    assert f.scope == "D=576, K=100, singletons=exclude"
    assert f.reference == "collapsed past 0.1, healthy above 1"


@pytest.mark.parametrize("k", [288, 796, 5000])  # K/D = 0.5 (unstable from here), 1.38, 8.7
def test_nc1_is_not_judged_from_k_over_d_one_half(k):
    f = only(summarize([nc("nc1", 0.01, k=k)]), "neural collapse (NC1)")
    assert f.verdict == INCONCLUSIVE and f"K/D = {k}/576" in f.rule and "CDNV" in f.rule
    no_kd = {k: v for k, v in nc("nc1", 0.01).items() if k not in ("K", "D")}
    assert summarize([no_kd])[0].verdict == INCONCLUSIVE


@pytest.mark.parametrize("value, want", [(0.05, COLLAPSED), (1.27, HEALTHY),
                                         (0.42, INCONCLUSIVE)])
def test_cdnv_is_judged_at_every_k_and_only_with_power_one(value, want):
    recs = [nc("cdnv", value, k=796, power=1), nc("cdnv", 0.001, k=796, power=2),
            nc("cdnv", 0.001, k=796, power=1, layer_name="block_15")]
    (f,) = summarize(recs)
    assert (f.phenomenon, f.value, f.verdict) == ("neural collapse (CDNV)", value, want)


def test_nc1_in_a_compare_halves_at_the_same_k_and_d_only():
    recs = [dict(nc("nc1", 8.0), run="a"), dict(nc("nc1", 3.0), run="b")]
    f = only(summarize(recs), "neural collapse (NC1)")
    assert (f.verdict, f.reference) == (COLLAPSED, "run a: 8")  # 3 < 0.5 × 8
    recs[1]["K"] = 120  # another K: not the same scope, nothing to compare with
    f = only(summarize(recs), "neural collapse (NC1)")
    assert (f.verdict, f.reference) == (INCONCLUSIVE, "run a: not recorded")
    recs = [dict(nc("nc1", 8.0, k=700), run="a"), dict(nc("nc1", 3.0, k=700), run="b")]
    assert "K/D = 700/576" in only(summarize(recs), "neural collapse (NC1)").rule


def test_neural_collapse_rows_from_the_study_on_a_tiny_model(tmp_path, one_thread):
    import random

    from conftest import WORDS, make_model, make_tokenizer

    from collapsekit.studies.neural_collapse import stage

    class LM:
        model, tokenizer, n_layers, hidden_size = make_model(), make_tokenizer(), 3, 32

    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS[:40]) for _ in range(30)) for _ in range(20)]
    run = Run(tmp_path, study="geometry", config={})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stage(run, LM, texts, layers=("embed", "final_norm"), max_length=32, min_count=2)
    records = json.loads((tmp_path / "metrics.json").read_text())["records"]
    found = {f.phenomenon: f for f in summarize(records) if f.section == "neural collapse"}
    assert set(found) == {"neural collapse (NC1)", "neural collapse (CDNV)"}
    k = next(r["K"] for r in records if r["metric"] == "nc1")
    assert 16 <= k <= 64  # K/D in [0.5, 2]: the random model's NC1 is not judged
    assert found["neural collapse (NC1)"].verdict == INCONCLUSIVE
    cdnv = found["neural collapse (CDNV)"]
    assert cdnv.value > 1 and cdnv.verdict == HEALTHY  # a random model: no collapse


# length collapse: centroid_distance per (length, tau) on the same documents

def lengths(values, tau=1.0):
    return [rec("centroid_distance", v, "length collapse", length=b, tau=tau, documents=26)
            for b, v in zip((32, 64, 128, 256, 512), values)]


def test_length_collapse_longest_against_shortest_per_tau():
    # all-MiniLM-L6-v2 on 26 bundled Wikipedia texts (measured): 0.945 -> 0.897 at 512
    recs = lengths([0.945, 0.951, 0.956, 0.944, 0.897]) + lengths(
        [0.95, 0.9, 0.85, 0.8, 0.75], tau=0.8)
    got = {f.scope: f for f in summarize(recs)}
    assert set(got) == {"tau=1.0", "tau=0.8"}
    assert (got["tau=1.0"].verdict, got["tau=1.0"].point) == (HEALTHY,
                                                               "last point at length 512")
    assert got["tau=1.0"].reference == "length 32: 0.945"
    assert got["tau=0.8"].verdict == COLLAPSED  # 0.75 < 0.9 × 0.95
    assert summarize(lengths([0.9]))[0].verdict == INCONCLUSIVE  # one length only
    assert summarize(lengths([0.9, float("nan")]))[0].verdict == INCONCLUSIVE


def test_length_collapse_rows_of_a_tiny_embedder(tmp_path, st):  # noqa: F811
    from collapsekit.studies.length_collapse import stage

    st.save(str(tmp_path / "st"))  # the tiny random BERT embedder of test_tempscale
    rng = np.random.default_rng(0)
    texts = [" ".join(rng.choice(test_tempscale.WORDS, 70)) for _ in range(5)]
    run = Run(tmp_path / "run", study="geometry", config={})
    stage(run, texts, spec=str(tmp_path / "st"), buckets=(8, 16, 64), taus=(1.0, 0.8))
    records = json.loads((tmp_path / "run" / "metrics.json").read_text())["records"]
    found = [f for f in summarize(records) if f.section == "length collapse"]
    assert [(f.scope, f.point) for f in found] == [("tau=1.0", "last point at length 64"),
                                                   ("tau=0.8", "last point at length 64")]
    assert all(f.verdict in (COLLAPSED, HEALTHY) for f in found)  # values, no interval


# compare: cross-model cosine against the mean of the two within-model cosines

def homogeneity(cross_ci, within_a=0.6, within_b=0.5):
    recs = [rec("rankme", 5.0, "geometry", layer=0, run=m) for m in ("A", "B")]
    recs.append(rec("cross_model_cosine", sum(cross_ci) / 2, "homogeneity", *cross_ci,
                    model_a="A", model_b="B", n_prompts=4))
    for m, w in (("A", within_a), ("B", within_b)):
        if w is not None:
            recs.append(rec("within_model_cosine", w, "homogeneity", w - 0.05, w + 0.05,
                            model=m, n_prompts=4))
    return recs


@pytest.mark.parametrize("ci, want", [((0.5, 0.56), COLLAPSED),    # wholly >= 0.9 × 0.55
                                      ((0.3, 0.4), HEALTHY),
                                      ((0.45, 0.52), INCONCLUSIVE)])  # straddles 0.495
def test_cross_model_homogeneity_against_the_within_model_cosines(ci, want):
    f = only(summarize(homogeneity(ci)), "cross-model homogeneity")
    assert (f.verdict, f.scope, f.ci) == (want, "model_a=A, model_b=B", ci)
    assert f.reference == ("within-model cosine: 0.55, the mean of model=A: 0.6 [0.55, 0.65]; "
                           "model=B: 0.5 [0.45, 0.55]")
    assert "above 0.9 × within-model cosine (0.55) = 0.495" in f.rule


def test_cross_model_homogeneity_needs_both_within_cosines_away_from_zero():
    f = only(summarize(homogeneity((0.0, 0.05), 0.02, 0.03)), "cross-model homogeneity")
    assert f.verdict == INCONCLUSIVE and "too near the edge" in f.rule  # 0.025 − 0.05 ≤ 0
    f = only(summarize(homogeneity((0.5, 0.56), within_b=None)), "cross-model homogeneity")
    assert (f.verdict, f.reference) == (INCONCLUSIVE, "not recorded")



def test_cross_model_homogeneity_takes_the_within_cosines_of_its_own_temperature():
    """A diversity run with two temperatures: each cross-model row is judged against the
    within-model cosines recorded at the same temperature (0.9 × 0.8 = 0.72 at T=0.3,
    0.9 × 0.2 = 0.18 at T=1.0), not the first ones found."""
    recs = []
    for t, within, cross in ((0.3, 0.8, 0.3), (1.0, 0.2, 0.3)):
        recs.append(rec("cross_model_cosine", cross, "homogeneity", cross - 0.02,
                        cross + 0.02, model_a="A", model_b="B", temperature=t))
        recs += [rec("within_model_cosine", within, "homogeneity", model=m, temperature=t)
                 for m in "AB"]
    got = {f.scope: f.verdict for f in summarize(recs)
           if f.phenomenon == "cross-model homogeneity"}
    assert got == {"model_a=A, model_b=B, temperature=0.3": HEALTHY,
                   "model_a=A, model_b=B, temperature=1.0": COLLAPSED}


def samples_run(path, spec, samples):
    run = Run(path, study="scan", config={"model": spec})
    run.meta(model={"spec": spec})
    run.add("rankme", 3.0, layer=0, section="geometry")
    run.file("samples.jsonl").write_text("".join(
        json.dumps({"prompt": "p", "prompt_id": 0, "text": t}) + "\n" for t in samples))
    run.finish()
    return path


@pytest.mark.parametrize("b_samples, want", [(["w", "x"], COLLAPSED),  # the same answers
                                             (["z", "z"], HEALTHY)])   # other answers
def test_compare_report_judges_its_homogeneity_records(tmp_path, b_samples, want):
    from collapsekit.studies.compare import run_compare

    basis = {"x": [1, 0, 0], "z": [0, 0, 1], "w": [1, 1, 0]}
    a = samples_run(tmp_path / "a", "model-a", ["x", "w"])
    b = samples_run(tmp_path / "b", "model-b", b_samples)
    html = run_compare(a, b, tmp_path / "cmp",
                       embedder=lambda ts: np.array([basis[t] for t in ts], dtype=float))
    records = json.loads((tmp_path / "cmp" / "metrics.json").read_text())["records"]
    f = only(summarize(records), "cross-model homogeneity")
    assert (f.verdict, f.scope) == (want, "model_a=model-a, model_b=model-b")
    page = html.read_text(encoding="utf-8")
    section = page[page.index("<section id='summary'>"):page.index("</section>")]
    assert "cross-model homogeneity" in section and f"verdict {want}" in section


def test_finetuned_sample_diversity_against_generation_zero():
    recs = [rec("distinct_2", v, "finetune diversity", strategy=s, generation=g)
            for s, vals in (("replace", [0.9, 0.8, 0.6]), ("accumulate", [0.9, 0.88, 0.86]))
            for g, v in enumerate(vals)]
    got = {f.scope: f.verdict for f in summarize(recs)}
    assert got == {"strategy=replace": COLLAPSED, "strategy=accumulate": HEALTHY}


# guards of relative thresholds: min_gap and span

def anchor(values):
    return [rec("cosine_to_anchor", v, "agents", round=t, decoding="greedy")
            for t, v in enumerate(values)]


def test_min_gap_keeps_a_reference_near_zero_from_calling_noise_a_collapse():
    bare = Rule("agents", "cosine_to_anchor", "agents", "first", axis="round")
    assert summarize(anchor([0.01, 0.02, 0.03]), rules=[bare])[0].verdict == COLLAPSED
    f = summarize(anchor([0.01, 0.02, 0.03]))[0]  # RULES: min_gap 0.05
    assert f.verdict == HEALTHY
    assert "the value at round 0 (0.01) + 0.05 (the rule's smallest gap) = 0.06" in f.rule
    assert summarize(anchor([0.01, 0.2, 0.3]))[0].verdict == COLLAPSED
    assert summarize(anchor([0.5, 0.6]))[0].rule.count("1.1 × the value at round 0") == 1


def test_span_makes_an_unpassable_threshold_inconclusive():
    f = summarize(anchor([0.97, 0.99]))[0]  # 1.1 × 0.97 > 1, the largest cosine
    assert f.verdict == INCONCLUSIVE and "nothing to rise to" in f.rule
    null = [rec("js_ngram_2", v, "divergence", v, v, pair=p)
            for p, v in (("model_vs_human", 1.0), ("human_vs_human", 1.0))]
    f = summarize(null)[0]  # 1.5 × a null of 1 bit: JS never exceeds 1 bit
    assert f.verdict == INCONCLUSIVE and "not below 1" in f.rule
    null[1].update(value=0.3, ci_low=0.3, ci_high=0.3)
    assert summarize(null)[0].verdict == COLLAPSED  # 1 > 1.5 × 0.3


@pytest.mark.parametrize("first, last, want", [(0.08, 0.0, INCONCLUSIVE),  # ≤ min_gap 0.1
                                               (0.15, 0.0, COLLAPSED),     # < 0.15 − 0.1
                                               (0.15, 0.1, HEALTHY)])
def test_low_reference_within_min_gap_of_zero_has_nothing_to_fall_from(first, last, want):
    recs = [rec("passkey_accuracy", v, "passkey", length=n) for n, v in ((128, first),
                                                                           (1024, last))]
    f = summarize(recs)[0]
    assert f.verdict == want
    assert ("nothing to fall from" in f.rule) == (want == INCONCLUSIVE)


def test_bound_rules_in_a_compare_use_min_gap_against_a_first_run_at_zero():
    recs = [rec("loop_rate", v, "degeneration", run=r) for r, v in (("a", 0.0), ("b", 0.02))]
    assert summarize(recs)[0].verdict == HEALTHY  # was collapsed: any rise above 0
    recs[1]["value"] = 0.3
    assert summarize(recs)[0].verdict == COLLAPSED


def test_negative_references_are_written_as_offsets():
    mine = Rule("x", "cosine_to_anchor", "agents", "first", axis="round")
    f = summarize(anchor([-0.5, -0.4]), rules=[mine])[0]
    assert f.verdict == COLLAPSED and "(-0.5) + 0.1 × |-0.5| = -0.45" in f.rule


# sections without a verdict

def test_every_registered_study_section_has_a_rule_or_a_stated_reason():
    ruled = {r.section for r in RULES}
    assert {study.section for study in STUDIES.values()} <= ruled
    extra = {"neural collapse", "length collapse", "logit lens", "logit lens summary",
             "geometry summary", "attention", "attention heads", "diversity pooled",
             "degeneration", "divergence", "homogeneity", "finetune diversity",
             "finetune geometry", "finetune steps", "recursion", "recursion data",
             "recursion summary", "monitor", "monitor alerts", "comparison", "sweep"}
    assert extra <= ruled | set(NO_RULE)


def test_unjudged_sections_name_their_reason():
    recs = [rec("logit_lens_agreement", 0.5, "logit lens", layer=1),
            rec("intention_entropy", 2.0, "intention", regime="direct"),
            rec("my_metric", 1.0, "mine"), nc("cdnv", 0.05, power=1)]
    found = summarize(recs)
    assert [f.section for f in found] == ["neural collapse"]
    got = dict(unjudged(recs, found))
    assert got["logit lens"] == NO_RULE["logit lens"]
    assert got["intention"] == "no record matches its rule (intention_entropy, regime=cot)"
    assert got["mine"].startswith("no rule in collapsekit.report.summary.RULES")
    assert "neural collapse" not in got


def test_the_report_lists_sections_without_a_verdict(tmp_path):
    run = Run(tmp_path, study="geometry", config={})
    for r in [rec("logit_lens_agreement", 0.5, "logit lens", layer=1, layer_name="l1"),
              nc("nc1", 0.05)]:
        run.add(r.pop("metric"), r.pop("value"), **r)
    run.finish()
    page = render(tmp_path).read_text(encoding="utf-8")
    section = page[page.index("<section id='summary'>"):page.index("</section>")]
    assert "<span class='verdict collapsed'" in section
    assert ("No verdict for these sections:</p><ul class='unjudged'><li><a href='#s-logit-lens'>"
            "logit lens</a>: a diagnostic") in section
