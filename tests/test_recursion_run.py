"""``run_simulate``: validation before work, records, tables, report, resume, sweep files."""

import json

import numpy as np
import pytest

from collapsekit.errors import RunDirError
from collapsekit.results import load_run, read_table
from collapsekit.studies.recursion import mean_ci, run
from collapsekit.studies.recursion import run_simulate as simulate

ARGS = dict(learner="linear", strategies="replace,accumulate", generations=4, seeds=5,
            params={"d": "3", "T": "12"})


def _records(out, **want):
    return [r for r in load_run(out)["records"] if all(r.get(k) == v for k, v in want.items())]


def test_mean_ci_student_t():
    mean, lo, hi, n = mean_ci([1.0, 2.0, 3.0, np.nan])
    # t_{0.975, 2} = 4.302653; s = 1; half = t / sqrt(3)
    assert (mean, n) == (2.0, 3)
    assert hi - mean == pytest.approx(4.302653 / np.sqrt(3), rel=1e-6)
    assert lo == pytest.approx(2 * mean - hi)
    assert mean_ci([5.0]) == (5.0, None, None, 1)
    assert np.isnan(mean_ci([np.nan])[0])


def test_run_writes_records_tables_and_report(tmp_path):
    out = tmp_path / "sim"
    html = simulate(out, **ARGS)
    assert html == out / "index.html" and html.is_file()
    data = load_run(out)
    assert data["config"] == {"learner": "linear", "learner_params": {
        "d": 3, "T": 12, "sigma2": 1.0, "ridge": 0.0}, "strategies": ["replace", "accumulate"],
        "generations": 4, "seeds": 5}
    assert data["finished"] and data["seeds"]["seeds"] == [0, 1, 2, 3, 4]
    sim = _records(out, metric="test_error", strategy="replace", source="simulation")
    assert [r["generation"] for r in sim] == [1, 2, 3, 4]
    assert all(r["ci_low"] < r["value"] < r["ci_high"] and r["section"] == "recursion"
               for r in sim)
    cf = _records(out, metric="test_error", strategy="accumulate", source="closed_form")
    np.testing.assert_allclose([r["value"] for r in cf],
                               3 / 8 * np.cumsum(1 / np.arange(1, 5) ** 2))
    assert [r["closed_form"] for r in sim] == pytest.approx(3 / 8 * np.arange(1, 5))
    assert _records(out, metric="real_fraction", strategy="accumulate", generation=2)[0][
        "section"] == "recursion data"
    curves = read_table(out, "curves")
    values = [v for s, m, g, v in zip(curves["strategy"], curves["metric"],
                                      curves["generation"], curves["value"])
              if s == "replace" and m == "test_error" and g == 4]
    assert len(values) == 5 and np.mean(values) == pytest.approx(sim[-1]["value"])
    prov = read_table(out, "provenance")
    acc = [(b, n) for s, g, b, n in zip(prov["strategy"], prov["generation"], prov["born"],
                                        prov["rows"]) if s == "accumulate" and g == 3]
    assert acc == [(0, 12), (1, 12), (2, 12)]
    assert set(data["closed_form_coverage"]) == {"replace", "accumulate"}
    assert "test_error by generation" in html.read_text()


