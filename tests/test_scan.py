"""The scan end to end: a tiny model from a local folder (fast), interruption and resume
counted in model calls, config refusal, and the real embedded model (slow)."""

import json

import pytest

from collapsekit.errors import RunDirError
from collapsekit.models import registry
from collapsekit.studies.scan import PROBES, ScanConfig, run_scan
from conftest import make_model, make_tokenizer

TINY = dict(k=2, max_new_tokens=6, human_n=6, max_length=32, batch_size=4, probes=())


@pytest.fixture
def tiny_spec(tmp_path):
    path = tmp_path / "tiny"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return str(path)


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
    html = run_scan(ScanConfig(model=tiny_spec, **TINY), out, n_prompts=3)
    assert html == out / "index.html" and html.read_text().lower().startswith("<!doctype html>")
    data = json.loads((out / "metrics.json").read_text())
    assert data["finished"] and data["model"]["n_layers"] == 3
    rankme = [r for r in data["records"] if r["metric"] == "rankme"]
    assert [r["layer"] for r in rankme] == list(range(5))  # embed, 3 blocks, final norm
    assert all(1 <= r["value"] <= 32 for r in rankme)
    names = {r["metric"] for r in data["records"]}
    assert {"anisotropy", "mean_distinct_1", "mean_semantic_spread", "semantic_spread",
            "pooled_mean_pairwise_cosine"} <= names
    spread = [r for r in data["records"] if r["metric"] == "semantic_spread"]
    assert sorted(r["prompt_id"] for r in spread) == [0, 1, 2]
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 3 * TINY["k"]
    assert (out / "tables" / "geometry_layers.parquet").is_file()


def test_interrupted_scan_resumes_without_recomputing_samples(tiny_spec, tmp_path, counted,
                                                              monkeypatch):
    # 4 prompts × k=2 with 4 rows per forward pass: two sampling groups of two prompts
    cfg, out = ScanConfig(model=tiny_spec, sample_batch=4, **TINY), tmp_path / "run"
    full = run_scan(cfg, tmp_path / "reference", n_prompts=4)
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
        run_scan(cfg, out, n_prompts=4)
    monkeypatch.setattr(sampling, "_generate", real_generate)
    assert len((out / "samples.jsonl").read_text().splitlines()) == 2 * cfg.k

    counted["n"] = 0
    run_scan(cfg, out, n_prompts=4, resume=True)
    # geometry was finished before the interruption: no forward pass for it; sampling only
    # for the second group: 1 prefill + at most max_new_tokens - 1 cached steps
    assert 0 < counted["n"] <= cfg.max_new_tokens
    assert (out / "samples.jsonl").read_text() == reference

    counted["n"] = 0
    run_scan(cfg, out, n_prompts=4, resume=True)
    assert counted["n"] == 0  # everything reused


def test_existing_run_with_other_config_is_refused(tiny_spec, tmp_path):
    out = tmp_path / "run"
    run_scan(ScanConfig(model=tiny_spec, **TINY), out, n_prompts=2)
    with pytest.raises(RunDirError, match="different config"):
        run_scan(ScanConfig(model=tiny_spec, **{**TINY, "k": 3}), out, n_prompts=2,
                 resume=True)
    run_scan(ScanConfig(model=tiny_spec, **{**TINY, "k": 3}), out, n_prompts=2, force=True)
    assert json.loads((out / "metrics.json").read_text())["config"]["k"] == 3


def test_scan_runs_every_probe_and_skips_what_the_model_cannot(tiny_spec, tmp_path):
    out = tmp_path / "run"
    with pytest.warns(UserWarning, match="probe intention skipped"):
        run_scan(ScanConfig(model=tiny_spec, **{**TINY, "probes": PROBES}), out, n_prompts=2)
    data = json.loads((out / "metrics.json").read_text())
    sections = {r.get("section") for r in data["records"]}
    assert {"divergence", "agents", "ambiguity", "tokenizer", "passkey"} <= sections
    skipped = {r["probe"]: r["note"] for r in data["records"] if r["metric"] == "probe_skipped"}
    assert "64-token context" in skipped["intention"]  # the tiny model's context is 64
    assert all(f"probe_{p}" in data["timings"] for p in PROBES)


@pytest.mark.parametrize("bad", [dict(k=1), dict(human_n=1), dict(max_new_tokens=0),
                                 dict(probes=("agents", "telepathy")), dict(probes="agents")])
def test_bad_config(bad, tmp_path):
    with pytest.raises(ValueError):
        run_scan(ScanConfig(**bad), tmp_path / "x")


@pytest.mark.slow
def test_quick_scan_on_the_embedded_model(tmp_path):
    out = tmp_path / "run"
    run_scan(ScanConfig.quick(k=3, max_new_tokens=12, human_n=16, probes=()), out, n_prompts=3)
    data = json.loads((out / "metrics.json").read_text())
    assert data["model"]["architecture"] == "LlamaForCausalLM"
    rankme = {r["layer"]: r["value"] for r in data["records"] if r["metric"] == "rankme"}
    assert len(rankme) == 32 and all(1 < v <= 576 for v in rankme.values())
    samples = [json.loads(x) for x in (out / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 9 and all(s["text"].strip() for s in samples)
    assert "<img src=\"data:image/png;base64," in (out / "index.html").read_text()
