"""Ambiguity preservation (NRR-Core, Saito 2025; NRR-Phi, Saito 2026): does a model keep
several interpretations of an ambiguous input open until the information arrives, or does
it commit early (premature semantic collapse)?

Two measurements on the bundled two-turn items (``data/ambiguity.jsonl``: an ambiguous
first turn, its candidate interpretations, a second turn that selects one):

1. Candidate entropy, from the model's own probabilities. Each candidate c is scored as the
   continuation of the assistant's reply "You mean c" after the dialogue so far: turn 1 =
   [user: turn1]; turn 2 = [user: turn1, assistant: a fixed clarifying question, user:
   turn2]. p(c) = softmax over the candidates of log p(c | dialogue) (``scoring="sum"``,
   the default) or of the per-token mean (``scoring="mean"``, length-normalised), and
   H = −Σ p log₂ p bits. Good: high H at turn 1, low H and the intended candidate on top
   at turn 2; early collapse: low H at turn 1.
2. Interpretation entropy (NRR-Phi's text-to-state pipeline): k sampled answers to "what
   does this mean?" are grouped into meaning classes (Kuhn et al.'s first-member rule with
   the meaning judge of ``--judge``, by default the cosine judge on all-MiniLM-L6-v2
   embeddings at ``threshold``; the records name the judge) and H = state entropy of the class
   frequencies in bits; the collapse baseline, one greedy answer, has H = 0 by
   construction. Conflict markers (:func:`metrics.ambiguity.detect_conflicts`) are counted
   in the inputs and the answers (an answer with a hedge or "but" keeps a conflict open).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import InputFileError
from ...metrics.ambiguity import (candidate_distribution, detect_conflicts, entropy_bits,
                                  state_entropy)
from ...params import check_int
from ...stats.bootstrap import bootstrap_mean_ci

SECTION = "ambiguity"
PREFIX = "You mean"
CLARIFY = "Could you tell me a bit more about what you mean?"
ASK = 'Someone says: "{text}"\nWhat do they mean? Answer in one short sentence.'
THRESHOLD = 0.6  # cosine of two answers with the same meaning (see docs/ambiguity.md)
SCORINGS = ("sum", "mean")


@dataclass(frozen=True)
class Item:
    """One two-turn item: ``candidates[intended]`` is what ``turn2`` selects."""

    id: str
    category: str
    turn1: str
    candidates: tuple[str, ...]
    turn2: str
    intended: int


def parse_items(rows: list[dict], where: str = "items") -> list[Item]:
    """Items from dicts ``{id, turn1, candidates, turn2, intended[, category]}``; a
    ValueError names the first bad item and what to fix."""
    if not rows:
        raise ValueError(f"{where} holds no items: give at least one")
    items = []
    for n, r in enumerate(rows, start=1):
        name = f"{where}, item {n} ({r.get('id', '?')!r})"
        for key in ("turn1", "turn2"):
            if not isinstance(r.get(key), str) or not r[key].strip():
                raise ValueError(f"{name}: {key!r} is missing or empty; give the text")
        cands = r.get("candidates")
        if (not isinstance(cands, list) or len(cands) < 2
                or not all(isinstance(c, str) and c.strip() for c in cands)):
            raise ValueError(f"{name}: 'candidates' must list at least 2 non-empty "
                             "interpretations")
        if len(set(cands)) != len(cands):
            raise ValueError(f"{name}: 'candidates' repeats an interpretation")
        k = check_int(f"{name}: 'intended'", r.get("intended"), 0, len(cands) - 1)
        items.append(Item(str(r.get("id", n)), str(r.get("category", "")), r["turn1"],
                          tuple(cands), r["turn2"], k))
    if len({i.id for i in items}) != len(items):
        raise ValueError(f"{where}: item ids are not unique")
    return items


def load_items(source: str | Path = "bundled") -> list[Item]:
    """The bundled items (``"bundled"``) or those of a JSONL file."""
    from importlib import resources

    from ...io import read_jsonl

    if str(source) == "bundled":
        text = resources.files("collapsekit.data").joinpath("ambiguity.jsonl").read_text("utf-8")
        return parse_items([json.loads(ln) for ln in text.splitlines() if ln.strip()],
                           "bundled ambiguity items")
    try:
        return parse_items(read_jsonl(source), str(source))
    except ValueError as e:
        raise InputFileError(str(e)) from None


def _summary(run, metric: str, values, *, seed: int, **scope) -> None:
    mean, low, high = bootstrap_mean_ci(values, seed=seed)
    run.add(f"mean_{metric}", mean, section=SECTION, ci_low=low, ci_high=high,
            n_items=len(values), **scope)


def item_contexts(tok, items: list[Item]) -> tuple[list[list[int]], list[list[str]]]:
    """(contexts, candidates) to score: per item the turn-1 and the turn-2 dialogue, each
    followed by PREFIX, with the item's candidates (a leading space each)."""
    from ...models.scoring import chat_context

    contexts, cands = [], []
    for it in items:
        second = [{"role": "user", "content": it.turn1},
                  {"role": "assistant", "content": CLARIFY},
                  {"role": "user", "content": it.turn2}]
        contexts += [chat_context(tok, second[:1], PREFIX), chat_context(tok, second, PREFIX)]
        cands += [[" " + c for c in it.candidates]] * 2
    return contexts, cands


