"""Oracles for metrics/semantic.py: closed forms, hand-computed cases, brute-force definitions."""

import math

import numpy as np
import pytest

from collapsekit.metrics import semantic
from collapsekit.metrics.semantic import (chamfer_distance, mean_pairwise_cosine,
                                          mean_pairwise_cosine_between, semantic_volume,
                                          vendi_score)

E1, E2, E3 = np.eye(3)
ORDERS = (0, 0.5, 1, 2, math.inf, "inf")


def _cos_matrix(x):
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return u @ u.T


# ---- mean pairwise cosine -------------------------------------------------------------

def test_mean_pairwise_cosine_hand():
    # cos(e1, e2) = 0, cos(e1, e1+e2) = cos(e2, e1+e2) = 1/sqrt(2): mean = sqrt(2)/3
    x = np.array([E1, E2, E1 + E2])
    assert mean_pairwise_cosine(x) == pytest.approx(math.sqrt(2) / 3, abs=1e-15)
    assert mean_pairwise_cosine(np.array([[1.0, 0], [-3.0, 0]])) == pytest.approx(-1.0)


def test_mean_pairwise_cosine_matches_brute_force_and_scale_invariance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 7)) + 0.5
    c = _cos_matrix(x)
    brute = c[np.triu_indices(50, 1)].mean()
    assert mean_pairwise_cosine(x) == pytest.approx(brute, abs=1e-13)
    scaled = x * rng.uniform(1e-3, 1e3, size=(50, 1))
    assert mean_pairwise_cosine(scaled.astype(np.float32)) == pytest.approx(brute, abs=1e-6)


def test_mean_pairwise_cosine_huge_values_do_not_overflow():
    x = np.array([[1e300, 1e300], [1e300, 0.0]])
    assert mean_pairwise_cosine(x) == pytest.approx(1 / math.sqrt(2))


def test_between_hand_and_brute_force():
    assert mean_pairwise_cosine_between([E1], [E1, E2]) == pytest.approx(0.5)
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(9, 4)), rng.normal(size=(13, 4))
    ua = a / np.linalg.norm(a, axis=1, keepdims=True)
    ub = b / np.linalg.norm(b, axis=1, keepdims=True)
    assert mean_pairwise_cosine_between(a, b) == pytest.approx((ua @ ub.T).mean(), abs=1e-14)


# ---- chamfer ----------------------------------------------------------------------------

def test_chamfer_hand():
    # A={e1,e2}, B={e1}: A->B mean min distance (0 + 1)/2, B->A: 0
    assert chamfer_distance([E1, E2], [E1]) == pytest.approx(0.5)
    assert chamfer_distance([E1], [E1, E2]) == pytest.approx(0.5)
    assert chamfer_distance([E1], [-E1]) == pytest.approx(4.0)
    assert chamfer_distance([E1, 2 * E2], [E2, E1]) == pytest.approx(0.0, abs=1e-15)


