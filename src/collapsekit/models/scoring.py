"""Log-probabilities of given continuations under a causal LM (one forward pass per
context-candidate sequence, batched): log p(c | x) = Σ_t log p(c_t | x, c_<t)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import NotApplicable
from ..params import check_int
from .longcontext import context_length, keeps_logits


@dataclass(frozen=True)
class Scored:
    """Total log-probability of one continuation and its number of tokens."""

    logprob: float
    n_tokens: int


def chat_context(tokenizer, messages: list[dict], prefix: str = "") -> list[int]:
    """Token ids of a dialogue up to the assistant's next turn, followed by ``prefix`` (the
    start of the assistant's reply): the tokenizer's chat template with the generation
    prompt, or, without a template, ``role: content`` lines and ``assistant:``."""
    if not messages or not all(isinstance(m, Mapping) and isinstance(m.get("content"), str)
                               and m["content"].strip() for m in messages):
        raise ValueError("messages must be a non-empty list of {'role', 'content'} dicts "
                         "with non-empty content")
    if getattr(tokenizer, "chat_template", None):
        ids = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True,
                                            tokenize=True)
        if isinstance(ids, Mapping):  # transformers >= 5 returns a BatchEncoding
            ids = ids["input_ids"]
        ids = list(ids)
    else:
        text = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"
        ids = list(tokenizer(text)["input_ids"])
    if prefix:
        ids += tokenizer(prefix, add_special_tokens=False)["input_ids"]
    return ids


def _ids(tokenizer, context, i: int) -> list[int]:
    if isinstance(context, str):
        if not context:
            raise ValueError(f"context {i} is empty: give some text or token ids")
        return list(tokenizer(context)["input_ids"])
    if isinstance(context, Sequence) and context and all(
            isinstance(t, int) and not isinstance(t, bool) for t in context):
        return list(context)
    raise ValueError(f"context {i} must be a non-empty string or a list of token ids")


def score_continuations(model, tokenizer, contexts, candidates, *, batch_size: int = 16,
                        device=None, progress=None) -> list[list[Scored]]:
    """``Scored`` (log p(candidate | context), token count) for every candidate of every
    context. ``contexts``: strings (encoded with the tokenizer's special tokens) or token-id
    lists (e.g. from :func:`chat_context`); ``candidates``: one list of strings per context,
    each encoded on its own without special tokens (so include a leading space where the
    tokenizer expects one). Sequences are left-padded in batches of ``batch_size`` (padding
    masked, positions counting real tokens only, as in sampling) and logits are computed
    only for the last positions, where the candidates are (``logits_to_keep``). Log-probs
    are taken from a float32-or-wider log-softmax and summed in float64. ``progress(n)`` is
    called with the number of sequences scored after each batch."""
    if isinstance(contexts, (str, bytes)) or not isinstance(contexts, Sequence) or not contexts:
        raise ValueError("contexts must be a non-empty list (one per item)")
    if not isinstance(candidates, Sequence) or len(candidates) != len(contexts):
        raise ValueError(f"candidates must be a list with one list of strings per context "
                         f"({len(contexts)} contexts)")
    batch_size = check_int("batch_size", batch_size, 1)
    rows = []  # (context index, candidate index, context ids, candidate ids)
    for i, (ctx, cands) in enumerate(zip(contexts, candidates)):
        ids = _ids(tokenizer, ctx, i)
        if isinstance(cands, (str, bytes)) or not isinstance(cands, Sequence) or not cands:
            raise ValueError(f"context {i} has no candidates: give a list of strings")
        for j, c in enumerate(cands):
            if not isinstance(c, str) or not c.strip():
                raise ValueError(f"candidate {j} of context {i} is empty or not a string")
            cont = list(tokenizer(c, add_special_tokens=False)["input_ids"])
            if not cont:
                raise ValueError(f"candidate {j} of context {i} encodes to zero tokens")
            rows.append((i, j, ids, cont))
    limit = context_length(model)
    longest = max(len(r[2]) + len(r[3]) for r in rows)
    if limit is not None and longest > limit:
        raise NotApplicable(f"a context with its candidate has {longest} tokens, more than the "
                         f"model's {limit}-token context: shorten the dialogue")
    device = torch.device(device) if device is not None else next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    keep = keeps_logits(model)
    out: list[list] = [[None] * len(c) for c in candidates]
    order = sorted(range(len(rows)), key=lambda r: len(rows[r][2]) + len(rows[r][3]))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for b in range(0, len(order), batch_size):
                batch = [rows[r] for r in order[b:b + batch_size]]
                seqs = [ctx + cont for _, _, ctx, cont in batch]
                width = max(map(len, seqs))
                # left-padded, so every candidate lies in the last `tail` positions
                inp = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=device)
                mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs],
                                    device=device)
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                tail = max(len(cont) for *_, cont in batch) + 1
                logits = model(input_ids=inp, attention_mask=mask, position_ids=pos,
                               **({"logits_to_keep": tail} if keep else {})).logits[:, -tail:]
                for r, (i, j, ctx, cont) in enumerate(batch):
                    step = logits[r, tail - 1 - len(cont):tail - 1]
                    logp = torch.log_softmax(step.float(), dim=-1)
                    tok = torch.tensor(cont, device=device)[:, None]
                    lp = logp.gather(-1, tok).double().sum().item()
                    if not math.isfinite(lp):
                        raise ValueError("the model produced NaN/inf logits; load it in "
                                         "float32 or bfloat16 instead of float16")
                    out[i][j] = Scored(lp, len(cont))
                if progress is not None:
                    progress(len(batch))
    finally:
        model.train(was_training)
    return out
