"""Intention collapse: H_int, AUROC and the held-out probe against closed forms and bad input,
answer parsing, the readout against greedy sampling, the problems file, the study on a tiny
model (records, table, resume, determinism), the CLI command, and the real model (slow)."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import torch
from conftest import make_model, make_tokenizer

from collapsekit import cli
from collapsekit.errors import InputFileError
from collapsekit.metrics.intention import auroc, intention_entropy, parse_answer, probe_auroc
from collapsekit.models.readout import Readout, answer_cue, chat_text, readout
from collapsekit.models.registry import LoadedModel
from collapsekit.models.decoding import Decoding
from collapsekit.models.sampling import sample
from collapsekit.results import Run, load_run
from collapsekit.studies import STUDIES
from collapsekit.studies.probes import intention as study

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

TEXTS = ["the cat runs", "a dog sees the moon and the sun", "king"]


# --- intention entropy ---------------------------------------------------------------

@pytest.mark.parametrize("v", [2, 7, 49152])
def test_entropy_of_uniform_is_log2_v(v):
    assert intention_entropy(np.zeros(v)) == pytest.approx(math.log2(v), abs=1e-12)
    assert intention_entropy(np.full(v, 1 / v)) == pytest.approx(math.log2(v), abs=1e-9)
    rows = intention_entropy(np.zeros((3, v)))
    assert rows.shape == (3,) and np.allclose(rows, math.log2(v))


def test_top_k_renormalised_by_hand():
    p = np.array([0.5, 0.125, 0.25, 0.125])
    h2 = -(2 / 3 * math.log2(2 / 3) + 1 / 3 * math.log2(1 / 3))  # top-2: (2/3, 1/3)
    assert intention_entropy(p, top_k=2) == pytest.approx(h2, abs=1e-12)
    assert intention_entropy(np.log(p) + 5.0, top_k=2) == pytest.approx(h2, abs=1e-12)
    assert intention_entropy(p) == pytest.approx(1.75, abs=1e-12)  # ½·1 + ¼·2 + 2·⅛·3
    assert intention_entropy(p, top_k=4) == intention_entropy(p, top_k=100)
    assert intention_entropy(p, base=math.e) == pytest.approx(1.75 * math.log(2), abs=1e-12)
    assert intention_entropy([0.0, 1.0, 0.0]) == 0.0
    assert intention_entropy([0.0, -np.inf, -np.inf], kind="logits") == 0.0


@pytest.mark.parametrize("x, kw, match", [
    ([], {}, "non-empty"),
    (np.zeros((2, 0)), {}, "non-empty"),
    (np.zeros((2, 3, 4)), {}, "shape"),
    ([0.1, np.nan, 0.2], {}, "NaN"),
    ([0.1, np.inf], {}, "NaN or \\+inf"),
    ([-np.inf, -np.inf], {"kind": "logits"}, "all -inf"),
    ([0.5, 0.6], {"kind": "probs"}, "sum to 1"),
    ([0.5, 0.5], {"top_k": 0}, "top_k"),
    ([0.5, 0.5], {"base": 1}, "base"),
    ([0.5, 0.5], {"kind": "odds"}, "kind"),
])
def test_entropy_bad_input(x, kw, match):
    with pytest.raises(ValueError, match=match):
        intention_entropy(x, **kw)


# --- AUROC and the probe ---------------------------------------------------------------

def test_auroc_by_hand_and_bad_input():
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert auroc([1, 1, 1, 1], [0, 1, 0, 1]) == 0.5  # ties count 1/2
    assert auroc([3, 2, 1], [True, False, False]) == 1.0
    with pytest.raises(ValueError, match="one class"):
        auroc([0.1, 0.2], [1, 1])
    with pytest.raises(ValueError, match="0/1"):
        auroc([0.1, 0.2], [1, 2])
    with pytest.raises(ValueError, match="finite"):
        auroc([0.1, np.nan], [0, 1])


def test_probe_separable_data_scores_one():
    rng = np.random.default_rng(0)
    y = np.arange(40) % 2
    x = rng.normal(size=(40, 8)) * 0.1
    x[:, 3] += 4.0 * y
    res = probe_auroc(x, y.astype(bool), folds=5, seed=0)
    assert res["auroc"] == 1.0 and res["ci_low"] == 1.0 and res["ci_high"] == 1.0
    assert res["pooled_auroc"] == 1.0 and res["fold_auroc_std"] == 0.0 and res["folds"] == 5
    assert res["n"] == 40 and res["n_positive"] == 20 and "note" not in res


def test_probe_is_held_out_not_in_sample():
    """Pure noise with D > N: any in-sample fit separates it (AUROC 1); held out it is chance."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(120, 200))
    y = rng.permutation(np.arange(120) % 2)
    res = probe_auroc(x, y, seed=0)
    assert abs(res["auroc"] - 0.5) < 0.15
    assert res["ci_low"] < 0.5 < res["ci_high"]
    assert probe_auroc(x, y, seed=0) == res  # same seed, same numbers


