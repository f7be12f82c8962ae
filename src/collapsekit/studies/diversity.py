"""Output diversity of k samples per prompt, per prompt and pooled, with a human baseline.

Per prompt (within its k samples): distinct-1/2 (Li et al. 2016), self-BLEU (Zhu et al.
2018, Texygen), semantic spread = 1 − mean pairwise cosine of sentence embeddings, and the
Vendi score (Friedman & Dieng 2023). Pooled over all samples: distinct-1/2/3 and the mean
pairwise cosine across prompts (homogeneity). Means over prompts carry percentile bootstrap
95% intervals. The same per-group metrics on groups of k *unrelated* human texts, cut to
the samples' median length, give an upper reference: what k texts with nothing in common
look like (not a same-prompt human answer set).
"""

from __future__ import annotations

import statistics
from dataclasses import asdict

import numpy as np

from .. import metrics
from ..stats.bootstrap import bootstrap_mean_ci

PER_GROUP = ("distinct_1", "distinct_2", "self_bleu", "semantic_spread", "vendi_score")


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
           seed: int = 0, prompt_ids: list | None = None, **scope) -> None:
    """Per-group records (when ``prompt_ids`` is given) and means with bootstrap intervals."""
    for metric in PER_GROUP:
        values = [r[metric] for r in rows]
        if prompt_ids is not None:
            for pid, v in zip(prompt_ids, values):
                run.add(metric, v, section=section, source=source, prompt_id=pid, **scope)
        mean, low, high = bootstrap_mean_ci(values, seed=seed)
        run.add(f"mean_{metric}", mean, section=section, source=source, ci_low=low,
                ci_high=high, n_groups=len(values), **scope)


def sample_stage(run, lm, prompts: list[str], *, k: int, decoding, seed: int,
                 batch_size: int | None = None, console=None):
    """Sample k continuations per prompt into ``run/samples.jsonl`` (reused on rerun)."""
    from ..models.sampling import sample
    from .progress import progress_bar

    with run.timer("sampling"), progress_bar("sampling", len(prompts), console) as tick:
        samples = sample(lm.model, lm.tokenizer, list(enumerate(prompts)), k=k,
                         decoding=decoding, seed=seed, model_key=lm.weight_hash,
                         cache=run.file("samples.jsonl"), batch_size=batch_size,
                         progress=tick)
    run.table("samples", [s.to_dict() for s in samples])
    run.meta(samples_file="samples.jsonl", samples_table="samples")
    run.write()
    return samples


def group_samples(samples) -> dict:
    """Sample texts grouped by prompt id, in order."""
    groups: dict = {}
    for s in samples:
        groups.setdefault(s.prompt_id, []).append(s.text)
    return groups


def stage(run, groups: dict, *, human: list[str] | None = None, seed: int = 0,
          prompts: dict | None = None) -> None:
    """Score diversity of ``groups`` (prompt id → sample texts) into ``run``, plus the human
    reference from ``human`` when given. Skipped when ``run`` already holds it (resume)."""
    from ..models.embedders import embed

    if run.has("mean_semantic_spread", section="diversity"):
        return
    sizes = {len(g) for g in groups.values()}
    if min(sizes) < 2:
        raise ValueError("every prompt needs at least 2 samples to measure diversity")
    with run.timer("diversity"):
        texts = [t for g in groups.values() for t in g]
        n_words = max(1, int(statistics.median(len(t.split()) for t in texts)))
        hgroups = human_groups(human or [], min(sizes), len(groups), n_words)
        emb = embed(texts + [t for g in hgroups for t in g])
        model_emb = emb[:len(texts)]
        rows = score_groups(list(groups.values()), model_emb)
        record(run, rows, source="model", seed=seed, prompt_ids=list(groups))
        if hgroups:
            record(run, score_groups(hgroups, emb[len(texts):]), source="human", seed=seed)
        for key, value in pooled_metrics(texts, model_emb).items():
            run.add(key, value, section="diversity pooled", source="model")
        run.table("per_prompt", [{"prompt_id": str(pid), "n_samples": len(g),
                                  "prompt": (prompts or {}).get(pid, ""), **r}
                                 for (pid, g), r in zip(groups.items(), rows)])
        run.meta(sample_sizes=sorted(sizes), human_words_per_text=n_words)
    run.write()


def run_diversity(out, *, samples=None, model=None, prompts="bundled", k=8, decoding=None,
                  seed=0, device="auto", resume=False, force=False, console=None):
    """``collapsekit diversity``: score a samples file, or sample ``model`` first."""
    from ..corpora import human_texts
    from ..io import read_prompts, read_samples
    from ..models.registry import file_sha256, load_model, resolve
    from ..models.sampling import Decoding
    from ..report.html import render
    from ..results import Run

    # Validate every input before the results folder is made.
    if samples:
        groups, prompt_text = read_samples(samples), {}
        config = dict(samples=str(samples), samples_sha256=file_sha256(samples), seed=seed)
    else:
        resolve(model)
        prompt_list, dec = read_prompts(prompts), Decoding(**(decoding or {}))
        prompt_text = dict(enumerate(prompt_list))
        config = dict(model=model, prompts=prompts, k=k, seed=seed, decoding=asdict(dec))
    run = Run(out, study="diversity", config=config, resume=resume, force=force)
    if not samples:
        with run.timer("load_model"):
            lm = load_model(model, device=device)
        run.meta(model=lm.describe(), seeds=[seed])
        groups = group_samples(sample_stage(run, lm, prompt_list, k=k, decoding=dec,
                                            seed=seed, console=console))
    stage(run, groups, human=human_texts("wikipedia", min_words=40), seed=seed,
          prompts=prompt_text)
    run.finish()
    return render(run.path)