def score_items(lm, items: list[Item], *, batch_size: int = 16) -> list[dict]:
    """Per item and scoring: candidate probabilities and entropies at turns 1 and 2."""
    from ...models.scoring import score_continuations
    from ..progress import progress_bar

    tok = lm.tokenizer
    contexts, cands = item_contexts(tok, items)
    total = sum(map(len, cands))
    with progress_bar("ambiguity: scoring candidates", total) as tick:
        scored = score_continuations(lm.model, tok, contexts, cands, batch_size=batch_size,
                                     progress=tick)
    rows = []
    for n, it in enumerate(items):
        lp = [np.array([s.logprob for s in scored[2 * n + t]]) for t in (0, 1)]
        ntok = np.array([s.n_tokens for s in scored[2 * n]])
        for scoring in SCORINGS:
            p = [candidate_distribution(x, ntok if scoring == "mean" else None) for x in lp]
            h = [entropy_bits(q) for q in p]
            rows.append({"item_id": it.id, "category": it.category, "scoring": scoring,
                         "n_candidates": len(it.candidates), "intended": it.intended,
                         "p_turn1": p[0].tolist(), "p_turn2": p[1].tolist(),
                         "entropy_turn1": h[0], "entropy_turn2": h[1],
                         "normalized_entropy_turn1": h[0] / np.log2(len(p[0])),
                         "normalized_entropy_turn2": h[1] / np.log2(len(p[1])),
                         "top_turn1": int(p[0].argmax()), "top_turn2": int(p[1].argmax()),
                         "logprobs_turn1": lp[0].tolist(), "logprobs_turn2": lp[1].tolist(),
                         "n_tokens": ntok.tolist()})
    return rows


def two_turn_stage(run, lm, items: list[Item], *, seed: int = 0, batch_size: int = 16
                   ) -> None:
    """Candidate entropy at turns 1 and 2, entropy drop, p(intended) and top-1 accuracy."""
    if run.has("mean_candidate_entropy", section=SECTION, turn=2):
        return
    with run.timer("ambiguity_scoring"):
        rows = score_items(lm, items, batch_size=batch_size)
        for scoring in SCORINGS:
            rs = [r for r in rows if r["scoring"] == scoring]
            for t in (1, 2):
                per = {"candidate_entropy": [r[f"entropy_turn{t}"] for r in rs],
                       "normalized_candidate_entropy":
                           [r[f"normalized_entropy_turn{t}"] for r in rs],
                       "intended_probability":
                           [r[f"p_turn{t}"][r["intended"]] for r in rs],
                       "intended_accuracy":
                           [float(r[f"top_turn{t}"] == r["intended"]) for r in rs]}
                for metric, values in per.items():
                    _summary(run, metric, values, seed=seed, turn=t, scoring=scoring)
            _summary(run, "entropy_drop", [r["entropy_turn1"] - r["entropy_turn2"]
                                           for r in rs], seed=seed, scoring=scoring)
        run.table("ambiguity_items", rows)
    run.write()


def interpretation_rows(items: list[Item], answers: dict, greedy: dict, emb: dict, *,
                        threshold: float = THRESHOLD, judge=None) -> list[dict]:
    """Per item: meaning classes of the sampled answers, their state entropy (bits), the
    share of candidates that are some answer's nearest candidate (coverage), and the
    greedy answer's. ``answers``/``greedy``: item id → texts; ``emb``: text → vector;
    ``judge``: a meaning judge (default the cosine judge at ``threshold``)."""
    from ...metrics import semantic_classes
    from ...metrics.semantic import unit_rows
    from ...models.judges import make_judge

    judge = judge or make_judge("cosine", threshold=threshold)
    rows = []
    for it in items:
        texts = answers[it.id]
        e = np.stack([emb[t] for t in texts])
        classes = semantic_classes(len(texts), judge(texts, e)[0])
        cand = unit_rows(np.stack([emb[c] for c in it.candidates]))

        def coverage(ts):
            near = unit_rows(np.stack([emb[t] for t in ts])) @ cand.T
            return len(set(near.argmax(1).tolist())) / len(it.candidates)

        g = greedy[it.id]
        rows.append({"item_id": it.id, "category": it.category, "k": len(texts),
                     "classes": classes.tolist(), "n_classes": int(classes.max() + 1),
                     "interpretation_entropy": state_entropy(classes),
                     "candidate_coverage": coverage(texts), "greedy_answer": g,
                     "greedy_candidate_coverage": coverage([g]),
                     "conflict_rate": float(np.mean([_flag(t) for t in texts])),
                     "greedy_conflict": _flag(g),
                     "input_markers": [m.text for m in detect_conflicts(it.turn1).markers]})
    return rows


