"""Perplexity drift: exact per-document NLL, ratio 1 for identical models, rank-one edits,
bits per byte across tokenizers, bad corpora, and the command on a tiny model."""

import json
import math
import sys

import numpy as np
import pytest
import torch

from collapsekit import cli
from collapsekit.models.editing import mlp_output_matrix, preserved, rank_one_edit
from collapsekit.models.perplexity import DocumentNLL, document_nll
from collapsekit.models.registry import LoadedModel
from collapsekit.results import Run, load_run
from collapsekit.studies import STUDIES
from collapsekit.studies.probes import drift
from conftest import SPECIAL, WORDS, make_model, make_tokenizer

pytestmark = pytest.mark.usefixtures("one_thread")
TEXTS = ["the cat sees the dog and the dog sees the cat .",
         "a king loves the old queen",
         "the river runs to the city by the green tree . the sun is small"]


def test_perplexity_equals_exp_mean_cross_entropy_of_a_plain_forward():
    model, tok = make_model("llama"), make_tokenizer()
    got = document_nll(model, tok, TEXTS, batch_size=2)  # padded batches
    for i, text in enumerate(TEXTS):
        ids = torch.tensor([[tok.bos_token_id] + tok(text, add_special_tokens=False)["input_ids"]])
        with torch.no_grad():
            ce = torch.nn.functional.cross_entropy(model(input_ids=ids).logits[0, :-1], ids[0, 1:])
        assert got.tokens[i] == ids.shape[1] - 1
        assert got.perplexity()[i] == pytest.approx(math.exp(ce.item()), rel=1e-5)
        assert got.bits_per_byte()[i] == pytest.approx(
            ce.item() * got.tokens[i] / math.log(2) / len(text.encode()), rel=1e-5)
    one = document_nll(model, tok, TEXTS, batch_size=1)
    np.testing.assert_allclose(one.nll, got.nll, rtol=1e-5)
    assert got.pooled_perplexity() == pytest.approx(
        math.exp(got.nll.sum() / got.tokens.sum()))


def test_ratio_ci_closed_form():
    a = DocumentNLL(np.array([2.0, 4.0]), np.array([1, 1]), np.array([10, 10]), "x")
    b = DocumentNLL(np.array([4.0, 6.0]), np.array([1, 1]), np.array([10, 10]), "x")
    ratio, lo, hi = drift.ratio_ci(a, b, per_token=True)
    assert ratio == pytest.approx(math.exp(2.0))  # exp(5) / exp(3)
    assert lo == pytest.approx(math.exp(2.0)) and hi == pytest.approx(math.exp(2.0))
    assert drift.ratio_ci(a, b, per_token=False)[0] == pytest.approx(10 / 6)


def test_identical_models_give_ratio_one_exactly():
    model, tok = make_model("llama"), make_tokenizer()
    monitor = drift.DriftMonitor(model, TEXTS, tokenizer=tok)
    recs = {r["metric"]: r for r in monitor.measure(make_model("llama"), step=1)}
    assert recs["perplexity_ratio"]["value"] == 1.0
    assert (recs["perplexity_ratio"]["ci_low"], recs["perplexity_ratio"]["ci_high"]) == (1.0, 1.0)
    assert recs["bits_per_byte_ratio"]["value"] == 1.0
    assert recs["drift_collapse"]["value"] == 0.0 and recs["drift_collapse"]["step"] == 1
    assert recs["drift_collapse"]["compared_by"] == "perplexity"
    assert [r["ratio"] for r in monitor.documents] == [1.0] * len(TEXTS)


def test_rank_one_edit_changes_one_matrix_by_a_rank_one_term():
    model = make_model("llama")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    name, w = mlp_output_matrix(model, 1)
    assert name == "model.layers.1.mlp.down_proj.weight"
    norm = torch.linalg.matrix_norm(w.detach().double(), ord=2).item()
    with preserved(model, 1):
        edit = rank_one_edit(model, layer=1, scale=0.5, seed=7)
        changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
        assert changed == [name] and edit.spectral_norm == pytest.approx(norm)
        sv = torch.linalg.svdvals((w.detach() - before[name]).double())
        assert sv[0].item() == pytest.approx(0.5 * norm, rel=1e-5)
        assert sv[1].item() < 1e-5 * sv[0].item()  # rank one (up to float32 rounding)
        edited = w.detach().clone()
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    other = make_model("llama")
    rank_one_edit(other, layer=1, scale=0.5, seed=7)
    assert torch.equal(mlp_output_matrix(other, 1)[1], edited)  # same seed, same edit
    gpt2 = make_model("gpt2")
    assert mlp_output_matrix(gpt2, -1)[0] == "transformer.h.2.mlp.c_proj.weight"
    with pytest.raises(ValueError, match=r"\(block index\)=3 must be an integer >= -3 and <= 2"):
        rank_one_edit(model, layer=3, scale=1.0)
    with pytest.raises(ValueError, match="finite"):
        rank_one_edit(model, layer=0, scale=float("nan"))


