"""Neural collapse metrics: closed-form oracles, direct float64 references, shards, NC4,
bad input, and the LM stage on a tiny random model."""

import math

import numpy as np
import pytest
import torch

from collapsekit.metrics.neural_collapse import (cdnv, equinorm_cv, etf_error, mean_cosine, nc1,
                                                 nc4_predictions, ncc_agreement,
                                                 neural_collapse, self_duality)
from collapsekit.stats.classes import ClassMoments

from conftest import WORDS, make_model, make_tokenizer


def simplex(k, d, rng, scale=3.0):
    """K vertices of a simplex ETF (rows), rotated into R^d (d >= k - 1)."""
    e = math.sqrt(k / (k - 1)) * (np.eye(k) - 1.0 / k)
    basis = np.linalg.qr(np.c_[np.ones(k), rng.standard_normal((k, k - 1))])[0][:, 1:]
    rot = np.linalg.qr(rng.standard_normal((d, d)))[0][: k - 1]
    return scale * (e @ basis) @ rot


def reference(x, y, w=None, *, sample_mean=False, p=1):
    """Every metric straight from the full feature matrix, forming the K×K matrices."""
    classes = np.array([c for c in np.unique(y) if (y == c).sum() >= 2])
    keep = np.isin(y, classes)
    x, y = x[keep], y[keep]
    k, n = len(classes), len(y)
    counts = np.array([(y == c).sum() for c in classes])
    mu = np.array([x[y == c].mean(0) for c in classes])
    g = counts @ mu / n if sample_mean else mu.mean(0)
    m = mu - g
    r = x - mu[np.searchsorted(classes, y)]
    sw, sb = r.T @ r / n, m.T @ m / k
    var = np.array([((x[y == c] - mu[i]) ** 2).sum(1).mean() for i, c in enumerate(classes)])
    iu = np.triu_indices(k, 1)
    d2 = ((mu[:, None] - mu[None]) ** 2).sum(-1)[iu]
    gram = m @ m.T
    etf = np.linalg.norm(gram / np.linalg.norm(gram) - (np.eye(k) - 1 / k) / math.sqrt(k - 1))
    u = m / np.linalg.norm(m, axis=1, keepdims=True)
    cos = (u @ u.T)[iu]
    norms = np.linalg.norm(m, axis=1)
    out = {"nc1": np.trace(sw @ np.linalg.pinv(sb, rcond=1e-10)) / k,
           "cdnv": ((var[:, None] + var[None])[iu] / (2 * d2**p)).mean(),
           "equinorm_cv": norms.std() / norms.mean(), "etf_error": etf,
           "cos_mean": cos.mean(), "cos_std": cos.std()}
    if w is not None:
        wk = w[classes]
        c = (wk / np.linalg.norm(wk, axis=1, keepdims=True) * u).sum(1)
        out.update(duality_error=np.linalg.norm(wk / np.linalg.norm(wk) - m / np.linalg.norm(m)),
                   duality_cos_mean=c.mean(), uniform_duality_cv=c.std() / abs(c.mean()))
    return out


def assert_close(got, want, rtol=1e-9):
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=rtol, abs=1e-14), key


# -- closed-form oracles ------------------------------------------------------------------------
@pytest.mark.parametrize("k, d", [(6, 5), (5, 9)])
def test_simplex_etf_with_zero_spread_is_fully_collapsed(k, d):
    rng = np.random.default_rng(k)
    means = simplex(k, d, rng) + rng.standard_normal(d) * 10  # arbitrary global offset
    y = np.repeat(np.arange(k), 3)
    res = neural_collapse(means[y], y, classifier=means - means.mean(0))  # W = M̃
    assert res["nc1"] == pytest.approx(0, abs=1e-12)
    assert res["etf_error"] == pytest.approx(0, abs=1e-12)
    assert res["equinorm_cv"] == pytest.approx(0, abs=1e-12)
    assert res["cos_mean"] == pytest.approx(-1 / (k - 1), abs=1e-13)
    assert res["cos_std"] == pytest.approx(0, abs=1e-12)
    assert res["duality_error"] == pytest.approx(0, abs=1e-12)
    assert res["duality_cos_mean"] == pytest.approx(1, abs=1e-13)
    assert res["cdnv"] == pytest.approx(0, abs=1e-12)
    assert (res["n_classes"], res["n_samples"], res["singleton_classes"]) == (k, 3 * k, 0)


