"""Activation capture: equality with HF's own outputs, padding invariance, attention
entropy sums, truncation reports, hook hygiene and bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import make_model, make_tokenizer

from collapsekit.models.capture import (
    CaptureBatch, _allowed_keys, attention_entropy_reducer, find_layers, iter_capture, stream,
)

ARCHS = ["llama", "gemma3", "gpt2"]
TEXTS = [
    "the cat runs . the dog sees a bird in the river of gold and the king loves the queen",
    "a small fish",
    "the old man tells the child of the sun and the moon",
]
_MODELS: dict[str, torch.nn.Module] = {}


def model_for(arch):
    if arch not in _MODELS:
        _MODELS[arch] = make_model(arch)
    return _MODELS[arch]


def n_words(text):
    return len(text.split())  # the word-level tokenizer adds no special tokens


def capture_all(model, tok, texts, **kw):
    return list(iter_capture(model, tok, texts, **kw))


def no_hooks(model):
    return all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


@pytest.mark.parametrize("arch", ARCHS)
def test_hidden_states_and_logits_match_hf(arch):
    model, tok = model_for(arch), make_tokenizer("right")
    (batch,) = capture_all(model, tok, TEXTS, logits=True)
    enc = tok(TEXTS, padding=True, return_tensors="pt")
    with torch.no_grad():
        ref = model(**enc, output_hidden_states=True)
    n_blocks = model.config.num_hidden_layers
    assert len(ref.hidden_states) == n_blocks + 1
    assert len(batch.hidden) == n_blocks + 2
    assert batch.layer_names == ["embed", "block_1", "block_2", "block_3", "final_norm"]
    mask = enc["attention_mask"].bool()
    assert torch.equal(batch.mask, mask) and torch.equal(batch.input_ids, enc["input_ids"])
    # HF: [embedding output, blocks 1..L-1, final norm]; ours adds block_L (pre-norm).
    pairs = [(i, i) for i in range(n_blocks)] + [(n_blocks + 1, n_blocks)]
    for ours, theirs in pairs:
        torch.testing.assert_close(batch.hidden[ours][mask], ref.hidden_states[theirs][mask],
                                   atol=1e-5, rtol=0)
    _, _, norm = find_layers(model)
    with torch.no_grad():
        torch.testing.assert_close(norm(batch.hidden[n_blocks])[mask], batch.hidden[-1][mask],
                                   atol=1e-5, rtol=0)
    torch.testing.assert_close(batch.logits[mask], ref.logits[mask], atol=1e-5, rtol=0)
    assert batch.tokens(0).shape == (sum(map(n_words, TEXTS)), model.config.hidden_size)
    assert batch.hidden[0].dtype == torch.float32


def test_gemma_embedding_output_is_scaled():
    model = model_for("gemma3")
    (batch,) = capture_all(model, make_tokenizer(), ["the cat"])
    raw = model.model.embed_tokens.weight[batch.input_ids[0]]
    torch.testing.assert_close(batch.hidden[0][0], raw * math.sqrt(model.config.hidden_size),
                               atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("arch", ARCHS)
def test_padding_does_not_change_a_text(arch, side):
    model, tok = model_for(arch), make_tokenizer(side)
    short = TEXTS[1]
    (alone,) = capture_all(model, tok, [short], logits=True)
    (mixed,) = capture_all(model, tok, [TEXTS[0], short, TEXTS[2]], logits=True)
    assert alone.mask.all() and not mixed.mask[1].all()
    for layer in range(len(alone.hidden)):
        torch.testing.assert_close(mixed.hidden[layer][1][mixed.mask[1]], alone.tokens(layer),
                                   atol=1e-5, rtol=0)
    torch.testing.assert_close(mixed.logits[1][mixed.mask[1]], alone.logits[0], atol=1e-5, rtol=0)
    k, width = n_words(short), mixed.mask.shape[1]
    real = list(range(width - k, width)) if side == "left" else list(range(k))
    assert mixed.mask[1].nonzero().flatten().tolist() == real


def _entropy_reference(attn, mask, window):
    """Σ_i H_i and Σ_i H_i/log|K_i| per head, by explicit loops over real queries."""
    b, h, t, _ = attn.shape
    ent, norm = np.zeros(h), np.zeros(h)
    rows = norm_rows = 0
    for bi in range(b):
        for i in range(t):
            if not mask[bi, i]:
                continue
            keys = [j for j in range(i + 1) if mask[bi, j] and (window is None or i - j < window)]
            rows += 1
            norm_rows += len(keys) > 1
            for hi in range(h):
                p = attn[bi, hi, i, keys]
                hval = -sum(x * math.log(x) for x in p if x > 0)
                ent[hi] += hval
                norm[hi] += hval / math.log(len(keys)) if len(keys) > 1 else 0.0
    return ent, norm, rows, norm_rows


@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize("arch", ARCHS)
def test_attention_entropy_matches_output_attentions(arch, side):
    model, tok = model_for(arch), make_tokenizer(side)
    (batch,) = capture_all(model, tok, TEXTS, attention_reducer=attention_entropy_reducer)
    positions = (batch.mask.long().cumsum(-1) - 1).clamp(min=0)
    with torch.no_grad():
        ref = model(batch.input_ids, attention_mask=batch.mask.long(), position_ids=positions,
                    output_attentions=True)
    assert sorted(batch.attention) == [1, 2, 3]
    types = getattr(model.config, "layer_types", None)
    mask = batch.mask.numpy()
    for layer in (1, 2, 3):
        sliding = types is not None and types[layer - 1] == "sliding_attention"
        window = model.config.sliding_window if sliding else None
        ent, norm, rows, norm_rows = _entropy_reference(ref.attentions[layer - 1].double().numpy(),
                                                        mask, window)
        got = batch.attention[layer]
        np.testing.assert_allclose(got["entropy_sum"], ent, rtol=1e-5)
        np.testing.assert_allclose(got["norm_entropy_sum"], norm, rtol=1e-5)
        assert (got["rows"], got["norm_rows"]) == (rows, norm_rows) == (mask.sum(), mask.sum() - 3)
    if arch == "gemma3":  # the longest text exceeds the window of 8, so the window must matter
        assert n_words(TEXTS[0]) > model.config.sliding_window


def test_entropy_reducer_uniform_one_hot_and_hand_value():
    t = 4
    mask = torch.ones(t, t, dtype=torch.bool).tril()[None].clone()
    uniform = mask.double() / mask.sum(-1, keepdim=True)
    one_hot = torch.eye(t, dtype=torch.float64)[None]
    probs = torch.stack([uniform[0], one_hot[0]])[None]  # head 0 uniform, head 1 one-hot
    out = attention_entropy_reducer(1, probs, mask)
    # uniform over i+1 keys: H_i = log(i+1); normalised H = 1 on the 3 rows with ≥2 keys
    np.testing.assert_allclose(out["entropy_sum"], [math.log(24), 0.0], atol=1e-12)
    np.testing.assert_allclose(out["norm_entropy_sum"], [3.0, 0.0], atol=1e-12)
    assert (out["rows"], out["norm_rows"]) == (4, 3)
    # one row (0.5, 0.25, 0.25) → H = 1.5 log 2, normalised 1.5 log 2 / log 3; a pad key and a
    # pad query are excluded even where probs are non-zero there
    probs = torch.tensor([[[[1.0, 0, 0, 0], [0.5, 0.5, 0, 0],
                            [0.5, 0.1, 0.25, 0.25], [0.3, 0.3, 0.2, 0.2]]]])
    mask = torch.tensor([[[1, 0, 0, 0], [0, 0, 0, 0], [1, 0, 1, 1], [0, 0, 0, 0]]]).bool()
    out = attention_entropy_reducer(2, probs, mask)
    np.testing.assert_allclose(out["entropy_sum"], [1.5 * math.log(2)], rtol=1e-6)
    np.testing.assert_allclose(out["norm_entropy_sum"], [1.5 * math.log(2) / math.log(3)],
                               rtol=1e-6)
    assert (out["rows"], out["norm_rows"]) == (2, 1)


def test_allowed_keys_from_model_mask_or_causal_fallback():
    mask = torch.tensor([[False, True, True, True]])  # one left pad
    causal = [[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 1, 1, 1]]
    assert _allowed_keys(None, mask).int().tolist() == [causal]
    lo = torch.finfo(torch.float32).min
    window2 = torch.full((1, 1, 4, 4), lo)  # a sliding window of 2 keys, as a float mask
    for i in range(4):
        window2[0, 0, i, max(0, i - 1):i + 1] = 0.0
    expected = [[0, 0, 0, 0], [0, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]]
    assert _allowed_keys(window2, mask).int().tolist() == [expected]
    assert _allowed_keys(window2 == 0, mask).int().tolist() == [expected]


def test_entropy_reducer_rejects_bad_shapes():
    with pytest.raises(ValueError, match="probs must be"):
        attention_entropy_reducer(1, torch.ones(2, 4, 4), torch.ones(2, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="probs must be"):
        attention_entropy_reducer(1, torch.ones(1, 2, 4, 4), torch.ones(1, 3, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask must be a bool"):
        attention_entropy_reducer(1, torch.ones(1, 2, 3, 3), torch.ones(1, 3, 3))
    for bad in (float("nan"), float("inf")):
        probs = torch.full((1, 2, 3, 3), 1 / 3)
        probs[0, 1, 2, 0] = bad
        with pytest.raises(ValueError, match="layer 4 contain NaN or inf"):
            attention_entropy_reducer(4, probs, torch.ones(1, 3, 3, dtype=torch.bool))


def test_attention_works_on_sdpa_model_and_restores_it():
    model = make_model("llama")
    tok = make_tokenizer()
    (eager,) = capture_all(model, tok, TEXTS, attention_reducer=attention_entropy_reducer)
    model.set_attn_implementation("sdpa")
    (sdpa,) = capture_all(model, tok, TEXTS, attention_reducer=attention_entropy_reducer)
    assert model.config._attn_implementation == "sdpa"
    for layer in (1, 2, 3):
        np.testing.assert_allclose(sdpa.attention[layer]["entropy_sum"],
                                   eager.attention[layer]["entropy_sum"], rtol=1e-6)


def test_truncation_is_reported():
    model, tok = model_for("llama"), make_tokenizer()
    seen = []
    (batch,) = capture_all(model, tok, ["a b c", "the cat runs to the dog"], max_length=4,
                           on_truncate=lambda *a: seen.append(a))
    assert seen == [(1, 6, 4)] and batch.input_ids.shape == (2, 4)
    assert batch.input_ids[1].tolist() == tok("the cat runs to")["input_ids"]
    long_text = " ".join(["the cat"] * 40)  # 80 tokens > context of 64 (config and tokenizer)
    with pytest.warns(UserWarning, match="text 0 has 80 tokens and was truncated to 64"):
        (batch,) = capture_all(model, tok, [long_text])
    assert batch.mask.sum() == 64


def test_hooks_removed_after_success_abandon_and_error():
    model, tok = make_model("gpt2"), make_tokenizer()
    assert no_hooks(model)
    capture_all(model, tok, TEXTS, attention_reducer=attention_entropy_reducer)
    assert no_hooks(model)
    gen = iter_capture(model, tok, TEXTS, batch_size=1)
    next(gen)  # abandoned mid-way, never closed
    assert no_hooks(model)

    def boom(layer, probs, mask):
        raise RuntimeError("reducer failed")

    with pytest.raises(RuntimeError, match="reducer failed"):
        capture_all(model, tok, TEXTS, attention_reducer=boom)
    assert no_hooks(model)


def test_unsupported_architecture():
    with pytest.raises(ValueError, match="unsupported architecture Linear"):
        find_layers(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="unsupported architecture"):
        next(iter_capture(torch.nn.Sequential(torch.nn.Linear(2, 2)), make_tokenizer(), ["a"]))


def test_layer_subset_batches_offsets_and_progress():
    model, tok = model_for("llama"), make_tokenizer()
    (full,) = capture_all(model, tok, TEXTS[:2])
    done = []
    texts = (t for t in TEXTS[:2] + TEXTS[:3])  # a generator: consumed lazily
    batches = capture_all(model, tok, texts, batch_size=2, layers=[0, -1, 2], progress=done.append)
    assert [b.offset for b in batches] == [0, 2, 4] and done == [2, 2, 1]
    first = batches[0]
    assert first.logits is None and first.attention is None
    assert [h is not None for h in first.hidden] == [True, False, True, False, True]
    for layer in (0, 2, 4):
        torch.testing.assert_close(first.tokens(layer), full.tokens(layer), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="block_1.*was not captured"):
        first.tokens(1)
    with pytest.raises(ValueError, match="not an index"):
        first.tokens(5)


def test_stream_feeds_every_consumer_every_batch():
    model, tok = model_for("llama"), make_tokenizer()
    counts, sums = [], []

    def count(batch: CaptureBatch):
        counts.append(batch.tokens(0).shape[0])

    def total(batch: CaptureBatch):
        sums.append(batch.tokens(-1).double().sum(0))

    n = stream(model, tok, TEXTS * 2, [count, total], batch_size=4)
    assert n == 6 and counts == [sum(map(n_words, TEXTS)) + n_words(TEXTS[0]),
                                 n_words(TEXTS[1]) + n_words(TEXTS[2])]
    (whole,) = capture_all(model, tok, TEXTS * 2, batch_size=6)
    # 70 float32 rows (|x| ~ 1) summed; batch shape 4 vs 6 changes BLAS blocking (~1e-6 a row)
    torch.testing.assert_close(sum(sums), whole.tokens(-1).double().sum(0), atol=1e-4, rtol=0)
    with pytest.raises(ValueError, match="consumers"):
        stream(model, tok, TEXTS, [])
    with pytest.raises(ValueError, match="consumers"):
        stream(model, tok, TEXTS, count)


@pytest.mark.parametrize("texts, kw, message", [
    ([], {}, "texts is empty"),
    ("the cat", {}, "iterable of strings"),
    (["the cat", 3], {}, "text 1 is a int"),
    (["the cat", "   "], {}, "text 1 has no tokens"),
    (["the cat"], {"batch_size": 0}, "batch_size must be a positive integer"),
    (["the cat"], {"max_length": -1}, "max_length must be a positive integer"),
    (["the cat"], {"layers": [7]}, "layers: 7 is not an index"),
    (["the cat"], {"layers": 2}, "layers must be a list"),
])
def test_bad_input(texts, kw, message):
    with pytest.raises(ValueError, match=message):
        capture_all(model_for("llama"), make_tokenizer(), texts, **kw)


def test_model_in_training_mode_is_refused():
    model = make_model("llama").train()
    with pytest.raises(ValueError, match="training mode"):
        capture_all(model, make_tokenizer(), ["the cat"])


def test_tokenizer_without_pad_token():
    tok = make_tokenizer()
    tok.pad_token = None
    with pytest.raises(ValueError, match="no pad token"):
        capture_all(model_for("llama"), tok, ["the cat"])


def test_max_length_beyond_the_context_is_clamped_with_a_warning(tiny_lm):
    from collapsekit.models.capture import iter_capture

    model, tok = tiny_lm
    long_text = " ".join(["the cat sees the dog ."] * 30)  # 180 tokens, context 64
    with pytest.warns(UserWarning, match="max_length=200 exceeds the model's 64-token"):
        batches = list(iter_capture(model, tok, [long_text], max_length=200))
    assert batches[0].hidden[0].shape[-2] <= 64
