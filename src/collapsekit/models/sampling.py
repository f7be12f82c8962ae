"""Resumable, deterministic sampling from causal LMs: ``sample`` groups the prompts into
forward passes, reuses the samples of its cache (:mod:`.sample_cache`) and decodes the rest
(:mod:`.decoding`); ``sample_jobs`` does so for several prompt lists, each with its own k,
decoding, seed and cache, in shared forward passes.

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
from contextlib import ExitStack
from dataclasses import asdict, dataclass, replace
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
    return sample_jobs(model, tokenizer, [Job(prompts, k, decoding, seed, cache)],
                       model_key=model_key, batch_size=batch_size, progress=progress,
                       device=device)[0]


@dataclass(frozen=True)
class Job:
    """One :func:`sample` call's prompts and settings, for :func:`sample_jobs`."""

    prompts: Sequence
    k: int = 8
    decoding: Decoding = Decoding()
    seed: int = 0
    cache: str | Path | None = None


def sample_jobs(model, tokenizer, jobs: Sequence[Job], *, model_key: str,
                batch_size: int | None = None, progress: Callable[[int], None] | None = None,
                device=None) -> list[list[Sample]]:
    """:func:`sample` for several jobs (prompts, k, decoding, seed, cache) in shared forward
    passes: the samples of each job, as :func:`sample` returns them. The prompts of all jobs
    are grouped in order, job after job (one job: exactly :func:`sample`'s groups), rows of
    one forward pass may use different decodings (e.g. a greedy and a sampled chain), and
    each job's new samples go to its own cache. The jobs must share ``max_new_tokens`` and
    ``chat``; ``batch_size`` defaults to max(largest k, 32)."""
    if isinstance(jobs, Job) or not isinstance(jobs, Sequence) or not jobs \
            or not all(isinstance(j, Job) for j in jobs):
        raise ValueError("jobs must be a non-empty list of Job(prompts, k, decoding, seed, "
                         "cache)")
    for job in jobs:
        if not isinstance(job.decoding, Decoding):
            raise ValueError("decoding must be a Decoding(...) instance")
    first = jobs[0].decoding
    if any((j.decoding.max_new_tokens, j.decoding.chat) != (first.max_new_tokens, first.chat)
           for j in jobs):
        raise ValueError("the jobs of one sample_jobs call must share max_new_tokens and chat; "
                         "sample the others in a call of their own")
    if not isinstance(model_key, str) or not model_key:
        raise ValueError("model_key must be a non-empty string naming the model, e.g. its spec")
    batch_size = check_int("batch_size", batch_size, 1, optional=True)
    # items: (job, id, text, decoding, seed) over all jobs, in order; ks: k of each item
    items, ks = [], []
    for n, job in enumerate(jobs):
        k = check_int("k", job.k, 1)
        seed = check_int("seed", job.seed)
        items += [(n, pid, text, job.decoding, seed) for pid, text in _prompt_list(job.prompts)]
        ks += [k] * (len(items) - len(ks))
    paths = [Path(j.cache) if j.cache is not None else None for j in jobs]
    own = {path: read_cache(path) for path in dict.fromkeys(paths) if path is not None}
    found = {key: x for cached in own.values() for key, x in cached.items()}
    keys = [[sample_key(model_key, text, dec, seed, i) for i in range(k)]
            for (_, _, text, dec, seed), k in zip(items, ks)]
    todo = [j for j, ks_ in enumerate(keys) if not all(x in found for x in ks_)]
    todo_set = set(todo)
    if progress is not None and len(todo) < len(items):
        progress(len(items) - len(todo))
    if todo:
        ctx = context_length(model)
        if ctx is not None and first.max_new_tokens >= ctx:
            raise NotApplicable(f"max_new_tokens={first.max_new_tokens} leaves no room for the "
                             f"prompt in the model's {ctx}-token context; lower it")
        lm = DecodeModel(model, device)
        stop = torch.tensor(stop_ids(model, tokenizer, first.chat), dtype=torch.long,
                            device=lm.device)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else int(stop[0])
        for path in paths:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
        was_training = model.training
        model.eval()
        encoded: dict[int, list[int]] = {}
        n_cut = 0

        def prompt_ids(j):
            nonlocal n_cut
            if j not in encoded:
                ids = _encode(tokenizer, items[j][2], first.chat)
                if not ids:
                    raise ValueError(f"prompt {items[j][1]!r} encodes to zero tokens; give "
                                     "some text")
                room = ctx - first.max_new_tokens if ctx is not None else len(ids)
                n_cut += len(ids) > room
                encoded[j] = ids[-room:]
            return encoded[j]

        try:
            with torch.inference_mode(), ExitStack() as stack:
                files = {p: stack.enter_context(open(p, "ab")) for p in dict.fromkeys(paths)
                         if p is not None}
                for group in _groups(ks, batch_size or max(max(ks), 32)):
                    rows = [(j, i) for j, chunk in group for i in chunk]
                    if all(keys[j][i] in found for j, i in rows):
                        continue
                    new = _samples(lm, tokenizer, [prompt_ids(j) for j, _ in rows], rows, keys,
                                   items, stop, pad, model_key)
                    for path, f in files.items():  # each job's samples to its own cache
                        mine = [x for j, x in new if paths[items[j][0]] == path
                                and x.key not in own[path]]
                        append_samples(f, mine)
                        own[path].update((x.key, x) for x in mine)
                    found.update((x.key, x) for _, x in new if x.key not in found)
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
                          f"left to leave room for {first.max_new_tokens} new tokens",
                          stacklevel=3)
    out: list[list[Sample]] = [[] for _ in jobs]
    for (n, pid, *_), ks_ in zip(items, keys):
        out[n] += [replace(found[x], prompt_id=pid) for x in ks_]
    return out


