"""The decoding loop: ``Decoding`` settings, batched generation with a KV cache
(``DecodeModel``, ``_generate``) by temperature, top-k, top-p or momentum decoding, and the
token ids that stop a sample.

Truncation follows the papers: top-k keeps the k most likely tokens (Fan et al., 2018,
"Hierarchical Neural Story Generation"; ties with the k-th logit are kept, as in Hugging
Face's ``TopKLogitsWarper``); top-p keeps the smallest set of most likely tokens whose
probability sums to at least p (Holtzman et al., 2020, "The Curious Case of Neural Text
Degeneration"; ties at the boundary are broken towards lower token ids). Order:
temperature, then top-k, then top-p, as in ``transformers``.
"""

from __future__ import annotations

import json
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch

from ..mitigate import momentum
from ..params import check_int, check_number
from .longcontext import cache_arg, keeps_logits

# Chat end-of-turn tokens of common families (SmolLM/Qwen, Gemma, Llama 3, Phi-3).
END_OF_TURN = ("<|im_end|>", "<end_of_turn>", "<|eot_id|>", "<|end|>")


@dataclass(frozen=True)
class Decoding:
    """Decoding settings; ``temperature=0`` is greedy, ``top_k=0`` and ``top_p=1`` are off.

    ``chat``: wrap each prompt as a user message with the tokenizer's chat template (when it
    has one) and add the generation prompt; otherwise encode the plain text.
    ``momentum`` > 0: momentum decoding with resistance weight α = ``momentum`` over the
    ``momentum_k`` most likely tokens (see :mod:`collapsekit.mitigate.momentum`); needs
    ``temperature=0``. Fields at their defaults are left out of :meth:`key`, so adding them
    kept the keys (and caches) of earlier settings valid.
    """

    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 64
    chat: bool = True
    momentum: float = 0.0
    momentum_k: int = 5
    momentum_max_n: int = 5
    momentum_resistance: str = "linear"

    def __post_init__(self):
        # temperature 0: greedy; top_p 1, top_k 0: off
        object.__setattr__(self, "temperature", check_number("temperature", self.temperature, 0))
        object.__setattr__(self, "top_p", check_number("top_p", self.top_p, 0, 1, open_low=True))
        for name, low in (("top_k", 0), ("max_new_tokens", 1)):
            object.__setattr__(self, name, check_int(name, getattr(self, name), low))
        if not isinstance(self.chat, bool):
            raise ValueError(f"chat={self.chat!r} must be True or False")
        self._check_momentum()

    def _check_momentum(self):
        m = check_number("momentum", self.momentum, 0)  # 0: off
        for name in ("momentum_k", "momentum_max_n"):
            object.__setattr__(self, name, check_int(name, getattr(self, name), 1))
        if self.momentum_resistance not in momentum.RESISTANCE:
            raise ValueError(f"momentum_resistance={self.momentum_resistance!r} is unknown; "
                             f"use one of {sorted(momentum.RESISTANCE)}")
        if m > 0 and self.temperature != 0:
            raise ValueError("momentum decoding is deterministic: set temperature=0 with "
                             "momentum > 0")
        object.__setattr__(self, "momentum", float(m))

    def key(self) -> str:
        """Canonical JSON of the settings (sorted keys, no spaces), for hashing; momentum
        fields at their defaults are omitted (keys of earlier versions stay valid)."""
        d = asdict(self)
        for f in fields(self):
            if f.name.startswith("momentum") and d[f.name] == f.default:
                del d[f.name]
        return json.dumps(d, sort_keys=True, separators=(",", ":"))


def truncate_logits(logits: torch.Tensor, top_k: int = 0, top_p: float = 1.0) -> torch.Tensor:
    """Set logits outside the top-k, then outside the top-p nucleus, to -inf (last axis).

    Top-k keeps every token whose logit is >= the k-th largest. Top-p keeps the shortest
    prefix of tokens sorted by descending probability (stable sort) whose cumulative
    probability reaches ``top_p``: token j is kept iff the mass strictly before it is < p,
    so at least one token always survives.
    """
    out = logits
    if 0 < top_k < logits.shape[-1]:
        kth = torch.topk(out, top_k, dim=-1).values[..., -1:]
        out = out.masked_fill(out < kth, -math.inf)
    if top_p < 1.0:
        srt, order = torch.sort(out, dim=-1, descending=True, stable=True)
        cum = torch.softmax(srt, dim=-1).cumsum(-1)
        before = torch.cat([torch.zeros_like(cum[..., :1]), cum[..., :-1]], dim=-1)
        drop = before >= top_p
        out = out.masked_fill(torch.empty_like(drop).scatter_(-1, order, drop), -math.inf)
    return out


