"""Sweeps without Ray (in this process): the grid a sweep file or the flags describe, a
failed run recorded with its one-line error while the others finish, resume, the note
when ray is missing, and the N-run comparison. The Ray runs are in test_scale.py."""

import json
import sys

import pytest

from collapsekit.errors import InputFileError
from collapsekit.results import Run, load_run, read_table
from collapsekit.studies.compare import comparison, run_compare_many
from collapsekit.studies.sweep import expand, run_sweep
from conftest import run_cli

GEOMETRY = {"n": "4", "max_length": "12", "batch_size": "2", "attention": "false"}


def test_expand_grid_routes_names_and_labels_runs(tiny_dir):
    units = expand(studies=["geometry", "diversity"], models=[str(tiny_dir)],
                   params={"diversity.k": "3", "max_length": "12"},
                   grid={"temperature": "0.7,1.0", "geometry.n": [4, 6]}, seeds="0,1")
    assert len(units) == 2 * 2 + 2 * 2  # geometry: n × seeds; diversity: temperature × seeds
    assert len({u.id for u in units}) == len(units)
    geo = [u for u in units if u.study == "geometry"]
    assert {u.params["n"] for u in geo} == {4, 6} and all("temperature" not in u.params
                                                         for u in geo)
    div = [u for u in units if u.study == "diversity"]
    assert {u.fields["temperature"] for u in div} == {0.7, 1.0}  # parsed, typed
    assert all(u.params["k"] == "3" and u.fields["model"] == str(tiny_dir) for u in div)
    assert "diversity_tiny-llama_temperature=0.7_seed1" in {u.id for u in div}


def test_expand_bad_input(tiny_dir):
    for kw, message in (({"grid": {"temperature": "0.7,0.7"}}, "repeats a value"),
                        ({"grid": {"nope": "1,2"}}, "no study of this scan has a parameter"),
                        ({"grid": {"temperature": "0.7,hot"}}, "expected a number"),
                        ({"seeds": "0,x"}, "not a whole number"),
                        ({"models": []}, "no models to sweep")):
        args = {"studies": ["diversity"], "models": [str(tiny_dir)], **kw}
        with pytest.raises(ValueError, match=message):
            expand(**args)


def test_sweep_file_equals_flags(tmp_path, tiny_dir):
    file = tmp_path / "sweep.toml"
    file.write_text(f'studies = ["geometry"]\nmodels = ["{tiny_dir}"]\nseeds = [0, 1]\n'
                    'quick = true\n[params]\n"geometry.max_length" = 12\n'
                    '[grid]\nn = [4, 6]\n')
    from collapsekit.studies.sweep import read_sweep_file

    spec = read_sweep_file(file)
    by_file = expand(studies=spec["studies"], models=spec["models"], params=spec["params"],
                     grid=spec["grid"], seeds=spec["seeds"], quick=True)
    by_flags = expand(studies=["geometry"], models=[str(tiny_dir)],
                      params={"max_length": "12"}, grid={"n": "4,6"}, seeds="0,1", quick=True)
    assert [u.id for u in by_file] == [u.id for u in by_flags]
    file.write_text('studies = ["geometry"]\ntemperature = 3\n')
    with pytest.raises(InputFileError, match="unknown key"):
        read_sweep_file(file)
    file.write_text('studies = [\n')
    with pytest.raises(InputFileError, match="not valid TOML"):
        read_sweep_file(file)


def test_failed_run_is_recorded_others_finish_and_resume_skips(tmp_path, tiny_dir, broken_dir,
                                                               monkeypatch, capsys, one_thread):
    broken = broken_dir
    monkeypatch.setitem(sys.modules, "ray", None)  # ray not installed: in-process, a note
    out = tmp_path / "sw"
    code, _, err = run_cli(monkeypatch, capsys, "sweep", "--study", "geometry", "--model",
                           str(tiny_dir), "--model", str(broken), "--grid", "n=4,6",
                           "--device", "cpu", "--no-report", "--out", str(out),
                           *[f"--param={k}={v}" for k, v in GEOMETRY.items() if k != "n"])
    assert code == 0, err
    assert "ray is not installed" in err
    data = load_run(out)
    runs = read_table(out, "runs")
    status = dict(zip(runs["run"], runs["status"]))
    assert sorted(status.values()) == ["done", "done", "failed", "failed"]
    failed = [r for r in data["records"] if r["metric"] == "run_failed"]
    assert len(failed) == 2 and all("could not load model" in r["note"] and "\n" not in
                                    r["note"] for r in failed)
    done = [u for u, s in status.items() if s == "done"]
    assert {r["run"] for r in data["records"] if r["metric"] == "rankme"} == set(done)
    assert all(r["n"] in (4, 6) and r["model"] == str(tiny_dir) for r in data["records"]
               if r["metric"] == "rankme")
    assert read_table(out, "differences")["metric"]  # the two finished runs compared

    def no_rerun(payload):
        assert "broken" in payload["out"], "a finished run was recomputed"
        return {"status": "failed", "error": "still broken", "seconds": 0.0}

    monkeypatch.setattr("collapsekit.studies.sweep.run_unit", no_rerun)
    run_sweep(out, studies=["geometry"], models=[str(tiny_dir), str(broken)],
              grid={"n": "4,6"}, params={k: v for k, v in GEOMETRY.items() if k != "n"},
              device="cpu", resume=True, report=False)
    assert {r["note"] for r in load_run(out)["records"] if r["metric"] == "run_failed"} == {
        "still broken"}


