"""Streaming monitor metrics (collapsekit.monitor.metrics): closed-form values, bad input,
merge / state_dict round trips, and a two-process gloo sync equal to one process on the
union of the data."""

import math
import socket

import numpy as np
import pytest
import torch

from collapsekit import metrics as M
from collapsekit.monitor import (AttentionEntropy, NeuralCollapse, OutputDiversity,
                                 PolicyEntropy, SpectralGeometry, reduce_moments)
from collapsekit.stats.moments import Moments


# -- top_coordinate_share (metrics/spectrum.py) ----------------------------------------------
def test_top_coordinate_share_by_hand():
    x = np.array([[1.0, 0.0, 2.0], [3.0, 0.0, 0.0]])
    # E[x²] = (5, 0, 2) -> 5 / 7; Var = (1, 0, 1) -> 1 / 2
    assert M.top_coordinate_share(x, center=False) == pytest.approx(5 / 7)
    assert M.top_coordinate_share(x) == pytest.approx(1 / 2)
    m = Moments(3, unit_sum=False).update(x[:1]).update(x[1:])
    assert M.top_coordinate_share(m, center=False) == pytest.approx(5 / 7)
    assert M.top_coordinate_share(np.eye(4)) == pytest.approx(0.25)


@pytest.mark.parametrize("bad", [np.zeros((0, 3)), np.array([[np.nan, 1.0]]), np.ones(3),
                                 np.zeros((2, 2))])
def test_top_coordinate_share_bad_input(bad):
    with pytest.raises(ValueError, match="top_coordinate"):
        M.top_coordinate_share(bad)


# -- reduce_moments / SpectralGeometry -------------------------------------------------------
def test_reduce_moments_equals_moments_update():
    rng = np.random.default_rng(0)
    x = rng.normal(5.0, 2.0, (50, 6))
    a = Moments(6).update(x[:20]).update(x[20:])
    b = reduce_moments(torch.tensor(x[:20])).merge(reduce_moments(torch.tensor(x[20:])))
    np.testing.assert_allclose(b.cov(), a.cov(), rtol=1e-12)
    np.testing.assert_allclose(b.mean, a.mean, rtol=1e-12)
    np.testing.assert_allclose(b.unit_sum, a.unit_sum, rtol=1e-12)


def test_spectral_geometry_matches_metric_functions():
    rng = np.random.default_rng(1)
    h = torch.tensor(rng.normal(size=(3, 10, 8)), dtype=torch.float32)
    mask = torch.ones(3, 10, dtype=torch.bool)
    mask[0, 7:] = False
    geo = SpectralGeometry()
    geo.update({"block_1": h[:2]}, mask[:2]).update({"block_1": h[2:]}, mask[2:])
    out = geo.compute()
    rows = h[mask].double().numpy()
    ev = M.spectrum(rows)
    assert out["rankme/block_1"] == pytest.approx(M.rankme(rows), rel=1e-9)
    assert out["participation_ratio/block_1"] == pytest.approx(M.participation_ratio(ev))
    assert out["dim_eff/block_1"] == M.dim_eff(ev)
    assert out["anisotropy/block_1"] == pytest.approx(M.anisotropy(rows), rel=1e-9)
    assert out["top_coordinate_share/block_1"] == pytest.approx(M.top_coordinate_share(rows))
    assert out["top_coordinate_norm_share/block_1"] == pytest.approx(
        M.top_coordinate_share(rows, center=False))
    assert set(k.split("/")[0] for k in out) == set(SpectralGeometry.METRICS)
    # state round trip and layer selection
    other = SpectralGeometry()
    other.load_state_dict(geo.state_dict())
    assert other.compute() == pytest.approx(out, nan_ok=True)
    only = SpectralGeometry(layers=["b"]).update({"a": h[0], "b": h[1]})
    assert set(only.moments) == {"b"}


def test_spectral_geometry_isotropic_closed_form():
    # rows ±e_j: covariance = I/D, every eigenvalue equal -> PR = D, anisotropy < 0
    d = 4
    x = torch.cat([torch.eye(d), -torch.eye(d)]).double()
    out = SpectralGeometry().update([x]).compute()
    assert out["participation_ratio/0"] == pytest.approx(d)
    assert out["top_coordinate_share/0"] == pytest.approx(1 / d)
    assert out["anisotropy/0"] == pytest.approx(-1 / (2 * d - 1))


@pytest.mark.parametrize("bad, match", [
    ({"a": torch.ones(2, 3, 4, 5)}, "expected"),
    ({"a": torch.tensor([[1.0, float("nan")], [1.0, 2.0]])}, "NaN"),
    ("text", "expected a CaptureBatch"),
    ({}, "no layers"),
])
def test_spectral_geometry_bad_input(bad, match):
    with pytest.raises(ValueError, match=match):
        SpectralGeometry().update(bad)


