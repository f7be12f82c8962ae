"""Passkey retrieval: prompt construction, scoring on a stub generator, clamping, chunked
prefill equal to the plain forward, and the command on a tiny model."""

import json
import sys

import pytest
import torch

from collapsekit import cli
from collapsekit.models.longcontext import greedy, prefill
from collapsekit.models.registry import LoadedModel
from collapsekit.results import Run, load_run
from collapsekit.studies import STUDIES
from collapsekit.studies.probes import passkey as pk
from conftest import WORDS, make_model, make_tokenizer, run_cli

pytestmark = pytest.mark.usefixtures("one_thread")
SENTENCES = ["the cat sees the dog .", "a king loves the old queen .",
             "the river runs to the city .", "fire and water make stone ."]


@pytest.mark.parametrize("output, ok", [(" 71432. The", True), ("71 432", True),
                                        ("71,432", True), ("7143", False), ("no idea", False)])
def test_is_correct(output, ok):
    assert pk.is_correct("71432", output) is ok


def test_prompts_have_the_exact_length_and_the_needle_at_its_depth():
    tok = make_tokenizer()
    trials = pk.make_trials(tok, SENTENCES, lengths=[60, 90], depths=[0.0, 0.5, 1.0],
                            trials=2, seed=3)
    assert len(trials) == 12
    head = len(tok(pk.HEADER)["input_ids"])
    ask = len(tok("\n" + pk.QUESTION, add_special_tokens=False)["input_ids"])
    for t in trials:
        assert len(t.ids) == t.length and len(t.passkey) == 5
        needle = tok(" " + pk.NEEDLE.format(key=t.passkey), add_special_tokens=False)["input_ids"]
        assert t.ids[t.needle_at:t.needle_at + len(needle)] == needle
        fill = t.length - head - len(needle) - ask
        if t.depth == 0.0:
            assert t.needle_at == head
        if t.depth == 1.0:
            assert t.needle_at == head + fill  # right before the question
    again = pk.make_trials(tok, SENTENCES, lengths=[60, 90], depths=[0.0, 0.5, 1.0],
                           trials=2, seed=3)
    assert again == trials  # same seed, same prompts
    keys = {t.passkey for t in trials}
    assert len(keys) > 6  # keys differ across cells and trials


def test_scoring_with_a_stub_that_fails_above_a_length():
    trials = pk.make_trials(make_tokenizer(), SENTENCES, lengths=[50, 70, 90, 110],
                            depths=[0.0, 1.0], trials=3)
    calls = []

    def stub(batch):
        calls.append(len(batch))
        return [t.passkey + "." if t.length <= 70 else "I do not know" for t in batch]

    rows = pk.score(stub, trials, batch_tokens=140)
    assert calls[:2] == [2, 2] and sum(calls) == 24  # 140 // 50 = 2 trials per call
    summ = pk.summarise(rows, threshold=0.5)
    assert [(L, m) for L, m, *_ in summ["lengths"]] == [(50, 1.0), (70, 1.0), (90, 0.0),
                                                          (110, 0.0)]
    assert summ["collapse_length"] == 90
    assert summ["lengths"][0][2:] == (1.0, 1.0, 6)  # CI of all-correct trials is [1, 1]
    half = pk.score(lambda b: [t.passkey if t.depth == 0 else "x" for t in b], trials)
    cells = {(L, d): m for L, d, m, *_ in pk.summarise(half)["cells"]}
    assert cells[(50, 0.0)] == 1.0 and cells[(50, 1.0)] == 0.0
    assert pk.summarise(half, threshold=0.5)["collapse_length"] is None  # 0.5 is not below
    assert pk.summarise(half, threshold=0.6)["collapse_length"] == 50


