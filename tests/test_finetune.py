"""``collapsekit finetune`` on a tiny llama: records for every strategy × generation, a run
killed in generation 2 resumes from the generation-1 checkpoint with the records of an
uninterrupted run, replace and accumulate differ, the junk share of the batches is the one
computed by hand, bad settings fail before the results folder exists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from collapsekit.models import finetune as ft
from collapsekit.studies import finetune as study
from collapsekit.studies.runner import run_study
from conftest import WORDS, make_model, make_tokenizer, run_cli

GENERATIONS, STEPS = 2, 2
TINY = {"generations": GENERATIONS, "steps": STEPS, "batch_size": 2, "n_samples": 3,
        "max_new_tokens": 4, "prompt_tokens": 2, "max_length": 10, "n_real": 3,
        "n_heldout": 3, "n_probe": 3, "eval_batch": 4, "lr": 1e-2, "embedding": False}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, one_thread):
    """(model folder, human-text file) in the tiny tokenizer's vocabulary."""
    root = tmp_path_factory.mktemp("finetune")
    make_model("llama").save_pretrained(root / "model", safe_serialization=True)
    make_tokenizer().save_pretrained(root / "model")
    rng = np.random.default_rng(0)
    words = [w for w in WORDS if w not in ".,?!"]
    lines = [" ".join(rng.choice(words, size=24)) + " ." for _ in range(20)]
    (root / "human.txt").write_text("\n".join(lines) + "\n")
    return str(root / "model"), str(root / "human.txt")


def _run(tiny, out, resume=False, **params):
    spec, texts = tiny
    run_study("finetune", out, model=spec, params={**TINY, "texts": texts, **params},
              device="cpu", report=False, resume=resume)
    return json.loads((out / "metrics.json").read_text())


def _records(data):
    return [{k: v for k, v in r.items()} for r in data["records"]]


@pytest.fixture
def count_steps(monkeypatch):
    """Counts optimizer steps; ``stop_at`` = n raises KeyboardInterrupt at the n-th."""
    state = {"n": 0, "stop_at": None}
    real = ft.train_step

    def counted(*a, **k):
        state["n"] += 1
        if state["stop_at"] is not None and state["n"] == state["stop_at"]:
            raise KeyboardInterrupt
        return real(*a, **k)

    monkeypatch.setattr(ft, "train_step", counted)
    return state


def test_records_resume_and_strategies(tiny, tmp_path, count_steps):
    full = _run(tiny, tmp_path / "full")
    assert count_steps["n"] == 2 * GENERATIONS * STEPS
    recs = full["records"]
    for st in ("replace", "accumulate"):
        for g in range(GENERATIONS + 1):
            got = {r["metric"] for r in recs if r.get("strategy") == st
                   and r.get("generation") == g}
            assert {"perplexity", "policy_entropy", "distinct_2", "rankme"} <= got, (st, g)
            assert (tmp_path / "full" / "checkpoints" / st / f"gen{g}.safetensors").is_file() \
                or g == 0
    assert full["finetune_progress"] == {"gen0": True, "replace": 2, "accumulate": 2}

    def value(metric, st, g):
        return next(r["value"] for r in recs if r["metric"] == metric
                    and r.get("strategy") == st and r.get("generation") == g
                    and r.get("layer") is None)

    assert value("perplexity", "replace", 0) == value("perplexity", "accumulate", 0)
    assert value("perplexity", "replace", 2) != value("perplexity", "accumulate", 2)
    assert value("train_pool", "replace", 2) == 3  # the 3 samples of generation 1
    assert value("train_pool", "accumulate", 2) == 3 + 3 + 3  # real + gens 0 and 1
    assert value("real_fraction", "accumulate", 1) == 0.5
    # only the trainable tensors (last 2 blocks + final norm) are saved
    saved = ft.read_checkpoint(tmp_path / "full" / "checkpoints" / "replace" / "gen1.safetensors")
    assert saved and all(k.startswith(("model.layers.1.", "model.layers.2.", "model.norm."))
                         for k in saved)

    # killed in generation 2 of replace: resume skips generation 1, same records
    count_steps.update(n=0, stop_at=STEPS + 1)
    with pytest.raises(KeyboardInterrupt):
        _run(tiny, tmp_path / "killed")
    count_steps.update(n=0, stop_at=None)
    resumed = _run(tiny, tmp_path / "killed", resume=True)
    assert count_steps["n"] == 2 * GENERATIONS * STEPS - STEPS
    assert _records(resumed) == _records(full)
    count_steps["n"] = 0
    _run(tiny, tmp_path / "killed", resume=True)  # finished: nothing is trained again
    assert count_steps["n"] == 0


