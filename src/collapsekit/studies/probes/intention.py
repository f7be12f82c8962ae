"""``collapsekit intention``: intention collapse on arithmetic word problems (Vera 2026,
"Intention Collapse: Intention-Level Metrics for Reasoning in Language Models").

Three regimes per problem, all greedy, read out at the position just before the answer:

- ``direct``: asked for the number only; the assistant turn starts with the answer cue
  ("The answer is");
- ``cot``: asked to think step by step; the model writes up to ``cot_tokens`` tokens, then
  "\\n" + the cue is appended;
- ``babble``: asked to describe the weather first; its text is cut to the item's CoT length
  (a length-matched control without reasoning), then "\\n" + the cue.

At the cue the readout gives the next-token distribution and every layer's hidden state,
and a short greedy continuation whose first integer is the parsed answer. Per regime:
accuracy; intention entropy H_int in bits over the full vocabulary and over the top-k tokens
renormalised (the paper's code, k = 100), item means with bootstrap intervals; the AUROC of
−H_int for correctness (the paper finds little item-level signal); per layer (block_1 ..
final_norm; the embedding of the cue token is the same for every item) dim_eff at 90 % and
the participation ratio of the items' hidden states, and the held-out probe AUROC
(Recov) on the probed layers. Reasoning/babble generations are cached in the run folder;
regimes already recorded are skipped on resume.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from ... import metrics
from ...errors import InputFileError
from ...io import read_data_or_file
from ...metrics.intention import auroc, intention_entropy, parse_answer, probe_auroc
from ...stats.bootstrap import bootstrap_mean_ci

SECTION = "intention"
REGIMES = ("direct", "cot", "babble")
CUE = "The answer is"
ASK = {"direct": "Answer with only the number.",
       "cot": "Let's think step by step.",
       "babble": "Do not solve it yet: first describe today's weather in a few sentences."}
TABLE = "intention_items"
_INT = re.compile(r"-?\d+")


def load_problems(path: str | Path | None = None) -> list[dict]:
    """Problems ``{id, question, answer}`` from a JSONL file (default: the bundled
    ``arithmetic.jsonl``); answers must be integers. Errors name the file and line."""
    text, where = read_data_or_file(path, "arithmetic.jsonl", "problems")
    problems, seen = [], set()
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{where}, line {n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict) or not isinstance(row.get("question"), str) \
                or not row["question"].strip():
            raise InputFileError(f"{where}, line {n}: needs a non-empty string 'question'")
        if "answer" not in row:
            raise InputFileError(f"{where}, line {n}: no 'answer' field; give each problem "
                                 "its integer answer")
        answer = _integer(row["answer"])
        if answer is None:
            raise InputFileError(f"{where}, line {n}: answer {row['answer']!r} is not an "
                                 "integer; this study scores integer answers only")
        pid = str(row.get("id", f"line-{n}"))
        if pid in seen:
            raise InputFileError(f"{where}, line {n}: id {pid!r} is used twice; make ids unique")
        seen.add(pid)
        problems.append({"id": pid, "question": row["question"].strip(), "answer": answer})
    if len(problems) < 2:
        raise InputFileError(f"{where} holds {len(problems)} problem(s); give at least 2")
    return problems


def _integer(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and _INT.fullmatch(value.strip()):
        return int(value.strip())
    return None


def probe_layer_indices(n_points: int, count: int | None) -> list[int]:
    """Capture-point indices 1..n_points-1 (embed left out): all, or ``count`` evenly spaced
    ones always including the last (final_norm)."""
    layers = list(range(1, n_points))
    if count is None or count >= len(layers):
        return layers
    picks = np.linspace(0, len(layers) - 1, count).round().astype(int)
    return [layers[i] for i in sorted(set(picks.tolist()))]


def _user(question: str, regime: str) -> str:
    return f"{question}\n{ASK[regime]}"


def generate_stage(run, lm, problems, s, *, seed: int) -> dict:
    """Greedy CoT and babble text per problem (cached in ``run``); returns
    ``{(regime, id): (text, n_tokens)}`` with babble cut to the item's CoT length."""
    from ...models.readout import chat_text
    from ...models.decoding import Decoding
    from ...models.sampling import sample
    from ..progress import progress_bar

    chat = bool(getattr(lm.tokenizer, "chat_template", None))
    prompts = [((r, p["id"]), _user(p["question"], r)) for r in ("cot", "babble")
               for p in problems]
    if not chat:  # the plain-text layout of chat_text: message, newline, reply
        prompts = [(key, chat_text(lm.tokenizer, text, chat=False)) for key, text in prompts]
    decoding = Decoding(temperature=0, max_new_tokens=s.cot_tokens, chat=chat)
    with run.timer("intention_generation"), \
            progress_bar("intention: reasoning and babble", len(prompts)) as tick:
        samples = sample(lm.model, lm.tokenizer, [(f"{r}:{i}", t) for (r, i), t in prompts],
                         k=1, decoding=decoding, seed=seed, model_key=lm.weight_hash,
                         cache=run.file("intention/generations.jsonl"),
                         batch_size=s.sample_batch, progress=tick)
    body = {key: smp.token_ids[:len(smp.token_ids) - (smp.finish_reason == "eos")]
            for (key, _), smp in zip(prompts, samples)}
    generated = {}
    for p in problems:
        cot = body[("cot", p["id"])]
        for regime, ids in (("cot", cot), ("babble", body[("babble", p["id"])][:len(cot)])):
            generated[(regime, p["id"])] = (
                lm.tokenizer.decode(ids, skip_special_tokens=True), len(ids))
    return generated


