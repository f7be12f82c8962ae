"""Results folder: refusal/resume/force, atomic writes, NaN handling, tables."""

import csv
import json
import os
import time

import numpy as np
import pytest

from collapsekit.errors import InputFileError, RunDirError
from collapsekit.results import GENERATOR, Run, atomic_write, config_hash, load_run, read_table

CFG = {"model": "embedded:smollm2-135m-instruct", "n": 64, "sampling": {"t": 1.0}}


def strict_json(path):
    """Parse as standard JSON: NaN/Infinity tokens are errors."""
    def bad(tok):
        raise AssertionError(f"non-standard JSON token {tok}")
    return json.loads(path.read_text(), parse_constant=bad)


def test_metrics_json_content_and_finish(tmp_path):
    run = Run(tmp_path / "r", study="scan", config=CFG)
    assert run.path == tmp_path / "r"
    data = strict_json(tmp_path / "r" / "metrics.json")  # written on open
    for key in ("collapsekit_version", "study", "created", "finished", "config",
                "config_hash", "seeds", "model", "packages", "timings", "records"):
        assert key in data
    assert data["finished"] is None and data["study"] == "scan" and data["config"] == CFG
    assert data["config_hash"] == config_hash(CFG)
    assert {"python", "numpy"} <= data["packages"].keys()
    run.meta(model={"spec": "embedded:x"}, seeds={"sampling": 3}, samples_table="s")
    run.meta(model={"weight_hash": "abc"})
    run.finish()
    data = strict_json(tmp_path / "r" / "metrics.json")
    assert data["finished"] is not None
    assert data["model"] == {"spec": "embedded:x", "weight_hash": "abc"}
    assert data["seeds"] == {"sampling": 3} and data["samples_table"] == "s"
    with pytest.raises(ValueError, match="managed by the run"):
        run.meta(records=[])