def test_spectral_geometry_empty_compute_and_mask_shape():
    with pytest.raises(ValueError, match="no layer"):
        SpectralGeometry().compute()
    with pytest.raises(ValueError, match="mask"):
        SpectralGeometry().update({"a": torch.ones(2, 3, 4)}, torch.ones(3, 2, dtype=torch.bool))


# -- AttentionEntropy --------------------------------------------------------------------------
def test_attention_entropy_sums_by_hand():
    # one head uniform over 2 keys (H = log 2, Ĥ = 1) on 2 rows; one head one-hot (0)
    sums = {1: {"entropy_sum": np.array([2 * math.log(2), 0.0]),
                "norm_entropy_sum": np.array([2.0, 0.0]), "rows": 2, "norm_rows": 2}}
    att = AttentionEntropy().update(sums)
    att.merge(AttentionEntropy().update(sums))
    out = att.compute()
    assert out["attention_entropy/block_1"] == pytest.approx(math.log(2) / 2)
    assert out["attention_entropy_normalised/block_1"] == pytest.approx(0.5)
    assert out["attention_collapsed_heads/block_1"] == 0.5
    assert out["attention_overloaded_heads/block_1"] == 0.5
    assert att.sums["block_1"]["rows"] == 4
    with pytest.raises(ValueError, match="lack"):
        AttentionEntropy().update({1: {"entropy_sum": np.ones(2)}})
    with pytest.raises(ValueError, match="NaN"):
        AttentionEntropy().update({1: {**sums[1], "entropy_sum": np.array([np.nan, 0])}})
    with pytest.raises(ValueError, match="no data"):
        AttentionEntropy().compute()


