"""The command line: commands listed, --version and --help, one-line errors with exit code
2 (usage errors too), and the diversity command on a samples file (no LM needed)."""

import json
import math
import subprocess
import sys

import pytest

from collapsekit import __version__, cli
from collapsekit.models.registry import DEFAULT_MODEL
from collapsekit.studies import STUDIES
from conftest import run_cli


def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "collapsekit.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("scan", "report", "compare", "simulate", *STUDIES):
        assert command in out


def test_version(monkeypatch, capsys):
    code, out, err = run_cli(monkeypatch, capsys, "--version")
    assert code == 0 and out == f"{__version__}\n" and "Traceback" not in err


def test_study_help_lists_its_parameters(monkeypatch, capsys):
    code, out, _ = run_cli(monkeypatch, capsys, "passkey", "--help")
    assert code == 0
    assert "--lengths" in out and "--param" in out and "NAME=VALUE" in out


def test_unknown_option_is_one_line_with_exit_code_2(monkeypatch, capsys, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(monkeypatch, capsys, "geometry", "--bogus")
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and "--bogus" in err
    assert "Traceback" not in err
    assert not (tmp_path / "collapse-report").exists()


@pytest.mark.parametrize("args, message", [
    (["scan", "--model", "nonsense-model"], "unknown model spec 'nonsense-model'"),
    (["scan", "--model", "embedded:gpt-17"], "choose one of embedded:smollm2-135m-instruct"),
    (["scan", "--studies", "geometry,telepathy"], "unknown study 'telepathy'"),
    (["scan", "--param", "diversity.k=1"], "--param k=1 for study 'diversity': must be at "
                                           "least 2"),
    (["scan", "--param", "colour=red"], "no study of this scan has a parameter 'colour'"),
    (["diversity", "--k", "1"], "--param k=1 for study 'diversity': must be at least 2"),
    (["diversity", "--model", "x", "--model", "x"], "--model repeats a model"),
    (["geometry", "--param", "nope=1"], "unknown parameter(s) nope for study 'geometry'"),
    (["geometry", "--param", "n"], "--param 'n' is not key=value"),
    (["report", "/nonexistent/run"], "metrics.json"),
])
def test_errors_are_one_line_with_exit_code_2(monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not list(tmp_path.iterdir())  # nothing written for a bad spec or setting


def test_diversity_without_samples_samples_the_default_model(monkeypatch, capsys, tmp_path):
    """No more "give exactly one of --samples or --model": the default model is loaded (a
    stand-in loader stops the run there, after the settings and prompts were read)."""
    from collapsekit.errors import CollapsekitError

    def load_model(spec, **kw):
        raise CollapsekitError(f"would load {spec}")

    monkeypatch.setattr("collapsekit.models.registry.load_model", load_model)
    out = tmp_path / "d"
    code, _, err = run_cli(monkeypatch, capsys, "diversity", "--out", str(out))
    assert code == 2 and f"error: would load {DEFAULT_MODEL}\n" in err
    assert not out.exists()  # a run that failed before its first stage leaves nothing


def test_empty_prompt_file_and_malformed_jsonl(monkeypatch, capsys, tmp_path):
    empty = tmp_path / "prompts.txt"
    empty.write_text("# only a comment\n\n")
    for args in (("scan", "--param", f"diversity.prompts={empty}"),
                 ("scan", "--studies", "diversity", "--param", f"prompts={empty}"),
                 ("diversity", "--prompts", str(empty))):
        code, _, err = run_cli(monkeypatch, capsys, *args, "--out", str(tmp_path / "r"))
        assert code == 2 and "holds no texts" in err and err.count("\n") == 1, (args, err)
        assert not (tmp_path / "r").exists()
    bad = tmp_path / "samples.jsonl"
    bad.write_text('{"prompt_id": 0, "text": "a b"}\n{"prompt_id": 0, "text": \n')
    code, _, err = run_cli(monkeypatch, capsys, "diversity", "--samples", str(bad),
                           "--out", str(tmp_path / "d"))
    assert code == 2 and "line 2" in err
    assert not (tmp_path / "d").exists()


def test_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["collapsekit", "--debug", "scan", "--model", "nope"])
    with pytest.raises(Exception, match="unknown model spec"):
        cli.main()


def _samples_file(path, groups):
    path.write_text("".join(json.dumps({"prompt_id": p, "text": t}) + "\n"
                            for p, texts in groups.items() for t in texts))
    return path


def test_diversity_of_a_samples_file(monkeypatch, capsys, tmp_path):
    path = _samples_file(tmp_path / "samples.jsonl", {
        "same": ["the cat sat on the mat"] * 3,
        "varied": ["the cat sat on the mat", "a storm broke over the harbour at dawn",
                   "quarterly revenue rose by four percent"]})
    out = tmp_path / "div"
    code, stdout, _ = run_cli(monkeypatch, capsys, "diversity", "--samples", str(path),
                              "--out", str(out), "--json")
    assert code == 0
    data = json.loads(stdout)
    model = [r for r in data["records"] if r.get("source") == "model"]
    # the samples-file path is the sampled runs' scoring path: scope model=<file name>, no
    # temperature (nothing was sampled), and no model loaded
    assert model and all(r["model"] == "samples.jsonl" and "temperature" not in r
                         for r in model)
    assert "model" not in data or not data["model"].get("spec")
    per = {(r["metric"], r.get("prompt_id")): r["value"] for r in model}
    assert per[("distinct_1", "same")] == pytest.approx(5 / 18)  # 5 types / 18 tokens
    assert per[("self_bleu", "same")] == pytest.approx(1.0)
    assert per[("semantic_spread", "same")] == pytest.approx(0.0, abs=1e-6)
    assert per[("semantic_spread", "varied")] > 0.5
    assert per[("distinct_1", "varied")] == pytest.approx(18 / 20)  # 20 tokens, "the" thrice
    # meaning classes: three identical texts are one class (entropy 0); three unrelated
    # ones three classes (entropy log 3); no log-probs in a file: no likelihood form
    assert per[("num_distinct_classes", "same")] == 1
    assert per[("semantic_entropy", "same")] == pytest.approx(0.0, abs=1e-12)
    assert per[("num_distinct_classes", "varied")] == 3
    assert per[("semantic_entropy", "varied")] == pytest.approx(math.log(3))
    assert not any(r["metric"] == "semantic_entropy_likelihood" for r in data["records"])
    degen = {r["metric"]: r for r in data["records"] if r.get("section") == "degeneration"}
    assert degen["loop_rate"]["value"] == 0 and degen["loop_rate"]["decoding"] == "sampling"
    assert any(r.get("source") == "human" for r in data["records"])  # the human baseline
    assert (out / "index.html").is_file()


def test_diversity_of_a_samples_file_with_unequal_counts(monkeypatch, capsys, tmp_path):
    path = _samples_file(tmp_path / "mixed.jsonl", {
        "three": ["the cat sat", "a dog ran far", "the cat sat"],
        "two": ["red fish swim", "blue birds fly high"]})
    out = tmp_path / "div"
    code, stdout, err = run_cli(monkeypatch, capsys, "diversity", "--samples", str(path),
                                "--out", str(out), "--json")
    assert code == 0, err
    data = json.loads(stdout)
    per = {(r["metric"], r.get("prompt_id")): r["value"] for r in data["records"]
           if r.get("source") == "model"}
    assert per[("distinct_1", "three")] == pytest.approx(7 / 10)  # 7 types / 10 tokens
    assert per[("distinct_1", "two")] == pytest.approx(1.0)
    assert per[("num_distinct_classes", "three")] <= 2  # two of the three are identical
    one = _samples_file(tmp_path / "one.jsonl", {"a": ["x y", "z w"], "b": ["only one"]})
    code, _, err = run_cli(monkeypatch, capsys, "diversity", "--samples", str(one),
                           "--out", str(tmp_path / "one"))
    assert code == 2 and "at least 2 samples" in err and err.count("\n") == 1


@pytest.mark.slow
def test_diversity_samples_the_default_model(monkeypatch, capsys, tmp_path):
    out = tmp_path / "d"
    code, stdout, err = run_cli(monkeypatch, capsys, "diversity", "--quick", "--out", str(out),
                                "--param", "n_prompts=2", "--k", "2", "--max-new-tokens", "4",
                                "--momentum", "0", "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert data["config"]["model"] == [DEFAULT_MODEL] and data["model"]["spec"] == DEFAULT_MODEL
    spread = [r for r in data["records"] if r["metric"] == "semantic_spread"]
    assert sorted(r["prompt_id"] for r in spread) == [0, 1]
    assert {(r["model"], r["temperature"]) for r in spread} == {(DEFAULT_MODEL, 1.0)}
    assert len((out / "samples.jsonl").read_text().splitlines()) == 4


def test_simulate_command_matches_its_closed_form(monkeypatch, capsys, tmp_path):
    out = tmp_path / "sim"
    code, stdout, _ = run_cli(monkeypatch, capsys, "simulate", "--learner", "linear",
                              "--strategy", "replace,accumulate", "--generations", "5",
                              "--seeds", "200", "--param", "d=4", "--param", "T=40",
                              "--out", str(out), "--json")
    assert code == 0
    recs = json.loads(stdout)["records"]
    sim = {(r["strategy"], r["generation"]): r for r in recs
           if r["metric"] == "test_error" and r.get("source") == "simulation"}
    ref = {(r["strategy"], r["generation"]): r["value"] for r in recs
           if r["metric"] == "test_error" and r.get("source") == "closed_form"}
    # OLS, replace: E_test(n) = n·σ²d/(T−d−1) = n·4/35 (σ² = 1)
    assert ref[("replace", 5)] == pytest.approx(5 * 4 / 35)
    r = sim[("replace", 5)]
    assert r["ci_low"] <= ref[("replace", 5)] <= r["ci_high"]
    assert sim[("accumulate", 5)]["value"] < r["value"]


def test_simulate_param_must_be_key_value(monkeypatch, capsys, tmp_path):
    code, _, err = run_cli(monkeypatch, capsys, "simulate", "--learner", "linear",
                           "--param", "d10", "--out", str(tmp_path / "s"))
    assert code == 2 and "key=value" in err


def test_default_out_is_one_folder_per_command_model_and_quick():
    from collapsekit.cli import default_out

    assert str(default_out("scan")) == "collapse-report/scan"
    assert str(default_out("scan", "embedded:gemma3-270m", "quick")) == \
        "collapse-report/scan-gemma3-270m-quick"
    assert str(default_out("geometry", "./runs/my ckpt/", None)) == \
        "collapse-report/geometry-my-ckpt"
    assert str(default_out("diversity", "org/name", "/m/x.gguf")) == \
        "collapse-report/diversity-name-x"