def _groups(ks: list[int], rows: int):
    """Fixed forward-pass groups over the whole prompt list (``ks``: samples per prompt):
    (prompt, sample-index chunk) pairs filling at most ``rows`` rows (a prompt with k > rows
    is split into chunks). Being fixed, a resumed run recomputes exactly the groups of the
    uninterrupted one."""
    group, used = [], 0
    for j, k in enumerate(ks):
        for c in range(0, k, rows):
            chunk = range(c, min(c + rows, k))
            if used + len(chunk) > rows:
                yield group
                group, used = [], 0
            group.append((j, chunk))
            used += len(chunk)
    if group:
        yield group


def _samples(lm, tokenizer, prompt_ids, rows, keys, items, stop, pad, model_key):
    """[(item, Sample)] of one forward-pass group of (item, sample index) rows."""
    row_keys = [keys[j][i] for j, i in rows]
    decs = [items[j][3] for j, _ in rows]
    gens = [torch.Generator().manual_seed(int(x[:16], 16) >> 1) for x in row_keys]
    u = torch.stack([torch.rand(d.max_new_tokens, generator=g, dtype=torch.float64)
                     for g, d in zip(gens, decs)])
    toks, lp, slp, lengths, hit = _generate(lm, prompt_ids, u, decs, stop, pad)
    out = []
    for r, (j, i) in enumerate(rows):
        n = int(lengths[r])
        tids = toks[r, :n].tolist()
        body = tids[:-1] if hit[r] else tids
        out.append((j, Sample(
            key=row_keys[r], prompt_id=items[j][1], prompt=items[j][2], sample_index=i,
            text=tokenizer.decode(body, skip_special_tokens=True), token_ids=tids,
            token_logprobs=lp[r, :n].tolist(), sampling_logprobs=slp[r, :n].tolist(),
            finish_reason="eos" if hit[r] else "length", decoding=asdict(decs[r]),
            seed=items[j][4], model_key=model_key)))
    return out
