"""The command line: commands listed, one-line errors with exit code 2, and the diversity
command on a samples file (no LM needed)."""

import json
import subprocess
import sys

import pytest

from collapsekit import cli
from conftest import run_cli




def test_help_lists_every_command():
    out = subprocess.run([sys.executable, "-m", "collapsekit.cli", "--help"],
                         capture_output=True, text=True, check=True).stdout
    for command in ("scan", "geometry", "diversity", "report"):
        assert command in out


@pytest.mark.parametrize("args, message", [
    (["scan", "--model", "nonsense-model"], "unknown model spec 'nonsense-model'"),
    (["scan", "--model", "embedded:gpt-17"], "choose one of embedded:smollm2-135m-instruct"),
    (["diversity"], "give exactly one of --samples FILE or --model SPEC"),
    (["report", "/nonexistent/run"], "metrics.json"),
])
def test_errors_are_one_line_with_exit_code_2(monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2
    assert message in err and err.startswith("error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert not (tmp_path / "collapse-report").exists()  # nothing written for a bad spec


def test_empty_prompt_file_and_malformed_jsonl(monkeypatch, capsys, tmp_path):
    empty = tmp_path / "prompts.txt"
    empty.write_text("# only a comment\n\n")
    code, _, err = run_cli(monkeypatch, capsys, "scan", "--prompts", str(empty),
                           "--out", str(tmp_path / "r"))
    assert code == 2 and "holds no texts" in err
    bad = tmp_path / "samples.jsonl"
    bad.write_text('{"prompt_id": 0, "text": "a b"}\n{"prompt_id": 0, "text": \n')
    code, _, err = run_cli(monkeypatch, capsys, "diversity", "--samples", str(bad),
                           "--out", str(tmp_path / "d"))
    assert code == 2 and "line 2" in err


def test_debug_shows_the_traceback(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["collapsekit", "--debug", "scan", "--model", "nope"])
    with pytest.raises(Exception, match="unknown model spec"):
        cli.main()


def test_diversity_of_a_samples_file(monkeypatch, capsys, tmp_path):
    rows = [{"prompt_id": p, "text": t} for p, texts in {
        "same": ["the cat sat on the mat"] * 3,
        "varied": ["the cat sat on the mat", "a storm broke over the harbour at dawn",
                   "quarterly revenue rose by four percent"]}.items() for t in texts]
    path = tmp_path / "samples.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "div"
    code, stdout, _ = run_cli(monkeypatch, capsys, "diversity", "--samples", str(path),
                              "--out", str(out), "--json")
    assert code == 0
    data = json.loads(stdout)
    per = {(r["metric"], r.get("prompt_id")): r["value"] for r in data["records"]}
    assert per[("distinct_1", "same")] == pytest.approx(5 / 18)  # 5 types / 18 tokens
    assert per[("self_bleu", "same")] == pytest.approx(1.0)
    assert per[("semantic_spread", "same")] == pytest.approx(0.0, abs=1e-6)
    assert per[("semantic_spread", "varied")] > 0.5
    assert per[("distinct_1", "varied")] == pytest.approx(18 / 20)  # 20 tokens, "the" thrice
    assert (out / "index.html").is_file()


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
