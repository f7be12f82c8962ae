"""Oracles for metrics/uncertainty.py: hand-computed classes, entropies and graph spectra."""

import math

import numpy as np
import pytest

from collapsekit.metrics.uncertainty import (cosine_judge, degmat, eigv, num_distinct_classes,
                                             num_semantic_sets, semantic_classes,
                                             semantic_entropy)


def two_cliques(a: int, b: int) -> np.ndarray:
    w = np.zeros((a + b, a + b), dtype=bool)
    w[:a, :a] = True
    w[a:, a:] = True
    return w


# ---- classes ----------------------------------------------------------------------------

def test_identical_samples_one_class_zero_entropy():
    x = np.tile([[0.2, -1.0, 3.0]], (6, 1))
    labels = semantic_classes(6, cosine_judge(0.9)(None, x))
    assert labels.tolist() == [0] * 6
    assert num_distinct_classes(labels) == 1
    assert semantic_entropy(labels) == 0.0
    assert semantic_entropy(labels, logprobs=np.log(np.full(6, 0.1)),
                            estimator="farquhar2024") == pytest.approx(0.0, abs=1e-15)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_orthogonal_samples_k_classes_log_k(k):
    labels = semantic_classes(k, cosine_judge()(["t"] * k, 3 * np.eye(k)))
    assert labels.tolist() == list(range(k))
    assert num_distinct_classes(labels) == k
    assert semantic_entropy(labels) == pytest.approx(math.log(k), abs=1e-15)
    assert num_semantic_sets(np.eye(k, dtype=bool)) == k


def test_first_member_greedy_is_not_transitive_closure():
    # 0~1, 1~2, but 0 !~ 2: Kuhn's algorithm compares 2 with class 0's first member only
    a = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)
    assert semantic_classes(3, a).tolist() == [0, 0, 1]
    assert num_semantic_sets(a, method="greedy") == 2
    assert num_semantic_sets(a) == 1  # connected components


def test_callable_judge_matches_matrix_and_sees_first_members_only():
    a = np.array([[1, 0, 1, 0, 1],
                  [0, 1, 0, 1, 0],
                  [1, 0, 1, 0, 1],
                  [0, 1, 0, 1, 0],
                  [1, 0, 1, 0, 1]], dtype=bool)
    calls = []

    def judge(i, j):
        calls.append((i, j))
        return a[i, j]

    assert semantic_classes(5, judge).tolist() == [0, 1, 0, 1, 0]
    assert semantic_classes(5, a).tolist() == [0, 1, 0, 1, 0]
    # sample 1 vs first of class 0; 2 vs first of class 0; 3 vs 0 then 1; 4 vs 0
    assert calls == [(0, 1), (0, 2), (0, 3), (1, 3), (0, 4)]


def test_cosine_judge_threshold():
    c = 0.8
    x = np.array([[1.0, 0.0], [c, math.sqrt(1 - c * c)]])
    assert cosine_judge(0.75)(None, x).all()
    assert cosine_judge(0.85)(None, x).tolist() == [[True, False], [False, True]]


def test_string_labels():
    assert num_distinct_classes(["a", "b", "a"]) == 2
    assert semantic_entropy(["x", "y", "y", "y"]) == pytest.approx(
        -(0.25 * math.log(0.25) + 0.75 * math.log(0.75)))


# ---- semantic entropy with likelihoods -------------------------------------------------

def test_semantic_entropy_likelihood_forms_hand():
    classes = [0, 0, 1]
    lp = np.log([0.2, 0.3, 0.1])
    # p(C0) = 0.5, p(C1) = 0.1
    kuhn = -(math.log(0.5) + math.log(0.1)) / 2
    assert semantic_entropy(classes, logprobs=lp) == pytest.approx(kuhn, rel=1e-12)
    pn = np.array([0.5, 0.1]) / 0.6
    farquhar = -(pn * np.log(pn)).sum()
    assert semantic_entropy(classes, logprobs=lp, estimator="farquhar2024") == pytest.approx(
        farquhar, rel=1e-12)


def test_semantic_entropy_tiny_logprobs_are_stable():
    # probabilities ~ e^-2000 underflow in float64; the logsumexp form must not
    lp = np.array([-2000.0, -2000.0, -2000.0 + math.log(2)])
    assert semantic_entropy([0, 1, 1], logprobs=lp) == pytest.approx(
        2000 - math.log(3) / 2, rel=1e-12)
    p = np.array([1 / 4, 3 / 4])
    assert semantic_entropy([0, 1, 1], logprobs=lp, estimator="farquhar2024") == pytest.approx(
        -(p * np.log(p)).sum(), rel=1e-12)


