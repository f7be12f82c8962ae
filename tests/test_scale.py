"""On a 2-worker local Ray cluster (started once for this module; no other test starts
Ray): sharded geometry equals the single-process pass within 1e-10 relative, and a sweep
of 2 tiny models × 2 temperatures gives the records of the 4 runs made one by one."""

import pytest

from collapsekit.results import load_run, read_table
from collapsekit.studies import run_study
from collapsekit.studies.sweep import expand, run_sweep
from conftest import make_model, make_tokenizer

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def _close(a: dict, b: dict, rel: float) -> bool:
    """Same fields; numbers within ``rel`` relative, everything else equal."""
    if a.keys() != b.keys():
        return False
    for k, x in a.items():
        y = b[k]
        if isinstance(x, float) and isinstance(y, float):
            if abs(x - y) > rel * max(abs(x), abs(y)):
                return False
        elif x != y:
            return False
    return True


def test_sharded_geometry_equals_one_process(cluster, tiny_dir, tmp_path, one_thread):
    params = {"n": "12", "max_length": "16", "batch_size": "3", "neural_collapse": "true",
              "nc_heldout": "2", "nc_layer": "block_2,final_norm"}
    run_study("geometry", tmp_path / "one", model=str(tiny_dir), params=params,
              device="cpu", report=False)
    run_study("geometry", tmp_path / "two", model=str(tiny_dir),
              params={**params, "shards": "2"}, device="cpu", report=False)
    one, two = load_run(tmp_path / "one"), load_run(tmp_path / "two")
    assert two["geometry_tokens"] == one["geometry_tokens"] > 0
    metrics = {r["metric"] for r in one["records"]}
    assert {"rankme", "attention_entropy", "rank_collapse_residual", "nc1"} <= metrics
    assert len(two["records"]) == len(one["records"])
    bad = [(a, b) for a, b in zip(one["records"], two["records"]) if not _close(a, b, 1e-10)]
    assert not bad, bad[:3]
    with pytest.raises(ValueError, match="at most 4 shards"):
        run_study("geometry", tmp_path / "many", model=str(tiny_dir),
                  params={**params, "shards": "5"}, device="cpu", report=False)


def test_ray_sweep_equals_runs_one_by_one(cluster, tiny_dir, tmp_path, one_thread):
    other = tmp_path / "tiny-other"
    make_model("llama", seed=1).save_pretrained(other, safe_serialization=True)
    make_tokenizer().save_pretrained(other)
    kw = dict(studies=["diversity"], models=[str(tiny_dir), str(other)],
              params={"n_prompts": "2", "k": "2", "max_new_tokens": "6", "momentum": "0"},
              grid={"temperature": "0.7,1.0"}, quick=True)
    out = tmp_path / "sweep"
    run_sweep(out, **kw, device="cpu", report=False)
    runs = read_table(out, "runs")
    assert runs["status"] == ["done"] * 4
    units = expand(**kw, seeds=[0])
    for u in units:
        alone = tmp_path / "alone" / u.id
        run_study("diversity", alone, model=u.model, quick=True, params=u.params,
                  device="cpu", report=False)
        assert load_run(out / "runs" / u.id)["records"] == load_run(alone)["records"], u.id
    combined = load_run(out)
    assert {r["run"] for r in combined["records"] if "run" in r} == {u.id for u in units}
    assert set(read_table(out, "comparison")) >= {u.id for u in units}


def test_a_killed_worker_is_retried(cluster, tmp_path):
    from collapsekit.studies.distributed import run_tasks

    marker = tmp_path / "killed-once"

    def dies_once(path):
        import os
        from pathlib import Path

        if not Path(path).exists():
            Path(path).touch()
            os._exit(1)  # the worker process dies, as under the OOM killer
        return "ran"

    results = {}
    run_tasks(dies_once, [str(marker)], resources=[{"num_cpus": 1}], ray=ray,
              on_result=results.__setitem__)
    assert results == {0: "ran"} and marker.exists()
    run_tasks(dies_once, [str(tmp_path / "again")], resources=[{"num_cpus": 1}], ray=ray,
              on_result=results.__setitem__, max_retries=0)
    assert results[0]["status"] == "failed" and "\n" not in results[0]["error"]
