"""Plot references (report/references.py): maximum possible min(N, D), the embedding-layer
level, the human baseline in the model's plots, feasible ranges, relative depth."""

import pytest

from collapsekit.report.layout import plan
from collapsekit.report.references import RefLine, relative_depth

META = {"model": {"hidden_size": 32}, "geometry_tokens": 20}


def geometry(metric, values, **scope):
    return [{"metric": metric, "value": v, "section": "geometry", "layer": i, **scope}
            for i, v in enumerate(values)]


def plots(records, meta=None, depth="auto"):
    return {(s.name, p.metric, p.view): p for s in plan(records, meta, depth) for p in s.plots}


def test_rank_metrics_get_min_n_d_the_embedding_level_and_a_range_from_zero():
    p = plots(geometry("rankme", [10.0, 12.0, 11.0]), META)["geometry", "rankme", "layer"]
    assert p.refs == (RefLine("maximum possible: min(N, D) = min(20, 32)", 20.0),
                      RefLine("embedding layer (layer 0)", 10.0))
    assert p.ylim == (0.0, 21.0) and "Grey lines" in p.caption
    p = plots(geometry("rankme", [5.0, 6.0]), {"model": {"hidden_size": 8}})[
        "geometry", "rankme", "layer"]
    assert p.refs[0] == RefLine("maximum possible: D = 8", 8.0)
    assert p.ylim == (0.0, pytest.approx(8.4))


def test_feasible_ranges_by_unit_and_no_references_without_metadata():
    got = plots(geometry("anisotropy", [0.2, 0.5]) + geometry("isoscore", [0.1, 0.2])
                + geometry("alpha_req", [3.0, 5.0]) + geometry("rankme", [3.0, 5.0]))
    assert got["geometry", "anisotropy", "layer"].ylim == (0.0, 1.0)  # cosine, up to 1
    assert got["geometry", "isoscore", "layer"].ylim == (0.0, 1.0)  # fraction
    assert got["geometry", "alpha_req", "layer"].ylim is None  # unitless: automatic
    rank = got["geometry", "rankme", "layer"]
    assert rank.refs == (RefLine("embedding layer (layer 0)", 3.0),) and rank.ylim[0] == 0.0
    two = plots(geometry("anisotropy", [-0.3, 0.5], model="a")
                + geometry("anisotropy", [0.1, 0.2], model="b"))
    assert two["geometry", "anisotropy", "layer"].refs == ()  # two curves: no layer-0 line
    assert two["geometry", "anisotropy", "layer"].ylim == (-0.3, 1.0)


def test_human_baseline_joins_the_model_plots():
    recs = [{"metric": "distinct_2", "value": v, "section": "diversity", "prompt_id": i,
             "source": "model", "model": "m", "temperature": 1.0}
            for i, v in enumerate([0.4, 0.6])]
    recs += [{"metric": "mean_distinct_2", "value": 0.5, "ci_low": 0.4, "ci_high": 0.6,
              "section": "diversity", "source": "model", "model": "m", "temperature": 1.0},
             {"metric": "mean_distinct_2", "value": 0.9, "ci_low": 0.85, "ci_high": 0.95,
              "section": "diversity", "source": "human"}]
    got = plots(recs)
    human = RefLine("human text", 0.9, 0.85, 0.95)
    assert got["diversity", "distinct_2", "prompt"].refs == (human,)
    line = got["diversity", "mean_distinct_2", "temperature"]
    assert line.refs == (human,) and line.ylim == (0.0, 1.0)
    assert list(line.series) == ["m"]  # the model names the one line


def test_relative_depth_only_when_compared_depths_differ():
    a = [dict(r, run="a") for r in geometry("rankme", [1.0, 2.0, 3.0])]
    b = [dict(r, run="b") for r in geometry("rankme", [1.0, 2.0, 3.0, 4.0, 5.0])]
    head = {"metric": "attention_entropy", "value": 1.0, "layer": 4, "head": 0, "run": "b"}
    recs, rel = relative_depth(a + b + [head])
    assert rel and [r["layer"] for r in recs[:8]] == [0, 0.5, 1, 0, 0.25, 0.5, 0.75, 1]
    assert recs[-1]["layer"] == 4  # heatmaps keep layer indices
    assert relative_depth(a + b, "absolute") == (a + b, False)
    assert relative_depth(a + a, "auto") == (a + a, False)
    assert relative_depth(a + [dict(r, run="c") for r in a], "relative")[1]
    p = plots(a + b, META)["geometry", "rankme", "layer"]
    assert p.x == "relative depth (layer / last layer)" and p.series["b"]["x"][1] == 0.25
    assert p.refs == () and "--depth absolute" in p.caption
    with pytest.raises(ValueError, match="depth='deep'"):
        relative_depth(a, "deep")


def test_compare_of_models_of_different_depth_end_to_end(tmp_path, monkeypatch, capsys):
    import re
    import warnings

    from conftest import make_model, make_tokenizer, run_cli
    from transformers import AutoModelForCausalLM, LlamaConfig

    from collapsekit.studies import run_study

    deep = make_model("llama")  # 3 blocks: layers 0..4 (embeddings .. final norm)
    cfg = LlamaConfig(**{**deep.config.to_dict(), "num_hidden_layers": 1})
    for name, model in (("deep", deep), ("shallow", AutoModelForCausalLM.from_config(cfg))):
        model.save_pretrained(tmp_path / name, safe_serialization=True)
        make_tokenizer().save_pretrained(tmp_path / name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run_study("geometry", tmp_path / f"run-{name}", model=str(tmp_path / name),
                      params={"n": 4, "max_length": 16, "attention": False}, report=False)
    code, _, _ = run_cli(monkeypatch, capsys, "compare", str(tmp_path / "run-deep"),
                         str(tmp_path / "run-shallow"), "--out", str(tmp_path / "cmp"),
                         "--depth", "absolute")
    page = (tmp_path / "cmp" / "index.html").read_text(encoding="utf-8")
    assert code in (0, None) and "each layer index divided" not in page
    assert re.search(r"<section id='summary'>.*run=.*shallow", page, re.DOTALL)
    code, _, _ = run_cli(monkeypatch, capsys, "report", str(tmp_path / "cmp"))  # auto
    page = (tmp_path / "cmp" / "index.html").read_text(encoding="utf-8")
    assert code in (0, None) and "each layer index divided by its run" in page
