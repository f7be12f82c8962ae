"""Ambiguity preservation: conflict markers (English, Japanese), state entropy by hand,
candidate distributions, continuation scoring against a plain forward pass, the study end
to end on a tiny model (same seed, same numbers; resume), the CLI, and bad input."""

import json
import math

import numpy as np
import pytest
import torch

from collapsekit.metrics.ambiguity import (candidate_distribution, detect_conflicts,
                                           entropy_bits, state_entropy)
from collapsekit.models.registry import LoadedModel
from collapsekit.models.scoring import chat_context, score_continuations
from collapsekit.results import Run
from collapsekit.studies import STUDIES, run_study
from collapsekit.studies.probes import ambiguity as amb
from conftest import make_model, make_tokenizer, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

TINY_ITEMS = [
    {"id": "a", "category": "lexical", "turn1": "the cat sees the bird .",
     "candidates": ["the dog runs", "a king sings"], "turn2": "the bird sings .", "intended": 0},
    {"id": "b", "category": "referential", "turn1": "the man sees the woman .",
     "candidates": ["the man", "the woman", "a child"], "turn2": "she walks .", "intended": 1},
]


def found(text):
    return [(m.text, m.start, m.end, m.category, m.lang) for m in detect_conflicts(text).markers]


def test_english_markers_with_spans_and_categories():
    text = "I want to leave, but maybe I should stay."
    assert found(text) == [("but", 17, 20, "adversative", "en"),
                           ("maybe", 21, 26, "hedge", "en"),
                           ("should", 29, 35, "modal", "en")]
    c = detect_conflicts(text)
    assert c.score == pytest.approx(1 - 0.4 * 0.6 * 0.8) and c.flag
    assert c.segments == ("I want to leave", "maybe I should stay")
    assert c.categories == {"adversative": 1, "hedge": 1, "modal": 1}
    assert found("On the other hand, it seems fine.") == [
        ("On the other hand", 0, 17, "adversative", "en"), ("seems", 22, 27, "hedge", "en")]


def test_plain_sentences_and_look_alikes_have_no_markers():
    for text in ("The cat sat on the mat.", "It is not yet ready.", "We met in May.",
                 "猫が好きです。", "誰でもできる。", "かなり静かな部屋だ。", "かもめが飛ぶ。"):
        c = detect_conflicts(text)
        assert c.markers == () and c.score == 0.0 and not c.flag, text
    assert found("May I come in?") == [("May", 0, 3, "modal", "en")]


def test_japanese_markers():
    assert found("行きたいけど、時間がないかもしれない。") == [
        ("けど", 4, 6, "adversative", "ja"), ("かもしれない", 12, 18, "hedge", "ja")]
    assert found("高いが、おいしい。") == [("が", 2, 3, "adversative", "ja")]  # clause-final
    assert found("雨だ。でも行く。") == [("でも", 3, 5, "adversative", "ja")]
    assert found("しかし、明日は晴れるかな") == [("しかし", 0, 3, "adversative", "ja"),
                                          ("かな", 10, 12, "hedge", "ja")]
    assert found("たぶん来るだろう。") == [("たぶん", 0, 3, "hedge", "ja"),
                                    ("だろう", 5, 8, "hedge", "ja")]
    assert detect_conflicts("行きたいけど、行けない。").segments == ("行きたい", "行けない")


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_conflicts_bad_text(bad):
    with pytest.raises(ValueError, match="text"):
        detect_conflicts(bad)


def test_conflicts_bad_settings():
    with pytest.raises(ValueError, match="weights"):
        detect_conflicts("but", weights={"hedge": 2.0})
    with pytest.raises(ValueError, match="weights"):
        detect_conflicts("but", weights={"irony": 0.5})
    for bad in (0, "high", 1.5):
        with pytest.raises(ValueError, match="threshold"):
            detect_conflicts("but", threshold=bad)


