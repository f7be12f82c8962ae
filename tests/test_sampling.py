"""Sampling loop: determinism, KV-cache correctness against full forward passes, truncation
sets, the resumable JSONL cache and input validation, on tiny random models."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from conftest import make_model, make_tokenizer

from collapsekit.models.decoding import (Decoding, _draw, _draw_sorted, stop_ids,
                                         truncate_logits)
from collapsekit.models.sample_cache import Sample, sample_key
from collapsekit.models.sampling import Job, sample, sample_jobs

PROMPTS = ["the cat runs", "a dog sees the moon", "king and queen"]
STOP = 3  # conftest eos id


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest


@pytest.fixture(scope="module")
def tok():
    return make_tokenizer()


@pytest.fixture(scope="module")
def models():
    return {a: make_model(a) for a in ("llama", "gemma3", "gpt2")}


def count_calls(model):
    """Forward-call counter; also records the input_ids of each prefill (length > 1)."""
    log = {"calls": 0, "prefills": []}

    def hook(module, args, kwargs):
        log["calls"] += 1
        ids = kwargs.get("input_ids", args[0] if args else None)
        if ids.shape[1] > 1:
            log["prefills"].append(ids[0].tolist())

    return log, model.register_forward_pre_hook(hook, with_kwargs=True)


def prompt_ids(tok, text, chat=True):
    if chat:
        return tok.apply_chat_template([{"role": "user", "content": text}],
                                       add_generation_prompt=True, tokenize=True,
                                       return_dict=False)
    return tok(text)["input_ids"]


def full_logits(model, ids):
    """float64 logits of every position from one forward pass without a KV cache."""
    with torch.no_grad():
        out = model(input_ids=torch.tensor([ids]), use_cache=False)
    return out.logits[0].double()


# ---- settings, keys, records -------------------------------------------------------------

def test_decoding_key_is_canonical_json():
    assert Decoding(temperature=1, top_p=1).key() == Decoding().key()
    assert Decoding().key() == ('{"chat":true,"max_new_tokens":64,"temperature":1.0,'
                                '"top_k":0,"top_p":1.0}')
    assert Decoding(top_k=5).key() != Decoding().key()


def test_sample_key_is_sha256_of_content():
    d = Decoding(temperature=0.5)
    blob = json.dumps(["m", "hi", d.key(), 7, 2])
    assert sample_key("m", "hi", d, 7, 2) == hashlib.sha256(blob.encode()).hexdigest()
    assert sample_key("m", "hi", d, 7, 3) != sample_key("m", "hi", d, 7, 2)


def test_sample_roundtrip_and_bad_record():
    s = Sample(key="k", prompt_id="p", prompt="x", sample_index=0, text="a", token_ids=[5, 3],
               token_logprobs=[-1.0, -2.0], sampling_logprobs=[-0.5, -0.1],
               finish_reason="eos", decoding=Decoding().__dict__, seed=0, model_key="m")
    assert Sample.from_dict(json.loads(json.dumps(s.to_dict()))) == s
    d = s.to_dict()
    del d["text"]
    with pytest.raises(ValueError, match="missing fields"):
        Sample.from_dict(d)
    with pytest.raises(ValueError, match="finish_reason"):
        Sample.from_dict({**s.to_dict(), "finish_reason": "stop"})
    with pytest.raises(ValueError, match="length"):
        Sample.from_dict({**s.to_dict(), "token_logprobs": [-1.0]})


# ---- truncation and the draw -------------------------------------------------------------

P = torch.tensor([0.4, 0.1, 0.3, 0.15, 0.05], dtype=torch.float64)


def kept(logits):
    return set(torch.nonzero(torch.isfinite(logits)).flatten().tolist())


@pytest.mark.parametrize("top_k, top_p, expected", [
    (0, 1.0, {0, 1, 2, 3, 4}),
    (1, 1.0, {0}),
    (2, 1.0, {0, 2}),
    (5, 1.0, {0, 1, 2, 3, 4}),
    (9, 1.0, {0, 1, 2, 3, 4}),
    (0, 0.1, {0}),          # at least one token survives
    (0, 0.4, {0}),          # 0.4 alone reaches p
    (0, 0.65, {0, 2}),      # 0.4 + 0.3 = 0.7 >= 0.65
    (0, 0.75, {0, 2, 3}),   # 0.7 < 0.75 <= 0.85
    (0, 0.8, {0, 2, 3}),
    (0, 0.99, {0, 1, 2, 3, 4}),
    (3, 0.8, {0, 2}),       # renormalised over {0,2,3}: 0.4/0.85 + 0.3/0.85 = 0.82 >= 0.8
])
def test_truncation_keeps_expected_set(top_k, top_p, expected):
    assert kept(truncate_logits(P.log(), top_k, top_p)) == expected


def test_truncation_rows_ties_and_masked_tokens():
    logits = torch.tensor([[1.0, 2.0, 2.0, 0.0], [0.0, -math.inf, 3.0, 1.0]])
    out = truncate_logits(logits, top_k=1)
    assert kept(out[0]) == {1, 2}           # ties with the k-th logit are kept
    assert kept(out[1]) == {2}
    assert torch.equal(out[0, 1:3], logits[0, 1:3])   # kept logits are untouched
    # equal halves: the nucleus for p=0.5 is one token, the lower id (stable order)
    assert kept(truncate_logits(torch.zeros(1, 2), top_p=0.5)) == {0}
    assert kept(truncate_logits(logits[1:], top_p=0.99)) == {0, 2, 3}


def test_draw_is_inverse_cdf():
    probs = torch.tensor([0.25, 0.5, 0.25, 0.0], dtype=torch.float64)
    logits = probs.log().expand(4, 4)
    u = torch.tensor([0.1, 0.49, 0.6, 0.99], dtype=torch.float64)
    # descending order (stable): token 1 covers [0, .5), token 0 [.5, .75), token 2 [.75, 1)
    assert _draw(logits, u).tolist() == [1, 1, 0, 2]
    n = 1000
    grid = (torch.arange(n, dtype=torch.float64) + 0.5) / n
    counts = torch.bincount(_draw(probs.log().expand(n, 4), grid), minlength=4)
    assert counts.tolist() == [250, 500, 250, 0]
    # u just below 1 never lands on a zero-probability token
    edge = torch.tensor([1 - 2 ** -53], dtype=torch.float64)
    assert _draw(torch.tensor([[0.0, 0.0, -math.inf]], dtype=torch.float64), edge).item() == 1


def test_fast_draw_is_the_stable_sort_draw_bit_for_bit():
    """The CPU draw (value sort + rank among ties) picks the token of the reference stable
    torch.sort draw on every row: random, heavily tied, truncated (-inf) and edge uniforms."""
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        v = (5, 50, 1000, 49152)[trial % 4]
        x = torch.randn(8, v, generator=g, dtype=torch.float64) * (1 + trial % 6)
        if trial % 3 == 0:
            x = x.round()                  # many exactly equal probabilities
        if trial % 5 == 0:
            x[:, ::3] = -math.inf          # truncated tokens
        u = torch.rand(8, generator=g, dtype=torch.float64)
        u[0] = 1 - 2 ** -53
        assert torch.equal(_draw(x, u), _draw_sorted(x, u)), trial



def test_draw_top_rows_and_whole_sorts_agree_with_the_stable_sort_draw():
    """Rows whose crossing lies among the TOP largest probabilities (peaked, with a run of
    tied values straddling the TOP boundary) and rows that need the whole sort (flat) both
    give the reference token; the rows are chosen so that each path is taken."""
    from collapsekit.models import decoding

    v, top = 49152, decoding.TOP
    g = torch.Generator().manual_seed(1)
    peaked = torch.full((v,), -30.0, dtype=torch.float64)
    peaked[:5] = torch.tensor([2.0, 1.0, 1.0, 0.5, 0.0], dtype=torch.float64)
    peaked[100:100 + top + 500] = -3.0        # ties across position TOP of the sorted row
    flat = torch.randn(v, generator=g, dtype=torch.float64) * 0.1
    u = torch.tensor([0.0, 0.3, 0.62, 0.999, 1 - 2 ** -53, 0.5], dtype=torch.float64)
    for row in (peaked, flat):
        x = row.expand(len(u), v)
        assert torch.equal(_draw(x, u), _draw_sorted(x, u))
    cdf = np.cumsum(np.sort(torch.softmax(peaked, -1).numpy())[::-1])
    assert cdf[4] < 0.3 and 0.62 < cdf[top - 1] < 0.999  # 0.3, 0.62: in the ties, in TOP;
    #                                                       0.999: past TOP (whole sort)
    assert np.sort(torch.softmax(flat, -1).numpy())[::-1][:top].sum() < 0.1  # whole sort


# ---- the decoding loop against full forward passes ---------------------------------------

@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_greedy_matches_full_forward_argmax(models, tok, arch):
    model = models[arch]
    out = sample(model, tok, PROMPTS[:2], k=2, decoding=Decoding(temperature=0, max_new_tokens=12),
                 model_key=arch)
    for s in out:
        ids = prompt_ids(tok, s.prompt)
        ref, ref_lp = [], []
        for _ in range(12):
            logp = torch.log_softmax(full_logits(model, ids + ref)[-1], -1)
            ref.append(int(logp.argmax()))
            ref_lp.append(float(logp[ref[-1]]))
            if ref[-1] == STOP:
                break
        assert s.token_ids == ref
        np.testing.assert_allclose(s.token_logprobs, ref_lp, atol=1e-5, rtol=0)
        assert s.sampling_logprobs == [0.0] * len(ref)
        assert s.finish_reason == ("eos" if ref[-1] == STOP else "length")
    assert out[0].token_ids == out[1].token_ids


def sampling_probs(z, top_k, top_p):
    """Independent numpy reference: the distribution after top-k then top-p on logits z."""
    z = np.asarray(z, dtype=np.float64)
    keep = np.ones_like(z, dtype=bool)
    if top_k:
        keep &= z >= np.sort(z)[::-1][top_k - 1]
    p = np.where(keep, np.exp(z - z.max()), 0.0)
    p /= p.sum()
    order = np.argsort(-p, kind="stable")
    before = np.concatenate([[0.0], np.cumsum(p[order])[:-1]])
    nucleus = np.zeros_like(keep)
    nucleus[order[before < top_p]] = True
    q = np.where(nucleus, p, 0.0)
    return q / q.sum()


@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_sampled_logprobs_match_full_forward(models, tok, arch):
    model = models[arch]
    dec = Decoding(temperature=0.8, top_k=20, top_p=0.9, max_new_tokens=14)
    out = sample(model, tok, PROMPTS[:2], k=3, decoding=dec, seed=1, model_key=arch)
    assert len(out) == 6
    for s in out:
        ids = prompt_ids(tok, s.prompt)
        logits = full_logits(model, ids + s.token_ids)[len(ids) - 1:-1]
        lp = torch.log_softmax(logits, -1).gather(-1, torch.tensor(s.token_ids)[:, None])
        np.testing.assert_allclose(s.token_logprobs, lp.flatten().tolist(), atol=1e-5, rtol=0)
        ref = [math.log(sampling_probs(z.numpy() / 0.8, 20, 0.9)[t])
               for z, t in zip(logits, s.token_ids)]
        np.testing.assert_allclose(s.sampling_logprobs, ref, atol=1e-5, rtol=0)
        assert all(a >= b - 1e-9 for a, b in zip(s.sampling_logprobs, s.token_logprobs))
        assert s.finish_reason == ("eos" if s.token_ids[-1] == STOP else "length")
        assert STOP not in s.token_ids[:-1]


def test_first_token_frequencies_follow_the_sampling_distribution(models, tok):
    from scipy.stats import chisquare
    model, n = make_model("llama"), 4000
    with torch.no_grad():
        model.lm_head.weight.mul_(20)     # peaked logits: temperature, top-k and top-p all bite
    dec = Decoding(temperature=0.7, top_k=10, top_p=0.95, max_new_tokens=1)
    out = sample(model, tok, PROMPTS[:1], k=n, decoding=dec, model_key="m")
    z = full_logits(model, prompt_ids(tok, PROMPTS[0]))[-1].numpy() / 0.7
    p = sampling_probs(z, 10, 0.95)
    support = p > 0
    assert 1 < support.sum() < 10         # the nucleus is smaller than the top-k set
    counts = np.bincount([s.token_ids[0] for s in out], minlength=len(z))
    assert counts[~support].sum() == 0
    assert chisquare(counts[support], n * p[support]).pvalue > 1e-3


def test_top_k_one_equals_greedy(models, tok):
    model = models["llama"]
    g = sample(model, tok, PROMPTS, k=1, decoding=Decoding(temperature=0, max_new_tokens=10),
               model_key="m")
    s = sample(model, tok, PROMPTS, k=2, decoding=Decoding(top_k=1, max_new_tokens=10),
               model_key="m", seed=5)
    for i, gi in enumerate(g):
        for si in s[2 * i:2 * i + 2]:
            assert si.token_ids == gi.token_ids
            assert si.sampling_logprobs == [0.0] * len(gi.token_ids)
            # k=2 rows vs k=1: another batch shape, float32 logits may differ in ulps
            np.testing.assert_allclose(si.token_logprobs, gi.token_logprobs, atol=1e-5, rtol=0)


def test_stop_tokens_and_text(models, tok):
    model = make_model("llama")
    dec = Decoding(temperature=0, max_new_tokens=10)
    free = sample(model, tok, PROMPTS[:1], k=1, decoding=dec, model_key="m")[0]
    ids = free.token_ids
    stop_at = next(i for i in range(1, len(ids)) if ids[i] not in ids[:i])
    model.generation_config.eos_token_id = [STOP, ids[stop_at]]
    model.train()
    s = sample(model, tok, PROMPTS[:1], k=1, decoding=dec, model_key="m")[0]
    assert model.training                 # sampled in eval mode, then restored
    assert s.finish_reason == "eos"
    assert s.token_ids == ids[:stop_at + 1]
    assert s.text == tok.decode(ids[:stop_at], skip_special_tokens=True)
    assert free.text == tok.decode(ids, skip_special_tokens=True)


def test_chat_end_of_turn_tokens_stop():
    t = make_tokenizer()
    t.add_special_tokens({"additional_special_tokens": ["<|im_end|>"]})
    eot = t.convert_tokens_to_ids("<|im_end|>")
    model = make_model("llama", vocab_size=len(t))
    assert eot in stop_ids(model, t, chat=True)
    assert stop_ids(model, t, chat=False) == [STOP]


# ---- determinism -------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_determinism_seed_batch_and_other_prompts(models, tok, arch):
    """a: all prompts left-padded into one forward-pass group; b: groups of 3 rows, mostly
    one prompt each; c: other prompts in the call. Same draws, same tokens."""
    model = models[arch]
    dec = Decoding(max_new_tokens=8)
    a = sample(model, tok, PROMPTS, k=4, decoding=dec, seed=3, model_key="m")
    b = sample(model, tok, PROMPTS, k=4, decoding=dec, seed=3, model_key="m", batch_size=3)
    c = sample(model, tok, PROMPTS[2:], k=2, decoding=dec, seed=3, model_key="m")
    d = sample(model, tok, PROMPTS, k=4, decoding=dec, seed=4, model_key="m")
    assert [s.token_ids for s in a] == [s.token_ids for s in b]     # logits may differ in ulps
    np.testing.assert_allclose(np.concatenate([s.token_logprobs for s in a]),
                               np.concatenate([s.token_logprobs for s in b]), atol=1e-5, rtol=0)
    assert [s.token_ids for s in c] == [s.token_ids for s in a[8:10]]
    assert [s.token_ids for s in a] != [s.token_ids for s in d]
    assert len({tuple(s.token_ids) for s in a[:4]}) > 1        # the k rows differ
    order = [(s.prompt_id, s.sample_index) for s in a]
    assert order == [(i, j) for i in range(3) for j in range(4)]


def test_ids_duplicates_and_progress(models, tok):
    model = models["llama"]
    dec = Decoding(max_new_tokens=5)
    log, h = count_calls(model)
    ticks = []
    out = sample(model, tok, [("a", "the cat"), (7, "the cat"), ("b", "a dog")], k=2,
                 decoding=dec, model_key="m", progress=ticks.append)
    h.remove()
    assert [s.prompt_id for s in out] == ["a", "a", 7, 7, "b", "b"]
    assert out[0].token_ids == out[2].token_ids and out[0].key == out[2].key
    assert len(log["prefills"]) == 1       # all 6 rows fit one forward-pass group
    assert sum(ticks) == 3
    log, h = count_calls(model)
    sample(model, tok, [("a", "the cat"), (7, "the cat"), ("b", "a dog")], k=2,
           decoding=dec, model_key="m", batch_size=2)
    h.remove()
    assert len(log["prefills"]) == 2       # one group per prompt; prompt 7 reuses "a"


def test_chat_false_encodes_plain_text(models, tok):
    model = models["llama"]
    log, h = count_calls(model)
    sample(model, tok, ["the cat"], k=1, decoding=Decoding(chat=False, max_new_tokens=2),
           model_key="m")
    sample(model, tok, ["the cat"], k=1, decoding=Decoding(max_new_tokens=2), model_key="m")
    h.remove()
    assert log["prefills"][0] == tok("the cat")["input_ids"]
    assert log["prefills"][1] == prompt_ids(tok, "the cat")


def test_long_prompt_is_cut_from_the_left(models, tok):
    model = models["gpt2"]          # 64 positions
    words = ("the cat sees a dog and " * 20).split()[:100]
    log, h = count_calls(model)
    with pytest.warns(UserWarning, match="cut from the left"):
        out = sample(model, tok, [" ".join(words)], k=2,
                     decoding=Decoding(chat=False, max_new_tokens=8), model_key="m")
    h.remove()
    assert log["prefills"] == [tok(" ".join(words[-56:]))["input_ids"]]
    assert all(len(s.token_ids) <= 8 for s in out)


# ---- the resume cache --------------------------------------------------------------------

def test_cache_resume(models, tok, tmp_path):
    model = models["gemma3"]
    dec = Decoding(temperature=0.9, max_new_tokens=6)
    # batch_size=k: one forward-pass group per prompt, so a resume recomputes only the
    # prompts with missing samples (groups are fixed, whatever is cached)
    kw = dict(k=3, decoding=dec, seed=11, model_key="m", batch_size=3)
    path = tmp_path / "sub" / "samples.jsonl"
    full = [s.to_dict() for s in sample(model, tok, PROMPTS, **kw)]

    log, h = count_calls(model)
    first = sample(model, tok, PROMPTS, cache=path, **kw)
    assert [s.to_dict() for s in first] == full and log["calls"] > 0
    lines = path.read_bytes().splitlines(keepends=True)
    assert len(lines) == 9

    log["calls"] = 0
    ticks = []
    again = sample(model, tok, PROMPTS, cache=path, progress=ticks.append, **kw)
    assert log["calls"] == 0 and ticks == [3]
    assert [s.to_dict() for s in again] == full

    # interruption: prompt 2 never written, prompt 1 lost its last sample mid-line
    path.write_bytes(b"".join(lines[:5]) + lines[5][:40])
    log["prefills"].clear()
    with pytest.warns(UserWarning, match="truncated last line"):
        resumed = sample(model, tok, PROMPTS, cache=path, **kw)
    h.remove()
    assert log["prefills"] == [prompt_ids(tok, PROMPTS[1]), prompt_ids(tok, PROMPTS[2])]
    assert [s.to_dict() for s in resumed] == full
    data = path.read_bytes()
    assert data.endswith(b"\n")
    assert sorted(json.loads(x)["key"] for x in data.splitlines()) == sorted(s["key"] for s in full)


def test_cache_only_a_partial_line(models, tok, tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes(b'{"key": "abc", "pro')
    with pytest.warns(UserWarning, match="truncated"):
        out = sample(models["llama"], tok, PROMPTS[:1], k=1, decoding=Decoding(max_new_tokens=3),
                     model_key="m", cache=path)
    assert [json.loads(x) for x in path.read_bytes().splitlines()] == [out[0].to_dict()]


def test_cache_malformed_middle_line(models, tok, tmp_path):
    path = tmp_path / "c.jsonl"
    kw = dict(k=2, decoding=Decoding(max_new_tokens=3), model_key="m", cache=path)
    sample(models["llama"], tok, PROMPTS[:2], **kw)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:1] + ["{not json\n"] + lines[2:]))
    with pytest.raises(ValueError, match=r"c\.jsonl, line 2 is malformed"):
        sample(models["llama"], tok, PROMPTS[:2], **kw)
    edited = json.loads(lines[1])
    edited["seed"] = 99                   # content no longer matches its key
    path.write_text("".join(lines[:2] + [json.dumps(edited) + "\n"] + lines[3:]))
    with pytest.raises(ValueError, match="line 3 .*key does not match"):
        sample(models["llama"], tok, PROMPTS[:2], **kw)
    path.write_text("".join(lines[:3] + ['{"key": 1}\n']))
    with pytest.raises(ValueError, match="line 4 .*missing fields"):
        sample(models["llama"], tok, PROMPTS[:2], **kw)


def test_cache_path_is_a_directory(models, tok, tmp_path):
    with pytest.raises(ValueError, match="not a file"):
        sample(models["llama"], tok, PROMPTS[:1], k=1, model_key="m", cache=tmp_path)


# ---- validation --------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(temperature=-0.1), "temperature"),
    (dict(temperature=float("nan")), "temperature"),
    (dict(temperature=float("inf")), "temperature"),
    (dict(top_p=0.0), "top_p"),
    (dict(top_p=1.5), "top_p"),
    (dict(top_p=float("nan")), "top_p"),
    (dict(top_k=-1), "top_k"),
    (dict(top_k=2.5), "top_k"),
    (dict(max_new_tokens=0), "max_new_tokens"),
    (dict(chat="yes"), "chat"),
])
def test_bad_decoding(kwargs, match):
    with pytest.raises(ValueError, match=match):
        Decoding(**kwargs)


@pytest.mark.parametrize("prompts, kwargs, match", [
    ([], {}, "empty"),
    ("the cat", {}, "wrap a single prompt"),
    (["the cat", ""], {}, "prompt 1 .*empty"),
    ([("a", "x"), ("a", "y")], {}, "not unique"),
    ([("a", "x", 1)], {}, "prompt 0"),
    ([(1.5, "x")], {}, "id"),
    (["x"], dict(k=0), "k=0"),
    (["x"], dict(model_key=""), "model_key"),
    (["x"], dict(seed=1.5), "seed"),
    (["x"], dict(batch_size=0), "batch_size"),
    (["x"], dict(decoding={"temperature": 0}), "Decoding"),
    (["x"], dict(decoding=Decoding(max_new_tokens=64)), "leaves no room"),
])
def test_bad_sample_input(models, tok, prompts, kwargs, match):
    kw = {"model_key": "m", **kwargs}
    with pytest.raises(ValueError, match=match):
        sample(models["llama"], tok, prompts, **kw)


def test_prompt_encoding_to_nothing(models, tok):
    with pytest.raises(ValueError, match="zero tokens"):
        sample(models["llama"], tok, ["   "], k=1, decoding=Decoding(chat=False, max_new_tokens=4),
               model_key="m")


# ---- the preallocated KV cache -------------------------------------------------------------

@pytest.mark.parametrize("arch", ["llama", "gemma3", "gpt2"])
def test_preallocated_cache_gives_the_concatenating_cache_tokens_bit_for_bit(
        models, tok, arch, monkeypatch):
    """Samples (tokens and log-probs) with the in-place cache equal those with transformers'
    concatenating DynamicLayer; sliding-window layers keep their own class."""
    from collapsekit.models import kvcache

    def run():
        out = sample(models[arch], tok, PROMPTS, k=3, seed=5, model_key="m",
                     decoding=Decoding(max_new_tokens=20))
        return [(s.token_ids, s.token_logprobs) for s in out]

    swapped = []
    real = kvcache.preallocate
    monkeypatch.setattr(kvcache, "preallocate",
                        lambda c, n: swapped.append(real(c, n)) or swapped[-1])
    fast = run()
    layers = [type(x).__name__ for x in getattr(swapped[0], "layers", [])]
    if arch == "gemma3":  # 3 blocks, all sliding-window (every 6th is global): untouched
        assert set(layers) == {"DynamicSlidingWindowLayer"}
    else:
        assert set(layers) == {"PreallocatedLayer"}
    monkeypatch.setattr(kvcache, "preallocate", lambda c, n: c)
    assert run() == fast


def test_preallocated_layer_writes_in_place_and_concatenates_past_its_buffer():
    from transformers.cache_utils import DynamicLayer

    from collapsekit.models.kvcache import PreallocatedLayer

    k = torch.arange(2 * 1 * 3 * 2, dtype=torch.float32).reshape(2, 1, 3, 2)
    plain = DynamicLayer()
    plain.update(k, -k)
    layer = PreallocatedLayer(plain, capacity=4)
    step = torch.full((2, 1, 1, 2), 9.0)
    keys, values = layer.update(step, -step)
    assert keys.data_ptr() == layer._k.data_ptr()  # a view of the buffer, no copy
    assert torch.equal(keys, torch.cat([k, step], dim=-2))
    assert torch.equal(values, -torch.cat([k, step], dim=-2))
    keys, _ = layer.update(step, -step)  # past the 4 positions: concatenated
    assert keys.shape[-2] == 5 and torch.equal(keys[..., 4:, :], step)
    layer = PreallocatedLayer(plain, capacity=8)
    layer.reorder_cache(torch.tensor([1, 0]))  # new tensors: the buffer no longer holds them
    keys, _ = layer.update(step, -step)
    assert torch.equal(keys, torch.cat([k[[1, 0]], step], dim=-2))


# ---- several jobs in shared forward passes -------------------------------------------------

def test_sample_jobs_equal_separate_calls_and_keep_their_own_caches(models, tok, tmp_path):
    """A greedy and a sampled job in one call give the samples of two sample() calls (same
    keys, tokens; log-probs to float32 round-off: the batch differs), each job's cache holds
    its own samples only, and a rerun reads them back without calling the model."""
    model = models["llama"]
    hot = Decoding(temperature=0.8, max_new_tokens=8)
    cold = Decoding(temperature=0.0, max_new_tokens=8)
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    jobs = [Job(PROMPTS, 3, hot, 4, a), Job(PROMPTS[:2], 1, cold, 7, b)]
    together = sample_jobs(model, tok, jobs, model_key="m")
    apart = [sample(model, tok, PROMPTS, k=3, decoding=hot, seed=4, model_key="m"),
             sample(model, tok, PROMPTS[:2], k=1, decoding=cold, seed=7, model_key="m")]
    for got, want in zip(together, apart):
        assert [(s.key, s.prompt_id, s.token_ids, s.decoding, s.seed) for s in got] == \
            [(s.key, s.prompt_id, s.token_ids, s.decoding, s.seed) for s in want]
        for x, y in zip(got, want):
            np.testing.assert_allclose(x.token_logprobs, y.token_logprobs, atol=1e-5)
    assert sorted(json.loads(x)["key"] for x in a.read_text().splitlines()) == \
        sorted(s.key for s in together[0])
    assert sorted(json.loads(x)["key"] for x in b.read_text().splitlines()) == \
        sorted(s.key for s in together[1])
    log, h = count_calls(model)
    again = sample_jobs(model, tok, jobs, model_key="m")
    h.remove()
    assert log["calls"] == 0 and again == together


def test_sample_jobs_rejects_mixed_lengths_and_bad_jobs(models, tok):
    model = models["llama"]
    with pytest.raises(ValueError, match="share max_new_tokens and chat"):
        sample_jobs(model, tok, [Job(PROMPTS, 1, Decoding(max_new_tokens=4)),
                                 Job(PROMPTS, 1, Decoding(max_new_tokens=5))], model_key="m")
    for bad in ([], Job(PROMPTS), [PROMPTS]):
        with pytest.raises(ValueError, match="non-empty list of Job"):
            sample_jobs(model, tok, bad, model_key="m")
    with pytest.raises(ValueError, match="Decoding"):
        sample_jobs(model, tok, [Job(PROMPTS, 1, "greedy")], model_key="m")
