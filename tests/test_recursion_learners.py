"""Learners: parameters, hand-computed metrics, sampling settings, filters, text learner."""

import numpy as np
import pytest

from collapsekit.studies.recursion import (LEARNERS, describe_learners, make_learner,
                                           parse_strategy, run_lanes)
from collapsekit.studies.recursion.learners.categorical import truncate
from collapsekit.studies.recursion.learners.gaussian import chan_merge


def test_registry_and_param_parsing():
    assert set(LEARNERS) == {"linear", "gaussian", "categorical", "zipf", "gmm", "kde",
                             "ngram", "lm"}
    lrn = make_learner("linear", {"d": "3", "T": "10", "sigma2": "0.5"})
    assert lrn.p == {"d": 3, "T": 10, "sigma2": 0.5, "ridge": 0.0} and lrn.n == 10
    assert make_learner("lm", {"reset": "false"}).p["reset"] is False
    assert "sigma2=1.0" in describe_learners()


@pytest.mark.parametrize("name, params, match", [
    ("nope", {}, "unknown learner 'nope': choose from linear"),
    ("linear", {"depth": "3"}, "unknown parameter\\(s\\) depth for learner 'linear': it "
                               "takes d, T"),
    ("linear", {"d": "x"}, "--param d=x for learner 'linear': expected an integer"),
    ("linear", {"d": "2.5"}, "expected an integer"),
    ("linear", {"sigma2": "nan"}, "finite"),
    ("linear", {"d": "0"}, "at least 1"),
    ("linear", {"d": "10", "T": "11"}, "OLS needs T > d \\+ 1"),
    ("gaussian", {"m": "3", "d": "3"}, "use m > d"),
    ("gaussian", {"variance": "biased"}, "choose one of ml, unbiased"),
    ("gaussian", {"sigma2": "0"}, "sigma2 must be > 0"),
    ("categorical", {"head": "10", "K": "10"}, "head=10 must be below"),
    ("kde", {"bandwidth": "0"}, "bandwidth must be > 0"),
    ("gmm", {"m": "2", "k": "3"}, "m ≥ k"),
    ("lm", {"reset": "maybe"}, "expected true or false"),
    ("lm", {"prompt_tokens": "8", "max_tokens": "8"}, "leaves no room"),
    ("lm", {"model": "nowhere/none.gguf"}, "does not exist"),
])
def test_bad_params(name, params, match):
    with pytest.raises(Exception, match=match):
        make_learner(name, params)


def test_linear_ridge_allows_small_T():
    lrn = make_learner("linear", {"d": "10", "T": "5", "ridge": "1"})
    res = run_lanes(lrn, parse_strategy("replace"), 2, [0])
    assert np.isfinite(res[0]["curves"]["test_error"]).all()


def test_linear_fit_recovers_exact_solution():
    lrn = make_learner("linear", {"d": 2, "T": 4, "sigma2": 0.0})
    rngs = [np.random.default_rng(0)]
    world = lrn.world(rngs)
    items = lrn.real(world, 4, rngs)  # noiseless: OLS returns w* exactly
    model = lrn.fit(world, lrn.summarize(world, items), rngs)
    np.testing.assert_allclose(model, world["w"], atol=1e-10)
    assert lrn.evaluate(world, model, None)["test_error"][0] == pytest.approx(0, abs=1e-18)
    ridge = make_learner("linear", {"d": 2, "T": 4, "ridge": 2.0})
    x, y = items[0, :, :2], items[0, :, 2]
    np.testing.assert_allclose(ridge.fit(world, ridge.summarize(world, items), rngs)[0],
                               np.linalg.solve(x.T @ x + 2 * np.eye(2), x.T @ y))


def test_gaussian_fit_merge_and_metrics_by_hand():
    lrn = make_learner("gaussian", {"d": 1, "m": 4})
    world = lrn.world([None])
    a = np.array([[[1.0], [3.0]]])
    b = np.array([[[5.0], [7.0]]])
    stats = chan_merge(lrn.summarize(world, a), lrn.summarize(world, b))
    model = lrn.fit(world, stats, None)
    assert model["mu"][0, 0] == 4 and model["cov"][0, 0, 0] == pytest.approx(5.0)  # ML
    unb = make_learner("gaussian", {"d": 1, "m": 4, "variance": "unbiased"})
    assert unb.fit(world, stats, None)["cov"][0, 0, 0] == pytest.approx(20 / 3)
    out = lrn.evaluate(world, model, None)
    # truth N(0, 1), model N(4, 5)
    kl = 0.5 * (1 / 5 + 16 / 5 - 1 + np.log(5))
    assert out["kl_real_model"][0] == pytest.approx(kl)
    assert out["nll_real"][0] == pytest.approx(kl + 0.5 * np.log(2 * np.pi * np.e))
    assert out["w2"][0] == pytest.approx(np.sqrt(16 + (np.sqrt(5) - 1) ** 2))
    assert out["cov_trace"][0] == 5 and out["mean_error"][0] == 16


