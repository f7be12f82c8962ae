"""Moments: exactness vs numpy, shard/merge invariance, large-mean precision, persistence."""

import numpy as np
import pytest
import torch

from collapsekit.stats.moments import Moments


def rel_err(a, b):
    """max |a - b| / max |b| (normwise relative error)."""
    return float(np.max(np.abs(np.asarray(a) - b)) / np.max(np.abs(b)))


def numpy_ref(x):
    mean = x.mean(axis=0)
    xc = x - mean
    return mean, xc.T @ xc / len(x), x.T @ x / len(x)


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((9, 9))
    return rng.standard_normal((1500, 9)) @ a + rng.uniform(-5, 5, 9)


def test_hand_computed_two_rows():
    m = Moments().update(np.array([[1.0, 2.0], [3.0, 6.0]]))
    assert m.n == 2 and m.dim == 2
    np.testing.assert_allclose(m.mean, [2.0, 4.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(m.cov(), [[1.0, 2.0], [2.0, 4.0]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(m.cov(ddof=1), [[2.0, 4.0], [4.0, 8.0]], rtol=0, atol=1e-15)
    np.testing.assert_allclose(m.gram(), [[5.0, 10.0], [10.0, 20.0]], rtol=0, atol=1e-14)
    s5 = np.sqrt(5.0)
    np.testing.assert_allclose(m.unit_sum, [2 / s5, 4 / s5], rtol=1e-15)


def test_single_batch_matches_numpy(data):
    m = Moments().update(data)
    mean, cov, gram = numpy_ref(data)
    assert rel_err(m.mean, mean) < 1e-13
    assert rel_err(m.cov(), cov) < 1e-13
    assert rel_err(m.cov(ddof=1), np.cov(data.T)) < 1e-13
    assert rel_err(m.gram(), gram) < 1e-13
    u = data / np.linalg.norm(data, axis=1, keepdims=True)
    assert rel_err(m.unit_sum, u.sum(axis=0)) < 1e-13


@pytest.mark.parametrize("seed", range(5))
def test_random_shards_and_merge_orders_agree(data, seed):
    rng = np.random.default_rng(seed)
    cuts = np.sort(rng.choice(np.arange(1, len(data)), size=rng.integers(1, 12), replace=False))
    shards = []
    for part in np.split(data, cuts):
        m = Moments(data.shape[1])
        for batch in np.array_split(part, rng.integers(1, 4)):
            m.update(batch)
        shards.append(m)
    rng.shuffle(shards)
    while len(shards) > 1:  # random pairwise tree of merges
        i, j = sorted(rng.choice(len(shards), size=2, replace=False))
        shards[i].merge(shards.pop(j))
    m = shards[0]
    mean, cov, gram = numpy_ref(data)
    assert m.n == len(data)
    assert rel_err(m.mean, mean) < 1e-10
    assert rel_err(m.cov(), cov) < 1e-10
    assert rel_err(m.gram(), gram) < 1e-10


def test_large_mean_keeps_precision():
    rng = np.random.default_rng(1)
    x = 1e6 + rng.standard_normal((20000, 6)) @ rng.standard_normal((6, 6))
    streamed = Moments(unit_sum=False)
    for batch in np.array_split(x, 7):
        streamed.update(batch)
    shards = [Moments(unit_sum=False).update(b) for b in np.array_split(x, 5)]  # own shifts
    merged = shards[3].merge(shards[0]).merge(shards[4].merge(shards[1])).merge(shards[2])
    mean, cov, gram = numpy_ref(x)  # two-pass on centred float64 data
    for m in (streamed, merged):
        assert rel_err(m.cov(), cov) < 1e-12
        assert rel_err(m.mean, mean) < 1e-13
        assert rel_err(m.gram(), gram) < 1e-12
    naive = gram - np.outer(mean, mean)  # the one-pass formula this design avoids
    assert rel_err(naive, cov) > 1e-6


def test_shards_with_very_different_means_merge_exactly():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((300, 3)) + 1e6
    b = rng.standard_normal((500, 3)) - 1e6
    m = Moments().update(a).merge(Moments().update(b))
    _, cov, _ = numpy_ref(np.vstack([a, b]))
    assert rel_err(m.cov(), cov) < 1e-12


def test_torch_inputs_are_cast_to_float64(data):
    t32 = torch.tensor(data, dtype=torch.float32)
    m = Moments().update(t32)
    ref = Moments().update(t32.numpy().astype(np.float64))
    np.testing.assert_array_equal(m.cov(), ref.cov())
    tb = torch.tensor(data[:50], dtype=torch.bfloat16)
    mb = Moments().update(tb)
    np.testing.assert_allclose(mb.mean, tb.double().mean(0).numpy(), rtol=1e-12)


def test_state_dict_round_trip_npz_and_safetensors(tmp_path, data):
    from safetensors.numpy import load_file, save_file

    m = Moments(name="layer 3").update(data[:700])
    np.savez(tmp_path / "s.npz", **m.state_dict())
    save_file(m.state_dict(), str(tmp_path / "s.safetensors"))
    full = Moments().update(data)
    for loaded in (np.load(tmp_path / "s.npz"), load_file(str(tmp_path / "s.safetensors"))):
        r = Moments.from_state_dict(loaded)
        assert r.n == 700 and r.dim == data.shape[1] and r.track_unit_sum
        np.testing.assert_array_equal(r.cov(), m.cov())
        np.testing.assert_array_equal(r.unit_sum, m.unit_sum)
        r.update(data[700:])
        assert rel_err(r.cov(), full.cov()) < 1e-12
    empty = Moments.from_state_dict(Moments(unit_sum=False).state_dict())
    assert empty.n == 0 and empty.dim is None and not empty.track_unit_sum


def test_empty_batches_and_empty_merges_are_noops(data):
    m = Moments()
    m.update(np.empty((0, 4)))
    assert m.n == 0 and m.dim is None
    m.merge(Moments())
    m.update(data)
    m.update(np.empty((0, data.shape[1])))
    m.merge(Moments(data.shape[1]))
    assert m.n == len(data)
    e = Moments().merge(Moments().update(data))
    np.testing.assert_array_equal(e.cov(), m.cov())


def test_one_sample():
    m = Moments().update([[1.0, -2.0, 3.0]])
    np.testing.assert_array_equal(m.mean, [1.0, -2.0, 3.0])
    np.testing.assert_array_equal(m.cov(), np.zeros((3, 3)))
    with pytest.raises(ValueError, match="ddof=1"):
        m.cov(ddof=1)


def test_zero_rows_rejected_only_when_unit_sum_is_tracked():
    x = np.array([[1.0, 2.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match="all-zero rows"):
        Moments().update(x)
    m = Moments(unit_sum=False).update(x)
    np.testing.assert_allclose(m.cov(), [[0.25, 0.5], [0.5, 1.0]], atol=1e-15)
    with pytest.raises(ValueError, match="unit_sum=True"):
        _ = m.unit_sum


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_inf_named_in_message(bad):
    x = np.ones((4, 3))
    x[2, 1] = bad
    with pytest.raises(ValueError, match=r"^layer 7: .*NaN or inf in 1 of 4 rows"):
        Moments(name="layer 7").update(x)


def test_shape_and_state_errors():
    m = Moments(3)
    with pytest.raises(ValueError, match="dimension 4 but this accumulator has dimension 3"):
        m.update(np.ones((2, 4)))
    with pytest.raises(ValueError, match="2-D batch"):
        m.update(np.ones(3))
    with pytest.raises(ValueError, match="2-D batch"):
        m.update(np.ones((2, 2, 3)))
    with pytest.raises(ValueError, match="numeric array"):
        m.update([["a", "b", "c"]])
    for finalize in (lambda: m.mean, m.cov, m.gram, lambda: m.unit_sum):
        with pytest.raises(ValueError, match="n = 0"):
            finalize()
    for dim in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match=r"dim=\S+ must be an integer >= 1"):
            Moments(dim)
    with pytest.raises(ValueError, match="cannot merge dimension 2"):
        Moments(3).update(np.ones((2, 3))).merge(Moments().update(np.ones((2, 2))))
    with pytest.raises(ValueError, match="same unit_sum"):
        Moments().update(np.ones((2, 3))).merge(Moments(unit_sum=False).update(np.ones((2, 3))))
    with pytest.raises(ValueError, match="needs a Moments"):
        Moments().merge(np.ones((2, 3)))
    with pytest.raises(ValueError, match="missing"):
        Moments.from_state_dict({"n": 1})
    with pytest.raises(ValueError, match="inconsistent"):
        Moments.from_state_dict({"n": 2, "shift": np.zeros(3), "mean_minus_shift": np.zeros(3),
                                 "m2": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="unit_sum of shape"):
        Moments.from_state_dict({"n": 2, "shift": np.zeros(2), "mean_minus_shift": np.zeros(2),
                                 "m2": np.zeros((2, 2)),
                                 "unit_sum": np.zeros(3)})


def _same(a: Moments, b: Moments, rtol=1e-12, state=False):
    """Same results (and, with ``state``, the same state: same batches, same shift)."""
    for key, value in b.state_dict().items() if state else ():
        np.testing.assert_allclose(a.state_dict()[key], value, rtol=rtol, atol=0, err_msg=key)
    for got, want in ((a.mean, b.mean), (a.cov(1), b.cov(1)), (a.gram(), b.gram()),
                      (a.unit_sum, b.unit_sum)):
        assert got.dtype == np.float64 and rel_err(got, want) < rtol


def test_tensor_batches_accumulate_on_their_device_like_the_numpy_path():
    """Device-resident (what a GPU run does; here ``resident=True`` on the CPU), the state
    stays a float64 tensor where the batches are and every result equals the host path's;
    by default CPU tensors take the host path."""
    rng = np.random.default_rng(3)
    batches = [rng.normal(size=(n, 6)) * rng.uniform(0.1, 5, 6) + 1e4 for n in (7, 1, 30, 12)]
    dev, ref = Moments(name="block_1", resident=True), Moments()
    for b in batches:
        dev.update(torch.tensor(b, dtype=torch.float32))
        ref.update(torch.tensor(b, dtype=torch.float32))
    assert dev.device == "cpu" and ref.device == "numpy"
    assert isinstance(dev._m2, torch.Tensor) and dev._m2.dtype == torch.float64
    _same(dev, ref, state=True)
    assert dev.n == ref.n == 50
    # mixed places merge exactly both ways, and a numpy batch joins a device state
    a, b = Moments(resident=True).update(torch.tensor(batches[0])), Moments().update(batches[2])
    np_first = Moments().update(batches[2]).merge(
        Moments(resident=True).update(torch.tensor(batches[0])))
    _same(a.merge(b), Moments().update(np.vstack([batches[0], batches[2]])))
    _same(np_first, Moments().update(np.vstack([batches[2], batches[0]])))
    assert np_first.device == "numpy" and a.device == "cpu"
    c = Moments(resident=True).update(torch.tensor(batches[1])).update(batches[3])
    assert c.device == "cpu"
    _same(c, Moments().update(np.vstack([batches[1], batches[3]])))
    round_trip = Moments.from_state_dict(dev.state_dict())
    _same(round_trip, ref, state=True)


def test_tensor_path_rejects_bad_batches_with_the_same_messages():
    m = Moments(3, name="layer 2", resident=True).update(torch.ones(2, 3))
    assert m.device == "cpu"
    bad = torch.ones(4, 3)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"^layer 2: .*NaN or inf in 1 of 4 rows"):
        m.update(bad)
    with pytest.raises(ValueError, match="dimension 4 but this accumulator has dimension 3"):
        m.update(torch.ones(2, 4))
    with pytest.raises(ValueError, match="2-D batch"):
        m.update(torch.ones(3))
    with pytest.raises(ValueError, match="2 all-zero rows"):
        Moments(resident=True).update(torch.zeros(2, 3))
    assert m.n == 2  # nothing of a refused batch was added
    assert Moments(resident=True).update(torch.ones(0, 3)).n == 0
