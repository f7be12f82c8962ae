"""``collapsekit passkey``: passkey retrieval accuracy versus context length.

The probe of "Stuffed Mamba" (Chen et al. 2024; the task is Mohtashami & Jaggi's 2023
passkey retrieval): a random 5-digit key is hidden at a relative depth d ∈ [0, 1] of real
filler text (human text from :mod:`collapsekit.corpora`, cut at sentence boundaries), the
prompt ends with a question and an answer cue, and the model decodes a few tokens
greedily. A trial is correct iff the key appears in the output (spaces and commas
removed, so "71 432" and "71,432" count). A prompt of length L has exactly L tokens:

    [header] filler[:k] [needle] filler[k:] [question + cue],   k ≈ d · (filler tokens)

with k the sentence boundary nearest to d · (filler tokens). Each cell (L, d) runs several
trials with different keys and filler offsets, all seeded. Accuracy per cell and per
length (mean over depths and trials, percentile-bootstrap 95% CI), and the **collapse
length**: the smallest L whose accuracy is below ``threshold`` (default 0.5, chance for a
yes/no task and a conventional "fails more often than not"); none when accuracy stays at
or above it. Lengths above the model's context minus the decoded tokens are clamped to it
with a warning, recorded in the run. Long prompts are prefilled in chunks through the KV
cache (:mod:`collapsekit.models.longcontext`), so activation memory stays O(chunk).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ...params import check_int
from ...stats.bootstrap import bootstrap_mean_ci

SECTION = "passkey"
HEADER = "A pass key is hidden in the text below. Find it and remember it."
NEEDLE = "The pass key is {key}. Remember it. {key} is the pass key."
QUESTION = "What is the pass key? The pass key is"
REPEAT = ("The grass is green. The sky is blue. The sun is yellow. Here we go. "
          "There and back again.")  # Mohtashami & Jaggi's filler, for --filler repeat
THRESHOLD = 0.5


@dataclass(frozen=True)
class Trial:
    """One passkey prompt: token ``ids`` (exactly ``length``), key, where the needle starts."""

    length: int
    depth: float
    trial: int
    passkey: str
    ids: list
    needle_at: int


def is_correct(passkey: str, output: str) -> bool:
    """Whether ``passkey`` appears in ``output`` once spaces and commas are removed."""
    return passkey in re.sub(r"[\s,]", "", output)


def filler_sentences(source: str = "wikipedia", *, words: int = 20000) -> list[str]:
    """Sentences of real human text (``source`` in corpora.SOURCES) totalling ≥ ``words``
    words, or Mohtashami & Jaggi's repeated filler for ``source="repeat"``."""
    from ...corpora import human_texts

    if source == "repeat":
        return re.split(r"(?<=\.)\s+", REPEAT)
    out, n = [], 0
    for text in human_texts(source, min_words=20):
        for s in re.split(r"(?<=[.!?])\s+", text):
            if len(s.split()) >= 3:
                out.append(s)
                n += len(s.split())
        if n >= words:
            break
    return out


def make_trials(tokenizer, sentences: list[str], *, lengths, depths, trials: int,
                seed: int = 0) -> list[Trial]:
    """Every (length, depth, trial) prompt (see the module docstring); keys and filler
    offsets come from ``numpy.random.default_rng([seed, length, depth·1000, trial])``."""
    if not sentences:
        raise ValueError("no filler sentences: give a non-empty filler source")
    check_int("trials", trials, 1)
    if not depths or any(not 0 <= d <= 1 for d in depths):
        raise ValueError(f"depths must be numbers in [0, 1], got {depths!r}")
    enc = tokenizer([" " + s for s in sentences], add_special_tokens=False)["input_ids"]
    enc = [e for e in enc if e]
    head = list(tokenizer(HEADER)["input_ids"])
    ask = list(tokenizer("\n" + QUESTION, add_special_tokens=False)["input_ids"])
    out = []
    for length in lengths:
        for depth in depths:
            for t in range(trials):
                rng = np.random.default_rng([seed, int(length), round(depth * 1000), t])
                key = str(rng.integers(10000, 100000))
                needle = list(tokenizer(" " + NEEDLE.format(key=key),
                                        add_special_tokens=False)["input_ids"])
                room = int(length) - len(head) - len(needle) - len(ask)
                if room < 1:
                    raise ValueError(f"length {length} cannot hold the prompt's "
                                     f"{int(length) - room} fixed tokens: use longer lengths")
                fill, cuts, i = [], [0], int(rng.integers(len(enc)))
                while len(fill) < room:
                    fill += enc[i % len(enc)]
                    cuts.append(min(len(fill), room))
                    i += 1
                k = min(cuts, key=lambda c: abs(c - depth * room))
                ids = head + fill[:k] + needle + fill[k:room] + ask
                out.append(Trial(int(length), float(depth), t, key, ids, len(head) + k))
    return out