def test_bad_input():
    tok = make_tokenizer()
    with pytest.raises(ValueError, match="no filler"):
        pk.make_trials(tok, [], lengths=[60], depths=[0.5], trials=1)
    with pytest.raises(ValueError, match="depths"):
        pk.make_trials(tok, SENTENCES, lengths=[60], depths=[1.5], trials=1)
    with pytest.raises(ValueError, match="cannot hold"):
        pk.make_trials(tok, SENTENCES, lengths=[20], depths=[0.5], trials=1)
    with pytest.raises(ValueError, match="lengths"):
        pk.clamp_lengths([], 64)
    with pytest.raises(ValueError, match="threshold"):
        pk.collapse_length({10: 0.2}, threshold=float("nan"))
    with pytest.raises(ValueError, match="no passkey trials"):
        pk.summarise([])
    with pytest.raises(ValueError, match="outputs"):
        pk.score(lambda b: [], pk.make_trials(tok, SENTENCES, lengths=[60], depths=[0.5],
                                              trials=1))


def test_clamp_warns_and_reports():
    with pytest.warns(UserWarning, match=r"\[100, 200\] exceed .* 60 tokens"):
        lengths, over = pk.clamp_lengths([40, 100, 200], 60)
    assert lengths == [40, 60] and over == [100, 200]


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_chunked_prefill_equals_the_plain_forward(arch):
    model = make_model(arch)
    ids = torch.randint(4, len(WORDS), (2, 40), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        full = model(input_ids=ids).logits
    for chunk in (1, 7, 40):
        logits, _ = prefill(model, ids, chunk=chunk, all_logits=True)
        torch.testing.assert_close(logits, full, rtol=1e-5, atol=1e-5)
        last, _ = prefill(model, ids, chunk=chunk)
        torch.testing.assert_close(last, full[:, -1], rtol=1e-5, atol=1e-5)
    rows = greedy(model, ids, max_new_tokens=5, chunk=7)
    assert rows == [greedy(model, ids[i], max_new_tokens=5, chunk=40)[0] for i in range(2)]
    with torch.inference_mode():  # equals step-by-step argmax of the plain forward
        seq = ids[0]
        for _ in range(5):
            seq = torch.cat([seq, model(input_ids=seq[None]).logits[0, -1].argmax()[None]])
    assert rows[0] == seq[40:].tolist()


def test_prefill_bad_input():
    model = make_model("llama")
    with pytest.raises(ValueError, match="chunk"):
        prefill(model, [5, 6], chunk=0)
    with pytest.raises(ValueError, match="non-empty"):
        prefill(model, [])
    with pytest.raises(ValueError, match="same length"):
        prefill(model, [[5, 6], [7]])


def _tiny_dir(tmp_path):
    path = tmp_path / "tiny"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return path


def test_command_end_to_end_with_clamping(monkeypatch, capsys, tmp_path):
    out = tmp_path / "pk"
    monkeypatch.setattr(sys, "argv", [
        "collapsekit", "passkey", "--model", str(_tiny_dir(tmp_path)), "--out", str(out),
        "--lengths", "40,50,100", "--depths", "0,1", "--trials", "2", "--filler", "repeat",
        "--json"])
    with pytest.warns(UserWarning, match="clamped"), pytest.raises(SystemExit) as exit_info:
        cli.main()
    assert exit_info.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["passkey_clamped"] == {"requested": [100], "limit": 56}  # 64 - 8 decoded
    acc = {r["length"]: r for r in data["records"] if r["metric"] == "passkey_accuracy"}
    assert sorted(acc) == [40, 50, 56]
    assert data["tables"]["passkey_trials"]["rows"] == 3 * 2 * 2
    cells = [r for r in data["records"] if r["metric"] == "passkey_cell_accuracy"]
    assert {(r["depth"], r["length"]) for r in cells} == {(d, L) for d in (0.0, 1.0)
                                                    for L in (40, 50, 56)}
    (summary,) = [r for r in data["records"] if r["metric"] == "passkey_collapse_length"]
    assert "clamped" in summary["note"]
    assert (out / "index.html").is_file() and (out / "tables" / "passkey_trials.csv").is_file()
    assert data["config"]["lengths"] == [40, 50, 100] and data["config"]["depths"] == [0, 1]
    assert data["done"] == ["passkey"]
    # --resume of the finished run: the runner skips it without loading the model
    import collapsekit.models.registry as registry

    def no_load(*a, **k):
        raise AssertionError("the model was loaded for a finished study")

    with monkeypatch.context() as m:
        m.setattr(registry, "load_model", no_load)
        code, _, err = run_cli(monkeypatch, capsys, *sys.argv[1:-1], "--resume")
    assert code == 0, err
    assert load_run(out)["records"] == data["records"]


def settings(quick=False, seed=0, **params):
    return STUDIES["passkey"].settings(params, quick=quick, seed=seed)


def test_settings_quick_full_and_errors(monkeypatch, capsys, tmp_path):
    full, quick = settings(), settings(quick=True)
    assert (full.lengths, full.depths, full.trials) == (
        (256, 512, 1024, 2048, 4096, 8192), (0.0, 0.25, 0.5, 0.75, 1.0), 4)
    assert (quick.lengths, quick.depths, quick.trials) == ((128, 256, 512, 1024),
                                                           (0.0, 0.5, 1.0), 1)
    assert (full.threshold, full.filler, full.max_new_tokens, full.chunk,
            full.batch_tokens) == (0.5, "wikipedia", 8, 512, 4096)
    assert settings(lengths="96,160").lengths == (96, 160)
    for kw, message in (({"filler": "bogus"}, "choose one of news, wikipedia, kjv, repeat"),
                        ({"threshold": 1.5}, "threshold=1.5"), ({"threshold": 0}, "threshold=0"),
                        ({"trials": 0}, "trials=0"),
                        ({"depths": "0,1.5"}, "depths=0,1.5"), ({"lengths": ""}, "lengths"),
                        ({"chunk": 0}, "chunk=0")):
        with pytest.raises(ValueError, match=message):
            settings(**kw)
    code, _, err = run_cli(monkeypatch, capsys, "passkey", "--filler", "bogus",
                           "--out", str(tmp_path / "x"))
    assert code == 2 and "choose one of" in err and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_stage_resumes_from_the_trial_table(tmp_path):
    """An interrupted run keeps its scored trials: only the missing ones meet the model."""
    lm = LoadedModel(spec="tiny", model=make_model("llama"), tokenizer=make_tokenizer(),
                     weight_hash="tiny", source="", load_seconds=0.0)
    calls = []
    lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    s = settings(lengths="40,50", depths="0,1", trials=2, filler="repeat", seed=2)
    run = Run(tmp_path / "a", study="passkey", config={})
    pk.study_stage(run, lm, s)
    rows = run.read_table("passkey_trials")
    assert len(rows["passkey"]) == 2 * 2 * 2 and calls
    full = [(r["metric"], r.get("length"), r.get("depth"), r["value"]) for r in run.records]
    calls.clear()
    resumed = Run(tmp_path / "a", study="passkey", config={}, resume=True)
    pk.study_stage(resumed, lm, s)
    assert calls == []  # every trial is in the table
    assert [(r["metric"], r.get("length"), r.get("depth"), r["value"])
            for r in resumed.records] == full
    part = Run(tmp_path / "b", study="passkey", config={})
    keep = [dict(zip(rows, v)) for v in zip(*rows.values()) if v[0] == 40]  # length 40 only
    assert list(rows)[0] == "length" and len(keep) == 4
    part.table("passkey_trials", keep)
    pk.study_stage(part, lm, s)
    assert calls  # the length-50 trials ran
    assert part.read_table("passkey_trials") == rows
    assert [(r["metric"], r.get("length"), r.get("depth"), r["value"])
            for r in part.records] == full


@pytest.mark.slow
def test_real_model_smoke(tmp_path):
    from collapsekit.models.registry import load_model
    from collapsekit.results import Run

    lm = load_model("embedded:smollm2-135m-instruct", device="cpu")
    run = Run(tmp_path / "r", study="passkey", config={})
    pk.study_stage(run, lm, settings(quick=True, lengths="96,160", depths="0", trials=1))
    acc = [r for r in run.records if r["metric"] == "passkey_accuracy"]
    assert [r["length"] for r in acc] == [96, 160]
    assert all(0 <= r["value"] <= 1 for r in acc)
    rows = run.read_table("passkey_trials")
    assert all(len(k) == 5 for k in rows["passkey"]) and len(rows["output"]) == 2
