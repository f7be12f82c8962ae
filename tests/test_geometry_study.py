"""``collapsekit geometry`` (``run_study("geometry", ...)``) end to end on a tiny model
from a local folder: per-layer geometry equals the metrics computed from the model's own
hidden states, neural collapse is recorded when asked, and a finished run resumes without
a forward pass."""

import json

import numpy as np
import pytest
import torch

from collapsekit import metrics
from collapsekit.studies import run_study
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


def run_geometry(spec, out, **params):
    """The geometry study on ``spec`` with ``params`` (typed values), as the CLI runs it."""
    flags = {k: params.pop(k) for k in ("resume", "force") if k in params}
    return run_study("geometry", out, model=spec, params=params, **flags)


def test_geometry_matches_the_models_own_hidden_states(tiny, tmp_path):
    spec, texts = tiny
    out = tmp_path / "geo"
    run_geometry(spec, out, texts=texts, n=len(TEXTS), batch_size=4, max_length=32)
    data = json.loads((out / "metrics.json").read_text())
    got = {(r["metric"], r["layer"]): r["value"] for r in data["records"]
           if "layer" in r and "basis" not in r}
    std = {(r["metric"], r["layer"]): r["value"] for r in data["records"]
           if r.get("basis") == "standardised"}

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
        top = metrics.top_coordinate(x)
        assert got[("top_coordinate", layer)] == top.index
        assert got[("top_coordinate_share", layer)] == pytest.approx(top.share, rel=1e-6)
        assert got[("top_coordinate_norm_share", layer)] == pytest.approx(
            metrics.top_coordinate_share(x, center=False), rel=1e-6)
        # the same spectral metrics on z-scored coordinates, from the same moments
        z = (x - x.mean(0)) / x.std(0)
        assert std[("rankme", layer)] == pytest.approx(metrics.rankme(z), rel=1e-5)
        assert std[("participation_ratio", layer)] == pytest.approx(
            metrics.participation_ratio(metrics.spectrum(z)), rel=1e-5)
    assert {m for m, _ in std} == {"rankme", "matrix_entropy_rank", "participation_ratio",
                                   "dim_eff", "alpha_req", "alpha_req_r2", "isoscore"}
    assert (out / "index.html").is_file()


def test_geometry_with_neural_collapse(tiny, tmp_path):
    spec, texts = tiny
    out = tmp_path / "nc"
    run_geometry(spec, out, texts=texts, n=12, batch_size=4, max_length=32,
                 neural_collapse=True, nc_layer=("final_norm",), nc_min_count=2,
                 nc_heldout=4)
    data = json.loads((out / "metrics.json").read_text())
    recs = [r for r in data["records"] if r.get("section") == "neural collapse"]
    nc = {r["metric"]: r["value"] for r in recs}
    assert {"nc1", "cdnv", "equinorm_cv", "etf_error", "duality_error"} <= set(nc)
    # every NC record says K, D and the singleton handling; CDNV says its power
    assert all((r["K"], r["D"], r["singletons"]) == (nc["n_classes"], 32, "exclude")
               for r in recs)
    assert [r["power"] for r in recs if r["metric"] == "cdnv"] == [1]
    assert nc["nc1"] > 0 and 0 <= nc["etf_error"]
    assert data["config"]["nc_heldout"] == 4 and data["config"]["nc_layer"] == ["final_norm"]
    assert (out / "tables" / "nc_class_counts.parquet").is_file()


