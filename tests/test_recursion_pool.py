"""Recursion pool (provenance, selections, cached statistics) and strategy parsing/selection."""

import numpy as np
import pytest

from collapsekit.studies.recursion.pool import Pool, Selection
from collapsekit.studies.recursion.strategies import parse_strategies, parse_strategy


def _pool():
    pool = Pool(2)
    pool.add(np.arange(6.0).reshape(2, 3), origin="real", born=0, generator="real")
    pool.add(np.arange(10.0, 14.0).reshape(2, 2), origin="synthetic", born=1, generator="m@1",
             settings={"top_k": 5})
    return pool


def test_pool_take_provenance_and_queries():
    pool = _pool()
    assert len(pool) == 5 and [c.size for c in pool.chunks] == [3, 2]
    assert pool.chunks[1].describe()["settings"] == {"top_k": 5}
    sel = Selection(chunks=(1,), rows=np.array([[0, 2], [4, 1]]))
    # lane 0 rows: 3, 4 (chunk 1), 0, 2; lane 1: 3, 4, 4, 1 -> items by hand
    np.testing.assert_array_equal(pool.take(sel), [[10, 11, 0, 2], [12, 13, 13, 4]])
    np.testing.assert_array_equal(pool.indices(sel), [[3, 4, 0, 2], [3, 4, 4, 1]])
    np.testing.assert_allclose(pool.real_fraction(sel), [0.5, 0.25])
    np.testing.assert_array_equal(pool.age_histogram(sel, 2), [[2, 2, 0], [1, 3, 0]])
    # ages at generation 2: real rows 2, synthetic rows 1
    np.testing.assert_allclose(pool.mean_age(sel, 2), [1.5, 1.25])
    assert pool.chunks_of(sel) == {0, 1}
    assert pool.chunks_of(Selection(chunks=(1,))) == {1}


def test_pool_summarize_caches_whole_chunks():
    pool, calls = _pool(), []

    def fn(items):
        calls.append(items.shape)
        return {"s": items.sum(axis=1)}

    merge = lambda a, b: {"s": a["s"] + b["s"]}  # noqa: E731
    sel = Selection(chunks=(0, 1))
    np.testing.assert_allclose(pool.summarize(sel, fn, merge)["s"], [0 + 1 + 2 + 10 + 11,
                                                                     3 + 4 + 5 + 12 + 13])
    pool.summarize(sel, fn, merge)
    assert calls == [(2, 3), (2, 2)]  # second call used the cache
    out = pool.summarize(Selection(rows=np.array([[0], [1]])), fn, merge)
    np.testing.assert_allclose(out["s"], [0, 4])


def test_pool_drop_and_bad_input():
    pool = _pool()
    pool.drop({1})
    assert pool.chunks[0].size == 3  # provenance stays
    with pytest.raises(RuntimeError, match="dropped"):
        pool.take(Selection(chunks=(0,)))
    np.testing.assert_array_equal(pool.take(Selection(chunks=(1,))), [[10, 11], [12, 13]])
    with pytest.raises(ValueError, match="expected \\(2, n"):
        pool.add(np.zeros((3, 2)), origin="real", born=0, generator="real")
    with pytest.raises(ValueError, match="origin"):
        pool.add(np.zeros((2, 2)), origin="fake", born=0, generator="x")
    with pytest.raises(ValueError, match="do not match"):
        pool.add(np.zeros((2, 2, 4)), origin="real", born=0, generator="real")
    with pytest.raises(ValueError, match="empty"):
        pool.take(Selection())
    with pytest.raises(ValueError, match="at least one lane"):
        Pool(0)


def test_pool_holds_texts():
    pool = Pool(1)
    pool.add(np.array([["a b", "c"]], dtype=object), origin="real", born=0, generator="real")
    pool.add(np.array([["d"]], dtype=object), origin="synthetic", born=1, generator="m")
    assert pool.take(Selection(chunks=(1,), rows=np.array([[1]]))).tolist() == [["d", "c"]]


