"""Monitor and CollapseCallback on the tiny models of conftest with a real transformers.Trainer:
measuring steps, unchanged training, logs seen by later callbacks, alerts, stop_on, the
results folder, and the catalogue."""

import json
import random
import warnings

import numpy as np
import pytest
import torch
from conftest import WORDS, make_model, make_tokenizer
from transformers import Trainer, TrainerCallback, TrainingArguments

from collapsekit.metrics.catalog import lookup
from collapsekit.monitor import CollapseCallback, Monitor

pytestmark = pytest.mark.usefixtures("one_thread")

PROBE = ["the cat runs in the city and the dog sees the moon",
         "a king loves the queen . the child walks to the river",
         "the old tree is green and the sun is small"] * 2
PROMPTS = ["the cat", "a king tells"]
KW = dict(probe_texts=PROBE, prompts=PROMPTS, k=3, max_new_tokens=8)


def _dataset(n=32, length=12, seed=0):
    tok = make_tokenizer()
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        text = " ".join(rng.choice(WORDS[:60]) for _ in range(rng.randint(5, length - 2)))
        ids = tok(text)["input_ids"][:length]
        pad = length - len(ids)
        rows.append({"input_ids": torch.tensor(ids + [0] * pad),
                     "attention_mask": torch.tensor([1] * len(ids) + [0] * pad),
                     "labels": torch.tensor(ids + [-100] * pad)})
    return rows


class Recorder(TrainerCallback):
    """Placed after the CollapseCallback: keeps every logs dict it is shown."""

    def __init__(self):
        self.logs = []

    def on_log(self, args, state, control, logs=None, **kw):
        self.logs.append((state.global_step, dict(logs)))


def _train(tmp_path, callbacks, max_steps=7):
    args = TrainingArguments(output_dir=str(tmp_path / "trainer"), max_steps=max_steps,
                             per_device_train_batch_size=4, learning_rate=5e-3,
                             logging_steps=1, report_to=[], use_cpu=True, seed=0,
                             save_strategy="no", disable_tqdm=True, dataloader_num_workers=0)
    model = make_model()
    trainer = Trainer(model=model, args=args, train_dataset=_dataset(), callbacks=callbacks)
    trainer.train()
    return trainer


def _losses(trainer):
    return [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h]


def test_monitor_step_restores_mode_and_rng(tmp_path):
    model, tok = make_model(), make_tokenizer()
    mon = Monitor(model, tok, out=tmp_path / "mon", **KW)
    for training in (True, False):
        model.train(training)
        random.seed(1), np.random.seed(1), torch.manual_seed(1)
        values = mon.step(0 if training else 1)
        assert model.training is training
        assert (random.random(), np.random.rand(), torch.rand(1).item()) == (
            random.Random(1).random(), np.random.RandomState(1).rand(),
            torch.rand(1, generator=torch.Generator().manual_seed(1)).item())
    assert "collapse/rankme/block_1" in values and "collapse/policy_entropy" in values
    assert "collapse/distinct_2" in values and "collapse/attention_entropy/block_2" in values
    # every recorded metric name is catalogued; every record carries its step
    recs = json.loads((tmp_path / "mon" / "metrics.json").read_text())["records"]
    assert {r["step"] for r in recs} == {0, 1}
    missing = {r["metric"] for r in recs if lookup(r["metric"]) is None}
    assert not missing, f"uncatalogued monitor metrics: {missing}"
    assert lookup("alert") is not None and lookup("policy_entropy_top100") is not None


def test_monitor_alert_warns_records_and_stops(tmp_path):
    model, tok = make_model(), make_tokenizer()
    mon = Monitor(model, tok, out=tmp_path / "mon", alerts={"policy_entropy": 0.5},
                  stop_on=["policy_entropy"], **KW)
    mon.step(0)
    assert not mon.should_stop
    mon.baseline["collapse/policy_entropy"] *= 4  # now the value is a 75% fall from it
    with pytest.warns(UserWarning, match="collapse alert: policy_entropy"):
        mon.step(5)
    assert mon.should_stop and mon.fired[0]["step"] == 5
    recs = json.loads((tmp_path / "mon" / "metrics.json").read_text())["records"]
    alert = [r for r in recs if r["metric"] == "alert"]
    assert len(alert) == 1 and alert[0]["alert_metric"] == "policy_entropy"
    assert alert[0]["step"] == 5 and alert[0]["baseline"] == pytest.approx(
        mon.baseline["collapse/policy_entropy"])
    with warnings.catch_warnings():  # fires once per (metric, layer)
        warnings.simplefilter("error")
        mon.step(6)