def test_probe_too_few_of_a_class_is_none_with_a_note():
    x = np.random.default_rng(0).normal(size=(10, 4))
    for y in (np.zeros(10), np.r_[np.ones(1), np.zeros(9)]):
        res = probe_auroc(x, y)
        assert res["auroc"] is None and res["ci_low"] is None and res["folds"] == 0
        assert "at least 2 per class" in res["note"]
    res = probe_auroc(x, np.r_[np.ones(3), np.zeros(7)], folds=5)
    assert res["folds"] == 3 and res["auroc"] is not None  # folds lowered to the minority


@pytest.mark.parametrize("x, y, match", [
    (np.zeros((0, 3)), np.zeros(0), "non-empty"),
    (np.full((4, 2), np.nan), [0, 1, 0, 1], "NaN"),
    (np.zeros(4), [0, 1, 0, 1], "\\(N, D\\)"),
    (np.zeros((4, 2)), [0, 1, 0], "4 items"),
    (np.zeros((4, 2)), [0, 1, 2, 1], "0/1"),
])
def test_probe_bad_input(x, y, match):
    with pytest.raises(ValueError, match=match):
        probe_auroc(x, y)
    with pytest.raises(ValueError, match="folds"):
        probe_auroc(np.zeros((4, 2)), [0, 1, 0, 1], folds=1)


@pytest.mark.parametrize("text, value", [
    ("12.", 12), (" 1,200 apples", 1200), ("-3 degrees", -3), ("2.5", None),
    ("12.0 cm", 12), ("5cm.\n\nThis is 7", 5), ("no number", None), ("", None),
    ("x = 42", 42),
])
def test_parse_answer(text, value):
    assert parse_answer(text) == value


def test_parse_answer_bad_input():
    with pytest.raises(ValueError, match="str"):
        parse_answer(12)


# --- readout ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny():
    return make_model("llama"), make_tokenizer()


def test_readout_matches_greedy_sampling_and_single_rows(tiny):
    model, tok = tiny
    r = readout(model, tok, TEXTS, max_new_tokens=5, batch_size=2)
    assert r.hidden.shape == (5, 3, 32) and r.logits.shape == (3, model.config.vocab_size)
    assert r.layer_names[0] == "embed" and r.layer_names[-1] == "final_norm"
    assert r.n_tokens == [len(tok(t)["input_ids"]) for t in TEXTS]
    greedy = sample(model, tok, TEXTS, k=1, decoding=Decoding(temperature=0, max_new_tokens=5,
                                                              chat=False), model_key="tiny")
    assert r.continuation == [s.text for s in greedy]
    for i, text in enumerate(TEXTS):  # padding and batch neighbours do not matter
        alone = readout(model, tok, [text], max_new_tokens=0)
        assert np.allclose(alone.hidden[:, 0], r.hidden[:, i], atol=1e-5)
        assert np.allclose(alone.logits[0], r.logits[i], atol=1e-5)
        assert alone.continuation == [""]
    with torch.no_grad():  # the final-norm state is what the LM head reads
        head = model.lm_head(torch.from_numpy(r.hidden[-1])).numpy()
    assert np.allclose(head, r.logits, atol=1e-4)


def test_readout_bad_input(tiny):
    model, tok = tiny
    for texts in ([], "the cat", ["the cat", ""]):
        with pytest.raises(ValueError, match="non-empty|empty"):
            readout(model, tok, texts)
    with pytest.raises(ValueError, match="max_new_tokens"):
        readout(model, tok, TEXTS, max_new_tokens=-1)
    with pytest.raises(ValueError, match="batch_size"):
        readout(model, tok, TEXTS, batch_size=0)
    with pytest.raises(ValueError, match="64-token context"):
        readout(model, tok, [" ".join(["cat"] * 60)], max_new_tokens=8)


def test_chat_text_and_cue(tiny):
    _, tok = tiny
    text = chat_text(tok, "the cat", "a dog")
    prompt = tok.apply_chat_template([{"role": "user", "content": "the cat"}], tokenize=False,
                                     add_generation_prompt=True)
    assert text == prompt + "a dog"
    assert chat_text(tok, "the cat", "a dog", chat=False) == "the cat\na dog"
    assert answer_cue(tok, "the answer is") == "the answer is"  # word-level: no space token


# --- problems file ---------------------------------------------------------------------

def test_bundled_problems():
    items = study.load_problems()
    assert len(items) >= 100 and len({p["id"] for p in items}) == len(items)
    assert all(isinstance(p["answer"], int) and p["question"].endswith("?") for p in items)


