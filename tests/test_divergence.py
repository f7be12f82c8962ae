"""JS divergence of text sets and stylometric features against hand-computed values."""

import math

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon

from collapsekit.metrics import divergence as dv
from collapsekit.metrics import js_divergence


def h2(p):
    return -p * math.log2(p) - (1 - p) * math.log2(1 - p)


def test_identical_sets_give_zero_and_disjoint_vocabularies_give_one():
    texts = ["the cat sat on the mat", "a dog ran"]
    assert js_divergence(texts, list(reversed(texts))) == 0.0
    assert js_divergence(["a b c", "a"], ["x y", "z z"]) == pytest.approx(1.0, abs=1e-15)
    assert js_divergence(["a b c"], ["x y z"], n=2) == pytest.approx(1.0, abs=1e-15)


def test_unigram_and_bigram_values_by_hand():
    # P = {a: 2/3, b: 1/3}, Q = {a: 1/3, b: 2/3}, M uniform: JS = 1 - H2(1/3)
    assert js_divergence(["a a b"], ["a b b"]) == pytest.approx(1 - h2(1 / 3), abs=1e-12)
    # bigrams: P = {(a,b): 1, (b,a): 1} over "a b a" ; Q = {(a,b): 1} over "a b"
    # p = (1/2, 1/2), q = (1, 0): JS = H(3/4, 1/4) - (1 + 0)/2
    assert js_divergence(["a b a"], ["a b"], n=2) == pytest.approx(h2(0.25) - 0.5, abs=1e-12)
    # n-grams never cross text boundaries: "a" + "b" has no bigram (a, b)
    assert js_divergence(["a b"], ["a", "b", "a b"], n=2) == 0.0


def test_js_from_counts_matches_scipy():
    rng = np.random.default_rng(1)
    for _ in range(20):
        p, q = rng.integers(0, 5, size=(2, 30)).astype(float)
        p[0] += 1
        q[1] += 1
        assert dv.js_from_counts(p, q) == pytest.approx(jensenshannon(p, q, base=2) ** 2,
                                                        abs=1e-12)


def test_custom_tokenizer():
    assert js_divergence(["ab"], ["ba"], tokenizer=list) == 0.0
    assert js_divergence(["ab"], ["ba"]) == 1.0


def test_bootstrap_interval_is_seeded_and_brackets_resamples():
    p = ["the cat sat", "the dog sat", "a cat ran", "my dog ran far"]
    q = ["the cat ran", "a bird flew", "the bird sat", "my cat sat"]
    v, lo, hi = dv.js_divergence_ci(p, q, n_boot=300, seed=3)
    assert v == js_divergence(p, q)
    assert 0 <= lo <= hi <= 1
    assert dv.js_divergence_ci(p, q, n_boot=300, seed=3) == (v, lo, hi)
    assert dv.js_divergence_ci(p, q, n_boot=300, seed=4) != (v, lo, hi)


def test_stylometric_features_by_hand():
    f = dv.stylometric_features(["Hello, world. This is fine!", "a a b", "   "])
    assert f["sentence_length"][0].tolist() == [2, 3]
    assert f["sentence_length"][1].tolist() == [3]
    assert f["sentence_length"][2].tolist() == []
    assert f["type_token_ratio"][1].tolist() == [pytest.approx(2 / 3)]
    assert f["type_token_ratio"][2].size == 0
    # "Hello,world.Thisisfine!" has 23 non-space characters, 3 of them punctuation
    assert f["punctuation_rate"][0].tolist() == [pytest.approx(3 / 23)]
    assert f["punctuation_rate"][2].size == 0


def test_stylometric_divergence_identical_zero_and_separated_one():
    human = ["One two three. Four five!", "Six seven, eight nine ten.", "Eleven twelve."]
    same = dv.stylometric_divergence(human, list(human), n_boot=50)
    assert all(v[0] == 0.0 for v in same.values())
    # every P sentence has 1 word and no repeats; every Q sentence 6 words with repeats
    p = ["Yes.", "No.", "Maybe."] * 30
    q = ["go go go go go go"]
    out = dv.stylometric_divergence(p, q, n_boot=50)
    assert out["sentence_length"][0] == pytest.approx(1.0)
    assert out["type_token_ratio"][0] == pytest.approx(1.0)
    assert out["punctuation_rate"][0] == pytest.approx(1.0)
    assert set(out) == set(dv.FEATURES)