def test_two_classes_on_a_line_by_hand():
    s = 0.3  # classes at ±1, samples ±1 ± s: Σ_W = s², Σ_B = 1, var = s², distance 2
    x = np.array([[-1 - s], [-1 + s], [1 - s], [1 + s]])
    y = np.array([0, 0, 1, 1])
    res = neural_collapse(x, y, classifier=-np.array([[-1.0], [1.0]]))
    assert res["nc1"] == pytest.approx(s * s / 2, rel=1e-13)
    assert res["cdnv"] == pytest.approx(s * s / 4, rel=1e-13)
    assert neural_collapse(x, y, cdnv_power=2)["cdnv"] == pytest.approx(s * s / 16, rel=1e-13)
    assert res["etf_error"] == pytest.approx(0, abs=1e-14)
    assert (res["cos_mean"], res["cos_std"]) == (pytest.approx(-1), pytest.approx(0, abs=1e-7))
    assert res["duality_error"] == pytest.approx(2, rel=1e-14)  # W = −M̃
    assert res["duality_cos_mean"] == pytest.approx(-1, rel=1e-14)


def test_orthogonal_means_with_unequal_norms_by_hand():
    m = np.diag([1.0, 2.0, 2.0, 4.0])  # rows e_c·a_c, mean of norms 9/4, std √(27/16)/... by hand
    norms = np.array([1.0, 2.0, 2.0, 4.0])
    assert equinorm_cv(m) == pytest.approx(norms.std() / norms.mean(), rel=1e-14)
    assert equinorm_cv(m, ddof=1) == pytest.approx(norms.std(ddof=1) / norms.mean(), rel=1e-14)
    # uncentred orthogonal rows: all pairwise cosines 0
    assert mean_cosine(m) == (pytest.approx(0, abs=1e-15), pytest.approx(0, abs=1e-7))
    # ETF error of an orthogonal frame with Gram diag(1,4,4,16): ‖A − E‖² = 2 − 2⟨A, E⟩
    a = np.diag([1.0, 4, 4, 16]) / math.sqrt(1 + 16 + 16 + 256)
    inner = (np.trace(a) - a.sum() / 4) / math.sqrt(3)
    assert etf_error(m) == pytest.approx(math.sqrt(2 - 2 * inner), rel=1e-12)


# -- direct float64 references ------------------------------------------------------------------
@pytest.mark.parametrize("k, d, sample_mean", [(12, 7, False), (12, 7, True), (5, 9, False)])
def test_random_case_matches_direct_computation(k, d, sample_mean):
    rng = np.random.default_rng(10 + k + d)
    y = rng.integers(0, k, 60 * k)
    x = rng.standard_normal((len(y), d)) + 2 * rng.standard_normal((k, d))[y] + 30.0
    w = rng.standard_normal((k, d))
    gm = "sample" if sample_mean else "class_means"
    got = neural_collapse(x, y, classifier=w, global_mean=gm)
    assert got["global_mean"] == gm
    assert_close(got, reference(x, y, w, sample_mean=sample_mean))
    got2 = neural_collapse(x, y, global_mean=gm, cdnv_power=2)
    assert got2["cdnv"] == pytest.approx(reference(x, y, p=2)["cdnv"], rel=1e-9)
    assert "duality_error" not in got2