def test_chamfer_blocked_equals_brute_force(monkeypatch):
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(23, 5)), rng.normal(size=(17, 5))
    d = 1 - (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (
        b / np.linalg.norm(b, axis=1, keepdims=True)).T
    brute = d.min(axis=1).mean() + d.min(axis=0).mean()
    monkeypatch.setattr(semantic, "_BLOCK", 4)
    assert chamfer_distance(a, b) == pytest.approx(brute, abs=1e-14)


# ---- vendi ------------------------------------------------------------------------------

@pytest.mark.parametrize("q", ORDERS)
def test_vendi_identity_and_ones(q):
    assert vendi_score(kernel=np.eye(7), q=q) == pytest.approx(7.0, rel=1e-12)
    assert vendi_score(kernel=np.ones((7, 7)), q=q) == pytest.approx(1.0, rel=1e-12)
    assert vendi_score(np.eye(7), q=q) == pytest.approx(7.0, rel=1e-12)
    assert vendi_score(np.ones((7, 3)), q=q) == pytest.approx(1.0, rel=1e-12)


def test_vendi_hand_eigenvalues():
    # x = [e1, e1, e2] -> K/3 has eigenvalues 2/3, 1/3, 0
    x = np.array([E1, E1, E2])
    h1 = -(2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert vendi_score(x) == pytest.approx(math.exp(h1), rel=1e-12)
    assert vendi_score(x, q=2) == pytest.approx(1 / (4 / 9 + 1 / 9), rel=1e-12)
    assert vendi_score(x, q=0.5) == pytest.approx(
        (math.sqrt(2 / 3) + math.sqrt(1 / 3)) ** 2, rel=1e-12)
    assert vendi_score(x, q=math.inf) == pytest.approx(1.5, rel=1e-12)
    assert vendi_score(x, q=0) == pytest.approx(2.0)


@pytest.mark.parametrize("shape", [(40, 6), (6, 40), (12, 12)])
@pytest.mark.parametrize("q", (0.5, 1, 2, math.inf))
def test_vendi_dual_equals_primal(shape, q):
    x = np.random.default_rng(3).normal(size=shape)
    lam = np.clip(np.linalg.eigvalsh(_cos_matrix(x) / shape[0]), 0, None)
    lam = lam[lam > 1e-12]
    lam = lam / lam.sum()
    if q == 1:
        ref = math.exp(-(lam * np.log(lam)).sum())
    elif math.isinf(q):
        ref = 1 / lam.max()
    else:
        ref = ((lam ** q).sum()) ** (1 / (1 - q))
    assert vendi_score(x, q=q) == pytest.approx(ref, rel=1e-9, abs=1e-9)
    assert vendi_score(kernel=_cos_matrix(x), q=q) == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_vendi_accepts_float32_kernel():
    x = np.random.default_rng(5).normal(size=(300, 20))
    k32 = _cos_matrix(x).astype(np.float32)
    assert vendi_score(kernel=k32) == pytest.approx(vendi_score(x), rel=1e-5)


def test_vendi_one_sample_is_one():
    assert vendi_score([[0.3, 0.4]]) == pytest.approx(1.0)
    assert vendi_score(kernel=[[1.0]]) == pytest.approx(1.0)


# ---- semantic volume -------------------------------------------------------------------

def test_semantic_volume_orthonormal_and_two_vectors():
    eps = 1e-3
    assert semantic_volume(np.eye(4), eps=eps) == pytest.approx(4 * math.log(1 + eps), rel=1e-12)
    # scale does not matter: rows are normalised
    assert semantic_volume(np.diag([3.0, 0.5, 7.0])) == pytest.approx(3 * math.log(1.001))
    # two unit vectors with cosine c: det [[1+e, c], [c, 1+e]] = (1+e)^2 - c^2
    c = 0.6
    x = np.array([[1.0, 0.0], [c, math.sqrt(1 - c * c)]])
    assert semantic_volume(x, eps=1e-6) == pytest.approx(math.log((1 + 1e-6) ** 2 - c * c))


def test_semantic_volume_duplicates_and_n_greater_than_d():
    # n identical rows: Gram = J (eigenvalues n, 0...), logdet = log(n + e) + (n-1) log e
    eps = 1e-4
    assert semantic_volume(np.ones((5, 3)), eps=eps) == pytest.approx(
        math.log(5 + eps) + 4 * math.log(eps), rel=1e-12)
    x = np.random.default_rng(4).normal(size=(9, 3))
    ref = np.linalg.slogdet(_cos_matrix(x) + eps * np.eye(9))[1]
    assert semantic_volume(x, eps=eps) == pytest.approx(ref, rel=1e-10)
    assert semantic_volume(x.T, eps=eps) == pytest.approx(
        np.linalg.slogdet(_cos_matrix(x.T) + eps * np.eye(3))[1], rel=1e-10)


def test_semantic_volume_grows_with_dispersion():
    tight = np.array([[1.0, 0.01, 0], [1.0, 0, 0.01], [1.0, -0.01, 0]])
    spread = np.eye(3)
    assert semantic_volume(tight) < semantic_volume(spread)


# ---- bad input --------------------------------------------------------------------------

@pytest.mark.parametrize("bad, why", [
    (np.zeros((0, 3)), "at least"),
    (np.ones(3), "2-D"),
    (np.ones((2, 0)), "0 columns"),
    (np.array([[1.0, np.nan], [1.0, 0.0]]), "NaN"),
    (np.array([[1.0, np.inf], [1.0, 0.0]]), "NaN or inf"),
    (np.array([[0.0, 0.0], [1.0, 0.0]]), "zero vector"),
    ([["a", "b"], ["c", "d"]], "numeric"),
    (None, "None"),
])
@pytest.mark.parametrize("fn", [mean_pairwise_cosine, semantic_volume, vendi_score,
                                lambda x: chamfer_distance(x, [[1.0, 0.0]]),
                                lambda x: mean_pairwise_cosine_between([[1.0, 0.0]], x)])
def test_bad_embeddings(fn, bad, why):
    if bad is None and fn is vendi_score:
        why = "exactly one"
    with pytest.raises(ValueError, match=why) as e:
        fn(bad)
    assert "\n" not in str(e.value)


def test_bad_shapes_and_parameters():
    with pytest.raises(ValueError, match="at least 2"):
        mean_pairwise_cosine([[1.0, 2.0]])
    with pytest.raises(ValueError, match="dimension"):
        chamfer_distance(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="dimension"):
        mean_pairwise_cosine_between(np.ones((2, 3)), np.ones((2, 4)))
    with pytest.raises(ValueError, match="exactly one"):
        vendi_score(np.eye(2), kernel=np.eye(2))
    for q in (-1, float("nan"), "two", None):
        with pytest.raises(ValueError, match="q must be"):
            vendi_score(np.eye(2), q=q)
    for eps in (0, -1e-3, float("inf"), "x"):
        with pytest.raises(ValueError, match="eps must be"):
            semantic_volume(np.eye(2), eps=eps)


@pytest.mark.parametrize("k, why", [
    (np.ones((2, 3)), "square"),
    (np.array([[1.0, 0.5], [0.2, 1.0]]), "symmetric"),
    (np.array([[2.0, 0.5], [0.5, 2.0]]), "diagonal must be 1"),
    (np.array([[1.0, 2.0], [2.0, 1.0]]), "positive semidefinite"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), "NaN"),
    (np.zeros((0, 0)), "at least"),
])
def test_bad_kernel(k, why):
    with pytest.raises(ValueError, match=why):
        vendi_score(kernel=k)
