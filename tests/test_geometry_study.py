"""``collapsekit geometry`` end to end on a tiny model from a local folder: per-layer
geometry equals the metrics computed from the model's own hidden states, and neural
collapse is recorded when asked."""

import json

import numpy as np
import pytest
import torch

from collapsekit import metrics
from collapsekit.studies.geometry import run_geometry
from conftest import make_model, make_tokenizer

TEXTS = ["the cat sees the moon", "a dog runs to the river and the king sings",
         "the old man finds gold in the stone house", "red fish and blue fish",
         "the queen tells the child of the dark star", "small birds fly in the wind"] * 3


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    texts = tmp_path / "texts.txt"
    texts.write_text("\n".join(TEXTS) + "\n")
    return str(path), texts


def test_geometry_matches_the_models_own_hidden_states(tiny, tmp_path):
    spec, texts = tiny
    out = tmp_path / "geo"
    run_geometry(spec, out, texts=texts, n=len(TEXTS), batch_size=4, max_length=32)
    data = json.loads((out / "metrics.json").read_text())
    got = {(r["metric"], r["layer"]): r["value"] for r in data["records"] if "layer" in r}

    model, tok = make_model("llama"), make_tokenizer()
    rows = {i: [] for i in range(4)}
    with torch.inference_mode():
        for text in TEXTS:  # one text at a time: no padding at all
            hs = model(**tok(text, return_tensors="pt"), output_hidden_states=True).hidden_states
            for i, h in enumerate(hs):  # embed, block 1, block 2, final norm (HF's last)
                rows[i].append(h[0].double().numpy())
    ours = {0: 0, 1: 1, 2: 2, 3: 4}  # our layers: embed, block_1..3, final_norm
    for hf, layer in ours.items():
        x = np.concatenate(rows[hf])
        assert got[("rankme", layer)] == pytest.approx(metrics.rankme(x), rel=1e-6)
        assert got[("anisotropy", layer)] == pytest.approx(metrics.anisotropy(x), rel=1e-6)
        ev = metrics.spectrum(x)
        assert got[("participation_ratio", layer)] == pytest.approx(
            metrics.participation_ratio(ev), rel=1e-6)
    assert (out / "index.html").is_file()


def test_geometry_with_neural_collapse(tiny, tmp_path):
    spec, texts = tiny
    out = tmp_path / "nc"
    run_geometry(spec, out, texts=texts, n=12, batch_size=4, max_length=32,
                 neural_collapse=dict(layers=("final_norm",), min_count=2, heldout=4))
    data = json.loads((out / "metrics.json").read_text())
    nc = {r["metric"]: r["value"] for r in data["records"]
          if r.get("section") == "neural collapse"}
    assert {"nc1", "cdnv", "equinorm_cv", "etf_error", "duality_error"} <= set(nc)
    assert nc["nc1"] > 0 and 0 <= nc["etf_error"]
    assert (out / "tables" / "nc_class_counts.parquet").is_file()


def test_too_few_texts(tiny, tmp_path):
    spec, _ = tiny
    one = tmp_path / "one.txt"
    one.write_text("just one text\n")
    with pytest.raises(ValueError, match="at least 2 texts"):
        run_geometry(spec, tmp_path / "x", texts=one)