def score(answer: Callable[[list[Trial]], list[str]], trials: list[Trial], *,
          batch_tokens: int = 4096, progress=None) -> list[dict]:
    """Rows ``{length, depth, trial, passkey, needle_at, output, correct}``. ``answer`` (the
    model, or any function) maps a list of same-length Trials to one output text each; it
    gets up to max(1, ``batch_tokens`` // length) trials at a time."""
    rows = []
    for L in sorted({t.length for t in trials}):
        group = [t for t in trials if t.length == L]
        step = max(1, batch_tokens // L)
        for i in range(0, len(group), step):
            part = group[i:i + step]
            texts = answer(part)
            if len(texts) != len(part):
                raise ValueError(f"answer gave {len(texts)} outputs for {len(part)} trials")
            rows += [{"length": tr.length, "depth": tr.depth, "trial": tr.trial,
                      "passkey": tr.passkey, "needle_at": tr.needle_at, "output": text,
                      "correct": bool(is_correct(tr.passkey, text))}
                     for tr, text in zip(part, texts)]
            if progress:
                progress(len(part))
    return rows


def collapse_length(accuracy: dict, threshold: float = THRESHOLD) -> int | None:
    """Smallest length whose accuracy is below ``threshold``; None if none is."""
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold={threshold!r} must be in (0, 1]")
    below = [L for L, acc in accuracy.items() if acc < threshold]
    return min(below) if below else None


def summarise(rows: list[dict], *, threshold: float = THRESHOLD, seed: int = 0) -> dict:
    """``cells`` [(length, depth, mean, low, high, n)], ``lengths`` [(length, mean, low,
    high, n)] with percentile-bootstrap 95% CIs over trials, and ``collapse_length``."""
    if not rows:
        raise ValueError("no passkey trials to summarise")
    cells, lengths = {}, {}
    for r in rows:
        cells.setdefault((r["length"], r["depth"]), []).append(float(r["correct"]))
        lengths.setdefault(r["length"], []).append(float(r["correct"]))
    cell = [(L, d, *bootstrap_mean_ci(v, seed=seed), len(v)) for (L, d), v in sorted(cells.items())]
    per = [(L, *bootstrap_mean_ci(v, seed=seed), len(v)) for L, v in sorted(lengths.items())]
    return {"cells": cell, "lengths": per,
            "collapse_length": collapse_length({p[0]: p[1] for p in per}, threshold)}


def clamp_lengths(lengths, limit: int | None) -> tuple[list[int], list[int]]:
    """(sorted distinct lengths with those above ``limit`` replaced by it, the ones
    clamped); warns when any is."""
    if not lengths or any(isinstance(L, bool) or not isinstance(L, int) or L < 1
                          for L in lengths):
        raise ValueError(f"lengths must be positive ints, got {lengths!r}")
    over = sorted(L for L in set(lengths) if limit is not None and L > limit)
    if over:
        warnings.warn(f"passkey lengths {over} exceed the model's usable context of {limit} "
                      f"tokens (context minus decoded tokens): clamped to {limit}", stacklevel=2)
    return sorted({min(L, limit) if limit else L for L in lengths}), over


def model_answer(lm, *, max_new_tokens: int = 8, chunk: int = 512):
    """A (same-length Trials → texts) function: greedy decoding after a chunked prefill."""
    from ...models.longcontext import greedy

    stop = [i for i in {lm.tokenizer.eos_token_id} if i is not None]

    def answer(trials: list[Trial]) -> list[str]:
        rows = greedy(lm.model, [t.ids for t in trials], max_new_tokens=max_new_tokens,
                      chunk=chunk, stop_ids=stop)
        return [lm.tokenizer.decode(r, skip_special_tokens=True) for r in rows]
    return answer


def _done_rows(run) -> list[dict]:
    if "passkey_trials" not in run.to_dict()["tables"]:
        return []
    cols = run.read_table("passkey_trials")
    return [dict(zip(cols, vals)) for vals in zip(*cols.values())]


def study_stage(run, lm, s) -> None:
    """Passkey records into ``run`` (section "passkey"); trials already in the run's
    ``passkey_trials`` table (an interrupted run) are not rerun."""
    from ...models.longcontext import context_length
    from ..progress import progress_bar

    ctx = context_length(lm.model)
    limit = ctx - s.max_new_tokens if ctx else None
    lens, over = clamp_lengths(list(s.lengths), limit)
    if over:
        run.meta(passkey_clamped={"requested": over, "limit": limit})
    sentences = filler_sentences(s.filler, words=2 * max(lens))
    todo = make_trials(lm.tokenizer, sentences, lengths=lens, depths=s.depths,
                       trials=s.trials, seed=s.seed)
    rows = _done_rows(run)
    seen = {(r["length"], r["depth"], r["trial"]) for r in rows}
    todo = [t for t in todo if (t.length, t.depth, t.trial) not in seen]
    answer = model_answer(lm, max_new_tokens=s.max_new_tokens, chunk=s.chunk)
    with progress_bar("passkey", len(todo)) as tick:
        for L in lens:
            batch = [t for t in todo if t.length == L]
            if batch:
                rows += score(answer, batch, batch_tokens=s.batch_tokens, progress=tick)
                run.table("passkey_trials", rows)
    _record(run, summarise(rows, threshold=s.threshold, seed=s.seed), s.threshold, over,
            limit)
    run.write()


def _record(run, summ: dict, threshold: float, over: list, limit) -> None:
    for L, d, mean, lo, hi, _ in summ["cells"]:
        run.add("passkey_cell_accuracy", mean, section=SECTION, depth=d, length=L, ci_low=lo,
                ci_high=hi)
    for L, mean, lo, hi, _ in summ["lengths"]:
        run.add("passkey_accuracy", mean, section=SECTION, length=L, ci_low=lo, ci_high=hi)
    first = summ["lengths"][0]
    note = ("accuracy stayed at or above the threshold at every length"
            if summ["collapse_length"] is None else
            "already below the threshold at the shortest length"
            if summ["collapse_length"] == first[0] else "")
    if over:
        note += ("; " if note else "") + f"lengths {over} clamped to the context ({limit})"
    run.add("passkey_collapse_length", summ["collapse_length"], section=SECTION,
            threshold=threshold, **({"note": note} if note else {}))