def test_imbalanced_classes_counts_one_to_thousand():
    rng = np.random.default_rng(7)
    sizes = np.array([1, 2, 5, 20, 100, 400, 1000])
    y = np.repeat(np.arange(7), sizes)
    x = rng.standard_normal((len(y), 5)) + 3 * rng.standard_normal((7, 5))[y]
    w = rng.standard_normal((7, 5))
    for sample_mean in (False, True):
        got = neural_collapse(x, y, classifier=w,
                              global_mean="sample" if sample_mean else "class_means")
        assert_close(got, reference(x, y, w, sample_mean=sample_mean))
        assert (got["n_classes"], got["n_samples"], got["singleton_classes"]) == (6, 1527, 1)
    a, b = (neural_collapse(x, y, global_mean=g)["nc1"] for g in ("class_means", "sample"))
    assert abs(a - b) > 1e-3 * a  # Zipf-like counts: the two global means differ


@pytest.mark.parametrize("shards", [1, 2, 7])
def test_one_two_seven_shards_give_identical_metrics(shards):
    rng = np.random.default_rng(2)
    y = rng.integers(0, 15, 900)
    x = rng.standard_normal((900, 6)) + 2 * rng.standard_normal((15, 6))[y] - 40
    w = rng.standard_normal((15, 6))
    ref = neural_collapse(x, y, classifier=w)
    accs = []
    for idx in np.array_split(rng.permutation(900), shards):
        acc = ClassMoments(15, 6)
        for part in np.array_split(idx, 3):
            acc.update(x[part], y[part])
        accs.append(acc)
    for other in accs[1:]:
        accs[0].merge(other)
    got = neural_collapse(accs[0], classifier=w)
    assert_close(got, {k: v for k, v in ref.items() if isinstance(v, float)}, rtol=1e-11)


def test_cdnv_tiles_and_close_pairs():
    rng = np.random.default_rng(4)
    m, v = rng.standard_normal((37, 5)), rng.uniform(0.5, 2, 37)
    assert cdnv(m, v, tile_bytes=8 * 37 * 3) == pytest.approx(cdnv(m, v), rel=1e-13)
    far = np.array([[1e6, 0.0], [1e6 + 1e-3, 0.0], [0.0, 1e6]])  # ‖a‖²+‖b‖²−2ab cancels
    iu = np.triu_indices(3, 1)
    d2 = ((far[:, None] - far[None]) ** 2).sum(-1)[iu]  # differences: exact in float64
    assert cdnv(far, np.ones(3)) == pytest.approx(np.mean(1.0 / d2), rel=1e-12)
    assert cdnv(np.array([[1.0, 0], [1.0, 0], [0, 1.0]]), np.ones(3)) == math.inf


def test_self_duality_and_cosine_functions_directly():
    rng = np.random.default_rng(5)
    m = rng.standard_normal((8, 4))
    assert self_duality(2.5 * m, m)["duality_error"] == pytest.approx(0, abs=1e-15)
    assert self_duality(-m, m)["duality_error"] == pytest.approx(2, rel=1e-14)
    u = m / np.linalg.norm(m, axis=1, keepdims=True)
    cos = (u @ u.T)[np.triu_indices(8, 1)]
    assert mean_cosine(m) == (pytest.approx(cos.mean(), rel=1e-12),
                              pytest.approx(cos.std(), rel=1e-10))


# -- NC4 -----------------------------------------------------------------------------------------
def test_nc4_by_hand():
    means = np.array([[0.0, 0.0], [2.0, 0.0]])
    w = np.array([[0.0, 0.0], [1.0, 0.0]])
    x = np.array([[0.5, 0.0], [1.5, 0.3], [-1.0, 0.0]])
    ncc, clf = nc4_predictions(x, means, w)
    assert list(ncc) == [0, 1, 0] and list(clf) == [1, 1, 0]
    assert ncc_agreement(x, means, w) == pytest.approx(2 / 3)
    assert list(nc4_predictions(x, means, w, bias=[0.6, 0.0])[1]) == [0, 1, 0]


