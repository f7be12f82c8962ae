"""The study registry: a study registered at run time runs from the command line (with
--quick, --param, --resume) and inside scan; settings resolve in the documented order;
only NotApplicable turns into a skipped probe."""

import json

import pytest

from collapsekit.errors import NotApplicable
from collapsekit.params import Param
from collapsekit.studies import STUDIES, Study, run_scan
from conftest import make_model, make_tokenizer, run_cli

CALLS = []


def echo_stage(run, lm, s):
    """Records what it was given: the word's length times the model's depth."""
    CALLS.append(dict(s))
    run.add("echo_length", len(s.word) * lm.n_layers, section="echo", repeat=s.repeat)


def _study(**kw):
    return Study("echo", section="echo", doc="Echo a word.", stage=echo_stage, params={
        "word": Param(str, "collapse", "a word"), "repeat": Param(int, 3, "times", low=1)},
        quick={"word": "qk"}, **kw)


@pytest.fixture
def tiny_spec(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiny") / "tiny"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return str(path)


@pytest.fixture
def echo(monkeypatch):
    monkeypatch.setitem(STUDIES, "echo", _study(scan={"repeat": 7}))
    CALLS.clear()
    return STUDIES["echo"]


def _records(out):
    return json.loads((out / "metrics.json").read_text())["records"]


def test_settings_resolve_default_scan_quick_then_given(echo):
    assert echo.settings().word == "collapse" and echo.settings().repeat == 3
    assert echo.settings(in_scan=True).repeat == 7
    assert echo.settings(quick=True, in_scan=True).word == "qk"
    s = echo.settings({"repeat": "9"}, quick=True, in_scan=True, seed=4)
    assert (s.word, s.repeat, s.seed, s.quick) == ("qk", 9, 4, True)
    with pytest.raises(ValueError, match="--param repeat=0 for study 'echo': must be at least 1"):
        echo.settings({"repeat": 0})
    with pytest.raises(ValueError, match="unknown parameter.*colour.*takes word, repeat"):
        echo.settings({"colour": "red"})
    with pytest.raises(ValueError, match="quick/scan override unknown parameter"):
        Study("bad", section="x", doc="", stage=echo_stage, quick={"nope": 1})


def test_registered_study_runs_from_the_cli_with_quick_param_and_resume(
        echo, tiny_spec, tmp_path, monkeypatch, capsys):
    out = tmp_path / "echo"
    args = ("echo", "--model", tiny_spec, "--quick", "--param", "repeat=2", "--out", str(out))
    code, _, err = run_cli(monkeypatch, capsys, *args, "--json")
    assert code == 0, err
    assert [(r["metric"], r["value"], r["repeat"]) for r in _records(out)] == [
        ("echo_length", 2 * 3, 2)]  # "qk" from --quick, 3 layers, repeat from --param
    assert len(CALLS) == 1
    code, _, err = run_cli(monkeypatch, capsys, *args, "--resume")
    assert code == 0 and len(CALLS) == 1  # done: the runner skips the stage
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and "--resume" in err and err.count("\n") == 1
    assert (out / "index.html").is_file()
    code, _, err = run_cli(monkeypatch, capsys, "echo", "--word", "abcd", "--out",
                           str(tmp_path / "flag"), "--model", tiny_spec, "--no-report")
    assert code == 0 and _records(tmp_path / "flag")[0]["value"] == 4 * 3
    assert not (tmp_path / "flag" / "index.html").exists()  # --no-report


def test_bad_param_fails_before_the_folder_is_made(echo, tmp_path, monkeypatch, capsys):
    for bad in (("--param", "repeat=x"), ("--param", "nope=1"), ("--param", "repeat")):
        code, _, err = run_cli(monkeypatch, capsys, "echo", *bad, "--out",
                               str(tmp_path / "x"))
        assert code == 2 and err.startswith("error: ") and err.count("\n") == 1, err
    assert not (tmp_path / "x").exists()


def test_scan_looks_studies_up_at_run_time(echo, tiny_spec, tmp_path):
    out = run_scan(tmp_path / "scan", model=tiny_spec, studies=["echo"],
                   params={"echo.word": "abc"}).parent
    assert [(r["value"], r["repeat"], r["study"]) for r in _records(out)] == [(9, 7, "scan")]
    STUDIES["echo"] = _study(scan={})  # replacing the entry changes what the scan runs
    run_scan(tmp_path / "scan2", model=tiny_spec, studies=["echo"], params={"word": "ab"})
    assert _records(tmp_path / "scan2")[0]["repeat"] == 3
    with pytest.raises(ValueError, match="no study of this scan has a parameter 'colour'"):
        run_scan(tmp_path / "scan3", model=tiny_spec, studies=["echo"],
                 params={"colour": "red"})
    with pytest.raises(ValueError, match="unknown study 'nope'"):
        run_scan(tmp_path / "scan4", model=tiny_spec, studies=["nope"])


def _raises(exc):
    def stage(run, lm, s):
        raise exc
    return stage


def test_only_not_applicable_becomes_a_skipped_probe(monkeypatch, tiny_spec, tmp_path):
    monkeypatch.setitem(STUDIES, "na", Study("na", section="na", doc="", scan={},
                                             stage=_raises(NotApplicable("context too short"))))
    with pytest.warns(UserWarning, match="probe na skipped: context too short"):
        out = run_scan(tmp_path / "a", model=tiny_spec, studies=["na"]).parent
    assert [(r["metric"], r["probe"], r["note"]) for r in _records(out)] == [
        ("probe_skipped", "na", "context too short")]
    monkeypatch.setitem(STUDIES, "bug", Study("bug", section="bug", doc="", scan={},
                                              stage=_raises(ValueError("shapes (3,) (4,)"))))
    with pytest.raises(ValueError, match="shapes"):  # a bug is never a skipped probe
        run_scan(tmp_path / "b", model=tiny_spec, studies=["bug"])


def test_runner_refuses_an_empty_model_list_and_a_bare_study_string(tmp_path):
    from collapsekit.studies import run_study

    with pytest.raises(ValueError, match="no --model given"):
        run_study("diversity", tmp_path / "a", model=[])
    with pytest.raises(ValueError, match="give a list of study names"):
        run_scan(tmp_path / "b", studies="agents")
    with pytest.raises(ValueError, match="--param temperatures=0.0 for study 'diversity'"):
        run_study("diversity", tmp_path / "c", params={"temperatures": [0.0]})
    assert not any((tmp_path / x).exists() for x in "abc")
