"""TempScale (attention logits / τ in a BERT embedder) and the length-collapse study, on a
tiny random BERT sentence embedder: τ = 1 changes nothing, τ ≠ 1 gives the closed form
softmax(log A / τ), the model is restored, bucket metrics have closed forms, bad input."""

import math

import numpy as np
import pytest
import torch

from collapsekit.mitigate.tempscale import temp_scale
from collapsekit.studies.length_collapse import bucket_metrics, embed_ids, length_collapse

WORDS = "the cat dog sees runs moon river king queen gold stone house red blue".split()


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest


@pytest.fixture(scope="module")
def st(tmp_path_factory):
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path = tmp_path_factory.mktemp("bert")
    (path / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]",
                                               *WORDS]) + "\n")
    BertTokenizerFast(str(path / "vocab.txt")).save_pretrained(path)
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=5 + len(WORDS), hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64)
    cfg._attn_implementation = "eager"
    BertModel(cfg).eval().save_pretrained(path)
    model = SentenceTransformer(modules=[Transformer(str(path), max_seq_length=32),
                                         Pooling(16, "mean")], device="cpu")
    return model.eval()


def text(n, seed):
    rng = np.random.default_rng(seed)
    return " ".join(rng.choice(WORDS, n))


def bert(st):
    return st[0].auto_model


def test_tau_one_is_identical_and_model_restored(st):
    texts = [text(10, i) for i in range(4)]
    before = st.encode(texts, convert_to_numpy=True)
    state = {k: v.clone() for k, v in st.state_dict().items()}
    with temp_scale(st, 1.0):
        np.testing.assert_array_equal(st.encode(texts, convert_to_numpy=True), before)
    with pytest.raises(RuntimeError), temp_scale(st, 0.5):
        assert not np.allclose(st.encode(texts, convert_to_numpy=True), before)
        raise RuntimeError("boom")  # restored even when the block fails
    np.testing.assert_array_equal(st.encode(texts, convert_to_numpy=True), before)
    assert all(torch.equal(v, st.state_dict()[k]) for k, v in state.items())
    assert all(m.scaling == 8 ** -0.5 for m in bert(st).modules() if hasattr(m, "scaling"))


def test_first_layer_attention_is_softmax_of_scaled_logits(st):
    ids = st.tokenizer([text(12, 7)], return_tensors="pt")
    impl = bert(st).config._attn_implementation  # SentenceTransformer loads SDPA
    bert(st).set_attn_implementation("eager")  # the one that returns probabilities
    with torch.inference_mode():
        base = bert(st)(**ids, output_attentions=True).attentions[0].double()
        with temp_scale(st, 0.8):
            sharp = bert(st)(**ids, output_attentions=True).attentions[0].double()
    bert(st).set_attn_implementation(impl)
    # layer 0 sees the same input: A_τ = softmax(z/τ) = softmax(log A_1 / τ)
    want = torch.softmax(torch.log(base) / 0.8, dim=-1)
    torch.testing.assert_close(sharp, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("tau", [0, -1.0, math.nan, math.inf, True, "0.9"])
def test_bad_tau(st, tau):
    with pytest.raises(ValueError, match="tau=.* must be a finite number > 0"):
        with temp_scale(st, tau):
            pass


def test_model_without_bert_attention():
    with pytest.raises(ValueError, match="scaling"):
        with temp_scale(torch.nn.Linear(2, 2), 0.9):
            pass


def test_bucket_metrics_closed_forms():
    eye = np.eye(4)  # orthonormal rows: cosine 0, distance √(1 − 1/N), RankMe N
    m = bucket_metrics(eye)
    assert m["mean_pairwise_cosine"] == pytest.approx(0.0, abs=1e-12)
    assert m["centroid_distance"] == pytest.approx(math.sqrt(1 - 1 / 4))
    assert m["rankme"] == pytest.approx(4.0, rel=1e-5)
    same = bucket_metrics(np.tile([[3.0, 4.0]], (5, 1)))  # identical rows: full collapse
    assert same["mean_pairwise_cosine"] == pytest.approx(1.0)
    assert same["centroid_distance"] == pytest.approx(0.0, abs=1e-12)
    assert same["rankme"] == pytest.approx(1.0, rel=1e-5)


def test_embed_ids_matches_encode_when_nothing_is_cut(st):
    texts = [text(6, i) for i in range(3)]
    ids = st.tokenizer(texts, add_special_tokens=False)["input_ids"]
    got = embed_ids(st, ids, 8)  # 6 words + [CLS] + [SEP]
    np.testing.assert_allclose(got, st.encode(texts, convert_to_numpy=True), rtol=1e-5,
                               atol=1e-6)


def test_length_collapse_rows(st):
    texts = [text(70, i) for i in range(5)] + ["the cat"]  # the short one is left out
    rows = length_collapse(st, texts, buckets=(8, 64, 16), taus=(1.0, 0.8))
    assert [(r["tokens"], r["tau"]) for r in rows] == [
        (8, 1.0), (16, 1.0), (64, 1.0), (8, 0.8), (16, 0.8), (64, 0.8)]
    assert {r["documents"] for r in rows} == {5}
    assert [r["beyond_trained_length"] for r in rows[:3]] == [False, False, True]
    ids = st.tokenizer(texts[:5], add_special_tokens=False)["input_ids"]
    want = bucket_metrics(embed_ids(st, ids, 16))
    assert rows[1]["rankme"] == pytest.approx(want["rankme"])
    with temp_scale(st, 0.8):
        sharp = bucket_metrics(embed_ids(st, ids, 16))
    assert rows[4]["rankme"] == pytest.approx(sharp["rankme"], rel=1e-12)
    assert rows[4]["rankme"] != pytest.approx(want["rankme"], rel=1e-9)  # τ changed it


@pytest.mark.parametrize("kw, match", [
    (dict(buckets=(8, 65)), "buckets must"),
    (dict(buckets=(2,)), "buckets must"),
    (dict(buckets=()), "buckets must"),
    (dict(buckets=(60,)), "only 1 text"),
    (dict(buckets=(8,), taus=(0,)), "taus must"),
])
def test_length_collapse_bad_input(st, kw, match):
    with pytest.raises(ValueError, match=match):
        length_collapse(st, [text(70, 0), text(20, 1)], **kw)