def test_nc4_classifier_equal_to_ncc_agrees_everywhere():
    rng = np.random.default_rng(6)
    mu = rng.standard_normal((30, 8)) * 3 + 100
    x = rng.standard_normal((500, 8)) * 3 + 100
    bias = -0.5 * np.einsum("ij,ij->i", mu, mu)  # argmax μ·x − ‖μ‖²/2 = nearest mean
    ncc, clf = nc4_predictions(x, mu, mu, bias=bias, tile_bytes=8 * 30 * 7)
    direct = np.argmin(((x[:, None] - mu[None]) ** 2).sum(-1), axis=1)
    assert (ncc == direct).all() and (clf == direct).all()


# -- bad input -----------------------------------------------------------------------------------
def good():
    rng = np.random.default_rng(0)
    return rng.standard_normal((20, 3)), np.repeat(np.arange(4), 5)


@pytest.mark.parametrize("mutate, match", [
    (lambda x, y: (x, y[:-1]), "one label per feature row"),
    (lambda x, y: (x[:0], y[:0]), "at least 1 rows"),
    (lambda x, y: (x[:, :, None], y), "2-D array"),
    (lambda x, y: (np.where(np.eye(20, 3) > 0, np.nan, x), y), "NaN or inf"),
    (lambda x, y: (x, y - 1), "non-negative integer"),
    (lambda x, y: (x, y.astype(float)), "non-negative integer"),
    (lambda x, y: (x[:1], y[:1]), "0 class\\(es\\) have 2 or more samples"),
    (lambda x, y: (x, np.zeros(20, dtype=int)), "1 class\\(es\\) have 2 or more"),
])
def test_bad_input(mutate, match):
    x, y = mutate(*good())
    with pytest.raises(ValueError, match=match):
        neural_collapse(x, y)


def test_bad_options_and_classifier():
    x, y = good()
    with pytest.raises(ValueError, match="label 3 is outside \\[0, 3\\)"):
        neural_collapse(x, y, num_classes=3)
    with pytest.raises(ValueError, match="classifier must be \\(num_classes, 3\\)"):
        neural_collapse(x, y, classifier=np.ones((4, 2)))
    with pytest.raises(ValueError, match="classifier: contains NaN"):
        neural_collapse(x, y, classifier=np.full((4, 3), np.nan))
    with pytest.raises(ValueError, match="global_mean must be one of"):
        neural_collapse(x, y, global_mean="median")
    with pytest.raises(ValueError, match="p must be a positive number"):
        neural_collapse(x, y, cdnv_power=0)
    with pytest.raises(ValueError, match="pass no labels"):
        neural_collapse(ClassMoments(4, 3).update(x, y), y)
    with pytest.raises(ValueError, match="0 class\\(es\\) tracked"):
        neural_collapse(x, y, min_count=6)
    with pytest.raises(ValueError, match="zero vectors"):
        mean_cosine(np.array([[1.0, 0], [0, 0], [-1.0, 0]]))
    with pytest.raises(ValueError, match="classifier has 2 rows but there are 3"):
        nc4_predictions(np.ones((1, 2)), np.eye(3, 2), np.eye(2))
    with pytest.raises(ValueError, match="Σ_B = 0"):
        nc1(np.eye(2), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="variances must be 3 finite values"):
        cdnv(np.eye(3), [1.0, np.nan, 1.0])


def test_singleton_class_is_excluded_and_counted():
    x, y = good()
    x2, y2 = np.vstack([x, [[9.0, 9, 9]]]), np.append(y, 7)
    res = neural_collapse(x2, y2)
    assert res["singleton_classes"] == 1 and res["n_classes"] == 4 and res["n_samples"] == 20
    assert res["unseen_classes"] == 0  # ids 4-6 never occur: not tracked at all
    assert res["nc1"] == pytest.approx(neural_collapse(x, y)["nc1"], rel=1e-12)
    top = neural_collapse(x2, y2, max_classes=3)
    assert top["n_classes"] == 3 and top["ignored_samples"] == 6