@pytest.mark.parametrize("args, message", [
    (("text", ["a"]), "one string"),
    (([], ["a"]), "at least 1"),
    (([1.0], ["a"]), "not str"),
    ((["a"], ["b"], 2), "p_texts has no 2-grams"),
    ((["a b"], ["b"], 2), "q_texts has no 2-grams"),
    ((["a"], ["b"], 0), "n=.* must be an integer >= 1"),
])
def test_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        js_divergence(*args)


def test_bad_counts_and_features():
    with pytest.raises(ValueError, match="equally long"):
        dv.js_from_counts([1, 2], [1])
    with pytest.raises(ValueError, match="zero total"):
        dv.js_from_counts([0, 0], [1, 1])
    with pytest.raises(ValueError, match="finite"):
        dv.js_from_counts([np.nan, 1], [1, 1])
    with pytest.raises(ValueError, match="texts without words"):
        dv.stylometric_divergence(["..."], ["a b."])
    with pytest.raises(ValueError, match="n_boot"):
        dv.js_divergence_ci(["a"], ["b"], n_boot=1)


def test_scan_stage_compares_against_a_human_null_level(tmp_path):
    from collapsekit.corpora import human_texts
    from collapsekit.results import Run
    from collapsekit.studies.probes import divergence

    run = Run(tmp_path / "run", study="scan", config={})
    wiki = human_texts("wikipedia", min_words=40)[:80]
    verses = human_texts("kjv", min_words=12)[:40]  # stands in for "model" samples
    divergence.stage(run, verses, wiki, n_boot=50)
    got = {(r["metric"], r["pair"]): r for r in run.records}
    for metric in ("js_ngram_1", "js_ngram_2", "js_sentence_length"):
        far, null = got[metric, "model_vs_human"], got[metric, "human_vs_human"]
        assert 0 <= null["value"] < far["value"] <= 1
        assert 0 <= far["ci_low"] <= far["ci_high"] <= 1
    assert got["js_ngram_1", "model_vs_human"]["texts"] == 40
    before = [dict(r) for r in run.records]
    # the stage no longer skips itself on resume (the runner decides): a second call
    # recomputes the same seeded numbers and replaces its records, never duplicates them
    divergence.stage(run, verses, wiki, n_boot=50)
    assert run.records == before
    with pytest.raises(ValueError, match="needs >= 2"):
        divergence.stage(Run(tmp_path / "r2", study="scan", config={}), ["a"], wiki)


def test_runner_resumes_divergence_only_when_unfinished(tmp_path, monkeypatch):
    """Divergence rides along the diversity study (``divergence=True``): an interrupted
    run computes it on --resume, a finished one does not (the runner skips the study)."""
    import json

    from collapsekit.studies import run_study
    from collapsekit.studies.probes import divergence

    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"prompt_id": p, "text": t}) + "\n" for p, t in [
        (0, "the cat sat on the mat"), (0, "a dog ran to the river"),
        (1, "the king and the queen"), (1, "a storm broke over the harbour at dawn")]))
    monkeypatch.setattr("collapsekit.models.embedders.embed",  # no sentence embedder needed
                        lambda texts: np.array([[len(t), t.count(" ") + 1.0] for t in texts]))
    calls, real = [], divergence.stage

    def counted(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise KeyboardInterrupt  # Ctrl-C inside the divergence stage
        return real(*a, **kw)

    monkeypatch.setattr(divergence, "stage", counted)
    out, params = tmp_path / "div", {"samples": str(samples), "divergence": True}
    with pytest.raises(KeyboardInterrupt):
        run_study("diversity", out, params=params)
    run_study("diversity", out, params=params, resume=True)
    assert len(calls) == 2
    data = json.loads((out / "metrics.json").read_text())
    assert data["done"] == ["diversity"]
    js = {r["pair"]: r for r in data["records"] if r["metric"] == "js_ngram_1"}
    assert set(js) == {"model_vs_human", "human_vs_human"} and js["model_vs_human"]["texts"] == 4
    run_study("diversity", out, params=params, resume=True)
    assert len(calls) == 2  # finished: not recomputed
    assert json.loads((out / "metrics.json").read_text())["records"] == data["records"]