def test_config_hash_is_canonical():
    assert config_hash({"a": 1, "b": (1, 2)}) == config_hash({"b": [1, 2], "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_nan_inf_and_numpy_values_become_json(tmp_path):
    run = Run(tmp_path, study="scan", config={})
    run.add("rankme", np.float32(0.5), layer=np.int64(3), model="m")
    run.add("rankme", float("nan"), layer=4)
    run.add("rankme", np.inf, layer=5, ci_low=-np.inf, ci_high=np.float64("nan"))
    run.add("rankme", None, layer=6)
    run.write()
    recs = strict_json(tmp_path / "metrics.json")["records"]
    assert recs[0] == {"metric": "rankme", "value": 0.5, "study": "scan", "layer": 3,
                       "model": "m"}
    assert type(recs[0]["layer"]) is int
    assert [r["value"] for r in recs[1:]] == [None, None, None]
    assert recs[2]["ci_low"] is None and recs[2]["ci_high"] is None


def test_add_replaces_same_scope_and_has(tmp_path):
    run = Run(tmp_path, study="scan", config={})
    run.add("rankme", 1.0, layer=1, model="a")
    run.add("rankme", 2.0, layer=1, model="a", ci_low=1.5, ci_high=2.5)  # replaces
    run.add("rankme", 3.0, layer=2, model="a")
    run.add_many([{"metric": "anisotropy", "value": 0.1, "layer": 1}])
    assert len(run.records) == 3 and run.records[0]["value"] == 2.0
    assert run.records[0]["ci_low"] == 1.5
    assert run.has("rankme", layer=1) and run.has("rankme", layer=2, model="a")
    assert not run.has("rankme", layer=3) and not run.has("rankme", model="b")
    assert run.has("anisotropy") and not run.has("vendi_score")
    assert run.remove("rankme", layer=2) == 1 and run.remove("rankme", layer=9) == 0
    assert not run.has("rankme", layer=2) and run.has("rankme", layer=1)
    run.add("rankme", 4.0, layer=1, model="a")  # the index still finds the kept record
    assert len(run.records) == 2 and run.records[0]["value"] == 4.0


@pytest.mark.parametrize("value", ["1.0", [1.0, 2.0], np.ones(2), True, object()])
def test_add_rejects_non_numbers(tmp_path, value):
    run = Run(tmp_path, study="scan", config={})
    with pytest.raises(ValueError, match="pass one real number"):
        run.add("rankme", value)


def test_add_rejects_bad_metric_and_scope(tmp_path):
    run = Run(tmp_path, study="scan", config={})
    with pytest.raises(ValueError, match="non-empty string"):
        run.add("", 1.0)
    with pytest.raises(ValueError, match="'study'"):
        run.add("x", 1.0, study="other")
    with pytest.raises(ValueError, match="records are flat"):
        run.add("x", 1.0, layer=[1, 2])
    with pytest.raises(ValueError, match="cannot be stored in JSON"):
        run.add("x", 1.0, layer=object())
    with pytest.raises(ValueError, match="'metric' and 'value'"):
        run.add_many([{"value": 1.0}])


def test_different_config_is_refused_naming_the_keys(tmp_path):
    Run(tmp_path, study="scan", config=CFG)
    other = {**CFG, "n": 65, "sampling": {"t": 0.7}}
    with pytest.raises(RunDirError) as err:
        Run(tmp_path, study="scan", config=other)
    msg = str(err.value)
    assert "different config (n, sampling.t)" in msg and "--force" in msg and "\n" not in msg
    with pytest.raises(RunDirError, match="different config"):
        Run(tmp_path, study="scan", config=other, resume=True)
    with pytest.raises(RunDirError, match=r"\(study\)"):
        Run(tmp_path, study="geometry", config=CFG, resume=True)


def test_same_config_without_resume_suggests_resume(tmp_path):
    Run(tmp_path, study="scan", config=CFG)
    with pytest.raises(RunDirError, match="--resume"):
        Run(tmp_path, study="scan", config=dict(reversed(list(CFG.items()))))


def test_resume_keeps_records_and_metadata(tmp_path):
    run = Run(tmp_path, study="scan", config=CFG)
    run.add("rankme", 5.0, layer=0)
    run.meta(model={"spec": "m"})
    with run.timer("capture"):
        pass
    run.write()
    created = load_run(tmp_path)["created"]
    again = Run(tmp_path, study="scan", config=CFG, resume=True)
    assert again.has("rankme", layer=0) and not again.has("rankme", layer=1)
    again.add("rankme", 6.0, layer=0)  # redoing a finished part replaces, not duplicates
    again.add("rankme", 4.0, layer=1)
    again.write()
    data = load_run(tmp_path)
    assert [r["value"] for r in data["records"]] == [6.0, 4.0]
    assert data["created"] == created and data["model"] == {"spec": "m"}
    assert "capture" in data["timings"]


def test_resume_on_an_empty_folder_starts_fresh(tmp_path):
    run = Run(tmp_path / "new", study="scan", config=CFG, resume=True)
    assert run.records == [] and (tmp_path / "new" / "metrics.json").is_file()


def test_force_clears_only_collapsekit_files(tmp_path):
    run = Run(tmp_path, study="scan", config=CFG)
    run.add("rankme", 1.0)
    run.table("samples", {"text": ["a"]})
    run.file("samples/gen.jsonl").write_text("{}")
    run.write()
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "a.png").write_bytes(b"png")  # written by the last render
    (tmp_path / "plots" / ".collapsekit").write_text("a.png\n")
    (tmp_path / "plots" / "mine.png").write_bytes(b"my plot")
    (tmp_path / "index.html").write_text(f"<html><head>{GENERATOR}</head></html>")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "tables" / "mine.txt").write_text("mine too")
    (tmp_path / "tables" / "mine.csv").write_text("a\n1\n")
    fresh = Run(tmp_path, study="scan", config={"other": 1}, force=True)
    assert fresh.records == []
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*"))
    assert left == [".collapsekit.lock", "metrics.json", "notes.txt", "plots",
                    "plots/mine.png", "tables", "tables/mine.csv",
                    "tables/mine.txt"]  # the lock: the run is still open
    assert load_run(tmp_path)["config"] == {"other": 1}


def test_force_never_overwrites_someone_elses_report(tmp_path):
    Run(tmp_path, study="scan", config=CFG).finish()
    (tmp_path / "index.html").write_text("<html>my own page</html>")
    with pytest.raises(RunDirError, match="index.html was not written by collapsekit"):
        Run(tmp_path, study="scan", config={"other": 1}, force=True)
    assert (tmp_path / "index.html").read_text() == "<html>my own page</html>"