def _flag(text: str) -> float:
    """1.0 when ``text`` carries a conflict (see detect_conflicts); an empty answer has none."""
    return float(detect_conflicts(text).flag) if text.strip() else 0.0


def sampling_stage(run, lm, items: list[Item], *, k: int, max_new_tokens: int, seed: int = 0,
                   threshold: float = THRESHOLD, batch_size: int | None = None,
                   judge: str = "cosine") -> None:
    """Interpretation entropy of k sampled answers per item vs the greedy baseline (H = 0);
    ``judge``: the ``--judge`` spec of the meaning classes."""
    from dataclasses import replace

    from ...models.decoding import Decoding
    from ...models.embedders import embed
    from ...models.judges import make_judge
    from ...models.sampling import Job, sample_jobs
    from ..progress import progress_bar

    if run.has("mean_interpretation_entropy", section=SECTION, decoding="sampling"):
        return
    prompts = list(enumerate(ASK.format(text=it.turn1) for it in items))
    dec = Decoding(temperature=1.0, max_new_tokens=max_new_tokens)
    cache = run.file("ambiguity_samples.jsonl")
    jobs = [Job(prompts, k, dec, seed, cache),  # the greedy rows ride in the same passes
            Job(prompts, 1, replace(dec, temperature=0.0), seed, cache)]
    with run.timer("ambiguity sampling"), \
            progress_bar("ambiguity sampling", 2 * len(prompts)) as tick:
        sampled, greedy_out = sample_jobs(
            lm.model, lm.tokenizer, jobs, model_key=lm.weight_hash, progress=tick,
            batch_size=batch_size or max(k, min(64, k * len(items))), device=lm.device)
    run.write()
    got = {"sampling": sampled, "greedy": greedy_out}
    answers = {it.id: [s.text for s in got["sampling"] if s.prompt_id == n]
               for n, it in enumerate(items)}
    greedy = {it.id: got["greedy"][n].text for n, it in enumerate(items)}
    with run.timer("ambiguity_interpretations"):
        texts = list(dict.fromkeys([t for ts in answers.values() for t in ts]
                                   + list(greedy.values())
                                   + [c for it in items for c in it.candidates]))
        emb = dict(zip(texts, np.asarray(embed(texts), dtype=np.float64)))
        judged = make_judge(judge, threshold=threshold, device=str(lm.device))
        rows = interpretation_rows(items, answers, greedy, emb, judge=judged)
        scope = dict(turn=1, k=k)
        for key, metric in (("interpretation_entropy", "interpretation_entropy"),
                            ("n_classes", "num_interpretations"),
                            ("candidate_coverage", "candidate_coverage"),
                            ("conflict_rate", "conflict_rate")):
            by = {"judge": judged.name} if key in ("interpretation_entropy",
                                                   "n_classes") else {}
            _summary(run, metric, [r[key] for r in rows], seed=seed, decoding="sampling",
                     **scope, **by)
        greedy_values = {"interpretation_entropy": [0.0] * len(rows),
                         "num_interpretations": [1.0] * len(rows),
                         "candidate_coverage": [r["greedy_candidate_coverage"] for r in rows],
                         "conflict_rate": [r["greedy_conflict"] for r in rows]}
        for metric, values in greedy_values.items():
            _summary(run, metric, values, seed=seed, decoding="greedy", turn=1, k=1)
        run.table("ambiguity_interpretations", rows)
        run.table("ambiguity_samples", [
            {"prompt_id": items[s.prompt_id].id, "prompt": s.prompt, "text": s.text,
             "decoding": "greedy" if s.decoding["temperature"] == 0 else "sampling",
             "sample_index": s.sample_index} for s in got["sampling"] + got["greedy"]])
        run.meta(ambiguity=dict(threshold=threshold, judge=judged.name, prefix=PREFIX,
                                clarify=CLARIFY, ask=ASK))
    run.write()


def check(s) -> dict:
    """Read the items and parse the judge before the run is made."""
    from ...models.judges import parse_judge

    return {"n_items": len(load_items(s.items)),
            "judge": parse_judge(s.judge, s.threshold).name}


def study_stage(run, lm, s) -> None:
    """Both measurements into ``run`` (section "ambiguity"): every item is scored two-turn;
    the first ``n_sampled`` items (the bundled file mixes the categories) are sampled k
    times; a part already recorded (an interrupted run) is not redone."""
    its = load_items(s.items)
    sampled = its[:s.n_sampled]
    _summary(run, "input_conflict_rate", [_flag(it.turn1) for it in its], seed=s.seed)
    two_turn_stage(run, lm, its, seed=s.seed, batch_size=s.batch_size)
    sampling_stage(run, lm, sampled, k=s.k, max_new_tokens=s.max_new_tokens, seed=s.seed,
                   threshold=s.threshold, judge=s.judge)
    run.meta(samples_table="ambiguity_samples")
