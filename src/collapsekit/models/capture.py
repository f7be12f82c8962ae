"""Activation capture through forward hooks.

``iter_capture`` runs a causal LM over texts batch by batch and returns, for each batch, the
residual stream at L+2 capture points — embedding output (HF's ``hidden_states[0]``), the
output of each of the L blocks, and the final-norm output (HF's ``hidden_states[-1]``) —
plus optional logits and per-layer *reduced* attention statistics. Only real (non-pad)
tokens matter downstream: ``CaptureBatch.tokens(l)`` returns them. Hooks live for one
forward call and are removed in a ``finally``, so an abandoned or failing iteration never
leaves a model hooked.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import torch

from .longcontext import context_length

# (embedding output, blocks, final norm) attribute names on the decoder module.
_LAYOUTS = (
    ("embed_tokens", "layers", "norm"),  # llama, mistral, qwen2, gemma 1-3 (gemma: √d inside)
    ("drop", "h", "ln_f"),  # gpt2 / gpt-neo / gpt-j: hidden_states[0] is dropout(wte + wpe)
)
# Where the decoder sits inside the model ("" = the model itself is the decoder).
_DECODER_PATHS = ("model.language_model", "model", "transformer", "language_model", "")
_ATTENTION_NAMES = ("self_attn", "attn", "self_attention", "attention")


@dataclass
class CaptureBatch:
    """One batch of captured activations (tensors stay on the model's device).

    ``hidden[l]`` is (B, T, D) float32 for each captured l, ``None`` for layers left out by
    ``layers=``; ``layer_names[l]`` is "embed", "block_1".."block_L" or "final_norm".
    ``attention[l]`` (l = 1..L, the attention inside ``block_l``) is the reducer's value.
    ``offset`` is the index of the batch's first text in the input sequence.
    """

    input_ids: torch.Tensor
    mask: torch.Tensor
    hidden: list[torch.Tensor | None]
    logits: torch.Tensor | None
    attention: dict[int, Any] | None
    layer_names: list[str]
    offset: int = 0

    def tokens(self, layer: int) -> torch.Tensor:
        """(n_real_tokens, D): ``hidden[layer][mask]``, rows in (text, position) order."""
        n = len(self.hidden)
        if not _is_int(layer) or not -n <= layer < n:
            raise ValueError(f"layer {layer!r} is not an index in [-{n}, {n}): use 0..{n - 1}")
        h = self.hidden[layer]
        if h is None:
            raise ValueError(f"layer {layer} ({self.layer_names[layer]}) was not captured: "
                             "include it in layers=")
        return h[self.mask]


def next_token_pairs(batch: CaptureBatch, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (n, D), labels (n,)) of ``batch`` at capture point ``layer``: the state at
    each position whose next position is a real token too, labelled with that next token
    (either padding side)."""
    valid = batch.mask[:, :-1] & batch.mask[:, 1:]
    return batch.hidden[layer][:, :-1][valid], batch.input_ids[:, 1:][valid]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def find_layers(model: torch.nn.Module) -> tuple[torch.nn.Module, list, torch.nn.Module]:
    """(embedding-output module, decoder blocks, final norm) of a llama- or gpt2-style LM.

    The embedding module is the one whose output HF reports as ``hidden_states[0]``:
    ``embed_tokens`` (gemma's scales by √d itself) or gpt2's ``drop`` after wte + wpe.
    """
    for path in _DECODER_PATHS:
        dec = model
        for part in filter(None, path.split(".")):
            dec = getattr(dec, part, None)
        if not isinstance(dec, torch.nn.Module):
            continue
        for emb_name, blocks_name, norm_name in _LAYOUTS:
            emb, blocks, norm = (getattr(dec, a, None) for a in (emb_name, blocks_name, norm_name))
            if (isinstance(blocks, torch.nn.ModuleList) and len(blocks) > 0
                    and isinstance(emb, torch.nn.Module) and isinstance(norm, torch.nn.Module)):
                return emb, list(blocks), norm
    raise ValueError(
        f"unsupported architecture {type(model).__name__}: capture handles llama-style decoders "
        "(model.embed_tokens / model.layers / model.norm) and gpt2-style ones "
        "(transformer.drop / transformer.h / transformer.ln_f); pass a causal LM of one of these")


def _attention_module(block: torch.nn.Module, number: int) -> torch.nn.Module:
    for name in _ATTENTION_NAMES:
        mod = getattr(block, name, None)
        if isinstance(mod, torch.nn.Module):
            return mod
    raise ValueError(f"block {number} ({type(block).__name__}) has no self-attention submodule "
                     f"named one of {_ATTENTION_NAMES}: attention capture does not support it")


def _allowed_keys(attn_mask: Any, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, T) bool: query i and key j are real tokens and the model lets i attend to j.

    Read from the 4-D mask the model passed to its attention (so causal, padding and sliding
    windows all count); a plain causal mask when the model passed none.
    """
    b, t = mask.shape
    if isinstance(attn_mask, torch.Tensor) and attn_mask.dim() == 4:
        m = attn_mask[:, 0, -t:, -t:]
        ok = m if m.dtype == torch.bool else m > torch.finfo(m.dtype).min / 2
        ok = ok.expand(b, t, t)
    else:
        ok = torch.ones(t, t, dtype=torch.bool, device=mask.device).tril().expand(b, t, t)
    return ok & mask[:, :, None] & mask[:, None, :]


def attention_entropy_reducer(layer: int, probs: torch.Tensor, mask: torch.Tensor) -> dict:
    """Per-head sums for the mean attention entropy over valid query rows of one batch.

    H_i = −Σ_{j∈K_i} a_ij log a_ij (0·log 0 = 0), K_i = keys query i may attend to. Returns
    ``entropy_sum`` Σ_i H_i (H,), ``norm_entropy_sum`` Σ_{i:|K_i|≥2} H_i / log|K_i| (H,),
    ``rows`` (#valid query rows) and ``norm_rows`` (#rows with ≥2 keys), so that the mean
    per-head entropy over a corpus is Σ entropy_sum / Σ rows (Jha & Reagen 2025,
    "Entropy-Guided Attention for Private LLMs"; Zhai et al. 2023, attention entropy
    collapse). ``probs`` is (B, H, T, T), ``mask`` the (B, T, T) allowed-key mask.
    """
    if probs.dim() != 4 or mask.dim() != 3 or probs.shape[:1] + probs.shape[2:] != mask.shape:
        raise ValueError(f"probs must be (B, H, T, T) and mask (B, T, T), got "
                         f"{tuple(probs.shape)} and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}: pass mask.bool()")
    p = probs if probs.dtype in (torch.float32, torch.float64) else probs.float()
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"attention probabilities of layer {layer} contain NaN or inf: the "
                         "model overflowed; run it in float32")
    plogp = torch.where(mask[:, None], torch.special.xlogy(p, p), 0)
    ent = -plogp.sum(-1, dtype=torch.float64)  # (B, H, T)
    n_keys = mask.sum(-1)  # (B, T)
    rows, norm_rows = n_keys > 0, n_keys > 1
    inv_log = torch.where(norm_rows, 1.0 / torch.log(n_keys.clamp(min=2).double()), 0.0)
    return {
        "entropy_sum": (ent * rows[:, None]).sum((0, 2)).cpu().numpy(),
        "norm_entropy_sum": (ent * inv_log[:, None]).sum((0, 2)).cpu().numpy(),
        "rows": int(rows.sum()),
        "norm_rows": int(norm_rows.sum()),
    }


def _context_length(model, tokenizer) -> int:
    """The model's context, capped by the tokenizer's ``model_max_length`` when set."""
    ctx = context_length(model)
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml <= 10**7:  # HF uses ~1e30 for "unknown"
        ctx = min(ctx, tml) if ctx else tml
    if not ctx:
        raise ValueError("cannot tell the model's context length from its config or tokenizer: "
                         "pass max_length=")
    return int(ctx)


def _warn_truncated(index: int, n_tokens: int, max_length: int) -> None:
    warnings.warn(f"text {index} has {n_tokens} tokens and was truncated to {max_length}; "
                  "pass a larger max_length or shorter texts", stacklevel=4)


def _encode(tokenizer, texts: list, offset: int, max_length: int, on_truncate) -> tuple:
    """(input_ids, mask) padded on ``tokenizer.padding_side``; truncation is reported."""
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"text {offset + i} is a {type(t).__name__}, not a str: pass strings")
    ids = tokenizer(texts, verbose=False)["input_ids"]
    long = [i for i, seq in enumerate(ids) if len(seq) > max_length]
    for i in long:
        (on_truncate or _warn_truncated)(offset + i, len(ids[i]), max_length)
    if long:
        cut = tokenizer([texts[i] for i in long], truncation=True, max_length=max_length)
        for i, seq in zip(long, cut["input_ids"]):
            ids[i] = seq
    for i, seq in enumerate(ids):
        if len(seq) == 0:
            raise ValueError(f"text {offset + i} has no tokens: drop empty texts")
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.bool)
    left = tokenizer.padding_side == "left"
    for i, seq in enumerate(ids):
        cols = slice(width - len(seq), width) if left else slice(0, len(seq))
        input_ids[i, cols] = torch.tensor(seq, dtype=torch.long)
        mask[i, cols] = True
    return input_ids, mask


@contextmanager
def _eager_attention(model, needed: bool):
    """Temporarily switch to eager attention, the only kind that returns probabilities."""
    impl = getattr(model.config, "_attn_implementation", None)
    if not needed or impl in (None, "eager"):
        yield
        return
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation(impl)


@contextmanager
def _hooks(registrations):
    handles = []
    try:
        for module, fn, with_kwargs in registrations:
            handles.append(module.register_forward_hook(fn, with_kwargs=with_kwargs))
        yield
    finally:
        for h in handles:
            h.remove()


def _layer_set(layers, n: int) -> set[int]:
    if layers is None:
        return set(range(n))
    if isinstance(layers, (int, str)) or not isinstance(layers, Iterable):
        raise ValueError(f"layers must be a list of indices, got {layers!r}: e.g. layers=[0, -1]")
    out = set()
    for l in layers:
        if not _is_int(l) or not -n <= l < n:
            raise ValueError(f"layers: {l!r} is not an index in [-{n}, {n}) (embed, "
                             f"{n - 2} blocks, final_norm): fix the list")
        out.add(int(l) % n)
    return out


def _positive_int(value, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _hook_specs(points, wanted, attn_modules, reducer, mask, hidden, attention) -> list:
    """(module, hook, with_kwargs) triples that fill ``hidden`` and ``attention`` in place."""

    def keep(index):
        def hook(module, args, output):
            out = output[0] if isinstance(output, (tuple, list)) else output
            hidden[index] = out.to(torch.float32)
        return hook

    def reduce(number):
        def hook(module, args, kwargs, output):
            probs = output[1] if isinstance(output, (tuple, list)) and len(output) > 1 else None
            if not isinstance(probs, torch.Tensor):
                raise ValueError(f"block {number}'s attention returned no probabilities: load "
                                 "the model with attn_implementation='eager'")
            allowed = _allowed_keys(kwargs.get("attention_mask"), mask)
            attention[number] = reducer(number, probs, allowed)
        return hook

    specs = [(points[i], keep(i), False) for i in sorted(wanted)]
    return specs + [(m, reduce(i), True) for i, m in enumerate(attn_modules, 1)]


def iter_capture(model, tokenizer, texts: Iterable[str], *, batch_size: int = 8,
                 max_length: int | None = None, layers: Iterable[int] | None = None,
                 logits: bool = False, attention_reducer: Callable | None = None,
                 device=None, progress: Callable[[int], Any] | None = None,
                 on_truncate: Callable[[int, int, int], Any] | None = None,
                 ) -> Iterator[CaptureBatch]:
    """Yield a ``CaptureBatch`` per ``batch_size`` texts (any iterable, consumed lazily).

    ``max_length``: truncation length (default: the model's context, capped by a sane
    ``tokenizer.model_max_length``); each truncated text is reported through
    ``on_truncate(index, n_tokens, max_length)`` or a warning. ``layers``: indices into the
    L+2 capture points to keep (default all). ``attention_reducer(l, probs, mask)`` runs
    inside block l's attention hook with probs (B, H, T, T) and the (B, T, T) bool mask of
    keys each real query may attend to; eager attention is switched on for the call.
    ``device``: where inputs go (default: the input embedding's device). ``progress(n)`` is
    called with the number of texts after each batch. Position ids count real tokens only,
    so a text's activations do not depend on the padding around it.
    """
    embed, blocks, norm = find_layers(model)
    n = len(blocks) + 2
    names = ["embed", *(f"block_{i}" for i in range(1, n - 1)), "final_norm"]
    wanted = _layer_set(layers, n)
    batch_size = _positive_int(batch_size, "batch_size")
    if max_length is None:
        max_length = _context_length(model, tokenizer)
    max_length = _positive_int(max_length, "max_length")
    ctx = context_length(model)
    if ctx and max_length > ctx:  # past its positions a model is out of distribution
        warnings.warn(f"max_length={max_length} exceeds the model's {ctx}-token context: "
                      f"texts are cut to {ctx} tokens", stacklevel=2)
        max_length = ctx
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise ValueError("texts must be an iterable of strings (a list, not a single str)")
    if model.training:
        raise ValueError("the model is in training mode (dropout on): call model.eval() first")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token: "
                         "set tokenizer.pad_token = tokenizer.eos_token")
    if device is None:
        device = model.get_input_embeddings().weight.device
    attn_modules = []
    if attention_reducer is not None:
        attn_modules = [_attention_module(b, i) for i, b in enumerate(blocks, 1)]
    forward = model if logits else model.base_model
    source, offset = iter(texts), 0
    while chunk := list(islice(source, batch_size)):
        input_ids, mask = _encode(tokenizer, chunk, offset, max_length, on_truncate)
        input_ids, mask = input_ids.to(device), mask.to(device)
        hidden: list[torch.Tensor | None] = [None] * n
        attention = {} if attention_reducer is not None else None
        specs = _hook_specs([embed, *blocks, norm], wanted, attn_modules, attention_reducer,
                            mask, hidden, attention)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with (_eager_attention(model, attention_reducer is not None), _hooks(specs),
              torch.inference_mode()):
            out = forward(input_ids=input_ids, attention_mask=mask.long(),
                          position_ids=positions, use_cache=False)
        out_logits = out.logits.to(torch.float32) if logits else None
        yield CaptureBatch(input_ids, mask, hidden, out_logits, attention, names, offset)
        offset += len(chunk)
        if progress is not None:
            progress(len(chunk))
    if offset == 0:
        raise ValueError("texts is empty: pass at least one string")


def stream(model, tokenizer, texts: Iterable[str],
           consumers: list[Callable[[CaptureBatch], Any]], **kw) -> int:
    """Feed every ``iter_capture`` batch to each consumer in turn; returns the number of texts.

    Consumers (e.g. per-layer accumulators updated with ``batch.tokens(l)``) see each batch
    once, so a corpus of any size streams through in bounded memory.
    """
    if callable(consumers) or not consumers or not all(callable(c) for c in consumers):
        raise ValueError("consumers must be a non-empty list of callables taking a CaptureBatch")
    total = 0
    for batch in iter_capture(model, tokenizer, texts, **kw):
        for consume in consumers:
            consume(batch)
        total += batch.input_ids.shape[0]
    return total