def readout_texts(tokenizer, problems, regime: str, generated: dict) -> list[str]:
    """The text read out for each problem: prompt, (reasoning or babble,) answer cue."""
    from ...models.readout import answer_cue, chat_text

    chat = bool(getattr(tokenizer, "chat_template", None))
    cue = answer_cue(tokenizer, CUE)
    texts = []
    for p in problems:
        before = generated[(regime, p["id"])][0].strip() if regime != "direct" else ""
        reply = f"{before}\n{cue}" if before else cue
        texts.append(chat_text(tokenizer, _user(p["question"], regime), reply, chat=chat))
    return texts


def _mean_ci(run, metric: str, values, *, seed: int, regime: str, **extra) -> None:
    mean, low, high = bootstrap_mean_ci(values, seed=seed)
    run.add(metric, mean, section=SECTION, regime=regime, ci_low=low, ci_high=high,
            n_items=len(values), **extra)


def score_regime(run, r, problems, regime: str, s, *, seed: int, generated: dict,
                 probe_layers: list[int]) -> list[dict]:
    """Records of one regime from its readout ``r``; returns the per-item table rows."""
    h_full = intention_entropy(r.logits, kind="logits")
    h_top = intention_entropy(r.logits, top_k=s.top_k, kind="logits")
    parsed = [parse_answer(c) for c in r.continuation]
    correct = np.array([a == p["answer"] for a, p in zip(parsed, problems)])
    n_gen = [generated[(regime, p["id"])][1] if regime != "direct" else 0 for p in problems]
    for layer in range(1, len(r.layer_names)):
        where = dict(section=SECTION, regime=regime, layer=layer,
                     layer_name=r.layer_names[layer])
        x = r.hidden[layer]
        ev = metrics.spectrum(x)
        if ev[0] > 0:
            run.add("dim_eff", metrics.dim_eff(ev, 0.9), **where)
            run.add("participation_ratio", metrics.participation_ratio(ev), **where)
        else:
            for m in ("dim_eff", "participation_ratio"):
                run.add(m, None, note="the items' hidden states do not vary here", **where)
        if layer in probe_layers:
            res = probe_auroc(x, correct, folds=s.folds, seed=seed)
            run.add("probe_auroc", res["auroc"], ci_low=res["ci_low"], ci_high=res["ci_high"],
                    note=res.get("note", f"{res['folds']}-fold, {res['n_positive']} of "
                                         f"{res['n']} correct"), **where)
    one_class = correct.all() or not correct.any()
    run.add("entropy_auroc", None if one_class else auroc(-h_full, correct), section=SECTION,
            regime=regime, **({"note": "all items right or all wrong"} if one_class else {}))
    _mean_ci(run, "intention_entropy", h_full, seed=seed, regime=regime)
    _mean_ci(run, f"intention_entropy_top{s.top_k}", h_top, seed=seed, regime=regime)
    run.add("generated_tokens", float(np.mean(n_gen)), section=SECTION, regime=regime)
    _mean_ci(run, "accuracy", correct.astype(float), seed=seed, regime=regime)  # last: done
    return [{"id": p["id"], "regime": regime, "answer": p["answer"], "parsed": a,
             "correct": bool(ok), "h_int": float(h), f"h_int_top{s.top_k}": float(ht),
             "generated_tokens": g, "input_tokens": t, "output": c,
             "reasoning": generated[(regime, p["id"])][0] if regime != "direct" else ""}
            for p, a, ok, h, ht, g, t, c in zip(problems, parsed, correct, h_full, h_top, n_gen,
                                                r.n_tokens, r.continuation)]


def check(s) -> dict:
    """Read the problems before the run is made."""
    return {"problems": str(s.problems or "bundled"),
            "n_items": len(load_problems(s.problems)[:s.n_items])}


def study_stage(run, lm, s) -> None:
    """The intention study: adds the section's records and the ``intention_items`` table to
    ``run``; regimes already recorded (an interrupted run) are not redone. ``s``: the
    registry's settings (problems, n_items, cot_tokens, answer_tokens, top_k, folds,
    probe_layers, batch_size, sample_batch, seed)."""
    from ...models.readout import readout
    from ..progress import progress_bar

    seed = s.seed
    todo = [r for r in REGIMES if not run.has("accuracy", section=SECTION, regime=r)]
    items = load_problems(s.problems)[:s.n_items]
    rows = []
    if TABLE in run.to_dict()["tables"]:  # rows of the regimes a resumed run already has
        cols = run.read_table(TABLE)
        rows = [row for row in (dict(zip(cols, v)) for v in zip(*cols.values()))
                if row["regime"] not in todo]
    generated = generate_stage(run, lm, items, s, seed=seed)
    for regime in todo:
        texts = readout_texts(lm.tokenizer, items, regime, generated)
        with run.timer(f"intention_{regime}"):
            with progress_bar(f"intention: {regime} readout", len(texts)) as tick:
                r = readout(lm.model, lm.tokenizer, texts, max_new_tokens=s.answer_tokens,
                            batch_size=s.batch_size, progress=tick)
            layers = probe_layer_indices(len(r.layer_names), s.probe_layers)
            rows += score_regime(run, r, items, regime, s, seed=seed, generated=generated,
                                 probe_layers=layers)
        run.meta(intention=dict(s, problems=str(s.problems or "bundled"),
                                n_items=len(items), cue=CUE, regimes=list(REGIMES)))
        run.table(TABLE, sorted(rows, key=lambda x: (REGIMES.index(x["regime"]), x["id"])))
        run.write()
