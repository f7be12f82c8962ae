"""Diversity study with several models and temperatures: hand-computed homogeneity matrix,
temperature sweep, meaning-class metrics, degeneration, unequal sample counts per prompt,
report extension (row × col heatmap, lines over temperature), bad input refused before the
folder, and ``run_study("diversity")`` end to end on two tiny saved models (interrupted
after sampling, resumed from the sample caches without a forward pass)."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import make_model, make_tokenizer

from collapsekit.errors import CollapsekitError
from collapsekit.report.summary import INCONCLUSIVE, summarize
from collapsekit.results import Run, load_run, read_table
from collapsekit.studies import diversity as dv
from collapsekit.studies import run_study

VEC = {"a b c": [1.0, 0.0, 0.0], "d e f": [0.0, 1.0, 0.0], "g h i": [0.0, 0.0, 1.0]}


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest


def fake_embed(texts):
    return np.array([VEC[t] for t in texts])


def S(pid, text, lp=-1.0):
    return SimpleNamespace(prompt_id=pid, text=text, token_logprobs=[lp])


def records(run_dir, metric, **scope):
    return [r for r in load_run(run_dir)["records"] if r["metric"] == metric
            and all(r.get(k) == v for k, v in scope.items())]


def test_homogeneity_matrix_and_temperature_sweep_by_hand(tmp_path):
    samples = {  # model A repeats itself; model B spreads; prompt 1 the other way round
        ("A", 0.3): [S(0, "a b c"), S(0, "a b c"), S(1, "a b c"), S(1, "d e f")],
        ("B", 0.3): [S(0, "a b c"), S(0, "d e f"), S(1, "g h i"), S(1, "g h i")],
        ("A", 1.0): [S(0, "a b c"), S(0, "d e f"), S(1, "d e f"), S(1, "g h i")],
    }
    run = Run(tmp_path / "r", study="diversity", config={})
    dv.multi_stage(run, samples, embedder=fake_embed)
    run.finish()
    # prompt 0: within A = cos(ab, ab) = 1; within B = 0; A–B = mean(1, 0, 1, 0) = 0.5
    # prompt 1: within A = 0; within B = 1; A–B = mean(0, 0, 0, 0) = 0
    cell = {(r["row"], r["col"], r["prompt_id"]): r["value"]
            for r in records(run.path, "hivemind_similarity", temperature=0.3)}
    assert cell == {("A", "A", 0): 1.0, ("B", "B", 0): 0.0, ("A", "B", 0): 0.5,
                    ("B", "A", 0): 0.5, ("A", "A", 1): 0.0, ("B", "B", 1): 1.0,
                    ("A", "B", 1): 0.0, ("B", "A", 1): 0.0}
    [ab] = records(run.path, "cross_model_cosine", model_a="A", model_b="B")
    assert ab["value"] == 0.25 and ab["ci_low"] == 0.0 and ab["ci_high"] == 0.5
    assert not records(run.path, "cross_model_cosine", model_a="B", model_b="A")  # once a pair
    within = {r["model"]: r["value"] for r in records(run.path, "within_model_cosine")}
    assert within == {"A": 0.5, "B": 0.5}  # (1 + 0) / 2 and (0 + 1) / 2
    # the summary judges A–B against the mean within-model cosine 0.5: collapsed above
    # 0.9 × 0.5 = 0.45; the interval [0, 0.5] straddles it
    [row] = [f for f in summarize(json.loads((run.path / "metrics.json").read_text())["records"])
             if f.metric == "cross_model_cosine"]
    assert row.verdict == INCONCLUSIVE and "0.5" in row.reference
    assert not records(run.path, "hivemind_similarity", temperature=1.0)  # one model only
    # distinct-1 of A: T=0.3 prompts (3/6, 6/6) → 0.75; T=1.0 (6/6, 6/6) → 1.0
    d1 = {r["temperature"]: r["value"] for r in records(run.path, "mean_distinct_1", model="A")}
    assert d1 == {0.3: 0.75, 1.0: 1.0}
    # meaning classes: A at 0.3, prompt 0 identical → entropy 0, one class; prompt 1
    # orthogonal → log 2, two classes, EigV 2, DegMat (m² − ΣW)/m² = (4 − 2)/4
    se = {r["prompt_id"]: r["value"] for r in records(run.path, "semantic_entropy", model="A",
                                                          temperature=0.3)}
    assert se[0] == 0.0 and se[1] == pytest.approx(math.log(2))
    one = lambda m, pid: records(run.path, m, model="A", temperature=0.3, prompt_id=pid)[0]
    assert one("num_distinct_classes", 0)["value"] == 1 and one("num_semantic_sets", 1)["value"] == 2
    assert one("eigv", 1)["value"] == pytest.approx(2.0)
    assert one("degmat", 1)["value"] == pytest.approx(0.5)
    # likelihood form: equal sequence log-probs over 2 classes → log 2
    assert one("semantic_entropy_likelihood", 1)["value"] == pytest.approx(math.log(2))
    table = read_table(run.path, "homogeneity")
    assert len(table["value"]) == 8


def test_report_draws_row_col_heatmap_and_temperature_lines(tmp_path):
    from collapsekit.report.html import render
    run = Run(tmp_path / "r", study="diversity", config={})
    for a, b, v in [("A", "A", 1.0), ("A", "B", 0.5), ("B", "A", 0.5), ("B", "B", 0.0)]:
        run.add("hivemind_similarity", v, section="homogeneity", row=a, col=b, prompt_id=0)
    for t, v in [(0.3, 0.5), (1.0, 0.9)]:
        run.add("mean_distinct_1", v, section="diversity", model="A", temperature=t,
                ci_low=v - 0.1, ci_high=v + 0.1)
    run.finish()
    page = render(run.path).read_text()
    names = {p.name for p in (run.path / "plots").glob("*.png")}
    assert names == {"homogeneity-hivemind_similarity-heatmap.png",
                     "diversity-mean_distinct_1-temperature.png"}
    assert "by row × col" in page and "by temperature" in page


def test_unequal_numbers_of_samples_per_prompt_by_hand(tmp_path):
    # prompts (and models) may have different numbers of samples, each at least 2
    samples = {("A", None): [S(0, "a b c"), S(0, "a b c"), S(0, "d e f"),
                             S(1, "g h i"), S(1, "g h i")],
               ("B", None): [S(0, "d e f"), S(0, "d e f"),
                             S(1, "g h i"), S(1, "a b c"), S(1, "a b c")]}
    run = Run(tmp_path / "r", study="diversity", config={})
    dv.multi_stage(run, samples, embedder=fake_embed)
    one = lambda m, pid, model="A": records(run.path, m, model=model, prompt_id=pid)[0]["value"]
    # A, prompt 0: cosines (1, 0, 0) → spread 1 − 1/3; 6 types / 9 tokens; classes {2, 1}
    assert one("semantic_spread", 0) == pytest.approx(2 / 3)
    assert one("distinct_1", 0) == pytest.approx(6 / 9)
    assert one("semantic_entropy", 0) == pytest.approx(-(2 / 3 * math.log(2 / 3)
                                                         + 1 / 3 * math.log(1 / 3)))
    assert one("num_distinct_classes", 0) == 2
    assert one("semantic_spread", 1) == pytest.approx(0.0) and one("distinct_1", 1) == 0.5
    assert one("num_distinct_classes", 1, "B") == 2
    assert all("temperature" not in r for r in records(run.path, "semantic_spread"))
    # A–B: prompt 0 cos(A{ab, ab, de}, B{de, de}) = 2/6; prompt 1 cos(A{gh, gh}, B{gh, ab,
    # ab}) = 2/6
    cell = {(r["row"], r["col"], r["prompt_id"]): r["value"]
            for r in records(run.path, "hivemind_similarity")}
    assert cell[("A", "B", 0)] == pytest.approx(1 / 3)
    assert cell[("B", "A", 1)] == pytest.approx(1 / 3)
    counts = {(m, p): n for m, p, n in zip(*(read_table(run.path, "per_prompt")[c] for c in (
        "model", "prompt_id", "n_samples")))}
    assert counts == {("A", "0"): 3, ("A", "1"): 2, ("B", "0"): 2, ("B", "1"): 3}


def test_too_few_samples_or_prompts_are_rejected(tmp_path):
    run = Run(tmp_path / "r", study="diversity", config={})
    mixed = {("A", 1.0): [S(0, "a b c"), S(0, "d e f"), S(1, "a b c")]}
    with pytest.raises(ValueError, match="model A at temperature 1.0: every prompt needs at "
                                         "least 2 samples"):
        dv.multi_stage(run, mixed, embedder=fake_embed)
    with pytest.raises(ValueError, match="at least 2 samples"):
        dv.multi_stage(run, {("A", 1.0): [S(0, "a b c")]}, embedder=fake_embed)
    with pytest.raises(ValueError, match="no .*samples"):
        dv.multi_stage(run, {}, embedder=fake_embed)
    other = {("A", 1.0): [S(0, "a b c"), S(0, "d e f")], ("B", 1.0): [S(5, "a b c"), S(5, "d e f")]}
    with pytest.raises(ValueError, match="different prompts"):
        dv.multi_stage(run, other, embedder=fake_embed)


def test_degeneration_metrics_by_hand():
    m = dv.degeneration_metrics(["a b a b a b", "x y z w"])
    # first loops (period 2 from word 0), second none; seq-rep-4: (1 − 2/3 + 1 − 1)/2
    assert m["loop_rate"] == 0.5 and m["loop_period"] == 2 and m["first_loop_position"] == 0
    assert m["seq_rep_4"] == pytest.approx((1 - 2 / 3) / 2)
    none = dv.degeneration_metrics(["a b"])
    assert none["loop_rate"] == 0 and math.isnan(none["loop_period"])
    assert math.isnan(none["seq_rep_4"])


@pytest.mark.parametrize("kw, match", [
    (dict(model=["x", "x"]), "repeats a model: give distinct specs"),
    (dict(model="nonsense-model"), "unknown model spec"),
    (dict(temperatures="0.3,hot"), "temperatures=0.3,hot for study 'diversity': expected a "
                                   "number"),
    (dict(temperatures=[0.0]), "temperatures=.* must be above 0"),
    (dict(temperatures="0.5,0"), "temperatures=0.5,0 .* must be above 0"),
    (dict(momentum=-1), "momentum=-1 .*must be at least 0"),
    (dict(k=1), "k=1 .*must be at least 2"),
    (dict(top_p=1.5), "top_p=1.5 .*must be at most 1"),
    (dict(prompts="missing.txt"), "missing.txt"),
    (dict(samples="missing.jsonl"), "missing.jsonl"),
    (dict(colour="red"), "unknown parameter.*colour")])
def test_run_diversity_bad_input_makes_no_folder(tmp_path, monkeypatch, kw, match):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "m"
    spec.mkdir()
    (spec / "config.json").write_text("{}")  # validation happens before any model loads
    (tmp_path / "p.txt").write_text("the cat\n")
    model = kw.pop("model", [str(spec)])
    with pytest.raises((ValueError, CollapsekitError), match=match):
        run_study("diversity", tmp_path / "out", model=model,
                  params={"prompts": str(tmp_path / "p.txt"), **kw})
    assert not (tmp_path / "out").exists()


def test_two_tiny_models_end_to_end(tmp_path, monkeypatch):
    from collapsekit.models import registry

    specs, calls, real_load = [], {"forward": 0, "load": 0}, registry.load_model

    def counted(*a, **kw):  # count loads and forward passes (instrumentation, not a mock)
        lm = real_load(*a, **kw)
        calls["load"] += 1
        lm.model.register_forward_pre_hook(
            lambda *_: calls.__setitem__("forward", calls["forward"] + 1))
        return lm

    monkeypatch.setattr(registry, "load_model", counted)
    for seed in (0, 1):
        spec = tmp_path / f"m{seed}"
        make_model("llama", seed=seed).save_pretrained(spec)
        make_tokenizer().save_pretrained(spec)
        specs.append(str(spec))
    (tmp_path / "p.txt").write_text("the cat runs\nking and queen\n")
    monkeypatch.setattr("collapsekit.corpora.human_texts", lambda *a, **k: [])
    emb = lambda texts: np.array([[len(t) + 1.0, t.count(" ") + 1.0, 1.0] for t in texts])
    monkeypatch.setattr("collapsekit.models.embedders.embed", emb)
    opts = dict(model=specs, device="cpu", report=False, params=dict(
        prompts=str(tmp_path / "p.txt"), k=2, max_new_tokens=6, temperatures="0.5,1.0"))
    real_score = dv.multi_stage

    def interrupted(*a, **kw):  # Ctrl-C after every sample was drawn and cached
        raise KeyboardInterrupt

    monkeypatch.setattr(dv, "multi_stage", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_study("diversity", tmp_path / "out", **opts)
    assert calls["load"] == 2 and calls["forward"] > 0
    monkeypatch.setattr(dv, "multi_stage", real_score)
    calls.update(forward=0, load=0)
    html = run_study("diversity", tmp_path / "out", resume=True, **opts)
    assert calls["forward"] == 0  # every sample came from the caches
    out = html.parent
    caches = sorted(out.glob("samples-*.jsonl"))  # one cache per model
    assert [c.name.endswith(("m0.jsonl", "m1.jsonl")) for c in caches] == [True, True]
    # per model: 2 temperatures × 2 prompts × 2 samples + greedy and momentum 2 × 1 each
    for c in caches:
        assert len(c.read_text().splitlines()) == 12
    cells = records(out, "hivemind_similarity")
    assert len(cells) == 2 * 2 * 4   # temperatures × prompts × 4 cells
    for spec in specs:
        for name in ("greedy", "momentum"):
            assert len(records(out, "loop_rate", model=spec, decoding=name)) == 1
    table = read_table(out, "samples")
    assert sorted(set(table["temperature"])) == [0.0, 0.5, 1.0]
    data = json.loads((out / "metrics.json").read_text())
    assert data["finished"] and data["done"] == ["diversity"]
    assert data["config"]["model"] == specs and data["config"]["temperatures"] == [0.5, 1.0]
    assert [m["spec"] for m in data["models"]] == specs
    calls.update(forward=0, load=0)
    run_study("diversity", tmp_path / "out", resume=True, **opts)
    assert calls == {"forward": 0, "load": 0}  # finished: the runner loads nothing