def _permuted_tokenizer():
    """Same words, different ids: the corpus is tokenized differently."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(SPECIAL + WORDS[::-1])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>",
                                   bos_token="<s>", eos_token="</s>")


def test_different_tokenizers_are_compared_by_bits_per_byte():
    monitor = drift.DriftMonitor(make_model("llama"), TEXTS, tokenizer=make_tokenizer())
    recs = {r["metric"]: r for r in monitor.measure(
        make_model("gpt2"), tokenizer=_permuted_tokenizer(), model="B")}
    assert "perplexity_ratio" not in recs and "perplexity" not in recs
    assert recs["drift_collapse"]["compared_by"] == "bits_per_byte"
    assert "bits per byte" in recs["drift_collapsed_documents"]["note"]
    assert recs["bits_per_byte_ratio"]["value"] == pytest.approx(
        recs["bits_per_byte"]["value"] / monitor.reference.pooled_bits_per_byte())


def test_bad_corpora_give_clear_errors():
    model, tok = make_model("llama"), make_tokenizer()
    with pytest.raises(ValueError, match="corpus is empty"):
        document_nll(model, tok, [])
    with pytest.raises(ValueError, match="corpus is empty"):
        drift.DriftMonitor(model, [], tokenizer=tok)
    with pytest.raises(ValueError, match="document 1 is empty"):
        document_nll(model, tok, ["the cat", "  "])
    with pytest.raises(ValueError, match="64-token context"):
        document_nll(model, tok, [" ".join(["the"] * 80)])
    with pytest.raises(ValueError, match="corpus is empty"):
        drift.reference_texts([])
    with pytest.raises(ValueError, match="batch_size"):
        document_nll(model, tok, TEXTS, batch_size=0)
    with pytest.raises(ValueError, match="threshold"):
        drift.DriftMonitor(model, TEXTS, tokenizer=tok, threshold=0.5)


def test_edit_stage_resumes_step_by_step(tmp_path):
    """Steps already recorded (an interrupted run) are kept; only the missing ones are
    measured, counted in forward passes; the records equal a run made in one go."""
    lm = LoadedModel(spec="tiny", model=make_model("llama"), tokenizer=make_tokenizer(),
                     weight_hash="tiny", source="", load_seconds=0.0)
    calls = []
    lm.model.register_forward_pre_hook(lambda *a: calls.append(1))
    kw = dict(layer=1, scale=3.0, seed=4, batch_size=4)  # 3 texts: one forward per pass
    whole = Run(tmp_path / "whole", study="drift", config={})
    drift.edit_stage(whole, lm, TEXTS, edits=2, **kw)
    assert len(calls) == 3  # the reference, then edits 1 and 2 (step 0 is the reference)
    part = Run(tmp_path / "part", study="drift", config={})
    drift.edit_stage(part, lm, TEXTS, edits=1, **kw)  # interrupted after step 1
    calls.clear()
    resumed = Run(tmp_path / "part", study="drift", config={}, resume=True)
    drift.edit_stage(resumed, lm, TEXTS, edits=2, **kw)
    assert len(calls) == 2  # the reference again, and only step 2
    assert resumed.records == whole.records
    assert resumed.read_table("drift_documents") == whole.read_table("drift_documents")
    assert resumed.read_table("drift_edits") == whole.read_table("drift_edits")
    calls.clear()
    drift.edit_stage(resumed, lm, TEXTS, edits=2, **kw)  # every step recorded
    assert calls == [] and resumed.records == whole.records


def test_settings_and_check(tmp_path):
    study = STUDIES["drift"]
    full, quick = study.settings(), study.settings(quick=True)
    assert (full.n, full.words, full.edits) == (64, 256, 5)
    assert (quick.n, quick.words, quick.edits) == (8, 64, 3)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    s = study.settings({"texts": str(texts)}, model=("a",))
    assert drift.check(s) == {"texts": str(texts), "n": 3, "mode": "edit"}
    s = study.settings({"texts": str(texts)}, model=("a", "b"))
    assert drift.check(s)["mode"] == "compare"
    with pytest.raises(ValueError, match="not 3"):
        drift.check(study.settings({"texts": str(texts)}, model=("a", "b", "c")))
    with pytest.raises(ValueError, match="threshold=1 for study 'drift': must be above 1"):
        study.settings({"texts": str(texts), "threshold": 1}, model=("a",))
    with pytest.raises(ValueError, match="threshold=0.5"):
        study.settings({"threshold": 0.5})
    with pytest.raises(ValueError, match="edits=0"):
        study.settings({"edits": 0})


def _tiny_dir(tmp_path, name="tiny"):
    path = tmp_path / name
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return path


def _cli(monkeypatch, capsys, *args):
    monkeypatch.setattr(sys, "argv", ["collapsekit", "drift", *args])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    out = capsys.readouterr()
    return exit_info.value.code, out.out, out.err


def test_command_edits_and_two_models(monkeypatch, capsys, tmp_path):
    tiny, texts = _tiny_dir(tmp_path), tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    out = tmp_path / "edits"
    code, stdout, _ = _cli(monkeypatch, capsys, "--model", str(tiny), "--texts", str(texts),
                           "--edits", "2", "--edit-scale", "3", "--out", str(out), "--json")
    assert code == 0
    data = json.loads(stdout)
    ratio = {r["step"]: r["value"] for r in data["records"] if r["metric"] == "perplexity_ratio"}
    assert sorted(ratio) == [0, 1, 2] and ratio[0] == 1.0 and ratio[2] != 1.0
    assert data["tables"]["drift_documents"]["rows"] == 3 * len(TEXTS)
    assert (out / "index.html").is_file()
    assert data["config"]["model"] == [str(tiny)] and data["config"]["mode"] == "edit"
    assert data["config"]["edits"] == 2 and data["config"]["n"] == 3
    assert data["done"] == ["drift"]
    import collapsekit.models.registry as registry

    def no_load(*a, **k):
        raise AssertionError("the model was loaded for a finished study")

    with monkeypatch.context() as m:  # a finished run resumes without loading the model
        m.setattr(registry, "load_model", no_load)
        code, stdout, _ = _cli(monkeypatch, capsys, "--model", str(tiny), "--texts",
                               str(texts), "--edits", "2", "--edit-scale", "3", "--out",
                               str(out), "--resume", "--json")
    assert code == 0 and json.loads(stdout)["records"] == data["records"]
    twin = _tiny_dir(tmp_path, "twin")  # the same weights in another folder
    code, stdout, _ = _cli(monkeypatch, capsys, "--model", str(tiny), "--model", str(twin),
                           "--texts", str(texts), "--out", str(tmp_path / "ab"), "--json")
    assert code == 0
    ab = json.loads(stdout)
    recs = [r for r in ab["records"] if r["metric"] == "perplexity_ratio"]
    assert [r["value"] for r in recs] == [1.0, 1.0]
    assert [r["model"] for r in recs] == [str(tiny), str(twin)]
    assert ab["config"]["mode"] == "compare" and ab["config"]["model"] == [str(tiny), str(twin)]
    assert [m["spec"] for m in ab["models"]] == [str(tiny), str(twin)]
    code, _, err = _cli(monkeypatch, capsys, "--model", str(tiny), "--model", str(tiny),
                        "--texts", str(texts), "--out", str(tmp_path / "same"))
    assert code == 2 and "--model repeats a model" in err and err.count("\n") == 1
    assert not (tmp_path / "same").exists()
    code, _, err = _cli(monkeypatch, capsys, "--model", str(tiny), "--model", str(twin),
                        "--model", str(_tiny_dir(tmp_path, "third")),
                        "--out", str(tmp_path / "three"))
    assert code == 2 and "give one --model (edit mode) or two" in err and "not 3" in err
    assert not (tmp_path / "three").exists()
    code, _, err = _cli(monkeypatch, capsys, "--model", str(tiny), "--model", str(twin),
                        "--threshold", "1", "--texts", str(texts),
                        "--out", str(tmp_path / "low"))
    assert code == 2 and "threshold=1 for study 'drift': must be above 1" in err
    assert not (tmp_path / "low").exists()


def test_edits_with_two_models_is_refused(monkeypatch, capsys, tmp_path):
    tiny, twin, texts = _tiny_dir(tmp_path), _tiny_dir(tmp_path, "twin"), tmp_path / "t.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    code, _, err = _cli(monkeypatch, capsys, "--model", str(tiny), "--model", str(twin),
                        "--texts", str(texts), "--edits", "2", "--out", str(tmp_path / "bad"))
    assert code == 2 and "edits apply to one model (edit mode)" in err
    assert not (tmp_path / "bad").exists()
