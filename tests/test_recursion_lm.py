"""The causal-LM learner on the tiny random llama of conftest (no downloaded weights)."""

import numpy as np
import pytest
import torch
from conftest import WORDS, make_model, make_tokenizer

from collapsekit.studies.recursion import make_learner, parse_strategy, run_lanes

CONTENT = [w for w in WORDS if w.isalpha()]
_rng = np.random.default_rng(0)
TEXTS = [" ".join(_rng.choice(CONTENT[:12], size=int(_rng.integers(6, 10))))
         for _ in range(40)]
SMALL = {"n_train": 8, "n_test": 8, "max_tokens": 10, "prompt_tokens": 2, "steps": 2,
         "batch_size": 4, "device": "cpu", "eval_batch": 8}


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest


def _learner(**params):
    return make_learner("lm", {**SMALL, **params}, model=make_model("llama"),
                        tokenizer=make_tokenizer(), texts=TEXTS)


def test_loop_records_cross_entropy_and_is_deterministic():
    runs = [run_lanes(_learner(), parse_strategy(s), 3, [7]) for s in
            ("replace", "accumulate", "replace")]
    for res in runs:
        c = res[0]["curves"]
        assert len(c["cross_entropy"]) == 3 and np.isfinite(c["cross_entropy"]).all()
        assert 0 < c["distinct_1"][0] <= 1
        assert "cross_entropy" in res[0]["initial"]  # generation 0: the base model
    assert runs[0] == runs[2]  # same seed, same numbers
    assert runs[1][0]["curves"]["real_fraction"] == [1.0, 0.5, 1 / 3]
    # generation 1 trains on the same real data in both strategies
    assert runs[0][0]["curves"]["cross_entropy"][0] == runs[1][0]["curves"][
        "cross_entropy"][0]


def test_fine_tuning_lowers_held_out_loss_and_reset_restores_base():
    lrn = _learner(steps=15, lr=3e-3)
    rngs = [np.random.default_rng(0)]
    world = lrn.world(rngs)
    base = lrn.initial(world)["cross_entropy"][0]
    model = lrn.fit(world, lrn.real(world, 8, rngs), rngs)
    tuned = lrn.cross_entropy(model, world["test"])
    assert tuned < base - 0.3  # the texts use 12 of ~90 words: easy to learn
    lrn.fit(world, lrn.real(world, 8, rngs), rngs)  # reset=true: starts again from base
    lrn.p["steps"] = 0
    assert lrn.cross_entropy(lrn.fit(world, lrn.real(world, 8, rngs), rngs),
                             world["test"]) == pytest.approx(base)


def test_cross_entropy_matches_manual_computation():
    lrn = _learner()
    model, tok = lrn._load()
    text = TEXTS[0]
    ids = torch.tensor([tok(text, add_special_tokens=False)["input_ids"][:10]])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0, :-1].double(), -1)
    manual = -logp[torch.arange(ids.shape[1] - 1), ids[0, 1:]].mean().item()
    assert lrn.cross_entropy(model, [text]) == pytest.approx(manual, rel=1e-6)


def test_samples_continue_real_prefixes():
    lrn = _learner()
    rngs = [np.random.default_rng(3)]
    world = lrn.world(rngs)
    model, tok = lrn._load()
    out = lrn.sample(world, model, 5, rngs, {"top_k": 3})[0]
    prefixes = {" ".join(t.split()[:2]) for t in world["train"][0][:8]}
    assert len(out) == 5 and all(" ".join(t.split()[:2]) in prefixes for t in out)
    assert all(len(tok(t, add_special_tokens=False)["input_ids"]) <= 10 for t in out)


def test_lm_input_errors():
    with pytest.raises(ValueError, match="pass both model and tokenizer"):
        make_learner("lm", SMALL, model=make_model("llama"))
    with pytest.raises(ValueError, match="lr=x"):
        make_learner("lm", {"lr": "x"})


def test_lm_learner_loads_its_model_in_the_dtype_asked(tiny_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("COLLAPSEKIT_CACHE", str(tmp_path / "cache"))
    learner = make_learner("lm", {**SMALL, "model": str(tiny_dir), "dtype": "bfloat16"})
    model, _ = learner._load()
    assert model.dtype == torch.bfloat16 and learner.describe()["model"]["dtype"] == \
        "torch.bfloat16"
    with pytest.raises(ValueError, match="dtype"):
        make_learner("lm", {**SMALL, "dtype": "int8"})
