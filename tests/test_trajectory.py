"""Checkpoint trajectories: checkpoints named by a folder, a list file or revisions; the
trajectory of real checkpoints saved while fine-tuning the tiny llama equals the
per-checkpoint single runs, resumes without recomputing, and plots against the step."""

import json

import pytest
import torch

from collapsekit.errors import CollapsekitError, InputFileError
from collapsekit.report.layout import plan
from collapsekit.results import load_run
from collapsekit.studies import run_study
from collapsekit.studies.checkpoints import checkpoints, step_of
from collapsekit.studies.trajectory import run_trajectory
from conftest import WORDS, make_model, make_tokenizer, run_cli

GEOMETRY = {"n": "6", "max_length": "16", "batch_size": "3"}


@pytest.fixture(scope="module")
def training_run(tmp_path_factory, one_thread):
    """checkpoint-2, -4 and -6 of the tiny llama fine-tuned (AdamW, lr 1e-2) on word
    sequences, saved as Trainer saves them (weights + tokenizer per checkpoint)."""
    from collapsekit.models import finetune as ft

    root = tmp_path_factory.mktemp("train")
    model, tok = make_model("llama"), make_tokenizer()
    texts = [" ".join(WORDS[i:i + 12]) for i in range(0, 60, 6)]
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for step in range(1, 7):
        loss = ft.train_step(model, opt, ft.encode_batch(tok, texts, max_length=16,
                                                         device="cpu"))
        assert loss is not None
        if step % 2 == 0:
            model.save_pretrained(root / f"checkpoint-{step}", safe_serialization=True)
            tok.save_pretrained(root / f"checkpoint-{step}")
    model.eval()
    return root


def test_step_of_names():
    assert step_of("checkpoint-500") == 500
    assert step_of("step1000") == 1000
    assert step_of("stage1-step2000-tokens8B") == 2000
    assert step_of("global_step7") == 7
    assert step_of("final") is None


def test_checkpoints_from_folder_list_and_revisions(tmp_path, training_run):
    found = checkpoints(str(training_run))
    assert [(c.name, c.step) for c in found] == [("checkpoint-2", 2), ("checkpoint-4", 4),
                                                 ("checkpoint-6", 6)]
    listing = tmp_path / "ckpts.txt"
    listing.write_text(f"# two of them\n{training_run / 'checkpoint-6'}\n\n"
                       f"{training_run / 'checkpoint-2'} 20\n")
    assert [(c.name, c.step) for c in checkpoints(str(listing))] == [("checkpoint-6", 6),
                                                                     ("checkpoint-2", 20)]
    revs = checkpoints("EleutherAI/pythia-70m@step3000,step1000")
    assert [(c.step, c.spec) for c in revs] == [(1000, "EleutherAI/pythia-70m@step1000"),
                                                (3000, "EleutherAI/pythia-70m@step3000")]


def test_checkpoints_bad_input(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="no checkpoint-N folders"):
        checkpoints(str(tmp_path / "empty"))
    (tmp_path / "half" / "checkpoint-3").mkdir(parents=True)
    with pytest.raises(InputFileError, match="hold no config.json"):
        checkpoints(str(tmp_path / "half"))
    listing = tmp_path / "l.txt"
    listing.write_text("some/model\n")
    with pytest.raises(InputFileError, match="no step in 'model'"):
        checkpoints(str(listing))
    listing.write_text("a/step1 1\nb/step1 2\n")
    with pytest.raises(CollapsekitError, match="step1 appear twice"):
        checkpoints(str(listing))
    with pytest.raises(CollapsekitError, match="carries no step"):
        checkpoints("org/model@main")
    with pytest.raises(CollapsekitError, match="no such folder or file"):
        checkpoints("./nowhere")


def test_trajectory_equals_single_runs_and_resumes(tmp_path, training_run, monkeypatch):
    out = tmp_path / "traj"
    run_trajectory(out, str(training_run), studies=["geometry"], quick=True,
                   params=GEOMETRY, device="cpu", report=False)
    data = load_run(out)
    assert data["done"] == [f"checkpoint-{s}/geometry" for s in (2, 4, 6)]
    assert all(isinstance(r["step"], int) and r["checkpoint"] == f"checkpoint-{r['step']}"
               for r in data["records"])
    rankme = {}
    for step in (2, 4, 6):
        single = tmp_path / f"single{step}"
        run_study("geometry", single, model=str(training_run / f"checkpoint-{step}"),
                  quick=True, params=GEOMETRY, device="cpu", report=False)
        own = load_run(single)["records"]
        mine = [{k: v for k, v in r.items() if k not in ("checkpoint", "step", "study")}
                for r in data["records"] if r["step"] == step]
        assert mine == [{k: v for k, v in r.items() if k != "study"} for r in own]
        rankme[step] = [r["value"] for r in own if r["metric"] == "rankme"]
    assert rankme[2] != rankme[6]  # training moved the representation

    def no_rerun(*_, **__):
        raise AssertionError("a finished checkpoint was recomputed")

    monkeypatch.setattr("collapsekit.studies.trajectory.run_study", no_rerun)
    run_trajectory(out, str(training_run), studies=["geometry"], quick=True,
                   params=GEOMETRY, device="cpu", resume=True, report=False)
    assert load_run(out)["records"] == data["records"]

    views = {(p.metric, p.kind, p.x, p.y) for s in plan(data["records"]) for p in s.plots}
    assert ("rankme", "heatmap", "step", "layer") in views  # layer × step
    assert ("min_rankme", "line", "step", None) in views  # against training step
    plain = [{k: v for k, v in r.items() if k != "checkpoint"} for r in data["records"]]
    assert all(p.kind != "heatmap" or p.y != "layer" or p.x != "step"
               for s in plan(plain) for p in s.plots)  # e.g. the monitor's layer × step lines


def test_trajectory_command_and_bad_starts(tmp_path, training_run, monkeypatch, capsys):
    out, listing = tmp_path / "t", tmp_path / "two.txt"
    listing.write_text("\n".join(str(training_run / f"checkpoint-{s}") for s in (2, 6)))
    code, _, err = run_cli(monkeypatch, capsys, "trajectory", str(listing), "--studies",
                           "geometry", "--quick", "--device", "cpu", "--out", str(out),
                           "--param", "attention=false", "--param", "rank_collapse=false",
                           *[f"--param=geometry.{k}={v}" for k, v in GEOMETRY.items()])
    assert code == 0, err
    data = json.loads((out / "metrics.json").read_text())
    assert data["config"]["studies"] == ["geometry"]
    assert {r["step"] for r in data["records"]} == {2, 6}
    assert "rankme" in (out / "index.html").read_text()
    for args, message in (((str(tmp_path / "none"),), "no such folder or file"),
                          ((str(training_run), "--studies", "nope"), "unknown study 'nope'"),
                          ((str(training_run), "--param", "n=x"), "expected an integer"),
                          ((str(training_run), "--studies", "manifold"), "run(s) on no model")):
        capsys.readouterr()
        code, _, err = run_cli(monkeypatch, capsys, "trajectory", *args, "--out",
                               str(tmp_path / "bad"))
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "bad").exists()


def test_a_study_given_a_training_run_points_to_trajectory(training_run, monkeypatch, capsys,
                                                           tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "geometry", "--model", str(training_run),
                           "--out", str(tmp_path / "g"))
    assert code == 2 and "holds checkpoint-N folders" in err and "trajectory" in err, err
    assert not (tmp_path / "g").exists()