def test_gaussian_temperature_scales_variance():
    lrn = make_learner("gaussian", {"d": 1})
    model = {"mu": np.zeros((1, 1)), "cov": np.ones((1, 1, 1))}
    x = lrn.sample(None, model, 40_000, [np.random.default_rng(0)], {"temperature": 0.25})
    assert x.var() == pytest.approx(0.25, rel=0.03)


def test_truncate_by_hand():
    p = np.array([[0.5, 0.3, 0.2]])
    np.testing.assert_allclose(truncate(p, {}), p)
    np.testing.assert_allclose(truncate(p, {"top_k": 2}), [[0.625, 0.375, 0]])
    np.testing.assert_allclose(truncate(p, {"top_p": 0.6}), [[0.625, 0.375, 0]])
    np.testing.assert_allclose(truncate(p, {"top_p": 0.5}), [[1, 0, 0]])
    np.testing.assert_allclose(truncate(p, {"temperature": 0.5}), np.array([[.25, .09, .04]]) / .38)
    np.testing.assert_allclose(truncate(np.array([[0.0, 1.0]]), {"temperature": 2}), [[0, 1]])


def test_categorical_metrics_by_hand():
    lrn = make_learner("categorical", {"K": 4, "m": 4})
    world = lrn.world([None])
    items = np.array([[0, 0, 1, 1]])
    p = lrn.fit(world, lrn.summarize(world, items), None)
    np.testing.assert_allclose(p, [[0.5, 0.5, 0, 0]])
    out = {k: v[0] for k, v in lrn.evaluate(world, p, None).items()}
    assert out["entropy"] == pytest.approx(np.log(2))
    assert out["support_size"] == 2 and out["gini_simpson"] == 0.5
    assert out["missing_mass"] == 0.5 and out["tv_real"] == 0.5
    assert out["kl_model_real"] == pytest.approx(np.log(2))
    js = 0.5 * (2 * 0.5 * np.log(0.5 / 0.375)) + 0.5 * (
        2 * 0.25 * np.log(0.25 / 0.375) + 2 * 0.25 * np.log(0.25 / 0.125))
    assert out["js_real"] == pytest.approx(js)
    draws = lrn.sample(world, np.array([[0.1, 0.0, 0.6, 0.3]]), 20_000,
                       [np.random.default_rng(1)], {})
    np.testing.assert_allclose(np.bincount(draws[0], minlength=4) / 20_000,
                               [0.1, 0, 0.6, 0.3], atol=0.015)


def test_zipf_tail_cut_and_filter():
    # top-k sampling cuts the tail faster than plain sampling (Dohmatob et al. 2024)
    plain = run_lanes(make_learner("zipf", {}), parse_strategy("replace"), 4, [0, 1])
    cut = run_lanes(make_learner("zipf", {}), parse_strategy("replace:top_k=100"), 4, [0, 1])
    for a, b in zip(plain, cut):
        assert b["curves"]["support_size"][-1] <= 100 < a["curves"]["support_size"][-1]
        assert b["curves"]["tail_mass"][-1] < a["curves"]["tail_mass"][-1]
        assert a["curves"]["support_size"][0] == b["curves"]["support_size"][0]
    # a verifier that keeps the items the truth finds likeliest also loses the tail
    kept = run_lanes(make_learner("zipf", {}), parse_strategy("replace:filter=0.5"), 3, [0])
    assert kept[0]["curves"]["tail_mass"][-1] < plain[0]["curves"]["tail_mass"][2]


def test_accumulate_never_loses_support():
    res = run_lanes(make_learner("zipf", {"K": 500, "m": 500}),
                    parse_strategy("accumulate"), 6, [0, 1])
    for r in res:
        s = r["curves"]["support_size"]
        assert s == sorted(s) and r["curves"]["missing_mass"][-1] <= \
            r["curves"]["missing_mass"][0]


