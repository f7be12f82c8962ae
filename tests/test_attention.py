"""Attention entropy: closed forms (uniform → normalised 1, one-hot → 0, mean of log k),
agreement of the direct and the summed path with the capture reducer, flags, bad input."""

import math

import numpy as np
import pytest
import torch

from collapsekit.metrics import attention_entropy, attention_entropy_from_sums
from collapsekit.models.capture import attention_entropy_reducer


def causal_uniform(t):
    m = np.tril(np.ones((t, t), dtype=bool))
    return m / m.sum(-1, keepdims=True), m


def test_uniform_causal_closed_form():
    p, m = causal_uniform(6)
    got = attention_entropy(p[None], m)  # one head
    # row i attends uniformly to i+1 keys: H_i = log(i+1); mean = log(6!)/6
    assert got.mean[0] == pytest.approx(math.log(math.factorial(6)) / 6, rel=1e-12)
    assert got.normalised[0] == pytest.approx(1.0, rel=1e-12)
    assert got.overloaded[0] and not got.collapsed[0]


def test_one_hot_is_zero_and_collapsed():
    p = np.tile(np.eye(5)[None], (2, 3, 1, 1))  # (B=2, H=3): each query on itself
    got = attention_entropy(p)
    np.testing.assert_array_equal(got.mean, 0.0)
    np.testing.assert_array_equal(got.normalised, 0.0)
    assert got.collapsed.all() and not got.overloaded.any()


def test_two_keys_closed_form_and_thresholds():
    # two allowed keys per row; the third (masked) column holds junk that must be ignored
    m = np.array([[True, True, False]] * 2)
    half = attention_entropy(np.array([[[0.5, 0.5, 0.3]] * 2]), m)
    assert half.normalised[0] == pytest.approx(1.0)
    assert half.mean[0] == pytest.approx(math.log(2))
    skew = np.array([[[0.9, 0.1, 7.0]] * 2])
    h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(2)  # ≈ 0.469
    got = attention_entropy(skew, m, collapse=0.5, overload=0.95)
    assert got.normalised[0] == pytest.approx(h)
    assert got.collapsed[0] and not got.overloaded[0]
    got = attention_entropy(skew, m, collapse=0.3, overload=0.45)
    assert got.overloaded[0] and not got.collapsed[0]


def test_from_sums_per_layer_counts_and_reducer_agree():
    rng = np.random.default_rng(0)
    b, h, t = 2, 3, 5
    logits = rng.standard_normal((b, h, t, t))
    allowed = np.tril(np.ones((t, t), dtype=bool))[None].repeat(b, 0)
    allowed[1, :, 3:] = False  # second sequence: 3 real tokens
    allowed[1, 3:] = False
    z = np.where(allowed[:, None], logits, -np.inf)
    with np.errstate(invalid="ignore"):
        p = np.nan_to_num(np.exp(z - z.max(-1, keepdims=True)))
    p = p / np.maximum(p.sum(-1, keepdims=True), 1e-300)
    direct = attention_entropy(p, allowed)
    s = attention_entropy_reducer(1, torch.from_numpy(p), torch.from_numpy(allowed))
    assert s["rows"] == 8 and s["norm_rows"] == 6
    summed = attention_entropy_from_sums(s["entropy_sum"], s["norm_entropy_sum"], s["rows"],
                                         s["norm_rows"])
    np.testing.assert_allclose(summed.mean, direct.mean, rtol=1e-12)
    np.testing.assert_allclose(summed.normalised, direct.normalised, rtol=1e-12)
    # (L, H) sums with per-layer counts (L,)
    two = attention_entropy_from_sums(np.stack([s["entropy_sum"], 2 * s["entropy_sum"]]),
                                      np.stack([s["norm_entropy_sum"]] * 2), [8, 8], [6, 6])
    np.testing.assert_allclose(two.mean[1], 2 * direct.mean, rtol=1e-12)


def test_head_without_rows_is_nan():
    got = attention_entropy_from_sums([0.0], [0.0], 0, 0)
    assert np.isnan(got.mean[0]) and not got.collapsed[0] and not got.overloaded[0]


@pytest.mark.parametrize("probs, mask, match", [
    (np.zeros((0, 2, 2)), None, "non-empty"),
    (np.ones((2, 2)), None, r"\(B, H, Tq, Tk\)"),
    (np.full((1, 2, 2), np.nan), None, "NaN"),
    (np.full((1, 2, 2), -0.5), None, "negative"),
    (np.ones((1, 2, 2)) / 2, np.ones((3, 3), dtype=bool), "mask must be bool"),
    (np.ones((1, 2, 2)) / 2, np.ones((2, 2)), "mask must be bool"),
])
def test_bad_probs(probs, mask, match):
    with pytest.raises(ValueError, match=match):
        attention_entropy(probs, mask)


@pytest.mark.parametrize("args, kw, match", [
    (([], [], 1, 1), {}, "empty"),
    (([1.0], [np.inf], 1, 1), {}, "NaN or inf"),
    (([1.0, 2.0], [0.5], 1, 1), {}, "same shape"),
    (([1.0], [0.5], 1, 2), {}, "norm_rows exceeds"),
    (([1.0], [5.0], 2, 2), {}, "above 1"),
    (([1.0], [0.5], -1, 0), {}, "negative"),
    (([[1.0, 1.0]], [[0.5, 0.5]], [1, 1, 1], [1, 1, 1]), {}, "broadcast"),
    (([1.0], [0.5], 1, 1), dict(collapse=0.9, overload=0.1), "thresholds"),
    ((["a"], [0.5], 1, 1), {}, "numeric"),
])
def test_bad_sums(args, kw, match):
    with pytest.raises(ValueError, match=match):
        attention_entropy_from_sums(*args, **kw)
