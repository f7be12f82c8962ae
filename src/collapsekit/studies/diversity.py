"""Output diversity of k samples per prompt, per prompt and pooled, with a human baseline;
several models, a temperature sweep, meaning classes, cross-model homogeneity and
degeneration loops.

Per prompt (within its k samples): distinct-1/2 (Li et al. 2016), self-BLEU (Zhu et al.
2018, Texygen), semantic spread = 1 − mean pairwise cosine of sentence embeddings, and the
Vendi score (Friedman & Dieng 2023). Pooled over all samples: distinct-1/2/3 and the mean
pairwise cosine across prompts (homogeneity). Means over prompts carry percentile bootstrap
95% intervals. The same per-group metrics on groups of k *unrelated* human texts, cut to
the samples' median length, give an upper reference: what k texts with nothing in common
look like (not a same-prompt human answer set).

With models sampled (:func:`run_diversity`), per (model, temperature) and prompt also:
meaning classes from the meaning judge (``--judge``, :mod:`models.judges`; default the
cosine judge, cos ≥ ``threshold``) by Kuhn et al.'s first-member assignment, semantic
entropy in the discrete form and the likelihood form (sequence log-prob = the mean token
log-prob, length-normalised as in the code of Kuhn et al. 2023 and Farquhar et al. 2024,
or the sum with ``seq_logprob=sum``; logsumexp-normalised over the samples), the number of
semantic sets, EigV and DegMat (Lin et al. 2023) on the judge's similarity W, and the
number of distinct classes (NoveltyBench); each of these records names its ``judge``.
Homogeneity across models (Jiang et al. 2025, "Artificial Hivemind"): per prompt, the mean
pairwise cosine within each model (distinct pairs) and between every two models' samples →
a model × model matrix (records with ``row``/``col``, drawn as a heatmap). Degeneration
(whitespace words): loop rate, period and first-loop position of end-of-text loops
(:func:`metrics.repetition_loops`, ≥3 repeats), seq-rep-4, per model and temperature, and
greedy vs momentum decoding (Lan et al. 2022).
"""

from __future__ import annotations

import json
import re
import statistics
from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import metrics
from ..stats.bootstrap import bootstrap_mean_ci

PER_GROUP = ("distinct_1", "distinct_2", "self_bleu", "semantic_spread", "vendi_score")
CLASS_METRICS = ("semantic_entropy", "semantic_entropy_likelihood", "num_semantic_sets",
                 "num_distinct_classes", "eigv", "degmat")  # records carry ``judge``


def group_metrics(texts: list[str], emb: np.ndarray) -> dict[str, float]:
    """Diversity of one group of texts (the k samples of one prompt) with their embeddings."""
    return {
        "distinct_1": metrics.distinct_n(texts, 1),
        "distinct_2": metrics.distinct_n(texts, 2),
        "self_bleu": metrics.self_bleu(texts),
        "semantic_spread": 1.0 - metrics.mean_pairwise_cosine(emb),
        "vendi_score": metrics.vendi_score(emb),
    }


def score_groups(groups: list[list[str]], emb: np.ndarray) -> list[dict]:
    """``group_metrics`` for consecutive groups whose embeddings are stacked in ``emb``."""
    rows, start = [], 0
    for texts in groups:
        rows.append(group_metrics(texts, emb[start:start + len(texts)]))
        start += len(texts)
    return rows


def pooled_metrics(texts: list[str], emb: np.ndarray) -> dict[str, float]:
    """Diversity of all samples together."""
    return {
        "pooled_distinct_1": metrics.distinct_n(texts, 1),
        "pooled_distinct_2": metrics.distinct_n(texts, 2),
        "pooled_distinct_3": metrics.distinct_n(texts, 3),
        "pooled_mean_pairwise_cosine": metrics.mean_pairwise_cosine(emb),
    }