def test_state_entropy_by_hand():
    assert state_entropy([0, 0, 1, 1]) == 1.0
    assert state_entropy(["x", "x", "x"]) == 0.0  # one interpretation: collapsed
    assert state_entropy([0, 1, 2, 3]) == pytest.approx(2.0)
    assert state_entropy([0, 0, 0, 1]) == pytest.approx(-(0.75 * math.log2(0.75)
                                                          + 0.25 * math.log2(0.25)))
    assert entropy_bits([0.5, 0.5]) == 1.0 and entropy_bits([1.0, 0.0]) == 0.0


@pytest.mark.parametrize("bad", [[], [[0, 1]], [0.0, np.nan]])
def test_state_entropy_bad_input(bad):
    with pytest.raises(ValueError, match="classes"):
        state_entropy(bad)


@pytest.mark.parametrize("bad", [[], [0.5, 0.6], [1.5, -0.5], [np.nan, 1.0], [[0.5, 0.5]],
                                 ["a", "b"]])
def test_entropy_bits_bad_input(bad):
    with pytest.raises(ValueError):
        entropy_bits(bad)


def test_candidate_distribution_sum_and_length_normalised():
    e = np.exp([-1.0, -2.0])
    assert candidate_distribution([-1.0, -2.0]) == pytest.approx(e / e.sum())
    # -2 over 2 tokens and -6 over 3 tokens: means -1 and -2
    assert candidate_distribution([-2.0, -6.0], [2, 3]) == pytest.approx(e / e.sum())
    assert entropy_bits(candidate_distribution([-3.0, -3.0])) == pytest.approx(1.0)


@pytest.mark.parametrize("args", [([-1.0],), ([-1.0, 0.5],), ([-1.0, np.nan],),
                                  ([[-1.0, -2.0]],), ([-1.0, -2.0], [1]),
                                  ([-1.0, -2.0], [0, 1])])
def test_candidate_distribution_bad_input(args):
    with pytest.raises(ValueError):
        candidate_distribution(*args)


def plain_logprob(model, ids, n_context):
    """Σ log p of the tokens after the context, from one unpadded forward pass."""
    with torch.no_grad():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    return sum(logp[t - 1, ids[t]].item() for t in range(n_context, len(ids)))


def test_score_continuations_equals_a_plain_forward_pass(tiny_arch):
    model, tok = make_model(tiny_arch), make_tokenizer()
    contexts = ["the cat sees", chat_context(tok, [{"role": "user", "content": "a dog"}],
                                             "the")]
    cands = [[" the dog", " a bird runs ."], [" king"]]
    for batch_size in (1, 3):
        got = score_continuations(model, tok, contexts, cands, batch_size=batch_size)
        for ctx, cs, scores in zip(contexts, cands, got):
            ids = tok(ctx)["input_ids"] if isinstance(ctx, str) else ctx
            for c, s in zip(cs, scores):
                cont = tok(c, add_special_tokens=False)["input_ids"]
                assert s.n_tokens == len(cont)
                assert s.logprob == pytest.approx(plain_logprob(model, ids + cont, len(ids)),
                                                  abs=1e-4)
    # the chat template with the generation prompt, then the reply's first words
    assert tok.decode(contexts[1]) == "<s> <unk> <unk> a dog </s> <s> <unk> <unk> the"


@pytest.mark.parametrize("contexts, cands, message", [
    (["the cat"], [[]], "no candidates"),
    (["the cat"], [[" dog", ""]], "empty"),
    (["the cat"], [[" dog"], [" cat"]], "one list of strings per context"),
    ([""], [[" dog"]], "empty"),
    ([], [], "non-empty"),
    (["the " * 70], [[" dog"]], "context"),
])
def test_score_continuations_bad_input(contexts, cands, message):
    with pytest.raises(ValueError, match=message):
        score_continuations(make_model("llama"), make_tokenizer(), contexts, cands)