# -- PolicyEntropy ----------------------------------------------------------------------------
def _direct_entropy(z):
    logp = torch.log_softmax(z.double(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def test_policy_entropy_direct_formula_and_chunking():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(2, 5, 37, generator=g, dtype=torch.float64) * 3
    mask = torch.rand(2, 5, generator=g) > 0.3
    want = _direct_entropy(z)[mask].mean().item()
    top = z.topk(10, dim=-1).values
    want_top = _direct_entropy(top)[mask].mean().item()
    values = [PolicyEntropy(top_k=10, chunk=c).update(z, mask).compute() for c in (1, 7, 37, 100)]
    for v in values:
        assert v["policy_entropy"] == pytest.approx(want, rel=1e-12)
        assert v["policy_entropy_top10"] == pytest.approx(want_top, rel=1e-12)


def test_policy_entropy_closed_forms_and_merge():
    uniform = torch.zeros(3, 8)
    assert PolicyEntropy().update(uniform).compute()["policy_entropy"] == pytest.approx(
        math.log(8))
    onehot = torch.full((2, 6), -math.inf)
    onehot[:, 2] = 0.0
    out = PolicyEntropy(top_k=3, chunk=4).update(onehot).compute()
    assert out["policy_entropy"] == 0.0 and out["policy_entropy_top3"] == 0.0
    a = PolicyEntropy().update(uniform)
    a.merge(PolicyEntropy().update(torch.zeros(1, 4)))
    assert a.compute()["policy_entropy"] == pytest.approx((3 * math.log(8) + math.log(4)) / 4)


@pytest.mark.parametrize("logits, mask, match", [
    (torch.zeros(0, 4), None, "non-empty"),
    (torch.zeros(4), None, "non-empty"),
    (torch.tensor([[0.0, float("nan")]]), None, "NaN"),
    (torch.full((1, 3), -math.inf), None, "all -inf"),
    (torch.zeros(2, 3, 4), torch.ones(3, 2, dtype=torch.bool), "mask"),
    (torch.zeros(2, 3, 4), torch.ones(2, 3), "mask"),
])
def test_policy_entropy_bad_input(logits, mask, match):
    with pytest.raises(ValueError, match=match):
        PolicyEntropy().update(logits, mask)


def test_policy_entropy_masked_nan_is_ignored_and_empty_compute():
    z = torch.zeros(2, 4)
    z[1, 0] = float("nan")
    out = PolicyEntropy().update(z, torch.tensor([True, False])).compute()
    assert out["policy_entropy"] == pytest.approx(math.log(4))
    with pytest.raises(ValueError, match="no token"):
        PolicyEntropy().compute()
    with pytest.raises(ValueError, match="top_k"):
        PolicyEntropy(top_k=0)


# -- OutputDiversity ---------------------------------------------------------------------------
def test_output_diversity_by_hand():
    div = OutputDiversity(embedder=lambda texts: np.array([[1.0, 0.0], [0.0, 1.0]]))
    div.update(["a b", "a c"])
    out = div.compute()
    assert out["distinct_1"] == pytest.approx(3 / 4)
    assert out["distinct_2"] == pytest.approx(1.0)
    assert out["mean_pairwise_cosine"] == pytest.approx(0.0)
    assert out["vendi_score"] == pytest.approx(2.0)
    assert out["self_bleu"] == pytest.approx(M.self_bleu(["a b", "a c"]))
    # groups average; a group without bigrams does not count for distinct_2
    lex = OutputDiversity().update(["a a", "a a"]).update(["x", "y"])
    assert lex.compute()["distinct_1"] == pytest.approx((0.25 + 1.0) / 2)
    assert lex.compute()["distinct_2"] == pytest.approx(0.5)
    assert "vendi_score" not in lex.compute()


@pytest.mark.parametrize("bad", ["one string", ["only one"], [], ["a", 3]])
def test_output_diversity_bad_input(bad):
    with pytest.raises(ValueError, match="OutputDiversity"):
        OutputDiversity().update(bad)


def test_output_diversity_empty_compute_and_bad_embedder():
    with pytest.raises(ValueError, match="no group"):
        OutputDiversity().compute()
    with pytest.raises(ValueError, match="embedder"):
        OutputDiversity(embedder=3)
    with pytest.raises(ValueError, match="returned shape"):
        OutputDiversity(embedder=lambda t: np.ones(3)).update(["a", "b"])


# -- NeuralCollapse ----------------------------------------------------------------------------
def test_neural_collapse_equals_the_batch_function():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 60)
    x = rng.normal(size=(60, 5)) + 3 * np.eye(4, 5)[labels] + 100.0
    nc = NeuralCollapse(4, 5)
    nc.update(torch.tensor(x[:25]), torch.tensor(labels[:25]))
    nc.update(torch.tensor(x[25:]), labels[25:])
    want = M.neural_collapse(x, labels)
    out = nc.compute()
    assert out["nc1"] == pytest.approx(want["nc1"], rel=1e-9)
    assert out["cdnv"] == pytest.approx(want["cdnv"], rel=1e-9)
    # a perfectly collapsed set: each class one point -> within-class variance 0
    pts = np.repeat(np.eye(3), 4, axis=0)
    collapsed = NeuralCollapse(3, 3).update(torch.tensor(pts), np.repeat(np.arange(3), 4))
    assert collapsed.compute()["nc1"] == pytest.approx(0.0, abs=1e-12)
    other = NeuralCollapse(4, 5)
    other.load_state_dict(nc.state_dict())
    assert other.compute()["nc1"] == pytest.approx(out["nc1"])


def test_neural_collapse_bad_input():
    nc = NeuralCollapse(3, 2)
    with pytest.raises(ValueError, match="shape"):
        nc.update(torch.ones(4, 3), [0, 1, 2, 0])
    with pytest.raises(ValueError, match="NaN"):
        nc.update(torch.tensor([[np.nan, 1.0]]), [0])
    with pytest.raises(ValueError, match="outside"):
        nc.update(torch.ones(1, 2), [5])
    with pytest.raises(ValueError, match="merge"):
        nc.merge(PolicyEntropy())


# -- distributed sync (two gloo processes on CPU) -------------------------------------------
def _data():
    g = torch.Generator().manual_seed(3)
    h = torch.randn(4, 6, 5, generator=g, dtype=torch.float64) + 2
    z = torch.randn(4, 6, 11, generator=g, dtype=torch.float64)
    labels = torch.arange(24) % 3
    texts = [["a b c", "a b d"], ["x y", "x y"], ["p q r s", "p q t"], ["m n", "o p"]]
    return h, z, labels, texts


def _metrics():
    return [SpectralGeometry(), PolicyEntropy(top_k=4), OutputDiversity(), NeuralCollapse(3, 5)]


def _feed(mets, rows):
    h, z, labels, texts = _data()
    geo, pol, div, nc = mets
    for i in rows:
        geo.update({"l": h[i]})
        pol.update(z[i])
        div.update(texts[i])
        nc.update(h[i], labels[i * 6:(i + 1) * 6])
    return mets


def _worker(rank, port, queue):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank,
                            world_size=2)
    try:
        mets = _feed(_metrics(), [rank, rank + 2])
        queue.put((rank, [m.sync().compute() for m in mets]))
    finally:
        dist.destroy_process_group()


def test_sync_is_a_noop_without_distributed():
    geo = _feed(_metrics(), [0])[0]
    before = geo.compute()
    assert geo.sync().compute() == before


def test_two_process_gloo_sync_equals_one_process():
    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(r, port, queue)) for r in range(2)]
    for p in procs:
        p.start()
    got = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    want = [m.compute() for m in _feed(_metrics(), [0, 2, 1, 3])]
    for rank in (0, 1):
        for g, w in zip(got[rank], want):
            assert g.keys() == w.keys()
            for k in w:
                assert g[k] == pytest.approx(w[k], rel=1e-9, abs=1e-12, nan_ok=True), k