def test_resume_runs_only_missing_pairs(tmp_path, monkeypatch):
    out = tmp_path / "sim"
    calls, real = [], run.run_lanes

    def interrupted(learner, strategy, generations, seeds, tick=None):
        calls.append(strategy.label)
        if strategy.label == "accumulate" and len(calls) == 2:
            raise KeyboardInterrupt
        return real(learner, strategy, generations, seeds, tick)

    monkeypatch.setattr(run, "run_lanes", interrupted)
    with pytest.raises(KeyboardInterrupt):
        simulate(out, **ARGS)
    with pytest.raises(RunDirError, match="--resume"):
        simulate(out, **ARGS)
    simulate(out, **ARGS, resume=True)
    assert calls == ["replace", "accumulate", "accumulate"]
    resumed = load_run(out)["records"]
    monkeypatch.setattr(run, "run_lanes", real)
    simulate(tmp_path / "fresh", **ARGS)
    assert resumed == load_run(tmp_path / "fresh")["records"]
    simulate(out, **ARGS, resume=True)  # all done: nothing runs again
    assert calls == ["replace", "accumulate", "accumulate"]
    ckpt = out / "checkpoints" / "curves.jsonl"
    lines = ckpt.read_text().splitlines()
    assert len(lines) == 10 and json.loads(lines[0])["strategy"] == "replace"
    # a last line cut mid-write: that pair runs again and the file stays line-valid
    ckpt.write_text("\n".join(lines[:-1]) + "\n" + lines[-1][:40])
    monkeypatch.setattr(run, "run_lanes", interrupted)
    simulate(out, **ARGS, resume=True)
    assert calls[-1] == "accumulate" and len(calls) == 4
    assert load_run(out)["records"] == resumed
    valid = []
    for line in ckpt.read_text().splitlines():
        try:
            valid.append(json.loads(line))
        except json.JSONDecodeError:
            assert line == lines[-1][:40]
    assert len(valid) == 10 and valid[-1]["seed"] == 4


def test_unbatched_learner_checkpoints_per_seed(tmp_path):
    out = tmp_path / "g"
    simulate(out, learner="gmm", strategies=["replace"], generations=2, seeds=2,
             params={"m": "60", "n_test": "50", "k": "2"})
    lines = (out / "checkpoints" / "curves.jsonl").read_text().splitlines()
    assert [json.loads(x)["seed"] for x in lines] == [0, 1]


@pytest.mark.parametrize("change, match", [
    ({"learner": "bogus"}, "unknown learner 'bogus': choose from linear"),
    ({"learner": None}, "no learner given"),
    ({"strategies": "replace,shuffle"}, "unknown strategy 'shuffle'"),
    ({"strategies": ""}, "no strategy given"),
    ({"generations": 0}, "generations=0 must be an integer >= 1"),
    ({"seeds": -1}, "seeds=-1 must be an integer >= 1"),
    ({"params": {"d": "11", "T": "12"}}, "OLS needs T > d \\+ 1"),
    ({"strategies": "accumulate-subsample:budget=13"}, "budget 13 is larger than the pool"),
    ({"strategies": "replace:top_k=3"}, "does not support top_k"),
    ({"learner": "kde", "params": {}, "strategies": "replace:filter=0.5"},
     "no verifier to filter with"),
    ({"learner": "ngram", "params": {"n_train": "30000"}, "strategies": "fresh:fraction=0.5"},
     "needs 75000 real examples"),
])
def test_bad_config_fails_before_any_work(tmp_path, change, match):
    out = tmp_path / "bad"
    with pytest.raises(ValueError, match=match):
        simulate(out, **{**ARGS, **change})
    assert not out.exists()


def test_sweep_file(tmp_path):
    toml = tmp_path / "sweep.toml"
    toml.write_text('learner = "gaussian"\nstrategies = ["replace", "accumulate"]\n'
                    'generations = 3\nseeds = 4\n[params]\nm = 20\nd = 2\n')
    out = tmp_path / "s"
    simulate(out, learner=None, strategies=None, generations=None, seeds=None,
             config_file=str(toml), params={"d": "1"})  # explicit params win
    cfg = load_run(out)["config"]
    assert cfg["learner_params"]["m"] == 20 and cfg["learner_params"]["d"] == 1
    assert cfg["strategies"] == ["replace", "accumulate"] and cfg["seeds"] == 4
    bad = tmp_path / "bad.toml"
    bad.write_text('learner = "linear"\nrounds = 3\n')
    with pytest.raises(ValueError, match="unknown key\\(s\\) rounds"):
        simulate(tmp_path / "x", learner=None, strategies=None, generations=None,
                 seeds=None, config_file=str(bad))
    bad.write_text('learner = "linear\n')
    with pytest.raises(ValueError, match="not valid TOML"):
        simulate(tmp_path / "x", learner=None, strategies=None, generations=None,
                 seeds=None, config_file=str(bad))
    with pytest.raises(ValueError, match="does not exist"):
        simulate(tmp_path / "x", **ARGS, config_file=str(tmp_path / "none.toml"))