@pytest.mark.parametrize("lines, match", [
    (['{"id": 1, "question": "a?", "answer": 3}', '{"id": 2, "question": "b?"}'],
     "line 2: no 'answer'"),
    (['{"id": 1, "question": "a?", "answer": 3.5}', '{"id": 2, "question": "b?", "answer": 1}'],
     "line 1: answer 3.5 is not an integer"),
    (['{"id": 1, "question": "a?", "answer": "many"}'], "line 1: answer 'many'"),
    (['{"id": 1, "question": "a?", "answer": 1}', "", '{"id": 1, "question": "b", "answer": 2}'],
     "line 3: id '1' is used twice"),
    (['{"id": 1, "question": "a?", "answer": 1}', "{oops"], "line 2: not valid JSON"),
    (['{"id": 1, "answer": 1}'], "line 1: needs a non-empty string 'question'"),
    (['{"id": 1, "question": "a?", "answer": "7"}'], "holds 1 problem"),
])
def test_problems_file_errors_name_the_line(tmp_path, lines, match):
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputFileError, match=match):
        study.load_problems(path)


def test_probe_layer_indices():
    assert study.probe_layer_indices(32, None) == list(range(1, 32))
    picks = study.probe_layer_indices(32, 4)
    assert picks[0] == 1 and picks[-1] == 31 and len(picks) == 4


# --- the study ---------------------------------------------------------------------------

def test_score_regime_records_from_a_readout(tmp_path):
    """12 items, answer 7; even items answered right; block_1 separates right from wrong."""
    n, d, v = 12, 6, 10
    rng = np.random.default_rng(0)
    right = np.arange(n) % 2 == 0
    hidden = rng.normal(size=(3, n, d)).astype(np.float32)
    hidden[1] *= 0.1
    hidden[1, :, 0] += 5.0 * right
    hidden[0] = 1.0  # the cue token's embedding: identical for every item
    logits = np.zeros((n, v), dtype=np.float32)  # uniform: H_int = log2 10
    r = Readout(hidden, logits, ["7." if ok else "8" for ok in right], [5] * n,
                ["embed", "block_1", "final_norm"])
    problems = [{"id": f"q{i}", "question": "?", "answer": 7} for i in range(n)]
    generated = {("cot", p["id"]): ("so 3 + 4", 4) for p in problems}
    run = Run(tmp_path, study="t", config={})
    rows = study.score_regime(run, r, problems, "cot", settings(top_k=5), seed=0,
                              generated=generated, probe_layers=[1])
    rec = {(x["metric"], x.get("layer")): x for x in run.records}
    assert rec[("accuracy", None)]["value"] == 0.5 and rec[("accuracy", None)]["n_items"] == 12
    assert rec[("intention_entropy", None)]["value"] == pytest.approx(math.log2(10))
    assert rec[("intention_entropy_top5", None)]["value"] == pytest.approx(math.log2(5))
    assert rec[("probe_auroc", 1)]["value"] == 1.0 and ("probe_auroc", 2) not in rec
    assert rec[("probe_auroc", 1)]["note"] == "5-fold, 6 of 12 correct"
    assert rec[("entropy_auroc", None)]["value"] == 0.5  # equal entropies: no signal
    assert rec[("generated_tokens", None)]["value"] == 4
    assert ("dim_eff", 0) not in rec and rec[("dim_eff", 2)]["layer_name"] == "final_norm"
    assert all(x["section"] == "intention" and x["regime"] == "cot" for x in run.records)
    assert rows[0] == {"id": "q0", "regime": "cot", "answer": 7, "parsed": 7, "correct": True,
                       "h_int": pytest.approx(math.log2(10)),
                       "h_int_top5": pytest.approx(math.log2(5)), "generated_tokens": 4,
                       "input_tokens": 5, "output": "7.", "reasoning": "so 3 + 4"}


def settings(quick=False, seed=0, **params):
    """The registry's resolved settings of the intention study."""
    return STUDIES["intention"].settings(params, quick=quick, seed=seed)


TINY_SETTINGS = settings(n_items=6, cot_tokens=4, answer_tokens=3, probe_layers=2, seed=3)


def test_settings_defaults_quick_and_errors(tmp_path):
    full, quick = settings(), settings(quick=True)
    assert (full.n_items, full.cot_tokens, full.answer_tokens, full.top_k, full.folds,
            full.probe_layers, full.batch_size, full.sample_batch) == \
        (None, 128, 8, 100, 5, None, 16, 48)
    assert (quick.n_items, quick.cot_tokens, quick.probe_layers) == (24, 48, 4)
    assert settings(quick=True, n_items=6).n_items == 6  # given values win over quick
    for name, bad in (("cot_tokens", 0), ("answer_tokens", 0), ("top_k", 0),
                      ("batch_size", 0), ("sample_batch", 0), ("folds", 1), ("n_items", 1),
                      ("probe_layers", 0)):
        with pytest.raises(ValueError, match=f"{name}={bad}"):
            settings(**{name: bad})
    assert study.check(settings(n_items=6)) == {"problems": "bundled", "n_items": 6}