@pytest.mark.parametrize("change, message", [
    ({"candidates": []}, "at least 2"),
    ({"candidates": ["the dog"]}, "at least 2"),
    ({"intended": 2}, "'intended'=2 must be an integer >= 0 and <= 1"),  # 2 candidates
    ({"intended": -1}, "'intended'=-1 must be an integer >= 0"),
    ({"turn1": ""}, "'turn1' is missing or empty"),
    ({"turn2": None}, "'turn2'"),
])
def test_bad_items(change, message):
    with pytest.raises(ValueError, match=message):
        amb.parse_items([{**TINY_ITEMS[0], **change}])


def test_bundled_items():
    items = amb.load_items()
    assert len(items) >= 30 and len({i.id for i in items}) == len(items)
    assert all(2 <= len(i.candidates) <= 3 for i in items)
    assert len({i.category for i in items[:8]}) == 5  # quick mode samples every category


def Tiny():
    """The tiny llama as a loaded model, as the studies receive it."""
    return LoadedModel(spec="tiny", model=make_model("llama"), tokenizer=make_tokenizer(),
                       weight_hash="tiny-llama", source="test", load_seconds=0.0)


def values(run):
    return {(r["metric"], r.get("turn"), r.get("scoring"), r.get("decoding")): r["value"]
            for r in run.records}


def write_items(path, rows=TINY_ITEMS):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def settings(quick=False, seed=0, **params):
    return STUDIES["ambiguity"].settings(params, quick=quick, seed=seed)


def test_stage_end_to_end_same_seed_same_numbers_and_resume(tmp_path):
    lm = Tiny()
    s = settings(items=write_items(tmp_path / "items.jsonl"), k=3, max_new_tokens=4, seed=1)
    assert amb.check(s) == {"n_items": 2, "judge": "cosine:0.6"}
    runs = []
    for name in ("a", "b"):
        run = Run(tmp_path / name, study="ambiguity", config={})
        amb.study_stage(run, lm, s)
        runs.append(run)
    got = values(runs[0])
    assert got == values(runs[1])
    assert got[("mean_interpretation_entropy", 1, None, "greedy")] == 0.0
    assert 0 <= got[("mean_interpretation_entropy", 1, None, "sampling")] <= math.log2(3)
    for t in (1, 2):
        for scoring in ("sum", "mean"):
            h = got[("mean_candidate_entropy", t, scoring, None)]
            assert 0 <= h <= math.log2(3)
            assert 0 <= got[("mean_intended_accuracy", t, scoring, None)] <= 1
    assert all(r["section"] == "ambiguity" for r in runs[0].records)
    rows = runs[0].read_table("ambiguity_items")
    assert rows["item_id"] == ["a", "a", "b", "b"] and rows["scoring"] == ["sum", "mean"] * 2
    assert sum(rows["p_turn2"][2]) == pytest.approx(1.0)
    inter = runs[0].read_table("ambiguity_interpretations")
    assert inter["item_id"] == ["a", "b"] and inter["k"] == [3, 3]
    cache = (tmp_path / "a" / "ambiguity_samples.jsonl").read_text()
    assert len(cache.splitlines()) == 2 * 3 + 2  # k samples + one greedy answer per item
    timings = dict(runs[0].to_dict()["timings"])
    # an interrupted run (not marked done) resumes inside the study: both parts recorded
    resumed = Run(tmp_path / "a", study="ambiguity", config={}, resume=True)
    amb.study_stage(resumed, lm, s)
    assert resumed.to_dict()["timings"] == timings  # nothing recomputed
    assert values(resumed) == got
    # only the scoring part recorded: the sampling part is redone from its cache
    part = Run(tmp_path / "c", study="ambiguity", config={})
    amb.two_turn_stage(part, lm, amb.parse_items(TINY_ITEMS), seed=1)
    scoring = {k: v for k, v in values(part).items()}
    (tmp_path / "c" / "ambiguity_samples.jsonl").write_text(cache)
    calls = []
    hook = lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    try:
        amb.study_stage(part, lm, s)  # scoring recorded, samples cached
    finally:
        hook.remove()
    assert calls == []  # no forward pass: nothing scored or sampled again
    assert values(part) == got and {k: got[k] for k in scoring} == scoring


