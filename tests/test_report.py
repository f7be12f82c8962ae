"""HTML report: self-contained, escaped, one plot per (metric, kind), valid PNGs (the
layout itself: tests/test_layout.py)."""

import base64
import re

import pytest

from collapsekit.errors import InputFileError
from collapsekit.metrics import CATALOG
from collapsekit.report import plots
from collapsekit.report.html import render
from collapsekit.results import Run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
XSS = "<script>alert(1)</script>"
EXPECTED_PLOTS = {"geometry-rankme-layer.png", "attention-attention_entropy-heatmap.png",
                  "diversity-distinct_2-prompt.png", "recursion-variance_ratio-generation.png",
                  "length-collapse-rankme-length.png",
                  "agents-manifold-geodesic_distance_to_anchor-round.png",
                  "drift-perplexity_ratio-step.png", "passkey-passkey_cell_accuracy-heatmap.png"}


def build(path):
    run = Run(path, study="scan", config={"n": 1})
    run.meta(model={"spec": "embedded:tiny", "weight_hash": "feedbeef"})
    for model, off in (("a", 0.0), ("b", 1.0)):
        for layer in range(4):
            v = 10.0 - layer + off
            run.add("rankme", v, layer=layer, model=model, ci_low=v - 0.5, ci_high=v + 0.5,
                    section="geometry")
    for layer in range(3):
        for head in range(2):
            run.add("attention_entropy", layer + head / 10, layer=layer, head=head,
                    section="attention")
    for p in range(6):
        run.add("distinct_2", p / 10, prompt_id=p, model=XSS, section="diversity")
    run.add("vendi_score", 3.25, ci_low=2.5, ci_high=4.0, section="diversity", note=XSS)
    run.add("semantic_spread", 0.5, ci_low=0.25, section="diversity")  # one CI bound
    run.add("self_bleu", float("nan"), section="diversity")
    run.add(XSS, 1.0, section="diversity")
    for strategy in ("replace", "accumulate"):
        for g in range(3):
            for seed in range(2):
                run.add("variance_ratio", 1.0 - g / 10 + seed / 100, generation=g,
                        strategy=strategy, seed=seed, section="recursion")
    for tau in (1.0, 0.8):
        for length in (32, 64, 128):
            run.add("rankme", 40.0 - length / 32 + tau, length=length, tau=tau,
                    section="length collapse")
    for t in range(5):  # log-scale metric: values over several decades
        for update in ("smooth", "noisy"):
            run.add("geodesic_distance_to_anchor", 10.0 ** -(3 * t if update == "smooth" else t),
                    round=t, update=update, section="agents manifold")
        run.add("perplexity_ratio", 1 + t / 10, step=t, section="drift")
    for depth in (0.0, 0.5):
        for length in (128, 256):
            run.add("passkey_cell_accuracy", depth, depth=depth, length=length,
                    section="passkey")
    run.add("loose_metric", 7.0)
    run.table("samples", [{"prompt_id": p, "prompt": f"prompt {p}", "text": t}
                          for p in range(2) for t in (XSS, f"sample-{p}-1", f"sample-{p}-2")])
    run.meta(samples_table="samples")
    run.finish()
    return run


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    build(d)
    (d / "plots").mkdir()
    (d / "plots" / "mine.png").write_bytes(PNG_MAGIC)  # a user's file: kept
    render(d, samples_per_prompt=2)
    (d / "plots" / "stale.png").write_bytes(PNG_MAGIC)
    manifest = d / "plots" / ".collapsekit"
    manifest.write_text(manifest.read_text() + "stale.png\n")  # as if an earlier render wrote it
    out = render(d, samples_per_prompt=2)
    return d, out.read_text(encoding="utf-8")


def test_writes_index_and_one_valid_png_per_plot(page):
    d, html = page
    assert (d / "index.html").is_file()
    files = {p.name for p in (d / "plots").glob("*.png")} - {"mine.png"}
    assert files == EXPECTED_PLOTS  # stale.png of the earlier render is gone, mine.png kept
    assert (d / "plots" / "mine.png").read_bytes() == PNG_MAGIC
    assert set((d / "plots" / ".collapsekit").read_text().split()) == EXPECTED_PLOTS
    embedded = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(embedded) == len(EXPECTED_PLOTS)
    on_disk = {(d / "plots" / f).read_bytes() for f in files}
    for b64 in embedded:
        png = base64.b64decode(b64)
        assert png.startswith(PNG_MAGIC) and png in on_disk


