"""The scan end to end: a tiny model from a local folder (fast), interruption and resume
counted in model calls, config refusal, and the real embedded model (slow)."""

import json

import pytest

from collapsekit.errors import RunDirError
from collapsekit.models import registry
from collapsekit.studies import run_scan
from collapsekit.studies.registry import scan_studies

# the old ScanConfig(k=2, max_new_tokens=6, human_n=6, max_length=32, batch_size=4,
# probes=()) on the registry: geometry and diversity only, each study's own parameters
STUDIES = ["geometry", "diversity"]
TINY = {"diversity.k": 2, "diversity.max_new_tokens": 6, "geometry.n": 6,
        "geometry.max_length": 32, "geometry.batch_size": 4}


def scan(out, *, n_prompts, studies=STUDIES, report=False, **kw):
    """``run_scan`` at the tiny settings (no report unless asked); ``params`` given in kw
    add to TINY."""
    params = {**TINY, "diversity.n_prompts": n_prompts, **kw.pop("params", {})}
    return run_scan(out, studies=studies, params=params, report=report, **kw)


@pytest.fixture
def tiny_spec(tiny_dir):
    return str(tiny_dir)


@pytest.fixture
def counted(monkeypatch):
    """Count forward calls of every model the scan loads (instrumentation, not a mock)."""
    calls = {"n": 0}
    real = registry.load_model

    def load(*a, **kw):
        lm = real(*a, **kw)
        lm.model.register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
        return lm

    monkeypatch.setattr("collapsekit.models.registry.load_model", load)
    return calls


def test_scan_writes_metrics_tables_and_report(tiny_spec, tmp_path):
    out = tmp_path / "run"
    html = scan(out, model=tiny_spec, n_prompts=3, report=True)
    assert html == out / "index.html" and html.read_text().lower().startswith("<!doctype html>")
    data = json.loads((out / "metrics.json").read_text())
    assert data["finished"] and data["model"]["n_layers"] == 3
    assert data["done"] == STUDIES and data["study"] == "scan"
    rankme = [r for r in data["records"] if r["metric"] == "rankme" and "basis" not in r]
    assert [r["layer"] for r in rankme] == list(range(5))  # embed, 3 blocks, final norm
    std = [r for r in data["records"] if r["metric"] == "rankme" and "basis" in r]
    assert [(r["layer"], r["basis"]) for r in std] == [(i, "standardised") for i in range(5)]
    assert all(1 <= r["value"] <= 32 for r in rankme)
    names = {r["metric"] for r in data["records"]}
    assert {"anisotropy", "mean_distinct_1", "mean_semantic_spread", "semantic_spread",
            "pooled_mean_pairwise_cosine"} <= names
    spread = [r for r in data["records"] if r["metric"] == "semantic_spread"]
    assert sorted(r["prompt_id"] for r in spread) == [0, 1, 2]
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 3 * TINY["diversity.k"]
    assert (out / "tables" / "geometry_layers.parquet").is_file()
    assert {"geometry", "diversity"} <= set(data["timings"])


