"""ClassMoments: hand-computed statistics, shard invariance, subsets, memory guard, bad input."""

import numpy as np
import pytest
import torch

from collapsekit.stats.classes import ClassMoments, memory_bytes, select_classes


def direct(x, y, classes):
    """Per-class means, variances and Σ_W straight from the full matrix (float64)."""
    means = np.array([x[y == c].mean(0) for c in classes])
    var = np.array([((x[y == c] - m) ** 2).sum(1).mean() for c, m in zip(classes, means)])
    keep = np.isin(y, classes)
    r = x[keep] - means[np.searchsorted(classes, y[keep])]
    return means, var, r.T @ r / keep.sum()


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 9, 700)
    x = rng.standard_normal((700, 6)) + 3 * rng.standard_normal((9, 6))[y] + 50.0
    return x, y


def rel(a, b):
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


def test_hand_computed_two_classes():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [10.0, 1.0], [10.0, 3.0], [7.0, 7.0]])
    acc = ClassMoments(3, 2).update(np.zeros((0, 2)), [])  # empty batch: no-op
    assert acc.shift is None
    acc.update(x, [0, 0, 1, 1, 2])
    st = acc.finalize()
    assert list(st.classes) == [0, 1] and list(st.counts) == [2, 2]
    assert st.singleton_classes == 1 and st.unseen_classes == 0 and st.n_samples == 4
    np.testing.assert_allclose(st.means, [[1.0, 0.0], [10.0, 2.0]], atol=1e-14)
    np.testing.assert_allclose(st.global_mean, [5.5, 1.0], atol=1e-14)
    np.testing.assert_allclose(st.variances, [1.0, 1.0], atol=1e-14)
    # residuals (±1, 0) and (0, ±1): Σ_W = diag(2, 2) / 4
    np.testing.assert_allclose(st.sigma_w, np.diag([0.5, 0.5]), atol=1e-14)
    sample = acc.finalize(global_mean="sample")
    np.testing.assert_allclose(sample.global_mean, [5.5, 1.0], atol=1e-14)  # balanced: same


def test_matches_direct_computation_with_large_offset(data):
    x, y = data
    x = x + 1e6  # common offset: the pilot shift must keep full precision
    acc = ClassMoments(9, 6)
    for part in np.array_split(np.arange(len(y)), 5):
        acc.update(x[part], y[part])
    st = acc.finalize()
    means, var, sw = direct(x, y, np.arange(9))
    assert rel(st.means, means) < 1e-14
    assert rel(st.variances, var) < 1e-9
    assert rel(st.sigma_w, sw) < 1e-9


@pytest.mark.parametrize("shards", [1, 2, 7])
def test_shards_merge_to_the_same_result(data, shards):
    x, y = data
    ref = ClassMoments(9, 6).update(x, y).finalize()
    parts = []
    for i, idx in enumerate(np.array_split(np.arange(len(y)), shards)):
        acc = ClassMoments(9, 6)
        acc.update(x[idx] + 0.0, y[idx])  # each shard picks its own pilot shift
        parts.append(acc)
    total = parts[-1]
    for acc in parts[-2::-1]:
        total.merge(acc)
    st = total.finalize()
    assert list(st.counts) == list(ref.counts)
    for a, b in ((st.centred_means, ref.centred_means), (st.variances, ref.variances),
                 (st.sigma_w, ref.sigma_w)):
        assert rel(a, b) < 1e-12


def test_state_dict_roundtrip_and_empty_merge(data):
    x, y = data
    acc = ClassMoments(9, 6, classes=[1, 4, 5]).update(x, y)
    back = ClassMoments.from_state_dict(acc.state_dict())
    np.testing.assert_array_equal(back.finalize().sigma_w, acc.finalize().sigma_w)
    assert back.ignored == acc.ignored
    empty = ClassMoments.from_state_dict(ClassMoments(9, 6, classes=[1, 4, 5]).state_dict())
    assert empty.shift is None
    np.testing.assert_array_equal(empty.merge(acc).finalize().sigma_w, acc.finalize().sigma_w)


def test_tracked_subset_ignores_other_labels(data):
    x, y = data
    acc = ClassMoments(9, 6, classes=[7, 2, 3]).update(torch.from_numpy(x).float(),
                                                       torch.from_numpy(y))
    assert acc.ignored == int((~np.isin(y, [2, 3, 7])).sum())
    st = acc.finalize()
    assert list(st.classes) == [2, 3, 7]
    means, var, sw = direct(x.astype(np.float32).astype(np.float64), y, np.array([2, 3, 7]))
    assert rel(st.sigma_w, sw) < 1e-9 and rel(st.variances, var) < 1e-9


def test_select_classes_top_k_and_min_count():
    counts = np.array([5, 0, 9, 1, 5, 3])
    assert list(select_classes(counts)) == [0, 2, 3, 4, 5]
    assert list(select_classes(counts, min_count=4)) == [0, 2, 4]
    assert list(select_classes(counts, max_classes=2)) == [0, 2]  # tie 5/5: lower id wins
    acc = ClassMoments.from_counts(counts, 3, max_classes=3)
    assert list(acc.classes) == [0, 2, 4] and acc.num_classes == 6


def test_imbalanced_counts_one_to_thousand():
    rng = np.random.default_rng(3)
    sizes = np.array([1, 2, 3, 10, 100, 1000])
    y = np.repeat(np.arange(6), sizes)
    x = rng.standard_normal((len(y), 4)) + 5 * rng.standard_normal((6, 4))[y]
    st = ClassMoments(6, 4).update(x, y).finalize()
    assert list(st.counts) == [2, 3, 10, 100, 1000] and st.singleton_classes == 1
    means, var, sw = direct(x, y, np.arange(1, 6))
    assert rel(st.sigma_w, sw) < 1e-10 and rel(st.variances, var) < 1e-10
    w = st.counts / st.counts.sum()
    np.testing.assert_allclose(ClassMoments(6, 4).update(x, y).finalize(
        global_mean="sample").global_mean, w @ means, rtol=1e-12)
    np.testing.assert_allclose(st.global_mean, means.mean(0), rtol=1e-12)