def test_untrusted_text_is_escaped(page):
    _, html = page
    assert "<script" not in html.lower()
    escaped = "&lt;script&gt;alert(1)&lt;/script&gt;"
    assert html.count(escaped) == 4  # sample text (2 prompts), note, metric name
    assert f"<td>{escaped}</td>" in html  # the metric named like a script tag


def test_no_external_resources(page):
    _, html = page
    assert "http://" not in html and "https://" not in html
    for attr in re.findall(r'(?:src|href)\s*=\s*["\']([^"\']*)', html):
        assert attr.startswith(("data:image/png;base64,", "#", "plots/", "tables/",
                                "metrics.json")), attr
    assert "@import" not in html and "url(" not in html


def test_layout_header_sections_and_scalars(page):
    _, html = page
    for text in ("embedded:tiny", "feedbeef", "0.1.0", "config hash"):
        assert text in html
    order = [html.index(f"id='s-{s}'") for s in
             ("geometry", "attention", "diversity", "recursion", "other", "samples")]
    assert order == sorted(order)
    assert "<td class='num'>3.25</td><td>[2.5, 4]</td><td>lower = collapse</td>" in html
    assert "<td class='num'>0.5</td><td>[0.25, NaN]</td>" in html
    assert "<td class='num'>NaN</td>" in html  # self_bleu was NaN -> null -> shown as NaN
    assert "<td>loose_metric</td>" in html
    assert "Shaded band: the confidence interval" in html  # rankme has CIs
    assert "6 point(s) are means of several records" in html  # 2 strategies x 3 gens


def test_samples_first_n_per_prompt_in_details(page):
    _, html = page
    assert "sample-0-1" in html and "sample-1-1" in html
    assert "sample-0-2" not in html and "sample-1-2" not in html  # samples_per_prompt=2
    assert html.count("<details open><summary>prompt ") == 2  # the first two open
    assert html.count("<summary>record</summary>") == 4


def test_metric_info_and_labels():
    for name in ("rankme", "matrix_entropy_rank", "anisotropy", "participation_ratio",
                 "alpha_req", "distinct_1", "distinct_2", "distinct_3", "mean_pairwise_cosine",
                 "semantic_spread", "vendi_score", "self_bleu"):
        info = plots.metric_info(name)
        assert info["collapse"] in ("low", "high") and info["label"] and info["doc"]
        assert info["label"] == CATALOG[name].label and info["doc"] == CATALOG[name].doc
    assert plots.metric_label("rankme") == "RankMe  (lower = more collapsed)"
    assert plots.metric_label("anisotropy").endswith("(higher = more collapsed)")
    assert plots.metric_label("unknown_metric") == "unknown_metric"
    assert plots.metric_info("mean_self_bleu")["collapse"] == "high"
    assert plots.metric_info("unknown_metric") == {}
    assert plots.metric_info("min_unknown_metric") == {}
    # its own entry (a layer index, no direction), not min_ of a metric "rankme_layer"
    assert plots.metric_info("min_rankme_layer")["collapse"] is None
    assert plots.metric_label("min_rankme_layer") == "layer of lowest RankMe"
    assert plots.metric_info("geodesic_distance_to_anchor")["scale"] == "log"


def test_all_missing_values_and_empty_run(tmp_path):
    run = Run(tmp_path, study="scan", config={})
    run.write()
    html = render(tmp_path).read_text()
    assert "no records yet" in html and "<img" not in html
    run.add("rankme", float("nan"), layer=0)
    run.add("rankme", None, layer=1)
    run.meta(samples_table="absent")
    run.write()
    html = render(tmp_path).read_text()
    assert "All 2 values are missing." in html and "<img" not in html
    assert "the run has no table" in html  # a named samples table that does not exist


def test_render_bad_input(tmp_path):
    with pytest.raises(InputFileError, match="no metrics.json"):
        render(tmp_path)
    Run(tmp_path, study="scan", config={})
    with pytest.raises(ValueError, match="at least 1"):
        render(tmp_path, samples_per_prompt=0)


def test_closed_form_series_pair_with_their_simulation():
    from collapsekit.report.plots import _reference

    assert _reference("strategy=replace, source=closed_form") == ("strategy=replace", True)
    assert _reference("strategy=replace, source=simulation") == ("strategy=replace", False)
    assert _reference("model=a") == ("model=a", False)