def test_junk_mix_by_hand():
    assert study.junk_rows(0.0, 4, 3) == [0, 0, 0]
    assert study.junk_rows(0.25, 4, 3) == [1, 1, 1]
    # F·B = 0.75: cumulative round(0.75·i + 0.5) = 0, 1, 2, 2, 3 → 1, 1, 0, 1
    assert study.junk_rows(0.1875, 4, 4) == [1, 1, 0, 1]
    assert study.junk_rows(1.0, 3, 2) == [3, 3]
    pool, junk = [f"p{i}" for i in range(5)], [f"j{i}" for i in range(3)]
    batches = study.training_batches(pool, junk, steps=4, batch_size=4, junk=0.1875,
                                     rng=np.random.default_rng(0))
    assert [sum(t.startswith("j") for t in b) for b in batches] == [1, 1, 0, 1]
    drawn = [t for b in batches for t in b if t.startswith("p")]
    assert len(drawn) == 13 and sorted(drawn[:5]) == pool  # every text once before twice
    with pytest.raises(ValueError, match="junk"):
        study.junk_rows(1.5, 4, 1)


def test_junk_changes_the_training_mix(tiny, tmp_path, monkeypatch):
    seen = []
    real = study.training_batches

    def spy(*a, **k):
        out = real(*a, **k)
        seen.append(out)
        return out

    monkeypatch.setattr(study, "training_batches", spy)
    data = _run(tiny, tmp_path / "junk", strategies="replace", generations=1, steps=4,
                batch_size=4, mix="junk=0.1875")
    bundled = study.bundled_junk()
    assert len(bundled) == 48
    cut = study._Cut(make_tokenizer())  # junk texts as the study cuts them (max_length)
    junk = {cut(j, TINY["max_length"]) for j in bundled}
    assert [sum(t in junk for t in b) for b in seen[0]] == [1, 1, 0, 1]
    frac = next(r["value"] for r in data["records"] if r["metric"] == "train_junk_fraction")
    assert frac == 3 / 16  # round(0.1875·4·4) junk rows of 16
    assert study.junk_share(None) == 0 and study.junk_share("junk=0.25") == 0.25
    assert data["config"]["n_junk_texts"] == 48 and data["config"]["junk_texts"] == "bundled"


@pytest.mark.parametrize("param, message", [
    ("strategies=replace,forget", "choose one of replace, accumulate"),
    ("strategies=replace,replace", "repeat"),
    ("mix=junk=1.5", "must be a finite number >= 0 and <= 1"),
    ("mix=spam=0.2", "write junk=F"),
    ("junk_file=/nonexistent/junk.txt", "junk.txt"),
    ("n_heldout=999", "finetune needs"),
    ("prompt_tokens=10", "prompt_tokens"),
    ("data=web", "choose one of self"),
])
def test_bad_settings_fail_before_the_folder(tiny, tmp_path, monkeypatch, capsys, param,
                                             message):
    out = tmp_path / "bad"
    given = [x for k, v in TINY.items() if k != param.split("=")[0]
             for x in ("--param", f"{k}={v}")]
    code, _, err = run_cli(monkeypatch, capsys, "finetune", "--model", tiny[0], *given,
                           "--param", f"texts={tiny[1]}", "--param", param, "--out", str(out))
    assert code == 2 and message in err, err
    assert not out.exists()


def test_policy_entropy_of_the_logits_batches(one_thread):
    """The monitor's PolicyEntropy over ``logits_batches`` equals −Σ p ln p averaged over
    the real tokens, computed directly in float64 from one unpadded forward per text."""
    import torch

    from collapsekit.monitor import PolicyEntropy

    model, tok = make_model("llama"), make_tokenizer()
    texts = ["the cat sees the dog .", "a king walks", "water fire earth wind stone gold"]
    ent = PolicyEntropy()
    for logits, mask in ft.logits_batches(model, tok, texts, max_length=6, batch_size=2):
        ent.update(logits, mask)
    total, count = 0.0, 0
    with torch.no_grad():
        for text in texts:
            ids = tok(text, add_special_tokens=False, return_tensors="pt")["input_ids"][:, :6]
            logp = torch.log_softmax(model(input_ids=ids).logits[0].double(), dim=-1)
            total += float(-(logp.exp() * logp).sum())
            count += ids.shape[1]
    assert count == 6 + 3 + 6
    assert total / count == pytest.approx(ent.compute()["policy_entropy"], rel=1e-5)
    assert 0 < total / count <= np.log(len(tok))
