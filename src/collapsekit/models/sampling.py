"""Resumable, deterministic sampling from causal LMs with our own KV-cache decoding loop.

Each sample i of a prompt draws its tokens by inverse-CDF sampling from its own stream of
uniforms, made by a ``torch.Generator`` (on CPU) seeded from the sample's content key
sha256(model_key, prompt, decoding.key(), seed, i). A forward pass decodes a fixed group of
rows (up to ``batch_size``, default max(k, 32); whole prompts, left-padded, positions
counting real tokens only), and a resumed run recomputes whole groups, so samples are
bit-identical whether or not the run resumed. Changing ``k``, ``batch_size``, the device or
the other prompts of the call keeps the random draws but can change logits in the last bits
(rarely flipping a token).

Truncation follows the papers: top-k keeps the k most likely tokens (Fan et al., 2018,
"Hierarchical Neural Story Generation"; ties with the k-th logit are kept, as in Hugging
Face's ``TopKLogitsWarper``); top-p keeps the smallest set of most likely tokens whose
probability sums to at least p (Holtzman et al., 2020, "The Curious Case of Neural Text
Degeneration"; ties at the boundary are broken towards lower token ids). Order:
temperature, then top-k, then top-p, as in ``transformers``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import torch

from ..mitigate import momentum
from .longcontext import cache_arg, context_length, keeps_logits
from .scoring import chat_context

FINISH_REASONS = ("eos", "length")
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
        t, p = self.temperature, self.top_p
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not (0 <= t < math.inf):
            raise ValueError(f"temperature={t!r} must be a finite number >= 0; use 0 for greedy")
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not (0 < p <= 1):
            raise ValueError(f"top_p={p!r} must be in (0, 1]; use 1.0 to turn nucleus sampling off")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k={self.top_k!r} must be an int >= 0; use 0 to turn it off")
        n = self.max_new_tokens
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"max_new_tokens={n!r} must be an int >= 1")
        if not isinstance(self.chat, bool):
            raise ValueError(f"chat={self.chat!r} must be True or False")
        object.__setattr__(self, "temperature", float(t))
        object.__setattr__(self, "top_p", float(p))
        self._check_momentum()

    def _check_momentum(self):
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not (0 <= m < math.inf):
            raise ValueError(f"momentum={m!r} must be a finite number >= 0; use 0 to turn it off")
        for name in ("momentum_k", "momentum_max_n"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}={v!r} must be an int >= 1")
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


@dataclass
class Sample:
    """One generated continuation; one JSONL line of the cache.

    ``token_ids`` include the stop token when ``finish_reason == "eos"``; ``text`` excludes
    it. ``token_logprobs``: log p_model(token) at temperature 1. ``sampling_logprobs``: log
    probability under the tempered, truncated distribution actually sampled (0.0 if greedy).
    """

    key: str
    prompt_id: int | str
    prompt: str
    sample_index: int
    text: str
    token_ids: list[int]
    token_logprobs: list[float]
    sampling_logprobs: list[float]
    finish_reason: str
    decoding: dict
    seed: int
    model_key: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Sample:
        """Build from ``to_dict()`` output; ValueError if fields are missing or inconsistent."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a sample must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"sample is missing fields {missing}")
        s = cls(**{n: d[n] for n in names})
        if not len(s.token_ids) == len(s.token_logprobs) == len(s.sampling_logprobs):
            raise ValueError("token_ids, token_logprobs and sampling_logprobs differ in length")
        if s.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason {s.finish_reason!r} is not one of {FINISH_REASONS}")
        return s


def sample_key(model_key: str, prompt: str, decoding: Decoding, seed: int, index: int) -> str:
    """sha256 hex of the JSON list [model_key, prompt, decoding.key(), seed, index]."""
    blob = json.dumps([model_key, prompt, decoding.key(), seed, index], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


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
    """Inverse-CDF draw per row of ``softmax(logits)`` with uniforms ``u`` in [0, 1)."""
    probs, order = torch.sort(torch.softmax(logits, dim=-1), dim=-1, descending=True, stable=True)
    cdf = probs.cumsum(-1)
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True)
    last = (probs > 0).sum(-1, keepdim=True) - 1  # rounding can put u*total on the last edge
    return order.gather(-1, torch.minimum(idx, last)).squeeze(-1)