def test_sweep_command_bad_starts(tmp_path, tiny_dir, monkeypatch, capsys):
    out = tmp_path / "bad"
    for args, message in ((("--model", str(tiny_dir)), "no studies to sweep"),
                          ((str(tmp_path / "none.toml"),), "does not exist"),
                          (("--study", "geometry", "--model", str(tiny_dir), "--grid", "n"),
                           "is not key=value"),
                          (("--study", "geometry", "--model", str(tiny_dir), "--seed", "a"),
                           "not a whole number"),
                          (("--study", "geometry", "--model", "./nowhere"),
                           "no such folder or file"),
                          (("--study", "geometry", "--model", str(tiny_dir), "--ray-address",
                            "127.0.0.1:1"), "no Ray cluster answers at 127.0.0.1:1"),
                          (("--study", "geometry", "--model", str(tiny_dir), "--ray-address",
                            "nonsense"), "write auto, HOST:PORT")):
        capsys.readouterr()
        code, _, err = run_cli(monkeypatch, capsys, "sweep", *args, "--out", str(out))
        assert code == 2 and message in err and err.count("\n") == 1, err
    assert not out.exists()


def _run(path, values: list[float]) -> None:
    run = Run(path, study="geometry", config={"model": path.name})
    for layer, v in enumerate(values):
        run.add("rankme", v, section="geometry", layer=layer)
    run.finish()


def test_compare_three_runs(tmp_path, monkeypatch, capsys):
    rows = comparison({"a": [{"metric": "m", "value": 1.0, "layer": 0}],
                       "b": [{"metric": "m", "value": 3.0, "layer": 0},
                             {"metric": "only_b", "value": 1.0}],
                       "c": [{"metric": "m", "value": 2.0, "layer": 0}]})
    assert rows == [{"metric": "m", "scope": '{"layer": 0}', "a": 1.0, "b": 3.0, "c": 2.0,
                     "min": 1.0, "max": 3.0, "rel_spread": 1.0}]  # (3 − 1) / 2
    for name, vals in (("x", [1.0, 2.0]), ("y", [2.0, 2.0]), ("z", [4.0, 2.0])):
        _run(tmp_path / name, vals)
    code, _, err = run_cli(monkeypatch, capsys, "compare", *(str(tmp_path / n) for n in "xyz"),
                           "--out", str(tmp_path / "c"))
    assert code == 0, err
    table = read_table(tmp_path / "c", "comparison")
    assert table["x"] == [1.0, 2.0] and table["z"] == [4.0, 2.0]
    assert table["rel_spread"] == [pytest.approx(3 / (7 / 3)), 0.0]
    assert {r["run"] for r in json.loads((tmp_path / "c" / "metrics.json").read_text())[
        "records"] if "run" in r} == {"x", "y", "z"}
    with pytest.raises(InputFileError, match="given twice"):
        run_compare_many([tmp_path / "x", tmp_path / "x"], tmp_path / "d")
    with pytest.raises(InputFileError, match="at least two"):
        run_compare_many([tmp_path / "x"], tmp_path / "d")


def test_missing_input_file_fails_before_any_run(tmp_path, tiny_dir):
    with pytest.raises(InputFileError, match="no-such.txt"):
        run_sweep(tmp_path / "s", studies=["geometry"], models=[str(tiny_dir)],
                  grid={"n": "4,6"}, params={"texts": str(tmp_path / "no-such.txt")},
                  use_ray=False, report=False)
    assert not (tmp_path / "s").exists()
