"""Log-probabilities of given continuations under a causal LM:
log p(c | x) = Σ_t log p(c_t | x, c_<t). Each distinct context is prefilled once and its KV
cache copied to its candidates (as decoding does for the k samples of a prompt); models
without a usable cache get one forward pass per context-candidate sequence."""

from __future__ import annotations

import inspect
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch

from ..errors import NotApplicable
from ..params import check_int
from .longcontext import cache_arg, context_length, keeps_logits


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
                        device=None, progress=None, share_context: bool = True
                        ) -> list[list[Scored]]:
    """``Scored`` (log p(candidate | context), token count) for every candidate of every
    context. ``contexts``: strings (encoded with the tokenizer's special tokens) or token-id
    lists (e.g. from :func:`chat_context`); ``candidates``: one list of strings per context,
    each encoded on its own without special tokens (so include a leading space where the
    tokenizer expects one). Log-probs are taken from a float32-or-wider log-softmax and
    summed in float64.

    ``batch_size`` counts context-candidate rows per batch; a context's candidates stay in
    one batch when they fit. With ``share_context`` (and a model whose forward takes a KV
    cache) a batch's distinct contexts are prefilled once, left-padded and masked with
    positions counting real tokens only (as in sampling), keeping the last position's
    logits (the candidates' first tokens); the cache is copied to the rows and one more
    forward over the candidates' other tokens (right-padded, so real tokens stay
    contiguous, as sliding-window attention needs) gives the rest. Otherwise each row is
    one left-padded forward of context + candidate. ``progress(n)`` is called with the
    number of rows scored after each batch."""
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
    lm = _Batches(model, device, tokenizer.pad_token_id, progress)
    out: list[list] = [[None] * len(c) for c in candidates]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            if share_context and _takes_cache(model):
                for batch in _pack(rows, batch_size):
                    lm.shared(batch, out)
            else:
                order = sorted(rows, key=lambda r: len(r[2]) + len(r[3]))
                for b in range(0, len(order), batch_size):
                    lm.plain(order[b:b + batch_size], out)
    finally:
        model.train(was_training)
    return out


def _takes_cache(model) -> bool:
    """Whether the model's forward names a KV-cache argument (see ``cache_arg``)."""
    return cache_arg(model) in inspect.signature(type(model).forward).parameters


def _pack(rows, batch_size: int) -> list[list[tuple]]:
    """Rows grouped by context (shortest contexts first), in batches of at most
    ``batch_size`` rows; a context's rows are split only when they exceed a batch."""
    groups: dict[tuple, list] = {}
    for r in rows:
        groups.setdefault(tuple(r[2]), []).append(r)
    batches, cur = [], []
    for ctx in sorted(groups, key=len):
        rs = groups[ctx]
        if cur and len(cur) + len(rs) > batch_size:
            batches.append(cur)
            cur = []
        for k in range(0, len(rs), batch_size):
            if cur and len(cur) + len(rs[k:k + batch_size]) > batch_size:
                batches.append(cur)
                cur = []
            cur += rs[k:k + batch_size]
    return batches + [cur] if cur else batches


class _Batches:
    """The two ways to score a batch of rows (context index, candidate index, context ids,
    candidate ids), writing ``Scored`` into ``out[i][j]``."""

    def __init__(self, model, device, pad, progress):
        self.model, self.progress = model, progress
        self.device = (torch.device(device) if device is not None
                       else next(model.parameters()).device)
        self.pad = pad if pad is not None else 0
        self.keep = keeps_logits(model)
        self.cache_name = cache_arg(model)

    def _left_padded(self, seqs):
        width = max(map(len, seqs))
        inp = torch.tensor([[self.pad] * (width - len(s)) + list(s) for s in seqs],
                           device=self.device)
        mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs],
                            device=self.device)
        return inp, mask, (mask.cumsum(-1) - 1).clamp(min=0)

    def plain(self, batch, out):
        """One forward of each left-padded context + candidate; logits of the last
        ``tail`` positions, where every candidate lies."""
        inp, mask, pos = self._left_padded([ctx + cont for _, _, ctx, cont in batch])
        tail = max(len(cont) for *_, cont in batch) + 1
        logits = self.model(input_ids=inp, attention_mask=mask, position_ids=pos,
                            **({"logits_to_keep": tail} if self.keep else {})).logits[:, -tail:]
        for r, (i, j, _, cont) in enumerate(batch):
            out[i][j] = self._scored(logits[r, tail - 1 - len(cont):tail - 1], cont)
        self._done(batch)

    def shared(self, batch, out):
        """Prefill the batch's distinct contexts once, copy the cache to the rows and feed
        the candidates' tokens but the last; falls back to :meth:`plain` without a cache."""
        uniq = list(dict.fromkeys(tuple(ctx) for _, _, ctx, _ in batch))
        inp, mask, pos = self._left_padded(uniq)
        rest = max(len(cont) for *_, cont in batch) - 1  # candidate tokens fed after the cache
        res = self.model(input_ids=inp, attention_mask=mask, position_ids=pos,
                         use_cache=bool(rest), **({"logits_to_keep": 1} if self.keep else {}))
        first = res.logits[:, -1]  # logits of each candidate's first token
        where = {c: g for g, c in enumerate(uniq)}
        rowmap = torch.tensor([where[tuple(ctx)] for _, _, ctx, _ in batch], device=self.device)
        later = None
        if rest:
            cache = _expand(getattr(res, self.cache_name, None), rowmap)
            if cache is None:
                return self.plain(batch, out)
            conts = [cont[:-1] for *_, cont in batch]
            inp2 = torch.tensor([c + [self.pad] * (rest - len(c)) for c in conts],
                                device=self.device)
            mask2 = torch.tensor([[1] * len(c) + [0] * (rest - len(c)) for c in conts],
                                 device=self.device)
            pos2 = pos[rowmap, -1:] + 1 + torch.arange(rest, device=self.device)
            later = self.model(input_ids=inp2, attention_mask=torch.cat([mask[rowmap], mask2], 1),
                               position_ids=pos2, use_cache=True,
                               **{self.cache_name: cache}).logits
        for r, (i, j, _, cont) in enumerate(batch):
            step = first[rowmap[r]][None]
            if len(cont) > 1:
                step = torch.cat([step, later[r, :len(cont) - 1]])
            out[i][j] = self._scored(step, cont)
        self._done(batch)

    def _scored(self, step, cont) -> Scored:
        """Σ log p of the ``cont`` tokens from their (len(cont), V) logits ``step``."""
        logp = torch.log_softmax(step.float(), dim=-1)
        tok = torch.tensor(cont, device=self.device)[:, None]
        lp = logp.gather(-1, tok).double().sum().item()
        if not math.isfinite(lp):
            raise ValueError("the model produced NaN/inf logits; load it in "
                             "float32 or bfloat16 instead of float16")
        return Scored(lp, len(cont))

    def _done(self, batch):
        if self.progress is not None:
            self.progress(len(batch))


def _expand(cache, rowmap):
    """The KV cache of the distinct contexts copied to the rows ``rowmap`` (None stays
    None, as does a cache that cannot be reordered)."""
    if cache is None:
        return None
    if hasattr(cache, "reorder_cache"):
        try:
            cache.reorder_cache(rowmap)
        except NotImplementedError:
            return None
        return cache
    # a legacy tuple of (keys, values) per layer
    return tuple(tuple(x.index_select(0, rowmap) for x in layer) for layer in cache)