def test_singletons_included_as_the_linguistic_collapse_code_does_by_hand():
    # classes 0, 1 on a line at ±1 (spread s), class 2 seen once at (0, 3)
    s = 0.5
    x = np.array([[-1 - s, 0], [-1 + s, 0], [1 - s, 0], [1 + s, 0], [0, 3.0]])
    y = np.array([0, 0, 1, 1, 2])
    out = neural_collapse(x, y)
    assert (out["n_classes"], out["dim"], out["singletons"]) == (2, 2, "exclude")
    assert out["cdnv"] == pytest.approx(s * s / 4, rel=1e-13)
    inc = neural_collapse(x, y, singletons="include")
    assert (inc["n_classes"], inc["n_samples"], inc["singleton_classes"]) == (3, 5, 1)
    assert inc["singletons"] == "include" and inc["cdnv_undefined_pairs"] == 0
    # var = (s², s², 0); ‖μ0 − μ1‖² = 4, ‖μ0 − μ2‖² = ‖μ1 − μ2‖² = 1 + 9 = 10
    pair = [(2 * s * s) / (2 * 4), s * s / (2 * 10), s * s / (2 * 10)]
    assert inc["cdnv"] == pytest.approx(np.mean(pair), rel=1e-13)
    assert neural_collapse(x, y, singletons="include", cdnv_power=2)["cdnv"] == pytest.approx(
        np.mean([(2 * s * s) / (2 * 16), s * s / (2 * 100), s * s / (2 * 100)]), rel=1e-13)
    # Σ_W: the singleton adds no scatter but counts in N (4 · s² / 5 on the first axis)
    st = ClassMoments(3, 2).update(x, y).finalize(singletons="include")
    assert st.sigma_w[0, 0] == pytest.approx(4 * s * s / 5, rel=1e-13)
    assert st.variances[2] == 0.0


def test_two_singletons_at_one_point_are_left_out_where_the_lc_code_gives_nan():
    # classes 2 and 3 are seen once each, at the same point (the same context, two next
    # tokens): var 0 and distance 0, 0/0 in their pair
    s = 0.5
    x = np.array([[-1 - s, 0], [-1 + s, 0], [1 - s, 0], [1 + s, 0], [0, 3.0], [0, 3.0]])
    y = np.array([0, 0, 1, 1, 2, 3])
    mu = np.array([[-1, 0], [1, 0], [0, 3], [0, 3]], dtype=float)
    var = np.array([s * s, s * s, 0, 0])
    d2 = ((mu[:, None] - mu[None]) ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        lc = (var[:, None] + var[None]) / 2 / d2  # their CDNV matrix (p = 1)
    iu = np.triu_indices(4, 1)
    assert np.isnan(lc[iu].mean())  # the LC code's mean of the upper triangle
    res = neural_collapse(x, y, singletons="include")
    assert res["cdnv_undefined_pairs"] == 1
    assert res["cdnv"] == pytest.approx(np.nanmean(lc[iu]), rel=1e-13)
    # a variance above 0 at distance 0 stays infinite; no defined pair at all is NaN
    assert cdnv(np.zeros((2, 2)), [1.0, 0.0]) == math.inf
    assert math.isnan(cdnv(np.zeros((2, 2)), [0.0, 0.0]))


def test_singleton_and_power_options_reject_bad_input():
    x = np.array([[0.0], [1.0], [5.0]])
    y = np.array([0, 0, 1])
    with pytest.raises(ValueError, match="singletons must be one of"):
        neural_collapse(x, y, singletons="lc")
    with pytest.raises(ValueError, match="1 class\\(es\\) have 2 or more"):
        neural_collapse(x, y)
    assert neural_collapse(x, y, singletons="include")["n_classes"] == 2
    with pytest.raises(ValueError, match="1 class\\(es\\) have 1 or more"):
        neural_collapse(x[:2], y[:2], singletons="include", num_classes=2)
    with pytest.raises(ValueError, match="p must be a positive number"):
        cdnv(np.eye(2), [1.0, 1.0], p=True)


# -- the LM stage --------------------------------------------------------------------------------
def sentences(n, seed):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(4, 18))) for _ in range(n)]