def test_neural_collapse_singletons_and_cdnv_power_options(tiny, tmp_path):
    spec, texts = tiny
    opts = dict(texts=texts, n=6, batch_size=4, max_length=32, neural_collapse=True,
                nc_heldout=0, nc_min_count=1)  # 6 distinct texts: some next tokens once
    run_geometry(spec, tmp_path / "p1", **opts)
    run_geometry(spec, tmp_path / "lc", **opts, nc_singletons="include", nc_cdnv_power=2)
    got = {}
    for name in ("p1", "lc"):
        data = json.loads((tmp_path / name / "metrics.json").read_text())
        got[name] = {r["metric"]: r for r in data["records"]
                     if r.get("section") == "neural collapse"}
    p1, lc = got["p1"], got["lc"]
    singles = p1["singleton_classes"]["value"]
    assert singles > 0 and lc["singleton_classes"]["value"] == singles
    assert lc["n_classes"]["value"] == p1["n_classes"]["value"] + singles
    assert lc["nc1"]["K"] == lc["n_classes"]["value"] and lc["nc1"]["singletons"] == "include"
    assert (p1["cdnv"]["power"], lc["cdnv"]["power"]) == (1, 2)
    with pytest.raises(ValueError, match="nc_min_count=1"):
        run_geometry(spec, tmp_path / "bad", **{**opts, "nc_min_count": 2},
                     nc_singletons="include")
    assert not (tmp_path / "bad").exists()


def test_neural_collapse_rides_along_the_geometry_pass(tiny, tmp_path, monkeypatch):
    from collapsekit.models import registry
    from collapsekit.results import Run
    from collapsekit.studies import neural_collapse as nc_study

    spec, texts = tiny
    calls, real = {"n": 0}, registry.load_model

    def counted(*a, **kw):
        lm = real(*a, **kw)
        lm.model.register_forward_pre_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
        return lm

    monkeypatch.setattr(registry, "load_model", counted)
    opts = dict(texts=texts, n=12, batch_size=4, max_length=32)
    run_geometry(spec, tmp_path / "geo", **opts)
    alone = calls["n"]
    calls["n"] = 0
    run_geometry(spec, tmp_path / "both", **opts, neural_collapse=True,
                 nc_layer=("final_norm", "block_2"), nc_min_count=2, nc_heldout=0)
    assert calls["n"] == alone  # one forward pass per batch for both studies
    calls["n"] = 0
    run_geometry(spec, tmp_path / "both", **opts, neural_collapse=True,
                 nc_layer=("final_norm", "block_2"), nc_min_count=2, nc_heldout=0,
                 resume=True)
    assert calls["n"] == 0  # finished: the runner skips the study on --resume
    both = json.loads((tmp_path / "both" / "metrics.json").read_text())
    got = {(r["metric"], r["layer"]): r["value"] for r in both["records"]
           if r.get("section") == "neural collapse"}
    # the same numbers as the neural-collapse stage with its own (length-sorted) pass, up to
    # float32 differences of the forward pass under another batching
    run = Run(tmp_path / "own", study="geometry", config={})
    lines = (tmp_path / "texts.txt").read_text().splitlines()[:12]
    nc_study.stage(run, real(spec), lines, layers=("final_norm", "block_2"), min_count=2,
                   batch_size=4, max_length=32)
    own = {(r["metric"], r["layer"]): r["value"] for r in run.records}
    assert got.keys() == own.keys() and len(got) > 8
    for key, v in own.items():
        assert got[key] == (None if v is None else pytest.approx(v, rel=1e-5, abs=1e-9)), key


def test_too_few_texts(tiny, tmp_path):
    spec, _ = tiny
    one = tmp_path / "one.txt"
    one.write_text("just one text\n")
    with pytest.raises(ValueError, match="geometry needs at least 2 texts, got 1"):
        run_geometry(spec, tmp_path / "x", texts=one)
    with pytest.raises(ValueError, match="n=1 for study 'geometry': must be at least 2"):
        run_geometry(spec, tmp_path / "x", n=1)
    assert not (tmp_path / "x").exists()  # refused before the folder is made


