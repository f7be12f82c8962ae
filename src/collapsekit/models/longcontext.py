"""Long prompts through a causal LM in chunks (chunked prefill through the KV cache).

A prompt of T tokens is fed ``chunk`` tokens at a time; each chunk attends to the cached
keys/values of the chunks before it, so the logits equal those of one plain forward while
activation memory is O(chunk · T) for the attention scores and O(chunk) for everything
else (the KV cache itself is O(T)). Batch size 1: no padding, positions are 0..T-1.
"""

from __future__ import annotations

import inspect

import torch

from ..params import check_int


def context_length(model) -> int | None:
    """The model's maximum context (``max_position_embeddings``), or None when unknown."""
    cfg = model.config
    cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    n = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
    return int(n) if n else None


def cache_arg(model) -> str:
    """Name of the KV-cache argument of the model's forward (it differs across versions)."""
    params = inspect.signature(type(model).forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def keeps_logits(model) -> bool:
    """Whether the forward takes ``logits_to_keep`` (logits of the last positions only)."""
    return "logits_to_keep" in inspect.signature(type(model).forward).parameters


def prefill(model, ids, *, chunk: int = 512, all_logits: bool = False):
    """Feed token ``ids`` (one sequence, or equal-length rows: a list of lists or a 1-D/2-D
    tensor) through ``model`` in chunks of ``chunk`` tokens.

    Returns ``(logits, cache)``: float32 logits of every position (B, T, V) when
    ``all_logits``, else of the last position only (B, V); ``cache`` continues decoding."""
    chunk = check_int("chunk", chunk, 1)  # tokens per forward pass
    device = next(model.parameters()).device
    try:
        ids = torch.as_tensor(ids, dtype=torch.long, device=device)
    except (ValueError, TypeError):
        raise ValueError("prefill rows must all have the same length") from None
    ids = ids.reshape(1, -1) if ids.ndim == 1 else ids
    if ids.ndim != 2 or ids.numel() == 0:
        raise ValueError("prefill needs a non-empty 1-D or 2-D array of token ids")
    name, cache, parts = cache_arg(model), None, []
    trim = not all_logits and keeps_logits(model)
    with torch.inference_mode():
        for start in range(0, ids.shape[1], chunk):
            keep = {"logits_to_keep": 1} if trim else {}
            out = model(input_ids=ids[:, start:start + chunk], use_cache=True,
                        **{name: cache}, **keep)
            cache = out[name]
            parts.append(out.logits.float() if all_logits else out.logits[:, -1].float())
    return (torch.cat(parts, dim=1) if all_logits else parts[-1]), cache


def greedy(model, ids, *, max_new_tokens: int = 8, chunk: int = 512,
           stop_ids=()) -> list[list[int]]:
    """Greedy continuations of equal-length prompt rows ``ids`` after a chunked prefill:
    per row up to ``max_new_tokens`` new token ids, cut before its first of ``stop_ids``."""
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, 1)
    logits, cache = prefill(model, ids, chunk=chunk)
    name, stop = cache_arg(model), torch.tensor(sorted(set(stop_ids)), dtype=torch.long)
    toks = []
    with torch.inference_mode():
        for step in range(max_new_tokens):
            tok = logits.argmax(-1)
            toks.append(tok.cpu())
            done = torch.isin(torch.stack(toks, 1), stop).any(1)
            if step + 1 == max_new_tokens or bool(done.all()):
                break
            res = model(input_ids=tok[:, None], use_cache=True, **{name: cache})
            cache, logits = res[name], res.logits[:, -1].float()
    out = []
    for row in torch.stack(toks, 1).tolist():
        cut = next((i for i, t in enumerate(row) if t in stop_ids), len(row))
        out.append(row[:cut])
    return out
