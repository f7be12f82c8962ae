"""Scans of tiny random models of other decoder families, saved to folders like a user's:
Mamba (no attention) gets residual-stream geometry and diversity with a note saying why
attention is missing; XLM (no list of whole blocks: capture cannot run) gets a finished
scan whose geometry is a skipped probe saying why (XLM cannot be sampled by collapsekit's
decoder, so its scan runs geometry alone)."""

from __future__ import annotations

import json

import pytest
import torch
import transformers as T
from conftest import make_tokenizer
from test_capture_architectures import FAMILIES, IDS

from collapsekit.studies import run_scan


def _saved(tmp_path, name, model):
    path = tmp_path / name
    model.save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return path


def _records(out):
    return json.loads((out / "metrics.json").read_text())


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_scan_of_a_model_without_attention(tmp_path, one_thread):
    torch.manual_seed(0)
    folder = _saved(tmp_path, "tiny-mamba", T.AutoModelForCausalLM.from_config(
        FAMILIES["mamba"][0]()))
    out = tmp_path / "scan"
    run_scan(out, model=str(folder), studies=["geometry", "diversity"], quick=True,
             device="cpu", report=False)
    run = _records(out)
    metrics = {r["metric"] for r in run["records"]}
    assert {"rankme", "anisotropy"} <= metrics and not {"attention_entropy"} & metrics
    skipped = [r for r in run["records"] if r["metric"] == "probe_skipped"]
    assert [r["probe"] for r in skipped] == ["attention entropy"]
    assert "no attention in this architecture (MambaForCausalLM)" in skipped[0]["note"]
    assert any(r["section"] == "diversity" for r in run["records"])
    assert run["model"]["capture"] == {"blocks": "backbone.layers", "n_blocks": 2,
                                       "final_norm": "backbone.norm_f",
                                       "attention": "no attention in this architecture"}
    assert set(run["done"]) == {"geometry", "diversity"}


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_scan_skips_geometry_it_cannot_capture_and_goes_on(tmp_path, one_thread):
    torch.manual_seed(0)
    xlm = T.XLMWithLMHeadModel(T.XLMConfig(emb_dim=16, n_layers=2, n_heads=2, **IDS)).eval()
    folder = _saved(tmp_path, "tiny-xlm", xlm)
    out = tmp_path / "scan"
    run_scan(out, model=str(folder), studies=["geometry"], quick=True, device="cpu",
             report=False)
    run = _records(out)
    skipped = {r["probe"]: r["note"] for r in run["records"] if r["metric"] == "probe_skipped"}
    assert "unsupported architecture XLMWithLMHeadModel" in skipped["geometry"]
    assert "do not run once each" in skipped["geometry"]
    assert "unsupported" in run["model"]["capture"] and run["finished"]