# ---- graph measures (Lin et al. 2023) --------------------------------------------------

@pytest.mark.parametrize("a, b", [(2, 3), (1, 4), (3, 3)])
def test_two_disconnected_cliques(a, b):
    w = two_cliques(a, b)
    m = a + b
    assert eigv(w) == pytest.approx(2.0, abs=1e-12)
    assert degmat(w) == pytest.approx(2 * a * b / m ** 2, abs=1e-15)
    assert num_semantic_sets(w) == 2
    assert num_semantic_sets(w.astype(float) * 0.9) == 2  # numeric >= threshold 0.5
    assert semantic_classes(m, w).tolist() == [0] * a + [1] * b


def test_eigv_degmat_extremes_and_weighted():
    assert eigv(np.ones((4, 4))) == pytest.approx(1.0)
    assert degmat(np.ones((4, 4))) == pytest.approx(0.0)
    assert eigv(np.eye(4)) == pytest.approx(4.0)
    assert degmat(np.eye(4)) == pytest.approx(3 / 4)
    # weighted pair: W = [[1, s], [s, 1]] -> D^-1/2 W D^-1/2 eigenvalues 1 and (1-s)/(1+s)
    s = 0.3
    w = np.array([[1.0, s], [s, 1.0]])
    assert eigv(w) == pytest.approx(1 + (1 - s) / (1 + s), rel=1e-12)
    assert degmat(w) == pytest.approx((4 - 2 * (1 + s)) / 4, rel=1e-12)
    # the diagonal is self-similarity 1 whatever the input says
    assert eigv(np.zeros((3, 3))) == pytest.approx(3.0)


def test_one_sample_defined_values():
    assert eigv([[1.0]]) == pytest.approx(1.0)
    assert degmat([[1.0]]) == 0.0
    assert num_semantic_sets([[True]]) == 1
    assert semantic_classes(1, lambda i, j: True).tolist() == [0]
    assert semantic_entropy([7]) == 0.0


# ---- bad input --------------------------------------------------------------------------

def _raises(why, fn, *args, **kw):
    with pytest.raises(ValueError, match=why) as e:
        fn(*args, **kw)
    assert "\n" not in str(e.value)


def test_bad_classes_and_logprobs():
    _raises("non-empty 1-D", semantic_entropy, [])
    _raises("non-empty 1-D", num_distinct_classes, np.zeros((2, 2)))
    _raises("NaN", semantic_entropy, [0.0, np.nan])
    _raises("one log-probability per sample", semantic_entropy, [0, 1, 1], logprobs=[-1.0, -2.0])
    _raises("finite log-probabilities", semantic_entropy, [0, 1], logprobs=[-1.0, np.nan])
    _raises("finite log-probabilities", semantic_entropy, [0, 1], logprobs=[0.5, 0.5])
    _raises("1-D array of numbers", semantic_entropy, [0, 1], logprobs=["a", "b"])
    _raises("estimator must be", semantic_entropy, [0, 1], estimator="nature")


def test_bad_judges_and_matrices():
    _raises("positive integer", semantic_classes, 0, np.eye(1, dtype=bool))
    _raises("positive integer", semantic_classes, 2.0, np.eye(2, dtype=bool))
    _raises(r"\(3, 3\)", semantic_classes, 3, np.eye(2, dtype=bool))
    _raises("not symmetric", semantic_classes, 2, np.array([[1, 1], [0, 1]], dtype=bool))
    _raises("not a bool", semantic_classes, 2, lambda i, j: np.array([True, False]))
    _raises("square", num_semantic_sets, np.ones((2, 3), dtype=bool))
    _raises("method must be", num_semantic_sets, np.eye(2, dtype=bool), method="louvain")
    _raises("threshold must be", cosine_judge, 1.5)
    _raises("zero vector", cosine_judge(), None, np.array([[0.0, 0.0], [1.0, 0.0]]))
    _raises("NaN", cosine_judge(), None, np.array([[np.nan, 0.0], [1.0, 0.0]]))
    _raises("2 texts but 3 embeddings", cosine_judge(), ["a", "b"], np.eye(3))


@pytest.mark.parametrize("fn", [eigv, degmat])
def test_bad_similarity(fn):
    _raises("square", fn, np.ones((2, 3)))
    _raises("not symmetric", fn, np.array([[1.0, 0.9], [0.1, 1.0]]))
    _raises(r"\[0, 1\]", fn, np.array([[1.0, -0.2], [-0.2, 1.0]]))
    _raises("NaN", fn, np.array([[1.0, np.nan], [np.nan, 1.0]]))
    _raises("at least 1", fn, np.zeros((0, 0)))
