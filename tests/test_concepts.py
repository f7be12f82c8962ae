"""The concepts study (Shani et al. 2025, "From Tokens to Thoughts"): rate, distortion and the
IB objective of hand-made partitions in closed form, the objective's β limits, AMI and the
typicality correlation, bad input, the CSV reader's errors, and a CLI run on a tiny model."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import run_cli

from collapsekit.errors import InputFileError
from collapsekit.metrics import concepts as mc
from collapsekit.studies.concepts import default_ks, read_concepts

# four points on a line in two pairs: {0, 2} and {10, 14}
X = np.array([[0.0], [2.0], [10.0], [14.0]])
PAIRS, ONE, SINGLE = [0, 0, 1, 1], [0, 0, 0, 0], [0, 1, 2, 3]


def test_rate_of_hand_made_partitions():
    assert mc.partition_rate(PAIRS) == pytest.approx(1.0)  # log2 4 − (2·1 + 2·1)/4
    assert mc.partition_rate(["a", "a", "a", "b"]) == pytest.approx(
        -(0.75 * math.log2(0.75) + 0.25 * math.log2(0.25)))  # H(3/4, 1/4) = 0.8113
    assert mc.partition_rate(ONE) == 0.0
    assert mc.partition_rate(SINGLE) == pytest.approx(2.0)  # log2 N


def test_distortion_and_centroid_distances_by_hand():
    np.testing.assert_allclose(mc.centroid_distances(X, PAIRS), [1, 1, 2, 2])
    assert mc.partition_distortion(X, PAIRS) == pytest.approx((1 + 1 + 4 + 4) / 4)
    # one cluster: mean 6.5, squared deviations 42.25 + 20.25 + 12.25 + 56.25
    assert mc.partition_distortion(X, ONE) == pytest.approx(131 / 4)
    assert mc.partition_distortion(X, SINGLE) == 0.0
    # 2-D: the distance is Euclidean, the distortion its mean square
    assert mc.partition_distortion([[0, 0], [3, 4]], [0, 0]) == pytest.approx(6.25)


def _best(beta):
    parts = {"one": ONE, "pairs": PAIRS, "singletons": SINGLE}
    scores = {k: mc.ib_objective(mc.partition_rate(p), mc.partition_distortion(X, p), beta)
              for k, p in parts.items()}
    return min(scores, key=scores.get), scores


def test_ib_objective_limits_and_middle():
    best, scores = _best(1e-9)  # β → 0: L → rate, one cluster wins with L = 0
    assert best == "one" and scores["one"] == pytest.approx(0.0, abs=1e-6)
    assert scores["pairs"] == pytest.approx(1.0, abs=1e-6)
    best, scores = _best(1e9)  # β → ∞: L/β → distortion, singletons win with L = log2 N
    assert best == "singletons" and scores["singletons"] == pytest.approx(2.0)
    assert scores["pairs"] / 1e9 == pytest.approx(2.5)
    best, scores = _best(0.1)  # in between the natural pairs win: 1 + 0.25 < 2 < 3.275
    assert best == "pairs" and scores["pairs"] == pytest.approx(1.25)


def test_ami_and_kmeans_recover_planted_categories():
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 10, (3, 5))
    human = np.repeat(["bird", "fruit", "tool"], 8)
    x = centres[np.repeat([0, 1, 2], 8)] + rng.normal(0, 0.1, (24, 5))
    labels = mc.kmeans_labels(x, 3, seed=0)
    assert mc.category_ami(human, labels) == pytest.approx(1.0)
    assert mc.category_ami(human, (labels + 1) % 3) == pytest.approx(1.0)  # names don't count
    noise = np.random.default_rng(1).integers(0, 3, 24)
    assert abs(mc.category_ami(human, noise)) < 0.2


def test_typicality_spearman_sign():
    # closest item most typical: a perfect typicality gradient is rho = +1
    assert mc.typicality_spearman([1, 2, 3, 4], [9, 7, 5, 1]) == pytest.approx(1.0)
    assert mc.typicality_spearman([1, 2, 3, 4], [1, 5, 7, 9]) == pytest.approx(-1.0)


@pytest.mark.parametrize("call, match", [
    (lambda: mc.category_ami([0, 0, 0], [0, 1, 1]), "human categories form one cluster"),
    (lambda: mc.category_ami([0, 1, 1], [0, 0, 0]), "model clusters form one cluster"),
    (lambda: mc.category_ami([0, 1], [0, 1, 1]), "2 human labels but 3 model labels"),
    (lambda: mc.partition_rate([]), "non-empty 1-D"),
    (lambda: mc.partition_rate([0.0, math.nan]), "NaN or infinite labels"),
    (lambda: mc.partition_distortion(X, [0, 1]), "4 embedding rows but 2 labels"),
    (lambda: mc.partition_distortion([[0.0], [math.nan]], [0, 0]), "NaN or inf"),
    (lambda: mc.typicality_spearman([1, 2, 3], [1, math.nan, 2]), "NaN or inf"),
    (lambda: mc.typicality_spearman([1, 2, 3], [1, 2]), "3 distances but 2 typicality"),
    (lambda: mc.typicality_spearman([1, 2], [1, 2]), "at least 3 items"),
    (lambda: mc.typicality_spearman([1, 2, 3], [4, 4, 4]), "all equal"),
    (lambda: mc.ib_objective(1.0, 2.0, -1.0), "beta=-1.0 must be"),
    (lambda: mc.ib_objective(math.nan, 2.0, 1.0), "rate=nan"),
    (lambda: mc.kmeans_labels(X, 4), r"k=4 must be an integer in \[2, 3\]"),
    (lambda: mc.kmeans_labels(X, 1), r"k=1 must be"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bundled_file_is_membership_only():
    c = read_concepts()
    assert len(c.items) == 120 and len(set(c.categories)) == 10 and c.typicality is None
    assert "blue jay" in c.items
    assert default_ks(10, 120) == (5, 10, 20)
    assert default_ks(2, 4) == (2,)  # 2C = 4 is not below N


def _csv(tmp_path, body, name="c.csv"):
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


@pytest.mark.parametrize("body, match", [
    ("", "has no rows"),
    ("cat,item,score\nbird,robin,1\n", "line 1: the header must be category,item,typicality"),
    ("category,item,typicality\nbird,robin\n", "line 2: expected 3 fields"),
    ("category,item,typicality\n,robin,1\n", "line 2: empty category"),
    ("category,item,typicality\nbird,,1\n", "line 2: empty item"),
    ("category,item,typicality\nbird,robin,nan\n", "line 2: typicality 'nan' is not a finite"),
    ("category,item,typicality\nbird,robin,high\n", "line 2: typicality 'high'"),
    ("category,item,typicality\nbird,robin,1\nbird,crow,\n", ("line 3: typicality is given on "
                                                             "some rows but not on others")),
    ("category,item,typicality\nbird,robin,\nfruit,Robin,\n", ("line 3: item 'Robin' already "
                                                              "appears on line 2")),
    ("category,item,typicality\nbird,robin,\nbird,crow,\n", "1 category"),
    ("# note\ncategory,item,typicality\nbird,robin,\nbird,crow,\nfruit,apple,\n",
     "category fruit has one item"),
])
def test_user_csv_errors_are_clear(tmp_path, body, match):
    with pytest.raises(InputFileError, match=match):
        read_concepts(_csv(tmp_path, body))


def test_missing_file_is_named(tmp_path):
    with pytest.raises(InputFileError, match="cannot read concepts file .*nope.csv"):
        read_concepts(tmp_path / "nope.csv")


# Words of the tiny model's vocabulary (tests/conftest.py), typicality higher = more typical.
TINY = """# a test file
category,item,typicality
animal,cat,7
animal,dog,6
animal,bird,5
animal,fish,3
nature,tree,7
nature,river,6
nature,stone,4
nature,wind,2
colour,red,7
colour,blue,6
colour,green,5
colour,gold,1
"""


def _records(out):
    return json.loads((out / "metrics.json").read_text())["records"]


def test_cli_run_on_the_tiny_model(tmp_path, monkeypatch, capsys, tiny_dir):
    out = tmp_path / "run"
    code, _, err = run_cli(monkeypatch, capsys, "concepts", "--model", str(tiny_dir),
                           "--out", str(out), "--concepts", str(_csv(tmp_path, TINY)),
                           "--ks", "2,3", "--quick", "--no-report")
    assert code == 0, err
    recs = _records(out)
    by = {(r["metric"], r.get("partition"), r.get("k"), r.get("category")): r["value"]
          for r in recs}
    assert by[("concept_rate", "human", 3, None)] == pytest.approx(math.log2(3))
    assert 0 <= by[("concept_rate", "kmeans", 2, None)] <= 1
    for k in (2, 3):
        assert -1 <= by[("concept_ami", None, k, None)] <= 1
    gap = by[("concept_ib_gap", None, 3, None)]
    assert gap == pytest.approx(by[("concept_ib_objective", "human", 3, None)]
                                - by[("concept_ib_objective", "kmeans", 3, None)])
    rhos = [by[("typicality_spearman", None, None, c)] for c in ("animal", "nature", "colour")]
    assert all(-1 <= r <= 1 for r in rhos)
    mean = next(r for r in recs if r["metric"] == "mean_typicality_spearman")
    assert mean["value"] == pytest.approx(np.mean(rhos))
    assert {r["vectors"] for r in recs} == {"input_embeddings"}
    assert not (out / "index.html").exists()


def test_cli_layer_and_bad_inputs(tmp_path, monkeypatch, capsys, tiny_dir):
    csv_path = _csv(tmp_path, TINY)
    out = tmp_path / "layer"
    code, _, err = run_cli(monkeypatch, capsys, "concepts", "--model", str(tiny_dir), "--out",
                           str(out), "--concepts", str(csv_path), "--layer", "2", "--ks", "3",
                           "--no-report")
    assert code == 0, err
    assert {r["vectors"] for r in _records(out)} == {"layer_2"}
    code, _, err = run_cli(monkeypatch, capsys, "concepts", "--model", str(tiny_dir), "--out",
                           str(tmp_path / "x"), "--concepts", str(csv_path), "--layer", "9",
                           "--no-report")
    assert code == 2 and "layer=9 is out of range" in err and "Traceback" not in err
    code, _, err = run_cli(monkeypatch, capsys, "concepts", "--model", str(tiny_dir), "--out",
                           str(tmp_path / "y"), "--concepts", str(csv_path), "--ks", "12",
                           "--no-report")
    assert code == 2 and "k must be in [2, 11]" in err
    oov = _csv(tmp_path, TINY + "colour,purple,3\n", "oov.csv")
    code, _, err = run_cli(monkeypatch, capsys, "concepts", "--model", str(tiny_dir), "--out",
                           str(tmp_path / "z"), "--concepts", str(oov), "--no-report")
    assert code == 2 and "'purple' is not in the tokenizer's vocabulary" in err


def test_summary_judges_ami_at_k_equal_to_the_categories():
    from collapsekit.report.summary import summarize

    def rec(metric, value, **kw):
        return {"metric": metric, "value": value, "section": "concepts", **kw}

    found = summarize([rec("concept_ami", 0.05, k=5, k_vs_categories="fewer"),
                       rec("concept_ami", 0.6, k=10, k_vs_categories="equal"),
                       rec("mean_typicality_spearman", 0.01, categories=10)])
    verdicts = {f.metric: (f.value, f.verdict) for f in found}
    assert verdicts == {"concept_ami": (0.6, "healthy"),
                        "mean_typicality_spearman": (0.01, "collapsed")}


@pytest.mark.slow
def test_real_model_groups_the_bundled_categories_above_chance(tmp_path):
    """SmolLM2's input embeddings: k-means at k = 10 agrees with the 10 bundled categories
    far above chance (AMI ≈ 0 for random clusters; docs/concepts.md measures 0.36)."""
    from collapsekit.studies import run_study

    run_study("concepts", tmp_path / "r", model="embedded:smollm2-135m-instruct",
              quick=True, params={"ks": "10"}, device="cpu", report=False)
    recs = _records(tmp_path / "r")
    ami = next(r["value"] for r in recs if r["metric"] == "concept_ami")
    assert ami > 0.2
    split = next(r["value"] for r in recs if r["metric"] == "concept_split_items")
    assert 0 < split < 0.5  # "blue jay", "teddy bear" and SmolLM2's split words


def test_analyse_on_planted_vectors_by_hand(tmp_path):
    from collapsekit.studies.concepts import Concepts, analyse

    # category a at 0, 1, 2, 10 (mean 3.25): distances 3.25, 2.25, 1.25, 6.75; b shifted
    # by 100. Typicality ranks the closest first, so rho(−distance, typicality) = 1.
    pos = np.array([0.0, 1, 2, 10, 100, 101, 102, 110])[:, None]
    c = Concepts(["a"] * 4 + ["b"] * 4, list("pqrstuvw"),
                 np.array([2.0, 3, 4, 1, 2, 3, 4, 1]), "planted")
    recs, rows = analyse(pos, c, ks=(2,), beta=0.5, seed=0, n_init=2)
    by = {(r["metric"], r.get("partition"), r.get("category")): r["value"] for r in recs}
    dist = (3.25**2 + 2.25**2 + 1.25**2 + 6.75**2) / 4
    assert by[("concept_rate", "human", None)] == pytest.approx(1.0)
    assert by[("concept_distortion", "human", None)] == pytest.approx(dist)
    assert by[("concept_ib_objective", "human", None)] == pytest.approx(1 + 0.5 * dist)
    assert by[("concept_ami", None, None)] == pytest.approx(1.0)  # k-means finds a and b
    assert by[("concept_ib_gap", None, None)] == pytest.approx(0.0)  # the same partition
    assert by[("typicality_spearman", None, "a")] == pytest.approx(1.0)
    assert by[("mean_typicality_spearman", None, None)] == pytest.approx(1.0)
    assert [r["centroid_distance"] for r in rows[:4]] == pytest.approx([3.25, 2.25, 1.25, 6.75])


def test_user_csv_with_bom_crlf_and_quotes(tmp_path):
    p = tmp_path / "w.csv"
    p.write_bytes(b'\xef\xbb\xbfcategory,item,typicality\r\nbird,robin,7\r\n'
                  b'bird,"blue jay",5\r\nfruit,apple,6\r\nfruit,fig,2\r\n')
    c = read_concepts(p)
    assert c.items == ["robin", "blue jay", "apple", "fig"]
    assert c.typicality.tolist() == [7, 5, 6, 2]
