"""`collapsekit compare`: overlays, matched differences and cross-model homogeneity, on
hand-made runs and on two real scans of tiny models made with ``run_scan``."""

import json
import sys

import numpy as np
import pytest

from collapsekit import cli
from collapsekit.errors import InputFileError
from collapsekit.results import Run, read_table
from collapsekit.studies.compare import differences, run_compare

BASIS = {"x": [1, 0, 0], "y": [0, 1, 0], "z": [0, 0, 1], "w": [1, 1, 0]}


def basis_embedder(texts):
    return np.array([BASIS[t] for t in texts], dtype=float)


def make_run(path, spec, rankme, samples=None):
    run = Run(path, study="scan", config={"model": spec})
    run.meta(model={"spec": spec})
    for layer, v in enumerate(rankme):
        run.add("rankme", v, layer=layer, section="geometry")
    run.add("mean_distinct_1", rankme[0] / 10, section="diversity", ci_low=0, ci_high=1)
    if samples:
        lines = [json.dumps({"prompt": p, "prompt_id": i, "text": t})
                 for i, (p, ts) in enumerate(samples.items()) for t in ts]
        run.file("samples.jsonl").write_text("\n".join(lines) + "\n")
    run.finish()
    return path


def test_differences_match_scope_and_sort_by_relative_change():
    a = [{"metric": "m", "value": 2.0, "layer": 0, "study": "scan", "ci_low": 1},
         {"metric": "m", "value": 4.0, "layer": 1, "study": "scan"},
         {"metric": "only_a", "value": 1.0}, {"metric": "m", "value": None, "layer": 2}]
    b = [{"metric": "m", "value": 3.0, "layer": 0, "study": "diversity"},
         {"metric": "m", "value": 4.4, "layer": 1}, {"metric": "m", "value": 1.0, "layer": 2}]
    rows = differences(a, b)
    assert [(r["a"], r["b"]) for r in rows] == [(2.0, 3.0), (4.0, 4.4)]
    assert rows[0]["diff"] == 1.0 and rows[0]["rel_diff"] == 0.5
    assert rows[1]["rel_diff"] == pytest.approx(0.1)
    assert json.loads(rows[0]["scope"]) == {"layer": 0}


def test_compare_overlays_runs_and_measures_homogeneity(tmp_path):
    a = make_run(tmp_path / "a", "model-a", [5.0, 4.0, 3.0], {"p1": ["x", "y"], "p2": ["x", "w"]})
    b = make_run(tmp_path / "b", "model-b", [5.0, 2.0, 1.5], {"p1": ["x", "z"], "p3": ["z", "z"]})
    html = run_compare(a, b, tmp_path / "cmp", embedder=basis_embedder)
    assert html.is_file()
    data = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    overlay = {(r["run"], r["layer"]): r["value"] for r in data["records"]
               if r["metric"] == "rankme"}
    assert overlay[("model-a", 1)] == 4.0 and overlay[("model-b", 2)] == 1.5
    diff = read_table(tmp_path / "cmp", "differences")
    assert diff["metric"][0] == "rankme" and diff["diff"][0] == pytest.approx(-2.0)
    got = {r["metric"] + str(r.get("model", "")): r["value"] for r in data["records"]
           if r.get("section") == "homogeneity" and "prompt_id" not in r}
    # shared prompt p1: A = {x, y}, B = {x, z}; cross = mean cos over the 4 pairs = 1/4
    assert got["cross_model_cosine"] == pytest.approx(0.25)
    assert got["within_model_cosinemodel-a"] == pytest.approx(0.0)
    assert data["shared_prompts"] == 1


def test_compare_command_and_bad_input(tmp_path, monkeypatch, capsys):
    a = make_run(tmp_path / "a", "same", [3.0, 2.0])
    b = make_run(tmp_path / "b", "same", [3.0, 1.0])
    monkeypatch.setattr(sys, "argv", ["collapsekit", "compare", str(a), str(b), "--out",
                                      str(tmp_path / "c")])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 0
    runs = {r["run"] for r in json.loads((tmp_path / "c" / "metrics.json").read_text())["records"]
            if "run" in r}
    assert runs == {"a", "b"}  # same spec: labelled by folder name
    with pytest.raises(InputFileError, match="one of the compared runs"):
        run_compare(a, b, a)
    with pytest.raises(InputFileError, match="not a collapsekit results folder"):
        run_compare(a, tmp_path / "nothing", tmp_path / "d")
    empty = Run(tmp_path / "e", study="scan", config={})
    empty.write()
    with pytest.raises(InputFileError, match="holds no records"):
        run_compare(a, tmp_path / "e", tmp_path / "f")


def test_read_samples_groups_by_prompt_text_or_id(tmp_path):
    from collapsekit.io import read_samples

    f = tmp_path / "s.jsonl"
    f.write_text('{"prompt": "p", "prompt_id": 7, "text": "a"}\n'
                 '{"prompt": "p", "prompt_id": 8, "text": "b"}\n')
    assert read_samples(f) == {"7": ["a"], "8": ["b"]}
    assert read_samples(f, by="prompt") == {"p": ["a", "b"]}
    with pytest.raises(ValueError, match="group by"):
        read_samples(f, by="model")


def test_compare_two_scans_made_by_the_runner(tmp_path):
    import warnings

    from collapsekit.studies import run_scan
    from conftest import make_model, make_tokenizer

    scans = {}
    for seed in (0, 1):
        spec = tmp_path / f"m{seed}"
        make_model("llama", seed=seed).save_pretrained(spec, safe_serialization=True)
        make_tokenizer().save_pretrained(spec)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scans[str(spec)] = run_scan(tmp_path / f"scan{seed}", model=str(spec),
                                        studies=["geometry", "diversity"], params={
                "geometry.n": 4, "geometry.max_length": 16, "geometry.batch_size": 4,
                "diversity.k": 2, "diversity.max_new_tokens": 4, "diversity.n_prompts": 2,
                "divergence": False}, report=False).parent
    (spec_a, a), (spec_b, b) = scans.items()
    same = lambda texts: np.ones((len(texts), 2))  # every text alike: all cosines are 1
    run_compare(a, b, tmp_path / "cmp", embedder=same)
    data = json.loads((tmp_path / "cmp" / "metrics.json").read_text())
    assert data["study"] == "compare" and data["config"]["labels"] == [spec_a, spec_b]
    for spec, folder in scans.items():  # every record of both scans, labelled by model spec
        own = json.loads((folder / "metrics.json").read_text())["records"]
        copied = [r for r in data["records"] if r.get("run") == spec]
        assert len(copied) == len(own)
        rankme = {(r["layer"], r.get("basis")): r["value"] for r in own if r["metric"] == "rankme"}
        assert {(r["layer"], r.get("basis")): r["value"] for r in copied
                if r["metric"] == "rankme"} == rankme
    diff = read_table(tmp_path / "cmp", "differences")
    bases = [json.loads(s).get("basis") for m, s in zip(diff["metric"], diff["scope"])
             if m == "rankme"]  # embed, 3 blocks, final norm; raw and standardised coordinates
    assert sorted(bases, key=str) == [None] * 5 + ["standardised"] * 5
    got = {r["metric"] + str(r.get("model", "")): r["value"] for r in data["records"]
           if r.get("section") == "homogeneity" and "prompt_id" not in r}
    assert data["shared_prompts"] == 2  # both scans sampled the first 2 bundled prompts
    assert got["cross_model_cosine"] == pytest.approx(1.0)
    assert got["within_model_cosine" + spec_a] == pytest.approx(1.0)