@pytest.fixture
def tiny_loaded():
    """A LoadedModel around the tiny llama; one torch thread (tiny matmuls on shared cores)."""
    from collapsekit.models.registry import LoadedModel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield LoadedModel(spec="tiny", model=make_model("llama"), tokenizer=make_tokenizer(),
                      weight_hash="0", source="test", load_seconds=0.0)
    torch.set_num_threads(threads)


def direct_pairs(lm, texts, layer):
    """Features and next-token labels per text, position by position."""
    from collapsekit.models.capture import iter_capture

    xs, ys = [], []
    for batch in iter_capture(lm.model, lm.tokenizer, texts, batch_size=5, max_length=64):
        for i in range(len(batch.input_ids)):
            pos = batch.mask[i].nonzero().squeeze(1)
            xs.append(batch.hidden[layer][i, pos[:-1]].double().numpy())
            ys.append(batch.input_ids[i, pos[1:]].numpy())
    return np.vstack(xs), np.concatenate(ys)


def test_stage_matches_direct_computation_and_resumes(tmp_path, tiny_loaded, monkeypatch):
    from collapsekit.results import Run
    from collapsekit.studies import neural_collapse as study

    lm, texts, held = tiny_loaded, sentences(40, 0), sentences(8, 1)
    run = Run(tmp_path, study="geometry", config={})
    study.stage(run, lm, texts, layers=("final_norm", 1), heldout_texts=held, batch_size=7,
                max_length=64)
    rec = {(r["metric"], r["layer_name"]): r["value"] for r in run.records}
    w = lm.model.get_output_embeddings().weight.detach().double().numpy()
    for layer, name in ((4, "final_norm"), (1, "block_1")):
        x, y = direct_pairs(lm, texts, layer)
        want = neural_collapse(x, y, classifier=w if layer == 4 else None, num_classes=len(w))
        for metric in ("nc1", "cdnv", "equinorm_cv", "etf_error", "cos_mean", "duality_error",
                       "n_classes", "n_samples", "singleton_classes"):
            if metric in want:
                # float32 activations differ in the last bits with batch shape (the stage
                # batches texts by length): 1e-5, far below what a wrong label would change
                assert rec[metric, name] == pytest.approx(want[metric], rel=1e-5), (metric, name)
    assert ("duality_error", "block_1") not in rec
    # NC4 on held-out positions against the direct nearest-mean / argmax
    x, y = direct_pairs(lm, texts, 4)
    acc = ClassMoments(len(w), 32).update(x, y)
    st = acc.finalize()
    hx, hy = direct_pairs(lm, held, 4)
    ncc = np.argmin(((hx[:, None] - st.means[None]) ** 2).sum(-1), axis=1)
    clf = np.argmax(hx @ w[st.classes].T, axis=1)
    assert rec["nc4_tokens", "final_norm"] == len(hy)
    assert rec["nc4_agreement", "final_norm"] == pytest.approx(np.mean(ncc == clf))
    assert rec["nc4_ncc_accuracy", "final_norm"] == pytest.approx(np.mean(st.classes[ncc] == hy))
    table = run.read_table("nc_class_counts")
    assert sum(table["tokens"]) == len(y) and sum(table["classes"]) == len(w)
    assert sum(table["included"]) == len(st.classes)
    assert table["count_min"][:3] == [0, 1, 2] and table["count_max"][:3] == [0, 1, 3]

    def boom(*a, **k):
        raise AssertionError("resumed stage must not run the model")

    monkeypatch.setattr(study, "stream", boom)
    study.stage(run, lm, texts)  # already recorded: skipped