def _prompt_list(prompts) -> list[tuple[int | str, str]]:
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence):
        raise ValueError("prompts must be a list of strings or (id, text) pairs; "
                         "wrap a single prompt in a list")
    if len(prompts) == 0:
        raise ValueError("prompts is empty; pass at least one prompt")
    out = []
    for i, p in enumerate(prompts):
        if isinstance(p, str):
            pid, text = i, p
        elif isinstance(p, (tuple, list)) and len(p) == 2:
            pid, text = p
        else:
            raise ValueError(f"prompt {i} is {p!r}; give a string or an (id, text) pair")
        if isinstance(pid, bool) or not isinstance(pid, (int, str)):
            raise ValueError(f"prompt {i}: id {pid!r} must be an int or a str")
        if not isinstance(text, str) or not text:
            raise ValueError(f"prompt {i} (id {pid!r}) is empty or not a string; "
                             "remove it or give some text")
        out.append((pid, text))
    ids = [pid for pid, _ in out]
    if len(set(ids)) != len(ids):
        raise ValueError("prompt ids are not unique; give each prompt its own id")
    return out


def _encode(tokenizer, text: str, chat: bool) -> list[int]:
    if chat and getattr(tokenizer, "chat_template", None) and text.strip():
        return chat_context(tokenizer, [{"role": "user", "content": text}])
    return list(tokenizer(text)["input_ids"])


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


def _read_cache(path: Path) -> dict[str, Sample]:
    """Samples by key. A last line without its newline is dropped and cut off the file."""
    if not path.exists():
        return {}
    if not path.is_file():
        raise ValueError(f"cache {path} is not a file; pass a .jsonl file path")
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        warnings.warn(f"cache {path}: dropped a truncated last line (interrupted write); "
                      "its samples will be regenerated", stacklevel=3)
        with open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    out = {}
    for n, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            s = Sample.from_dict(json.loads(line))
            expected = sample_key(s.model_key, s.prompt, Decoding(**s.decoding), s.seed,
                                  s.sample_index)
            if s.key != expected:
                raise ValueError("its key does not match its content")
        except (ValueError, TypeError) as e:  # JSONDecodeError and UnicodeError are ValueErrors
            raise ValueError(f"cache {path}, line {n} is malformed ({e}); "
                             "fix or delete that line, or delete the file to start over") from None
        out[s.key] = s
    return out


class DecodeModel:
    """The forward call of one causal LM, with the KV-cache argument named as it expects."""

    def __init__(self, model, device):
        self.model = model
        self.cache_name = cache_arg(model)
        self.keep = {"logits_to_keep": 1} if keeps_logits(model) else {}
        self.device = (torch.device(device) if device is not None
                       else next(model.parameters()).device)

    def step(self, ids: torch.Tensor, cache, mask: torch.Tensor, pos: torch.Tensor):
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=True,
                         **{self.cache_name: cache}, **self.keep)
        logits = out.logits[:, -1, :].to(torch.float64)
        if not torch.isfinite(logits.amax(-1)).all():
            raise ValueError("the model produced NaN/inf logits; load it in float32 or bfloat16 "
                             "instead of float16")
        return logits, out[self.cache_name]