def test_stage_refuses_bad_settings(tmp_path):
    items = write_items(tmp_path / "items.jsonl")
    for kw, message in (({"k": 1}, "k=1"), ({"threshold": 2.0}, "threshold"),
                        ({"n_sampled": 0}, "n_sampled"), ({"max_new_tokens": 0},
                                                          "max_new_tokens=0")):
        with pytest.raises(ValueError, match=message):
            settings(items=items, **kw)
        with pytest.raises(ValueError, match=message):  # before any folder or model
            run_study("ambiguity", tmp_path / "r", params={"items": items, **kw})
        assert not (tmp_path / "r").exists()




def test_cli(monkeypatch, capsys, tmp_path):
    path = tmp_path / "tiny"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in TINY_ITEMS))
    out = tmp_path / "run"
    code, stdout, _ = run_cli(monkeypatch, capsys, "ambiguity", "--model", str(path),
                              "--items", str(items), "--quick", "--k", "2",
                              "--max-new-tokens", "3", "--out", str(out), "--json")
    assert code == 0 and (out / "index.html").is_file()
    data = json.loads(stdout)
    names = {r["metric"] for r in data["records"]}
    assert {"mean_candidate_entropy", "mean_entropy_drop", "mean_interpretation_entropy",
            "mean_conflict_rate", "mean_input_conflict_rate"} <= names
    assert {k: data["config"][k] for k in ("k", "max_new_tokens", "n_sampled", "n_items")} \
        == {"k": 2, "max_new_tokens": 3, "n_sampled": 8, "n_items": 2}  # --quick, then flags
    assert data["done"] == ["ambiguity"]
    # --resume of the finished run: skipped by the runner, the model is not even loaded
    import collapsekit.models.registry as registry

    def no_load(*a, **k):
        raise AssertionError("the model was loaded for a finished study")

    with monkeypatch.context() as m:
        m.setattr(registry, "load_model", no_load)
        code, stdout2, err = run_cli(monkeypatch, capsys, "ambiguity", "--model", str(path),
                                     "--items", str(items), "--quick", "--k", "2",
                                     "--max-new-tokens", "3", "--out", str(out), "--json",
                                     "--resume")
    assert code == 0, err
    assert json.loads(stdout2)["records"] == data["records"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**TINY_ITEMS[0], "intended": 5}) + "\n")
    code, _, err = run_cli(monkeypatch, capsys, "ambiguity", "--model", str(path),
                           "--items", str(bad), "--out", str(tmp_path / "bad"))
    assert code == 2 and "'intended'=5 must be an integer >= 0 and <= 1" in err
    assert err.count("\n") == 1
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_quick_stage_on_the_embedded_model(tmp_path):
    from collapsekit.models.registry import load_model

    from dataclasses import asdict

    lm = load_model("embedded:smollm2-135m-instruct")
    rows = [{**asdict(it), "candidates": list(it.candidates)} for it in amb.load_items()[:4]]
    s = settings(items=write_items(tmp_path / "items.jsonl", rows), n_sampled=2, k=3,
                 max_new_tokens=16)
    run = Run(tmp_path / "r", study="ambiguity", config={})
    amb.study_stage(run, lm, s)
    got = values(run)
    assert 0 < got[("mean_candidate_entropy", 1, "sum", None)] <= math.log2(3)
    assert got[("mean_interpretation_entropy", 1, None, "greedy")] == 0.0
    texts = run.read_table("ambiguity_samples")["text"]
    assert len(texts) == 2 * 3 + 2 and any(t.strip() for t in texts)