def tiny_lm():
    return LoadedModel(spec="tiny", model=make_model("llama"), tokenizer=make_tokenizer(),
                       weight_hash="tiny", source="", load_seconds=0.0)


def test_stage_records_table_resume_and_determinism(tmp_path):
    lm = tiny_lm()
    calls = {"n": 0}
    lm.model.register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    run = Run(tmp_path / "a", study="t", config={})
    study.study_stage(run, lm, TINY_SETTINGS)
    for regime in study.REGIMES:
        assert run.has("accuracy", section="intention", regime=regime)
        assert run.has("probe_auroc", section="intention", regime=regime, layer=4)
        assert run.has("dim_eff", section="intention", regime=regime, layer=1,
                       layer_name="block_1")
    table = run.read_table("intention_items")
    assert len(table["id"]) == 18 and set(table["regime"]) == set(study.REGIMES)
    assert (tmp_path / "a" / "intention" / "generations.jsonl").is_file()
    used = calls["n"]
    # an interrupted run resumes inside the study: recorded regimes are kept, generations
    # come from the cache
    resumed = Run(tmp_path / "a", study="t", config={}, resume=True)
    study.study_stage(resumed, lm, TINY_SETTINGS)
    assert calls["n"] == used  # nothing recomputed
    again = Run(tmp_path / "b", study="t", config={})
    study.study_stage(again, lm, TINY_SETTINGS)
    assert run.records == again.records
    # one regime missing: only its readout runs (one forward per batch, plus decoding)
    part = Run(tmp_path / "a", study="t", config={}, resume=True)
    part.remove("accuracy", section="intention", regime="babble")
    before = calls["n"]
    study.study_stage(part, lm, TINY_SETTINGS)
    assert calls["n"] > before
    assert [r for r in part.records if r.get("regime") != "babble"] == \
        [r for r in run.records if r.get("regime") != "babble"]
    assert {(r["metric"], r.get("layer"), r["value"]) for r in part.records} == \
        {(r["metric"], r.get("layer"), r["value"]) for r in run.records}
    assert part.read_table("intention_items") == table


def test_cli_intention(monkeypatch, capsys, tmp_path):
    path = tmp_path / "tiny"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    out = tmp_path / "run"
    args = ["collapsekit", "intention", "--model", str(path), "--quick", "--n-items", "4",
            "--cot-tokens", "3", "--out", str(out)]
    monkeypatch.setattr(sys, "argv", args)
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 0
    data = load_run(out)
    assert data["study"] == "intention" and data["config"]["n_items"] == 4
    assert data["config"]["cot_tokens"] == 3 and data["config"]["probe_layers"] == 4  # quick
    assert {r["regime"] for r in data["records"] if r["metric"] == "accuracy"} == \
        set(study.REGIMES)
    assert (out / "index.html").is_file() and data["done"] == ["intention"]
    # --resume of the finished run: skipped by the runner, without loading the model
    import collapsekit.models.registry as registry

    def no_load(*a, **k):
        raise AssertionError("the model was loaded for a finished study")

    with monkeypatch.context() as m:
        m.setattr(registry, "load_model", no_load)
        m.setattr(sys, "argv", args + ["--resume"])
        with pytest.raises(SystemExit) as done:
            cli.main()
    assert done.value.code == 0
    assert load_run(out)["records"] == data["records"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": 1, "question": "a?", "answer": 2}\n{"id": 2, "question": "b?"}\n')
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["collapsekit", "intention", "--model", str(path),
                                      "--problems", str(bad), "--out", str(tmp_path / "x")])
    with pytest.raises(SystemExit) as done:
        cli.main()
    err = capsys.readouterr().err
    assert done.value.code == 2 and "line 2: no 'answer'" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_real_embedded_model(tmp_path):
    from collapsekit.models.registry import load_model

    lm = load_model("embedded:smollm2-135m-instruct", device="cpu")
    assert answer_cue(lm.tokenizer) == "The answer is "  # digits follow a space token
    run = Run(tmp_path / "r", study="t", config={})
    study.study_stage(run, lm, settings(n_items=4, cot_tokens=8, answer_tokens=4,
                                        probe_layers=1))
    h = [r["value"] for r in run.records if r["metric"] == "intention_entropy"]
    assert len(h) == 3 and all(0 <= x <= math.log2(49152) for x in h)
    table = run.read_table("intention_items")
    assert all(isinstance(o, str) for o in table["output"])
    assert json.loads((tmp_path / "r" / "metrics.json").read_text())["tables"]