def _generate(lm: DecodeModel, prompts: list[list[int]], u: torch.Tensor, dec: Decoding,
              stop: torch.Tensor, pad: int):
    """Decode one row per entry of ``prompts`` (token ids; rows may come from different
    prompts: they are left-padded, masked, and given positions that count real tokens only).
    Returns (tokens, logprobs, sampling_logprobs, lengths, hit_stop) on CPU, each row valid
    up to its length."""
    rows, steps = u.shape
    u = u.to(lm.device)
    width = max(map(len, prompts))
    inp = torch.tensor([[pad] * (width - len(p)) + p for p in prompts], device=lm.device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts],
                        device=lm.device)
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    toks = torch.zeros(rows, steps, dtype=torch.long, device=lm.device)
    lp = torch.zeros(rows, steps, dtype=torch.float64, device=lm.device)
    slp = torch.zeros_like(lp)
    lengths = torch.full((rows,), steps, device=lm.device)
    done = torch.zeros(rows, dtype=torch.bool, device=lm.device)
    cache = None
    graphs = ([momentum.Graph(p, dec.momentum_max_n) for p in prompts] if dec.momentum > 0
              else None)
    for t in range(steps):
        logits, cache = lm.step(inp, cache, mask, pos)
        logp = torch.log_softmax(logits, dim=-1)
        if graphs is not None:
            tok = momentum.choose(logits, graphs, alpha=dec.momentum, k=dec.momentum_k,
                                  resistance_fn=dec.momentum_resistance)
            for g, x in zip(graphs, tok.tolist()):
                g.add(x)
        elif dec.temperature == 0:
            tok = logits.argmax(-1)
        else:
            scaled = truncate_logits(logits / dec.temperature, dec.top_k, dec.top_p)
            tok = _draw(scaled, u[:, t])
            slp[:, t] = torch.log_softmax(scaled, dim=-1).gather(-1, tok[:, None]).squeeze(-1)
        toks[:, t] = tok
        lp[:, t] = logp.gather(-1, tok[:, None]).squeeze(-1)
        new = torch.isin(tok, stop) & ~done
        lengths[new] = t + 1
        done |= new
        if bool(done.all()):
            break
        inp, pos = tok[:, None], pos[:, -1:] + 1
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
    return toks.cpu(), lp.cpu(), slp.cpu(), lengths.cpu(), done.cpu()