def test_gmm_and_kde_run():
    res = run_lanes(make_learner("gmm", {"m": "300", "n_test": "200"}),
                    parse_strategy("replace"), 2, [0, 1])
    # truth: unit components on a circle of radius 4: total variance 16 + 2
    assert abs(np.mean([r["curves"]["cov_trace"][0] for r in res]) - 18) < 2
    assert np.isfinite([r["curves"]["nll_real"] for r in res]).all()
    kde = make_learner("kde", {"m": 3, "bandwidth": 1.0, "d": 1})
    world = {"test": np.zeros((1, 1, 1))}
    data = np.array([[[0.0], [1.0], [2.0]]])
    nll = kde.evaluate(world, data, None)["nll_real"][0]
    dens = np.mean(np.exp(-0.5 * np.array([0, 1, 4]))) / np.sqrt(2 * np.pi)
    assert nll == pytest.approx(-np.log(dens))


TEXTS = ["a b a", "b a", "a a b", "c a", "a b", "b b a", "a c", "b a a"] * 3


def _ngram(**params):
    return make_learner("ngram", {"n_test": 4, "n_train": 6, **params}, texts=TEXTS)


def test_ngram_cross_entropy_by_hand():
    lrn = _ngram(order=1, add_k=0.5)
    world = {"vocab": {"a": 3, "b": 4}, "words": ["<s>", "</s>", "<unk>", "a", "b"]}
    model = lrn.fit(world, lrn.summarize(world, np.array([["a b", "a"]], dtype=object)), None)
    world["test"] = lrn._encode(world, ["a c"])
    world["unigram"] = np.array([0, 0.4, 0, 0.4, 0.2])
    out = lrn.evaluate(world, model, np.array([["a b"]], dtype=object))
    # counts a 2, b 1, </s> 2 of N = 5; 4 predictable types; test tokens a, <unk>, </s>
    p = np.array([2.5, 0.5, 2.5]) / (5 + 4 * 0.5)
    assert out["cross_entropy"][0] == pytest.approx(-np.log(p).mean())
    assert out["support_size"][0] == 2 and out["js_unigram_real"][0] == pytest.approx(0)
    assert out["distinct_1"][0] == 1.0 and out["mean_length"][0] == 2


def test_ngram_bigram_interpolation_by_hand():
    lrn = _ngram(order=2, lam=0.5, add_k=1.0)
    world = {"vocab": {"a": 3, "b": 4}, "words": ["<s>", "</s>", "<unk>", "a", "b"]}
    model = lrn.fit(world, lrn.summarize(world, np.array([["a b", "a"]], dtype=object)), None)
    seq, pos = lrn._encode(world, ["a a"])
    # unigram (add-1): a 3/9, b 2/9, </s> 3/9; bigrams: <s>a 2 of 2, a b 1 of 2, a </s> 1
    uni = {"a": 3 / 9, "</s>": 3 / 9}
    p = [0.5 * 1 + 0.5 * uni["a"], 0.5 * 0 + 0.5 * uni["a"], 0.5 * 0.5 + 0.5 * uni["</s>"]]
    np.testing.assert_allclose(lrn._logprob(world, model, seq, pos), np.log(p))


def test_ngram_samples_only_seen_bigrams_and_runs():
    lrn = _ngram(order=2)
    res = run_lanes(lrn, parse_strategy("replace"), 3, [0])
    assert len(res[0]["curves"]["cross_entropy"]) == 3
    world = lrn.world([np.random.default_rng(0)])
    model = lrn.fit(world, lrn.summarize(world, lrn.real(world, 6, None)), None)
    texts = lrn.sample(world, model, 50, [np.random.default_rng(1)], {})[0]
    seen = {tuple(p) for t in TEXTS for p in zip(["<s>"] + t.split(), t.split() + ["</s>"])}
    for t in texts:
        toks = ["<s>"] + t.split() + ["</s>"]
        assert set(zip(toks, toks[1:])) <= seen


def test_ngram_input_errors():
    with pytest.raises(ValueError, match="order must be at most 4"):
        _ngram(order=5)
    with pytest.raises(ValueError, match="leaves no training text"):
        make_learner("ngram", {"n_test": 24}, texts=TEXTS)
    with pytest.raises(ValueError, match="0 ≤ lam < 1"):
        _ngram(lam=1)
