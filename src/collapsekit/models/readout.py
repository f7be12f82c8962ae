"""Read a causal LM out at the end of a text: the residual stream at every capture point and
the next-token distribution at the last position, plus a short greedy continuation from it.

The capture points are those of :mod:`collapsekit.models.capture` (embed, block_1..block_L,
final_norm). Texts are encoded as the sampler encodes a ``Decoding(chat=False)`` prompt
(``tokenizer(text)``), left-padded with real-token positions, so a row's numbers do not depend
on the other rows of its batch, and the continuation is what greedy ``sample`` would give.
The continuation reuses the readout forward's KV cache: its first token is the argmax of the
very distribution read out.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NotApplicable
from ..params import check_int
from .capture import hooked, layout, point_hooks
from .longcontext import context_length
from .decoding import DecodeModel, stop_ids


@dataclass
class Readout:
    """``hidden`` (P, N, D) float32: the last position's state at each of the P = L + 2 capture
    points (``layer_names``); ``logits`` (N, V) float32: next-token logits there;
    ``continuation``: the greedy text after each input (stop token excluded);
    ``n_tokens``: input length in tokens."""

    hidden: np.ndarray
    logits: np.ndarray
    continuation: list[str]
    n_tokens: list[int]
    layer_names: list[str]


def chat_text(tokenizer, user: str, reply: str = "", *, chat: bool = True) -> str:
    """The text a model sees for the user message ``user`` with the assistant's turn begun
    by ``reply``: the tokenizer's chat template when ``chat`` and it has one, else
    ``user + "\\n" + reply``. A BOS the template writes and ``tokenizer(text)`` adds again is
    written once."""
    if chat and getattr(tokenizer, "chat_template", None):
        text = tokenizer.apply_chat_template([{"role": "user", "content": user}],
                                             tokenize=False, add_generation_prompt=True)
        bos = tokenizer.bos_token
        if bos and text.startswith(bos):
            ids = tokenizer(text)["input_ids"]
            if len(ids) > 1 and ids[0] == ids[1] == tokenizer.bos_token_id:
                text = text[len(bos):]
        return text + reply
    return f"{user}\n{reply}"


def answer_cue(tokenizer, cue: str = "The answer is") -> str:
    """``cue``, with a trailing space when the tokenizer writes the space before a number as
    a token of its own (SmolLM2, GPT-2 style digits), so that the next token is the answer's
    first digit rather than a space."""
    base = tokenizer(cue, add_special_tokens=False)["input_ids"]
    full = tokenizer(cue + " 7", add_special_tokens=False)["input_ids"]
    if (len(full) > len(base) + 1 and full[:len(base)] == base
            and not tokenizer.decode(full[len(base):len(base) + 1]).strip()):
        return cue + " "
    return cue


@contextmanager
def _last_position_hooks(found, out: list):
    """Hooks storing each capture point's state at the last position into ``out[i]``."""

    def keep(i, h):
        out[i] = h[:, -1, :].to(torch.float32)

    with hooked(point_hooks(found, range(len(out)), keep)):
        yield


def _encode_all(tokenizer, texts) -> list[list[int]]:
    if isinstance(texts, (str, bytes)) or not isinstance(texts, (list, tuple)) or not texts:
        raise ValueError("texts must be a non-empty list of strings")
    ids = []
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t:
            raise ValueError(f"text {i} is empty or not a string: pass non-empty strings")
        ids.append(list(tokenizer(t)["input_ids"]))
        if not ids[-1]:
            raise ValueError(f"text {i} encodes to zero tokens: give some text")
    return ids


def readout(model, tokenizer, texts: list[str], *, max_new_tokens: int = 8,
            batch_size: int = 8, device=None,
            progress: Callable[[int], object] | None = None) -> Readout:
    """Hidden states and next-token logits at the last token of each text, and up to
    ``max_new_tokens`` greedy tokens after it (0: none). Texts are batched by length.
    ``device``: where inputs go (default: the model's first parameter's device);
    ``progress(n)`` is called with the number of texts after each batch."""
    max_new_tokens = check_int("max_new_tokens", max_new_tokens, 0)
    batch_size = check_int("batch_size", batch_size, 1)
    ids = _encode_all(tokenizer, texts)
    ctx = context_length(model)
    longest = max(range(len(ids)), key=lambda i: len(ids[i]))
    if ctx is not None and len(ids[longest]) + max_new_tokens > ctx:
        raise NotApplicable(f"text {longest} has {len(ids[longest])} tokens; with "
                         f"{max_new_tokens} new tokens that exceeds the model's {ctx}-token "
                         "context: shorten the texts (e.g. fewer reasoning tokens)")
    found = layout(model)
    names = ["embed", *(f"block_{i}" for i in range(1, len(found.blocks) + 1)), "final_norm"]
    lm = DecodeModel(model, device)
    stop = torch.tensor(stop_ids(model, tokenizer, True), dtype=torch.long, device=lm.device)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else int(stop[0])
    n = len(ids)
    hidden = logits = None
    continuation: list[str] = [""] * n
    order = sorted(range(n), key=lambda i: len(ids[i]))
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, n, batch_size):
                rows = order[start:start + batch_size]
                h, lg, cont = _batch(lm, found, len(names), [ids[i] for i in rows],
                                     max_new_tokens, stop, pad)
                if hidden is None:
                    hidden = np.zeros((len(names), n, h.shape[-1]), dtype=np.float32)
                    logits = np.zeros((n, lg.shape[-1]), dtype=np.float32)
                hidden[:, rows] = h
                logits[rows] = lg
                for i, toks in zip(rows, cont):
                    continuation[i] = tokenizer.decode(toks, skip_special_tokens=True)
                if progress is not None:
                    progress(len(rows))
    finally:
        model.train(was_training)
    return Readout(hidden, logits, continuation, [len(x) for x in ids], names)


def _batch(lm: DecodeModel, found, n_points: int, rows: list[list[int]], max_new_tokens: int,
           stop, pad):
    """(hidden (P, B, D), logits (B, V), continuation token ids) of one left-padded batch."""
    width = max(map(len, rows))
    inp = torch.tensor([[pad] * (width - len(r)) + r for r in rows], device=lm.device)
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows],
                        device=lm.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    captured: list = [None] * n_points
    with _last_position_hooks(found, captured):
        logits, cache = lm.step(inp, None, mask, pos)
    hidden = torch.stack(captured).cpu().numpy()
    first = logits.to(torch.float32).cpu().numpy()
    tokens, done = [], torch.zeros(len(rows), dtype=torch.bool, device=lm.device)
    for t in range(max_new_tokens):
        tok = logits.argmax(-1)
        tok = torch.where(done, stop[0], tok)
        tokens.append(tok)
        done |= torch.isin(tok, stop)
        if bool(done.all()) or t == max_new_tokens - 1:
            break
        pos = pos[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
        logits, cache = lm.step(tok[:, None], cache, mask, pos)
    cont = []
    grid = torch.stack(tokens, dim=1).tolist() if tokens else [[] for _ in rows]
    stops = set(stop.tolist())
    for row in grid:
        cut = next((j for j, x in enumerate(row) if x in stops), len(row))
        cont.append(row[:cut])
    return hidden, first, cont