def test_parse_strategy_labels_and_defaults():
    s = parse_strategy("replace")
    assert s.label == "replace" and s.plain
    s = parse_strategy(" mix : alpha=0.5 : beta=0.25:gamma=0.25 ")
    assert s.label == "mix:alpha=0.5:beta=0.25:gamma=0.25"
    s = parse_strategy("replace:top_k=20:temperature=0.7:filter=0.5")
    assert s.sampling == {"top_k": 20, "temperature": 0.7} and s.filter == 0.5 and not s.plain
    assert s.label == "replace:top_k=20:temperature=0.7:filter=0.5"
    assert parse_strategy("keep-real").params == {"fraction": 0.1}
    assert parse_strategy("replace-multiple:k=3").synthetic_size(5, 10) == 30
    assert parse_strategy("replace-multiple").synthetic_size(5, 10) == 50  # k = t
    assert [s.label for s in parse_strategies("replace,accumulate")] == ["replace", "accumulate"]


@pytest.mark.parametrize("spec, match", [
    ("", "empty strategy"), ("bogus", "unknown strategy 'bogus': choose from replace"),
    ("replace:x=1", "key=value with key in"), ("replace:top_k", "key=value"),
    ("replace:top_k=a", "not an integer"), ("replace:temperature=0", "temperature"),
    ("replace:top_p=1.5", "top_p"), ("replace:filter=0", "filter"),
    ("mix:alpha=0.5", "needs beta, gamma"), ("mix:alpha=0.5:beta=0.6:gamma=0", "sum to 1"),
    ("keep-real:fraction=2", "fraction"), ("replace-multiple:k=0", "k must"),
    ("accumulate-subsample:budget=0", "budget"),
])
def test_parse_strategy_errors(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_strategy(spec)


def test_parse_strategies_errors():
    with pytest.raises(ValueError, match="listed twice"):
        parse_strategies("replace,replace")
    with pytest.raises(ValueError, match="no strategy"):
        parse_strategies([])
    with pytest.raises(ValueError, match="budget 11 is larger than the pool"):
        parse_strategy("accumulate-subsample:budget=11").check(10)


def _select(spec, t=3, n=10):
    """Pool of 10 real rows + generation-1 and -2 synthetic chunks, then select for t."""
    s, rngs = parse_strategy(spec), [np.random.default_rng(0)]
    pool = Pool(1)
    pool.add(np.zeros((1, n)), origin="real", born=0, generator="real")
    prev = s.select(pool, 1, [], None, rngs)
    for g in range(2, t + 1):
        new = [pool.add(np.full((1, s.synthetic_size(g, n)), g), origin="synthetic",
                        born=g - 1, generator="m")]
        if s.fresh_size(n):
            new.append(pool.add(np.zeros((1, s.fresh_size(n))), origin="real", born=g - 1,
                                generator="real"))
        prev = s.select(pool, g, new, prev, rngs)
    return pool, prev


@pytest.mark.parametrize("spec, size, real", [
    ("replace", 10, 0.0), ("accumulate", 30, 1 / 3), ("accumulate-subsample", 10, None),
    ("replace-multiple", 30, 0.0), ("replace-multiple:k=2", 20, 0.0),
    ("keep-real:fraction=0.3", 10, 0.3), ("fresh:fraction=0.2", 10, 0.2),
    ("mix:alpha=0.5:beta=0.3:gamma=0.2", 10, None),
])
def test_training_set_composition(spec, size, real):
    pool, sel = _select(spec)
    assert pool.indices(sel).shape == (1, size)
    if real is not None:
        assert pool.real_fraction(sel)[0] == pytest.approx(real)
    hist = pool.age_histogram(sel, 3)[0]
    if spec.startswith(("replace", "keep-real")):
        assert hist[2] == size - round(real * 10)  # newest synthetic rows only
    if spec.startswith("fresh"):
        assert hist[2] == size  # 8 synthetic and 2 real rows, all arrived for generation 3
    if spec.startswith("mix"):
        # 5 new synthetic; 3 from the previous set (5 synthetic of gen 1 + 5 real);
        # 2 real: the rest is real or generation-1 synthetic
        assert hist[2] == 5 and hist[0] + hist[1] == 5 and hist[0] >= 2