def test_interrupted_scan_resumes_without_recomputing_samples(tiny_spec, tmp_path, counted,
                                                              monkeypatch):
    # 4 prompts × k=2 with 4 rows per forward pass: two sampling groups of two prompts
    k, max_new_tokens = TINY["diversity.k"], TINY["diversity.max_new_tokens"]
    opts, out = dict(model=tiny_spec, n_prompts=4, params={"diversity.sample_batch": 4}), \
        tmp_path / "run"
    full = scan(tmp_path / "reference", **opts)
    reference = (full.parent / "samples.jsonl").read_text()

    from collapsekit.models import sampling
    real_generate, calls = sampling._generate, []

    def ctrl_c_in_second_group(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_generate(*a, **kw)

    monkeypatch.setattr(sampling, "_generate", ctrl_c_in_second_group)
    with pytest.raises(KeyboardInterrupt):
        scan(out, **opts)
    monkeypatch.setattr(sampling, "_generate", real_generate)
    assert len((out / "samples.jsonl").read_text().splitlines()) == 2 * k
    assert json.loads((out / "metrics.json").read_text())["done"] == ["geometry"]

    counted["n"] = 0
    scan(out, **opts, resume=True)
    # geometry was finished before the interruption: no forward pass for it; sampling only
    # for the second group: 1 prefill + at most max_new_tokens - 1 cached steps
    assert 0 < counted["n"] <= max_new_tokens
    assert (out / "samples.jsonl").read_text() == reference
    assert json.loads((out / "metrics.json").read_text())["done"] == STUDIES

    counted["n"] = 0
    scan(out, **opts, resume=True)
    assert counted["n"] == 0  # everything reused


def test_existing_run_with_other_config_is_refused(tiny_spec, tmp_path):
    out = tmp_path / "run"
    scan(out, model=tiny_spec, n_prompts=2)
    with pytest.raises(RunDirError, match="different config"):
        scan(out, model=tiny_spec, n_prompts=2, params={"diversity.k": 3}, resume=True)
    scan(out, model=tiny_spec, n_prompts=2, params={"diversity.k": 3}, force=True)
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert config["studies"]["diversity"]["k"] == 3


def test_scan_runs_every_probe_and_skips_what_the_model_cannot(tiny_spec, tmp_path):
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="probe intention skipped") as caught:
        scan(out, model=tiny_spec, n_prompts=2, studies=None)  # every scan study
    assert any("probe drift skipped" in str(w.message) for w in caught)
    data = json.loads((out / "metrics.json").read_text())
    sections = {r.get("section") for r in data["records"]}
    assert {"divergence", "agents", "ambiguity", "tokenizer", "passkey"} <= sections
    skipped = {r["probe"]: r["note"] for r in data["records"] if r["metric"] == "probe_skipped"}
    assert set(skipped) == {"intention", "drift", "concepts"}
    # the tiny model's context is 64 tokens: too short for the problems and the documents
    assert "64-token context" in skipped["intention"]
    assert "64-token context" in skipped["drift"]
    # its word-level vocabulary cannot spell the bundled category items
    assert "not in the tokenizer's vocabulary" in skipped["concepts"]
    studies = scan_studies()
    assert studies == ["geometry", "diversity", "agents", "concepts", "intention",
                       "ambiguity", "tokenizer", "passkey", "drift"]
    assert all(name in data["timings"] for name in studies), sorted(data["timings"])
    assert data["done"] == [s for s in studies if s not in skipped]  # skipped: not done


@pytest.mark.parametrize("bad, match", [
    (dict(params={"diversity.k": 1}), "k=1 .*must be at least 2"),
    (dict(params={"geometry.n": 1}), "n=1 .*must be at least 2"),
    (dict(params={"diversity.max_new_tokens": 0}), "max_new_tokens=0 .*must be at least 1"),
    (dict(params={"diversity.colour": "red"}), "unknown parameter.*colour"),
    (dict(params={"telepathy.k": 2}), "'telepathy' is not one of the scan's studies"),
    (dict(studies=["agents", "telepathy"]), "unknown study 'telepathy'"),
    (dict(studies="agents"), "give a list of study names"),
    (dict(studies=[]), "no studies to scan"),
    (dict(model=["a", "b"]), "scan runs one model"),
])
def test_bad_config(bad, match, tmp_path):
    with pytest.raises(ValueError, match=match):
        run_scan(tmp_path / "x", **bad)
    assert not (tmp_path / "x").exists()  # refused before the folder is made


@pytest.mark.slow
def test_quick_scan_on_the_embedded_model(tmp_path):
    out = tmp_path / "run"
    run_scan(out, quick=True, studies=STUDIES, params={
        "diversity.k": 3, "diversity.max_new_tokens": 12, "geometry.n": 16,
        "diversity.n_prompts": 3})
    data = json.loads((out / "metrics.json").read_text())
    assert data["model"]["architecture"] == "LlamaForCausalLM"
    rankme = {r["layer"]: r["value"] for r in data["records"] if r["metric"] == "rankme"}
    assert len(rankme) == 32 and all(1 < v <= 576 for v in rankme.values())
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 9 and all(s["text"].strip() for s in samples)
    assert "<img src=\"data:image/png;base64," in (out / "index.html").read_text()