def sample(model, tokenizer, prompts, *, k: int = 8, decoding: Decoding = Decoding(),
           seed: int = 0, model_key: str, cache: str | Path | None = None,
           batch_size: int | None = None, progress: Callable[[int], None] | None = None,
           device=None) -> list[Sample]:
    """Draw ``k`` samples per prompt; returns them in prompt order, then sample index.

    ``prompts``: strings (ids 0..n-1) or (id, text) pairs. ``model_key`` names the model
    (and tokenizer) in the content keys. ``cache``: JSONL file; samples already there are
    reused without calling the model, new ones are appended (fsync'd) per finished prompt.
    ``batch_size``: rows per forward pass (default max(k, 32)); it keeps the random draws
    (see the module docstring).
    ``progress(n)`` is called with the number of newly finished prompts (cached ones first).
    ``device``: where inputs go (default: the device of the model's first parameter).
    Prompts longer than the context are cut from the left to leave ``max_new_tokens``.
    """
    items = _prompt_list(prompts)
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k={k!r} must be an int >= 1 (samples per prompt)")
    if not isinstance(decoding, Decoding):
        raise ValueError("decoding must be a Decoding(...) instance")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ValueError(f"seed={seed!r} must be an int")
    if not isinstance(model_key, str) or not model_key:
        raise ValueError("model_key must be a non-empty string naming the model, e.g. its spec")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size={batch_size!r} must be an int >= 1 or None")
    path = Path(cache) if cache is not None else None
    found = _read_cache(path) if path is not None else {}
    keys = [[sample_key(model_key, text, decoding, seed, i) for i in range(k)] for _, text in items]
    todo = [j for j, ks in enumerate(keys) if not all(x in found for x in ks)]
    todo_set = set(todo)
    if progress is not None and len(todo) < len(items):
        progress(len(items) - len(todo))
    if todo:
        ctx = context_length(model)
        if ctx is not None and decoding.max_new_tokens >= ctx:
            raise ValueError(f"max_new_tokens={decoding.max_new_tokens} leaves no room for the "
                             f"prompt in the model's {ctx}-token context; lower it")
        lm = DecodeModel(model, device)
        stop = torch.tensor(stop_ids(model, tokenizer, decoding.chat), dtype=torch.long,
                            device=lm.device)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else int(stop[0])
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        was_training = model.training
        model.eval()
        encoded: dict[int, list[int]] = {}
        n_cut = 0

        def prompt_ids(j):
            nonlocal n_cut
            if j not in encoded:
                ids = _encode(tokenizer, items[j][1], decoding.chat)
                if not ids:
                    raise ValueError(f"prompt {items[j][0]!r} encodes to zero tokens; give "
                                     "some text")
                room = ctx - decoding.max_new_tokens if ctx is not None else len(ids)
                n_cut += len(ids) > room
                encoded[j] = ids[-room:]
            return encoded[j]

        try:
            with torch.inference_mode(), (open(path, "ab") if path else nullcontext()) as f:
                for group in _groups(len(items), k, batch_size or max(k, 32)):
                    rows = [(j, i) for j, chunk in group for i in chunk]
                    if all(keys[j][i] in found for j, i in rows):
                        continue
                    new = _samples(lm, tokenizer, [prompt_ids(j) for j, _ in rows], rows, keys,
                                   items, decoding, seed, model_key, stop, pad)
                    new = [x for x in new if x.key not in found]
                    found.update((x.key, x) for x in new)
                    if f is not None:
                        f.write(b"".join(json.dumps(x.to_dict()).encode() + b"\n" for x in new))
                        f.flush()
                        os.fsync(f.fileno())
                    if progress is not None:
                        finished = {j for j, _ in rows if j in todo_set
                                    and all(x in found for x in keys[j])}
                        todo_set.difference_update(finished)
                        if finished:
                            progress(len(finished))
        finally:
            model.train(was_training)
        if n_cut:
            warnings.warn(f"{n_cut} prompt(s) longer than the model's context were cut from the "
                          f"left to leave room for {decoding.max_new_tokens} new tokens",
                          stacklevel=2)
    return [replace(found[x], prompt_id=pid) for (pid, _), ks in zip(items, keys) for x in ks]


def _groups(n_prompts: int, k: int, rows: int):
    """Fixed forward-pass groups over the whole prompt list: (prompt, sample-index chunk)
    pairs filling at most ``rows`` rows (a prompt with k > rows is split into chunks). Being
    fixed, a resumed run recomputes exactly the groups of the uninterrupted one."""
    group, used = [], 0
    for j in range(n_prompts):
        for c in range(0, k, rows):
            chunk = range(c, min(c + rows, k))
            if used + len(chunk) > rows:
                yield group
                group, used = [], 0
            group.append((j, chunk))
            used += len(chunk)
    if group:
        yield group


def _samples(lm, tokenizer, prompt_ids, rows, keys, items, dec, seed, model_key, stop, pad):
    row_keys = [keys[j][i] for j, i in rows]
    gens = [torch.Generator().manual_seed(int(x[:16], 16) >> 1) for x in row_keys]
    u = torch.stack([torch.rand(dec.max_new_tokens, generator=g, dtype=torch.float64)
                     for g in gens])
    toks, lp, slp, lengths, hit = _generate(lm, prompt_ids, u, dec, stop, pad)
    out = []
    for r, (j, i) in enumerate(rows):
        n = int(lengths[r])
        tids = toks[r, :n].tolist()
        body = tids[:-1] if hit[r] else tids
        out.append(Sample(
            key=row_keys[r], prompt_id=items[j][0], prompt=items[j][1], sample_index=i,
            text=tokenizer.decode(body, skip_special_tokens=True), token_ids=tids,
            token_logprobs=lp[r, :n].tolist(), sampling_logprobs=slp[r, :n].tolist(),
            finish_reason="eos" if hit[r] else "length", decoding=asdict(dec), seed=seed,
            model_key=model_key))
    return out