@pytest.mark.parametrize("kw, match", [
    (dict(alerts={"nonsense": 0.3}), "not a catalogued"),
    (dict(alerts={"rankme": -1}), ">= 0"),
    (dict(alerts={"rankme": 0.3}, stop_on=["distinct_2"]), "without an alert"),
    (dict(k=1), r"k \(answers per prompt; diversity needs 2\)=1 must be an integer >= 2"),
    (dict(probe_texts=[]), "probe_texts"),
])
def test_monitor_bad_arguments(kw, match):
    args = {**KW, **kw}
    with pytest.raises(ValueError, match=match):
        Monitor(make_model(), make_tokenizer(), **args)
    with pytest.raises(ValueError, match="every_n_steps"):
        CollapseCallback(make_tokenizer(), every_n_steps=0)


def test_callback_in_trainer(tmp_path):
    baseline = _train(tmp_path / "plain", [])
    cb, rec = CollapseCallback(make_tokenizer(), every_n_steps=3, out=tmp_path / "mon", **KW), \
        Recorder()
    trainer = _train(tmp_path / "watched", [cb, rec])
    # measured at step 0 and every 3 steps
    assert cb.measured_steps == [0, 3, 6]
    # training is unchanged by the measurements
    plain, watched = _losses(baseline), _losses(trainer)
    assert [s for s, _ in plain] == [s for s, _ in watched] == list(range(1, 8))
    np.testing.assert_allclose([l for _, l in watched], [l for _, l in plain], rtol=1e-6)
    # the callback runs first, so a later callback (a reporter) sees the values in logs
    assert trainer.callback_handler.callbacks[0] is cb
    seen = {step for step, logs in rec.logs if "collapse/rankme/block_1" in logs}
    assert {3, 6} <= seen and 1 in seen  # step 0's values reach the reporters at step 1
    # and log_history has them at their steps
    hist = {h["step"] for h in trainer.state.log_history if "collapse/rankme/block_1" in h}
    assert hist == {0, 3, 6}
    recs = json.loads((tmp_path / "mon" / "metrics.json").read_text())
    assert {r["step"] for r in recs["records"]} == {0, 3, 6}
    assert recs["study"] == "monitor" and recs["finished"]


def test_callback_stop_on_alert_stops_training(tmp_path):
    names = ("rankme", "anisotropy", "top_coordinate_share", "participation_ratio")
    cb = CollapseCallback(make_tokenizer(), every_n_steps=2, alerts=dict.fromkeys(names, 0.0),
                          stop_on=names, **KW)
    with pytest.warns(UserWarning, match="collapse alert"):
        trainer = _train(tmp_path, [cb], max_steps=10)
    assert cb.monitor.should_stop
    assert trainer.state.global_step == 2 < 10


def test_callback_in_trl_sft_trainer(tmp_path):
    trl = pytest.importorskip("trl")
    datasets = pytest.importorskip("datasets")
    rng = random.Random(0)
    texts = [" ".join(rng.choice(WORDS[:60]) for _ in range(8)) for _ in range(16)]
    args = trl.SFTConfig(output_dir=str(tmp_path / "sft"), max_steps=4, logging_steps=1,
                         per_device_train_batch_size=4, report_to=[], use_cpu=True, seed=0,
                         save_strategy="no", disable_tqdm=True, max_length=16)
    cb = CollapseCallback(make_tokenizer(), every_n_steps=2, **KW)
    trainer = trl.SFTTrainer(model=make_model(), args=args, processing_class=make_tokenizer(),
                             train_dataset=datasets.Dataset.from_dict({"text": texts}),
                             callbacks=[cb])
    trainer.train()
    assert cb.measured_steps == [0, 2, 4]
    assert {h["step"] for h in trainer.state.log_history if "collapse/distinct_1" in h} == {
        0, 2, 4}