def _direct(texts):
    """Per-(layer, head) attention entropy sums, per-layer residuals and logit-lens top-1
    of the tiny llama, one text at a time from output_hidden_states / output_attentions."""
    model, tok = make_model("llama"), make_tokenizer()
    ent = np.zeros((3, 4))
    rows = 0
    res = {n: np.zeros(4) for n in ("fro", "l1linf")}
    tops = []
    with torch.inference_mode():
        for text in texts:
            out = model(**tok(text, return_tensors="pt"), output_hidden_states=True,
                        output_attentions=True)
            for l, a in enumerate(out.attentions):  # (1, H, T, T), causal
                p = a[0].double().numpy()
                ent[l] += -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1)), 0)).sum((1, 2))
            rows += out.attentions[0].shape[-1]
            hs = [h[0].double().numpy() for h in out.hidden_states]
            for i, h in enumerate(hs):
                for norm in res:
                    res[norm][i] += metrics.rank_collapse_residual(h, norm=norm)
            lens = [model.lm_head(model.model.norm(h)).argmax(-1)[0].numpy()
                    for h in out.hidden_states[:3]]
            tops.append(np.stack(lens + [out.logits.argmax(-1)[0].numpy()]))
    return ent / rows, {n: r / len(texts) for n, r in res.items()}, np.concatenate(tops, 1)


@pytest.fixture
def no_render(monkeypatch):
    """Skip the HTML report (matplotlib dominates the runtime; tested above)."""
    monkeypatch.setattr("collapsekit.report.html.render", lambda path: path)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def test_attention_residual_and_logit_lens_match_direct_computation(tiny, tmp_path, no_render):
    spec, texts = tiny
    out = tmp_path / "geo"
    run_geometry(spec, out, texts=texts, n=len(TEXTS), batch_size=4, max_length=32,
                 logit_lens=True)
    data = json.loads((out / "metrics.json").read_text())
    got = {(r["metric"], r.get("layer"), r.get("head")): r["value"] for r in data["records"]}
    ent, res, top = _direct(TEXTS)
    for layer in (1, 2, 3):
        for head in range(4):
            assert got[("attention_entropy", layer, head)] == pytest.approx(
                ent[layer - 1, head], rel=1e-6)
    for hf, layer in {0: 0, 1: 1, 2: 2, 3: 4}.items():
        assert got[("rank_collapse_residual", layer, None)] == pytest.approx(
            res["fro"][hf], rel=1e-6)
        assert got[("rank_collapse_residual_l1linf", layer, None)] == pytest.approx(
            res["l1linf"][hf], rel=1e-6)
    agree = top == top[-1]
    for layer in range(4):
        assert got[("logit_lens_agreement", layer, None)] == pytest.approx(agree[layer].mean())
    # commitment layer: first layer from which every later layer agrees
    commit = [next(l for l in range(4) if agree[l:, i].all()) for i in range(top.shape[1])]
    assert got[("commitment_layer_mean", None, None)] == pytest.approx(np.mean(commit))
    from collapsekit.results import read_table
    hist = read_table(out, "commitment_layer")
    assert hist["tokens"] == np.bincount(commit, minlength=4).tolist()
    heads = read_table(out, "attention_heads")
    assert len(heads["head"]) == 12
    frac = got[("attention_collapsed_heads", 1, None)]
    assert frac == np.mean([c for l, c in zip(heads["layer"], heads["collapsed"]) if l == 1])


def test_geometry_extras_can_be_switched_off(tiny, tmp_path, no_render):
    spec, texts = tiny
    out = tmp_path / "plain"
    run_geometry(spec, out, texts=texts, n=8, batch_size=4, max_length=32, attention=False,
                 rank_collapse=False)
    metrics_seen = {r["metric"] for r in json.loads((out / "metrics.json").read_text())["records"]}
    assert "rankme" in metrics_seen
    assert not metrics_seen & {"attention_entropy", "rank_collapse_residual",
                               "logit_lens_agreement"}
    with pytest.raises(ValueError, match="logit_lens_every=0 .*must be at least 1"):
        run_geometry(spec, tmp_path / "bad", texts=texts, n=8, logit_lens=True,
                     logit_lens_every=0)
    assert not (tmp_path / "bad").exists()