def test_memory_guard_names_the_need_before_allocating():
    acc = ClassMoments(5000, 40, classes=np.arange(0, 5000, 2))
    acc.update(np.ones((3, 40)), [0, 2, 4])
    held = sum(a.nbytes for a in (acc.sums, acc.n, acc.sq, acc.shift, acc._row,
                                  *acc.moments.state_dict().values()))
    assert held <= memory_bytes(2500, 40, 5000) <= held + 8 * 2 * 40
    need = r"49152 classes × 576 dims needs 21\d\.\d MiB.*max_classes"
    with pytest.raises(ValueError, match=need):
        ClassMoments(49152, 576, max_bytes=100 * 2**20)
    with pytest.raises(ValueError, match=r"needs 7\d\d\.\d\d GiB"):  # would not fit in RAM
        ClassMoments(10**7, 10**4)


@pytest.mark.parametrize("x, y, match", [
    (np.zeros((3, 2)), [0, 1], "one label per row"),
    (np.zeros((2, 3)), [0, 1], r"shape \(n, 2\)"),
    (np.zeros((2, 2)), [0, 5], "label 5 is outside"),
    (np.zeros((2, 2)), [-1, 0], "label -1 is outside"),
    (np.zeros((2, 2)), [0.0, 1.0], "labels must be integers"),
    (np.array([[0.0, np.nan], [1, 1]]), [0, 1], "NaN or inf in 1 of 2 rows"),
])
def test_bad_batches(x, y, match):
    with pytest.raises(ValueError, match=match):
        ClassMoments(3, 2).update(x, np.asarray(y))


def test_bad_construction_and_finalize():
    with pytest.raises(ValueError, match=r"num_classes=\S+ must be an integer >= 2"):
        ClassMoments(1, 2)
    with pytest.raises(ValueError, match="1 class\\(es\\) tracked"):
        ClassMoments(5, 2, classes=[3])
    with pytest.raises(ValueError, match="outside \\[0, 5\\)"):
        ClassMoments(5, 2, classes=[0, 5])
    with pytest.raises(ValueError, match="only 1 class\\(es\\) have 2 or more samples"):
        ClassMoments(3, 1).update(np.array([[0.0], [1.0], [2.0]]), [0, 0, 1]).finalize()
    with pytest.raises(ValueError, match="only 0 class"):
        ClassMoments(3, 1).finalize()
    with pytest.raises(ValueError, match="global_mean must be one of"):
        ClassMoments(3, 1).finalize(global_mean="median")
    with pytest.raises(ValueError, match="different num_classes, dim or tracked classes"):
        ClassMoments(3, 2).merge(ClassMoments(4, 2))
    with pytest.raises(ValueError, match=r"min_count=\S+ must be an integer >= 1"):
        select_classes(np.array([1, 2]), min_count=0)


def test_device_resident_accumulation_equals_the_host_path():
    """Fed tensors with ``resident=True`` (what an accelerator gets by default), the sums stay
    float64 tensors on the batches' device; finalize, state_dict and merges equal the host
    path's, ignored labels included."""
    rng = np.random.default_rng(5)
    batches = [((rng.normal(size=(n, 4)) * 2 + 300).astype(np.float32), rng.integers(0, 6, n))
               for n in (9, 1, 25)]
    dev = ClassMoments(6, 4, classes=[0, 1, 2, 4], resident=True)
    host = ClassMoments(6, 4, classes=[0, 1, 2, 4])
    for x, y in batches:
        dev.update(torch.tensor(x), torch.tensor(y))
        host.update(torch.tensor(x), y)
    assert isinstance(dev.sums, torch.Tensor) and dev.sums.dtype == torch.float64
    assert dev.moments.device == "cpu" and host.moments.device == "numpy"
    assert dev.ignored == host.ignored == int(np.isin(np.concatenate([y for _, y in batches]),
                                                       [3, 5]).sum())
    want = host.finalize()
    got = dev.finalize()
    for field in ("centred_means", "global_mean", "variances", "sigma_w"):
        np.testing.assert_allclose(getattr(got, field), getattr(want, field), rtol=1e-12,
                                   atol=1e-12, err_msg=field)
    np.testing.assert_array_equal(got.counts, want.counts)
    for key, value in host.state_dict().items():
        np.testing.assert_allclose(dev.state_dict()[key], value, rtol=1e-12, atol=1e-12)
    merged = ClassMoments(6, 4, classes=[0, 1, 2, 4], resident=True)
    merged.update(torch.tensor(batches[0][0]), torch.tensor(batches[0][1]))
    rest = ClassMoments(6, 4, classes=[0, 1, 2, 4])
    for x, y in batches[1:]:
        rest.update(x, y)
    np.testing.assert_allclose(merged.merge(rest).finalize().sigma_w, want.sigma_w, rtol=1e-10)
    with pytest.raises(ValueError, match="label 9 is outside"):
        ClassMoments(6, 4, resident=True).update(torch.ones(2, 4), torch.tensor([1, 9]))
    with pytest.raises(ValueError, match="NaN or inf in 1 of 2 rows"):
        ClassMoments(6, 4, resident=True).update(torch.tensor([[1.0] * 4, [float("nan")] * 4]),
                                                 torch.tensor([1, 2]))
