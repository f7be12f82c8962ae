"""Human-vs-model divergence in ``scan``: how far the model's samples are from human text
(The Necessity of Imperfection, 2025), with a null level from human text against itself.

Plug-in JS grows as samples shrink, so both sides are made alike before comparing: the
same number of texts (m = min(#samples, #human / 2)), human texts cut to the median word
count of the samples (samples are cut by ``max_new_tokens`` too). The null level is the
divergence between two disjoint human halves of m texts each, prepared the same way: a
model value near it means "as close to human text as human text is to itself".
"""

from __future__ import annotations

import numpy as np

from ... import metrics

SECTION = "divergence"


def interval_note(value: float, low: float, high: float) -> dict:
    """{"note": why} when the basic-bootstrap interval excludes its estimate, else {}."""
    if low <= value <= high:
        return {}
    return {"note": "the interval excludes the estimate: plug-in JS is biased upward at "
                    "this sample size, and the basic bootstrap interval [2·JS − q_hi, "
                    "2·JS − q_lo] corrects for that bias"}


def _cut(texts: list[str], words: int) -> list[str]:
    return [" ".join(t.split()[:words]) for t in texts]


def stage(run, samples: list[str], human: list[str], *, seed: int = 0, n_boot: int = 200,
          max_n: int = 2) -> None:
    """Records ``js_ngram_<n>`` (n = 1..max_n) and ``js_<feature>`` for model vs human and
    human vs human (``pair`` scope field), with bootstrap intervals."""
    samples = [t for t in samples if t.split()]
    m = min(len(samples), len(human) // 2)
    if m < 2:
        raise ValueError(f"human-vs-model divergence needs >= 2 non-empty samples and >= 4 "
                         f"human texts, got {len(samples)} and {len(human)}")
    rng = np.random.default_rng(seed)
    words = max(1, int(np.median([len(t.split()) for t in samples])))
    pick = rng.permutation(len(human))[:2 * m]
    ha = _cut([human[i] for i in pick[:m]], words)
    hb = _cut([human[i] for i in pick[m:]], words)
    model = [samples[i] for i in sorted(rng.permutation(len(samples))[:m])]
    with run.timer("divergence"):
        for pair, (p, q) in {"model_vs_human": (model, ha), "human_vs_human": (hb, ha)}.items():
            for n in range(1, max_n + 1):
                v, lo, hi = metrics.js_divergence_ci(p, q, n, n_boot=n_boot, seed=seed)
                run.add(f"js_ngram_{n}", v, ci_low=lo, ci_high=hi, pair=pair, texts=m,
                        words=words, section=SECTION, **interval_note(v, lo, hi))
            for name, (v, lo, hi) in metrics.stylometric_divergence(
                    p, q, n_boot=n_boot, seed=seed).items():
                run.add(f"js_{name}", v, ci_low=lo, ci_high=hi, pair=pair, texts=m,
                        words=words, section=SECTION, **interval_note(v, lo, hi))