def test_stage_max_classes_and_bad_layer(tmp_path, tiny_loaded):
    from collapsekit.results import Run
    from collapsekit.studies import neural_collapse as study

    run = Run(tmp_path, study="geometry", config={})
    with pytest.raises(ValueError, match="unknown layer 'block_9'"):
        study.stage(run, tiny_loaded, sentences(4, 0), layers=("block_9",))
    study.stage(run, tiny_loaded, sentences(30, 2), max_classes=10, min_count=3)
    rec = {r["metric"]: r["value"] for r in run.records}
    assert rec["n_classes"] <= 10 and rec["ignored_samples"] > 0
    assert "nc4_agreement" not in rec  # no held-out texts


def test_next_token_pairs_right_and_left_padding():
    from collapsekit.models.capture import CaptureBatch
    from collapsekit.studies.neural_collapse import next_token_pairs

    ids = torch.tensor([[5, 6, 7, 0], [0, 0, 8, 9]])
    mask = torch.tensor([[1, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    hidden = torch.arange(8.0).reshape(2, 4, 1)
    batch = CaptureBatch(ids, mask, [hidden], None, None, ["final_norm"])
    x, y = next_token_pairs(batch, 0)
    assert x.squeeze(1).tolist() == [0.0, 1.0, 6.0] and y.tolist() == [6, 7, 9]


def test_geometry_study_with_neural_collapse_matches_the_stage_and_resumes(
        tmp_path, tiny_loaded, monkeypatch):
    """The registry's way to neural collapse: ``collapsekit geometry --neural-collapse``
    (the accumulators ride along geometry's pass) gives the standalone stage's numbers; a
    finished run resumes without loading the model (the runner's done list)."""
    import collapsekit.models.registry as registry
    from collapsekit.results import Run, load_run
    from collapsekit.studies import STUDIES, run_study
    from collapsekit.studies import neural_collapse as study

    lm, texts, held = tiny_loaded, sentences(40, 0), sentences(8, 1)
    folder = tmp_path / "tiny"
    lm.model.save_pretrained(folder, safe_serialization=True)
    lm.tokenizer.save_pretrained(folder)
    corpus = tmp_path / "texts.txt"
    corpus.write_text("\n".join(texts + held) + "\n")
    params = {"texts": str(corpus), "n": 40, "max_length": 64, "batch_size": 7,
              "attention": False, "rank_collapse": False, "neural_collapse": True,
              "nc_layer": "final_norm,block_1", "nc_heldout": 8}
    s = STUDIES["geometry"].settings(params)
    assert s.nc_layer == ("final_norm", "block_1") and s.nc_min_count == 2
    with pytest.raises(ValueError, match="nc_max_classes=1"):
        STUDIES["geometry"].settings({**params, "nc_max_classes": 1})
    out = tmp_path / "run"
    run_study("geometry", out, model=str(folder), params=params, device="cpu", report=False)
    data = load_run(out)
    got = {(r["metric"], r["layer_name"]): r["value"] for r in data["records"]
           if r["section"] == "neural collapse"}
    ref = Run(tmp_path / "ref", study="geometry", config={})
    study.stage(ref, lm, texts, layers=("final_norm", "block_1"), heldout_texts=held,
                min_count=2, batch_size=7, max_length=64)
    want = {(r["metric"], r["layer_name"]): r["value"] for r in ref.records}
    assert set(got) == set(want) and ("nc4_agreement", "final_norm") in got
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-4, abs=1e-9), key
    assert data["done"] == ["geometry"] and data["config"]["neural_collapse"] is True

    def no_load(*a, **k):
        raise AssertionError("the model was loaded for a finished study")

    monkeypatch.setattr(registry, "load_model", no_load)
    run_study("geometry", out, model=str(folder), params=params, device="cpu", resume=True,
              report=False)
    assert load_run(out)["records"] == data["records"]