def _draw(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF draw per row of ``softmax(logits)`` with uniforms ``u`` in [0, 1): the
    token at the first position where the cumulative sum of the probabilities, sorted in
    descending order (ties in token order), exceeds ``u`` times their total.

    On CPU the sort runs on values only (numpy, rows split over a pool of torch's thread
    count) and the token among tied values is recovered from its rank: the same float64 sums
    in the same order, so the same token as :func:`_draw_sorted`, bit for bit
    (tests/test_sampling.py checks this). Most rows need only the ``TOP`` largest
    probabilities (:func:`_draw_row`); the rest are sorted whole."""
    if logits.device.type != "cpu":
        return _draw_sorted(logits, u)
    probs = torch.softmax(logits, dim=-1).numpy()
    u = u.numpy()
    out = np.empty(len(probs), dtype=np.int64)

    def rows(chunk):
        for r in chunk:
            out[r] = _draw_row(probs[r], float(u[r]))

    parts = np.array_split(np.arange(len(probs)), min(len(probs), torch.get_num_threads()))
    if len(parts) > 1:  # numpy's partition and sort release the GIL
        list(_pool(len(parts)).map(rows, parts))
    else:
        rows(parts[0])
    return torch.from_numpy(out)


# Probabilities sorted per row before the whole row is: the crossing point of u x total
# lies among the TOP largest in almost every row of a language model's distribution.
TOP = 2048
_POOLS: dict = {}


def _pool(n: int) -> ThreadPoolExecutor:
    """A thread pool of ``n`` workers kept for the process (starting threads at every
    decode step cost ~2 ms each); a forked child makes its own."""
    import os

    key = (os.getpid(), n)
    if key not in _POOLS:
        _POOLS[key] = ThreadPoolExecutor(n, thread_name_prefix="collapsekit-draw")
    return _POOLS[key]


def _draw_row(p: np.ndarray, x: float) -> int:
    """The inverse-CDF token of one row ``p`` (float64 probabilities) for uniform ``x``.

    -cdf is the running sum of -p sorted ascending; the token is at i = #{cdf <= x * total}
    (at most the last nonzero probability: rounding can put x * total on the last edge),
    then the rank of p_(i) among equal values picks the token in token order. The running
    sums of the TOP largest are those of the whole sort (same values, same order); the total
    is the last running sum, which only the whole sort gives, so the row is sorted whole
    unless i is the same for every total within the float64 error bound of numpy's sum
    (2·V·2⁻⁵³·total for V positive terms, either order)."""
    v = len(p)
    neg = np.negative(p)
    if v > 2 * TOP:
        top = np.partition(neg, TOP - 1)[:TOP]
        top.sort()
        c = -np.cumsum(top)  # cdf of the TOP largest
        total = float(p.sum())
        slack = (2 * v + 8) * 2.0 ** -53 * total
        lo = np.searchsorted(c, x * (total - slack), side="right")
        if lo < TOP and lo == np.searchsorted(c, x * (total + slack), side="right"):
            rank = lo - int(np.searchsorted(top, top[lo], side="left"))  # among == p_(i)
            return int(np.flatnonzero(p == -top[lo])[rank])
    neg.sort()                           # -p in descending order of p
    cneg = np.cumsum(neg)                # -cdf exactly: summed in order, as torch.cumsum
    i = min(v - int(np.searchsorted(cneg[::-1], x * cneg[-1], side="left")),
            int(np.searchsorted(neg, 0.0, side="left")) - 1)
    rank = i - int(np.searchsorted(neg, neg[i], side="left"))  # among values == p_(i)
    return int(np.flatnonzero(p == -neg[i])[rank])


def _draw_sorted(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """:func:`_draw` by a stable sort of the probabilities (any device)."""
    probs, order = torch.sort(torch.softmax(logits, dim=-1), dim=-1, descending=True, stable=True)
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True)
    last = (probs > 0).sum(-1, keepdim=True) - 1  # rounding can put u*total on the last edge
    return order.gather(-1, torch.minimum(idx, last)).squeeze(-1)


def stop_ids(model, tokenizer, chat: bool) -> list[int]:
    """Token ids that end a sample: EOS, the generation config's EOS ids and, with ``chat``,
    the end-of-turn tokens of common chat templates that the tokenizer knows."""
    ids = {tokenizer.eos_token_id}
    gen = getattr(model, "generation_config", None)
    eos = getattr(gen, "eos_token_id", None)
    ids.update(eos if isinstance(eos, (list, tuple)) else [eos])
    if chat and getattr(tokenizer, "chat_template", None):
        vocab = tokenizer.get_vocab()
        ids.update(vocab[t] for t in END_OF_TURN if t in vocab)
    return sorted(i for i in ids if i is not None)


class DecodeModel:
    """The forward call of one causal LM, with the KV-cache argument named as it expects."""

    def __init__(self, model, device):
        self.model = model
        self.cache_name = cache_arg(model)
        self.keep = {"logits_to_keep": 1} if keeps_logits(model) else {}
        self.device = (torch.device(device) if device is not None
                       else next(model.parameters()).device)

    def step(self, ids: torch.Tensor, cache, mask: torch.Tensor, pos: torch.Tensor,
             dtype=torch.float64):
        """(next-token logits in ``dtype`` (None: the model's), the new cache)."""
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                         **{self.cache_name: cache}, **self.keep)
        logits = out.logits[:, -1, :]
        logits = logits if dtype is None else logits.to(dtype)
        if not torch.isfinite(logits.amax(-1)).all():
            raise ValueError("the model produced NaN/inf logits; load it in float32 or bfloat16 "
                             "instead of float16")
        return logits, out[self.cache_name]


def _generate(lm: DecodeModel, prompts: list[list[int]], u: torch.Tensor, dec,
              stop: torch.Tensor, pad: int):
    """Decode one row per entry of ``prompts`` (token ids; rows may come from different
    prompts: they are left-padded, masked, and given positions that count real tokens only).
    Each distinct prompt is prefilled once and its KV cache copied to its rows (the k samples
    of a prompt share it). ``dec``: one ``Decoding`` or one per row (runs of equal ones are
    chosen together). Returns (tokens, logprobs, sampling_logprobs, lengths, hit_stop) on
    CPU, each row valid up to its length."""
    from .kvcache import preallocate  # imports transformers: only when decoding

    rows, steps = u.shape
    uniq = list(dict.fromkeys(map(tuple, prompts)))
    width = max(map(len, uniq))
    inp = torch.tensor([[pad] * (width - len(p)) + list(p) for p in uniq], device=lm.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in uniq],
                        device=lm.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    logits, cache = lm.step(inp, None, mask, pos, dtype=None)
    if len(uniq) < rows:
        where = {p: i for i, p in enumerate(uniq)}
        rowmap = torch.tensor([where[tuple(p)] for p in prompts], device=lm.device)
        if hasattr(cache, "reorder_cache"):
            cache.reorder_cache(rowmap)
        else:  # a legacy tuple of (keys, values) per layer
            cache = tuple(tuple(x.index_select(0, rowmap) for x in layer) for layer in cache)
        logits, mask, pos = logits[rowmap], mask[rowmap], pos[rowmap]
    cache = preallocate(cache, width + steps)  # written in place, not concatenated
    toks = torch.zeros(rows, steps, dtype=torch.long, device=lm.device)
    lp = torch.zeros(rows, steps, dtype=torch.float64, device=lm.device)
    slp = torch.zeros_like(lp)
    lengths = torch.full((rows,), steps, device=lm.device)
    done = torch.zeros(rows, dtype=torch.bool, device=lm.device)
    decs = list(dec) if isinstance(dec, (list, tuple)) else [dec] * rows
    runs = _runs(decs)
    graphs = [momentum.Graph(p, d.momentum_max_n) if d.momentum > 0 else None
              for p, d in zip(prompts, decs)]
    for t in range(steps):
        if t:
            logits, cache = lm.step(inp, cache, mask, pos, dtype=None)
        for start, end, d in runs:
            for b in range(start, end, BLOCK):  # float64 vocabulary work in blocks of rows
                r = slice(b, min(b + BLOCK, end))
                toks[r, t], lp[r, t], slp[r, t] = _choose(
                    logits[r].to(torch.float64), u[r, t], d,
                    graphs[r] if d.momentum > 0 else None)
        tok = toks[:, t]
        new = torch.isin(tok, stop) & ~done
        lengths[new] = t + 1
        done |= new
        if bool(done.all()):
            break
        inp, pos = tok[:, None], pos[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
    return toks.cpu(), lp.cpu(), slp.cpu(), lengths.cpu(), done.cpu()


def _runs(decs: list) -> list[tuple[int, int, Decoding]]:
    """(start, end, decoding) of each run of equal consecutive decodings."""
    out = []
    for i, d in enumerate(decs):
        if out and out[-1][2] == d:
            out[-1] = (out[-1][0], i + 1, d)
        else:
            out.append((i, i + 1, d))
    return out


# Rows per block of the float64 work on the logits: 16 x 49k float64 is 6 MB, which malloc
# reuses from step to step (a whole batch's 50 MB would be mapped and faulted in anew).
BLOCK = 16


def _choose(logits: torch.Tensor, u: torch.Tensor, dec: Decoding, graphs):
    """(token, its log-prob, its log-prob under the truncated sampling distribution) per row
    of float64 ``logits``, for uniforms ``u`` (CPU) and momentum ``graphs`` (or None)."""
    logp = torch.log_softmax(logits, dim=-1)
    slp = torch.zeros(len(logits), dtype=torch.float64, device=logits.device)
    if graphs is not None:
        tok = torch.as_tensor(momentum.choose(
            logits.cpu().numpy(), graphs, alpha=dec.momentum, k=dec.momentum_k,
            resistance_fn=dec.momentum_resistance), device=logits.device)
        for g, x in zip(graphs, tok.tolist()):
            g.add(x)
    elif dec.temperature == 0:
        tok = logits.argmax(-1)
    else:
        scaled = truncate_logits(logits / dec.temperature, dec.top_k, dec.top_p)
        tok = _draw(scaled, u.to(logits.device)).to(logits.device)
        same = dec.temperature == 1 and dec.top_k == 0 and dec.top_p == 1  # scaled == logits
        slp = (logp if same else torch.log_softmax(scaled, dim=-1)).gather(
            -1, tok[:, None]).squeeze(-1)
    return tok, logp.gather(-1, tok[:, None]).squeeze(-1), slp