def test_force_overwrites_a_corrupt_metrics_file(tmp_path):
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(RunDirError, match="--force"):
        Run(tmp_path, study="scan", config={})
    Run(tmp_path, study="scan", config={}, force=True)
    assert load_run(tmp_path)["records"] == []


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="not both"):
        Run(tmp_path, study="scan", config={}, resume=True, force=True)
    with pytest.raises(ValueError, match="pass a dict"):
        Run(tmp_path, study="scan", config=[1])
    with pytest.raises(ValueError, match="study name"):
        Run(tmp_path, study="../x", config={})
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirError, match="is a file"):
        Run(tmp_path / "f", study="scan", config={})
    run = Run(tmp_path / "r", study="scan", config={})
    with pytest.raises(ValueError, match="outside the run folder"):
        run.file("../escape.txt")


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def fails_halfway(p):
        p.write_text("half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(target, fails_halfway)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_run_write_is_atomic(tmp_path, monkeypatch):
    run = Run(tmp_path, study="scan", config={})
    run.add("rankme", 1.0)
    run.write()
    before = (tmp_path / "metrics.json").read_text()
    run.add("rankme", 2.0, layer=1)

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("collapsekit.results.os.replace", boom)
    with pytest.raises(KeyboardInterrupt):
        run.write()
    assert (tmp_path / "metrics.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [".collapsekit.lock",
                                                          "metrics.json"]  # no temp file


def test_timer_accumulates_seconds(tmp_path):
    run = Run(tmp_path, study="scan", config={})
    for _ in range(2):
        with run.timer("sampling"):
            time.sleep(0.02)
    with pytest.raises(RuntimeError), run.timer("failing"):
        raise RuntimeError
    t = run.to_dict()["timings"]
    assert 0.04 <= t["sampling"] < 1.0 and "failing" in t


def test_table_round_trip_parquet_and_csv(tmp_path):
    run = Run(tmp_path, study="scan", config={})
    rows = [{"prompt_id": 0, "text": 'a, "quoted"\nline', "score": 0.5, "toks": [1, 2]},
            {"prompt_id": 1, "text": "<b>", "score": float("nan"), "toks": None},
            {"prompt_id": 2, "text": None, "score": np.float32(2.0), "toks": [3]}]
    path = run.table("samples", rows)
    assert path == tmp_path / "tables" / "samples.parquet"
    got = run.read_table("samples")
    assert got == {"prompt_id": [0, 1, 2], "text": ['a, "quoted"\nline', "<b>", None],
                   "score": [0.5, None, 2.0], "toks": [[1, 2], None, [3]]}
    with open(tmp_path / "tables" / "samples.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert table[0] == {"prompt_id": "0", "text": 'a, "quoted"\nline', "score": "0.5",
                        "toks": "[1, 2]"}
    assert load_run(tmp_path)["tables"]["samples"]["rows"] == 3
    cols = {"layer": np.arange(3), "value": np.array([1.0, 2.0, 3.0])}
    run.table("by_layer", cols)
    assert read_table(tmp_path, "by_layer") == {"layer": [0, 1, 2], "value": [1.0, 2.0, 3.0]}


def test_table_bad_input(tmp_path):
    run = Run(tmp_path, study="scan", config={})
    with pytest.raises(ValueError, match="different lengths"):
        run.table("t", {"a": [1, 2], "b": [1]})
    with pytest.raises(ValueError, match="no columns"):
        run.table("t", [])
    with pytest.raises(ValueError, match="plain name"):
        run.table("../t", {"a": [1]})
    with pytest.raises(ValueError, match="list of dicts or a dict"):
        run.table("t", [1, 2])
    with pytest.raises(ValueError, match="mixed types"):
        run.table("t", {"a": [1, "x"]})
    with pytest.raises(InputFileError, match="no table 'nope'"):
        run.read_table("nope")


def test_load_run_errors(tmp_path):
    with pytest.raises(InputFileError, match="no metrics.json"):
        load_run(tmp_path)
    (tmp_path / "metrics.json").write_text("[1, 2")
    with pytest.raises(InputFileError, match="not valid JSON"):
        load_run(tmp_path)
    (tmp_path / "metrics.json").write_text('{"study": "x"}')
    with pytest.raises(InputFileError, match="no list of records"):
        load_run(tmp_path / "metrics.json")


def test_a_second_process_on_the_same_folder_is_refused(tmp_path):
    import subprocess
    import sys

    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".collapsekit.lock").write_text(str(other.pid))  # a live writer
        with pytest.raises(RunDirError, match=f"another collapsekit process \\(pid "
                                              f"{other.pid}\\) is writing"):
            Run(tmp_path, study="scan", config=CFG)
    finally:
        other.kill()
        other.wait()
    run = Run(tmp_path, study="scan", config=CFG)  # its process is gone: a stale lock
    assert (tmp_path / ".collapsekit.lock").read_text() == str(os.getpid())
    run.finish()
    assert not (tmp_path / ".collapsekit.lock").exists()


def test_load_gives_the_records_as_a_dataframe(tmp_path):
    from collapsekit.results import load

    run = Run(tmp_path / "r", study="s", config={})
    run.add("rankme", 2.5, layer=0)
    run.add("rankme", float("nan"), layer=1)
    run.add("vendi_score", 1.25, prompt_id="p")
    run.finish()
    df = load(tmp_path / "r")
    assert list(df["metric"]) == ["rankme", "rankme", "vendi_score"]
    assert df.query("metric == 'rankme'")["layer"].tolist() == [0, 1]
    assert df["value"].isna().tolist() == [False, True, False]   # JSON null -> NaN
    assert df.equals(load(tmp_path / "r" / "metrics.json"))
    with pytest.raises(InputFileError, match="not a collapsekit results folder"):
        load(tmp_path / "nothing")