def human_groups(texts: list[str], k: int, n_groups: int, n_words: int) -> list[list[str]]:
    """``n_groups`` groups of ``k`` human texts, each cut to its first ``n_words`` words."""
    cut = [" ".join(t.split()[:n_words]) for t in texts[: k * n_groups]]
    return [cut[i * k:(i + 1) * k] for i in range(len(cut) // k)]


def record(run, rows: list[dict], *, source: str, section: str = "diversity",
           seed: int = 0, prompt_ids: list | None = None, judge: str | None = None,
           seq_logprob: str | None = None, **scope) -> None:
    """Per-group records (when ``prompt_ids`` is given) and means with bootstrap intervals;
    meaning-class metrics carry ``judge`` (and the likelihood form ``seq_logprob``)."""
    for metric in (rows[0] if rows else PER_GROUP):
        values = [r[metric] for r in rows]
        extra = {**scope, **({"judge": judge} if judge and metric in CLASS_METRICS else {}),
                 **({"seq_logprob": seq_logprob} if seq_logprob
                    and metric == "semantic_entropy_likelihood" else {})}
        if prompt_ids is not None:
            for pid, v in zip(prompt_ids, values):
                run.add(metric, v, section=section, source=source, prompt_id=pid, **extra)
        mean, low, high = bootstrap_mean_ci(values, seed=seed)
        run.add(f"mean_{metric}", mean, section=section, source=source, ci_low=low,
                ci_high=high, n_groups=len(values), **extra)


def sample_stage(run, lm, prompts: list[str], *, k: int, decoding, seed: int,
                 batch_size: int | None = None, cache: str = "samples.jsonl",
                 label: str = "sampling"):
    """Sample k continuations per prompt into ``run/<cache>`` (reused on rerun)."""
    from ..models.sampling import sample
    from .progress import progress_bar

    with run.timer(label), progress_bar(label, len(prompts)) as tick:
        samples = sample(lm.model, lm.tokenizer, list(enumerate(prompts)), k=k,
                         decoding=decoding, seed=seed, model_key=lm.weight_hash,
                         cache=run.file(cache), batch_size=batch_size, progress=tick)
    run.write()
    return samples


def equal_groups(samples, where: str) -> dict:
    """Samples grouped by prompt id; ValueError unless every prompt has at least 2."""
    groups: dict = {}
    for s in samples:
        groups.setdefault(s.prompt_id, []).append(s)
    if not groups:
        raise ValueError(f"{where}: no samples; sample at least one prompt")
    if min(map(len, groups.values())) < 2:
        raise ValueError(f"{where}: every prompt needs at least 2 samples to measure diversity")
    return groups


def uncertainty_metrics(eq: np.ndarray, w: np.ndarray, seq_logprobs=None) -> dict:
    """Meaning-class metrics of one prompt's samples from a judge's equivalence matrix
    ``eq`` and similarity ``w`` (see the module docstring)."""
    labels = metrics.semantic_classes(len(eq), eq)
    out = {"semantic_entropy": metrics.semantic_entropy(labels),
           "num_semantic_sets": float(metrics.num_semantic_sets(eq)),
           "num_distinct_classes": float(metrics.num_distinct_classes(labels)),
           "eigv": metrics.eigv(w), "degmat": metrics.degmat(w)}
    if seq_logprobs is not None:
        out["semantic_entropy_likelihood"] = metrics.semantic_entropy(
            labels, logprobs=seq_logprobs, estimator="farquhar2024")
    return out


def degeneration_metrics(texts: list[str]) -> dict:
    """Loop rate, mean loop period and first-loop word position (NaN when no text loops),
    and seq-rep-4 (mean over texts with 4-grams; NaN when none has one)."""
    loops = [metrics.repetition_loops(t) for t in texts]
    found = [lp for lp in loops if lp.found]
    has4 = [t for t in texts if len(t.split()) >= 4]
    return {"loop_rate": len(found) / len(texts),
            "loop_period": float(np.mean([lp.period for lp in found])) if found else np.nan,
            "first_loop_position": float(np.mean([lp.start for lp in found])) if found
            else np.nan,
            "seq_rep_4": metrics.rep_n(has4, 4) if has4 else np.nan}


def homogeneity(embs: dict, groups: dict) -> list[dict]:
    """Artificial-Hivemind similarity rows {prompt_id, row, col, value}: for each prompt the
    mean pairwise cosine within each model (row = col, distinct pairs) and between every two
    models' samples (row ≠ col, symmetric). ``embs[model]``: embeddings stacked in the order
    of ``groups[model]`` (prompt id → samples)."""
    models = list(groups)
    pids = list(groups[models[0]])
    if any(list(groups[m]) != pids for m in models):
        raise ValueError("models were sampled on different prompts; give them the same prompts")
    spans = {}
    for m in models:
        start, spans[m] = 0, {}
        for pid, g in groups[m].items():
            spans[m][pid] = embs[m][start:start + len(g)]
            start += len(g)
    rows = []
    for pid in pids:
        for i, a in enumerate(models):
            for b in models[i:]:
                v = (metrics.mean_pairwise_cosine(spans[a][pid]) if a == b else
                     metrics.mean_pairwise_cosine_between(spans[a][pid], spans[b][pid]))
                rows += [{"prompt_id": pid, "row": a, "col": b, "value": v}]
                if a != b:
                    rows += [{"prompt_id": pid, "row": b, "col": a, "value": v}]
    return rows


def record_homogeneity(run, rows: list[dict], models: list, *, seed: int = 0, **scope) -> None:
    """From :func:`homogeneity` rows: ``cross_model_cosine`` per pair of models and
    ``within_model_cosine`` per model, means over prompts with percentile bootstrap CIs
    (section ``homogeneity``; ``scope`` is added to each record)."""
    pairs = [(a, b, "cross_model_cosine") for i, a in enumerate(models) for b in models[i + 1:]]
    for a, b, name in pairs + [(m, m, "within_model_cosine") for m in models]:
        vals = [r["value"] for r in rows if (r["row"], r["col"]) == (a, b)]
        mean, lo, hi = bootstrap_mean_ci(vals, seed=seed)
        where = {"model": a} if a == b else {"model_a": a, "model_b": b}
        run.add(name, mean, ci_low=lo, ci_high=hi, section="homogeneity", n_prompts=len(vals),
                **where, **scope)


def seq_logprob(token_logprobs, how: str = "mean") -> float:
    """One sample's sequence log-prob for the likelihood semantic entropy: the mean token
    log-prob (length-normalised, the default of the reference codes) or the sum."""
    if how not in SEQ_LOGPROB:
        raise ValueError(f"seq_logprob must be one of {', '.join(SEQ_LOGPROB)}, got {how!r}")
    return float(np.mean(token_logprobs) if how == "mean" else np.sum(token_logprobs))


SEQ_LOGPROB = ("mean", "sum")


def multi_stage(run, samples: dict, *, degeneration: dict | None = None, embedder=None,
                human: list[str] | None = None, seed: int = 0, threshold: float = 0.9,
                prompts: dict | None = None, judge=None, seq_logprob_by: str = "mean"
                ) -> None:
    """Score ``samples`` {(model, temperature): [Sample]} into ``run``: per prompt and mean
    (bootstrap CI) diversity + meaning-class metrics, pooled diversity, degeneration, and the
    model × model homogeneity per temperature; ``degeneration`` {(model, decoding name):
    [Sample]} adds loop rates of other decodings (greedy vs momentum). ``embedder``:
    texts → (n, d) array (default: the sentence embedder); ``judge``: a meaning judge
    (:func:`models.judges.make_judge`; default the cosine judge at ``threshold``)."""
    from ..models.embedders import embed
    from ..models.judges import make_judge

    embedder = embedder or embed
    judge = judge or make_judge("cosine", threshold=threshold)
    if not samples:
        raise ValueError("no (model, temperature) samples to score")
    groups = {key: equal_groups(ss, f"model {key[0]} at temperature {key[1]}")
              for key, ss in samples.items()}
    per_prompt, hom_rows, by_temp = [], [], {}
    with run.timer("diversity_scoring"):
        texts = [s.text for g in groups.values() for ss in g.values() for s in ss]
        emb = np.asarray(embedder(texts), dtype=np.float64)
        start = 0
        for (model, temp), g in groups.items():
            n = sum(map(len, g.values()))
            e, start = emb[start:start + n], start + n
            tgroups = [[s.text for s in ss] for ss in g.values()]
            rows, off = score_groups(tgroups, e), 0
            for row, ss in zip(rows, g.values()):
                lp = [seq_logprob(s.token_logprobs, seq_logprob_by) for s in ss] if all(
                    getattr(s, "token_logprobs", None) for s in ss) else None
                eq, w = judge([s.text for s in ss], e[off:off + len(ss)])
                row.update(uncertainty_metrics(eq, w, lp))
                off += len(ss)
            scope = {"model": model, **({} if temp is None else {"temperature": temp})}
            record(run, rows, source="model", seed=seed, prompt_ids=list(g), judge=judge.name,
                   seq_logprob=seq_logprob_by, **scope)
            flat = [t for ts in tgroups for t in ts]
            try:
                pooled = pooled_metrics(flat, e)
            except ValueError:  # texts too short for pooled 3-grams: keep the other results
                pooled = {}
            for key, value in pooled.items():
                run.add(key, value, section="diversity pooled", source="model", **scope)
            for key, value in degeneration_metrics(flat).items():
                run.add(key, value, section="degeneration", decoding="sampling", **scope)
            per_prompt += [{"model": model, "temperature": temp, "prompt_id": str(pid),
                            "n_samples": len(ss), "prompt": (prompts or {}).get(pid, ""),
                            "judge": judge.name, **r}
                           for (pid, ss), r in zip(g.items(), rows)]
            by_temp.setdefault(temp, ({}, {}))
            by_temp[temp][0][model], by_temp[temp][1][model] = e, g
        for temp, (embs, gs) in by_temp.items():
            if len(gs) < 2:
                continue
            rows = homogeneity(embs, gs)
            for r in rows:
                run.add("hivemind_similarity", r["value"], section="homogeneity",
                        prompt_id=r["prompt_id"], row=r["row"], col=r["col"], temperature=temp)
            record_homogeneity(run, rows, list(gs), seed=seed, temperature=temp)
            hom_rows += [{**r, "prompt_id": str(r["prompt_id"]), "temperature": temp}
                         for r in rows]
        for (model, name), ss in (degeneration or {}).items():
            for key, value in degeneration_metrics([s.text for s in ss]).items():
                run.add(key, value, section="degeneration", model=model, decoding=name)
        if human:
            k = min(len(ss) for g in groups.values() for ss in g.values())
            n_words = max(1, int(statistics.median(len(t.split()) for t in texts)))
            hgroups = human_groups(human, k, len(next(iter(groups.values()))), n_words)
            if hgroups:
                hemb = np.asarray(embedder([t for g in hgroups for t in g]), dtype=np.float64)
                record(run, score_groups(hgroups, hemb), source="human", seed=seed)
        run.table("per_prompt", per_prompt)
        if hom_rows:
            run.table("homogeneity", hom_rows)
    run.write()


def _slug(spec: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", spec).strip("-.")[-60:].lstrip("-.") or "model"


class Text(NamedTuple):
    """A sample read from a file: no log-probs, so no likelihood-form semantic entropy."""

    prompt_id: str
    text: str


def _prompts(s) -> list[str]:
    from ..io import read_prompts

    return read_prompts(s.prompts)[:s.n_prompts]


def _decoding(s):
    from ..models.decoding import Decoding

    return Decoding(temperature=s.temperature, top_p=s.top_p, top_k=s.top_k,
                    max_new_tokens=s.max_new_tokens)


def _judge(s, device=None):
    """The meaning judge of ``--judge`` (on the studied model's device, else auto)."""
    from ..models.judges import make_judge

    return make_judge(s.judge, threshold=s.threshold,
                      device=None if device is None else str(device))


def check(s) -> dict:
    """Read the samples file, or the prompts and decoding, before the run is made."""
    from ..io import read_samples
    from ..models.judges import parse_judge
    from ..models.registry import file_sha256

    judge = {"judge": parse_judge(s.judge, s.threshold).name}
    if s.samples:
        read_samples(s.samples)
        return {"samples_sha256": file_sha256(s.samples), **judge}
    return {"n_prompts": len(_prompts(s)), "decoding": json.loads(_decoding(s).key()),
            **judge}


def study_stage(run, models, s) -> None:
    """``collapsekit diversity``: score a samples file, or sample each model at each
    temperature (default: the decoding's), plus greedy and momentum decoding (α =
    ``momentum``; 0 skips both) for the degeneration check, then :func:`multi_stage`. Each
    model's samples are cached in ``samples-<model>.jsonl`` (``samples.jsonl`` for one
    model), so a resumed run samples nothing twice. ``divergence``: also the human-vs-model
    JS divergence of the first model's samples."""
    from ..corpora import human_texts
    from ..io import read_samples
    from .probes import divergence

    human = human_texts(s.human, min_words=40)
    if s.samples:
        name = Path(s.samples).name
        sampled = {(name, None): [Text(pid, t) for pid, ts in read_samples(s.samples).items()
                                  for t in ts]}
        multi_stage(run, sampled, human=human, seed=s.seed, judge=_judge(s),
                    seq_logprob_by=s.seq_logprob)
    else:
        prompts, dec = _prompts(s), _decoding(s)
        sampled, degen, table = {}, {}, []
        for m in models.specs:
            lm = models.load(m)
            cache = "samples.jsonl" if len(models.specs) == 1 else f"samples-{_slug(m)}.jsonl"
            runs = [(t, replace(dec, temperature=t), s.k)
                    for t in dict.fromkeys(s.temperatures or (dec.temperature,))]
            if s.momentum > 0:
                greedy = replace(dec, temperature=0.0, top_k=0, top_p=1.0)
                runs += [("greedy", greedy, 1),
                         ("momentum", replace(greedy, momentum=s.momentum), 1)]
            for name, d, kk in runs:
                ss = sample_stage(run, lm, prompts, k=kk, decoding=d, seed=s.seed,
                                  batch_size=s.sample_batch, cache=cache,
                                  label=f"sampling {m} {name}")
                (sampled if isinstance(name, float) else degen)[(m, name)] = ss
                table += [{**x.to_dict(), "model": m,
                           "temperature": name if isinstance(name, float) else 0.0}
                          for x in ss]
        run.table("samples", table)
        run.meta(samples_table="samples")
        multi_stage(run, sampled, degeneration=degen, human=human, seed=s.seed,
                    prompts=dict(enumerate(prompts)), judge=_judge(s, lm.device),
                    seq_logprob_by=s.seq_logprob)
    if s.divergence:
        first = next(iter(sampled.values()))
        divergence.stage(run, [x.text for x in first], human, seed=s.seed)
