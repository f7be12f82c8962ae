"""Resumable, deterministic sampling from causal LMs: ``sample`` groups the prompts into
forward passes, reuses the samples of its cache (:mod:`.sample_cache`) and decodes the rest
(:mod:`.decoding`).

Each sample i of a prompt draws its tokens by inverse-CDF sampling from its own stream of
uniforms, made by a ``torch.Generator`` (on CPU) seeded from the sample's content key
sha256(model_key, prompt, decoding.key(), seed, i). A forward pass decodes a fixed group of
rows (up to ``batch_size``, default max(k, 32); whole prompts, left-padded, positions
counting real tokens only; each prompt prefilled once for its rows), and a resumed run recomputes whole groups, so samples are
bit-identical whether or not the run resumed. Changing ``k``, ``batch_size``, the device or
the other prompts of the call keeps the random draws but can change logits in the last bits
(rarely flipping a token).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..errors import NotApplicable
from ..params import check_int
from .decoding import DecodeModel, Decoding, _generate, stop_ids
from .longcontext import context_length
from .sample_cache import Sample, append_samples, read_cache, sample_key
from .scoring import chat_context


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
    k = check_int("k", k, 1)
    if not isinstance(decoding, Decoding):
        raise ValueError("decoding must be a Decoding(...) instance")
    seed = check_int("seed", seed)
    if not isinstance(model_key, str) or not model_key:
        raise ValueError("model_key must be a non-empty string naming the model, e.g. its spec")
    batch_size = check_int("batch_size", batch_size, 1, optional=True)
    path = Path(cache) if cache is not None else None
    found = read_cache(path) if path is not None else {}
    keys = [[sample_key(model_key, text, decoding, seed, i) for i in range(k)] for _, text in items]
    todo = [j for j, ks in enumerate(keys) if not all(x in found for x in ks)]
    todo_set = set(todo)
    if progress is not None and len(todo) < len(items):
        progress(len(items) - len(todo))
    if todo:
        ctx = context_length(model)
        if ctx is not None and decoding.max_new_tokens >= ctx:
            raise NotApplicable(f"max_new_tokens={decoding.max_new_tokens} leaves no room for the "
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
                        append_samples(f, new)
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
