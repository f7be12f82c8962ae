"""Figures for the HTML report: PNG bytes from plain data, one consistent style.

matplotlib is imported inside the functions and drawn with the Agg canvas through the
object-oriented API (``Figure`` + ``FigureCanvasAgg``): no pyplot, no global backend
switch, so rendering a report inside a notebook does not disturb the user's plots.
"""

from __future__ import annotations

import contextlib
import io
import numbers

DPI = 110
# Okabe & Ito (2008) colour-blind-safe palette, strongest contrasts first (yellow last).
COLORS = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#000000",
          "#F0E442")
LINESTYLES = ("-", "--", ":", "-.")
STYLE = {
    "font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 8.5,
    "xtick.labelsize": 9, "ytick.labelsize": 9, "axes.grid": True, "grid.alpha": 0.3,
    "grid.linewidth": 0.6, "axes.spines.top": False, "axes.spines.right": False,
    "lines.linewidth": 1.8, "lines.markersize": 4, "legend.frameon": False,
    "image.cmap": "viridis", "text.parse_math": False,  # labels may hold '$' from users
    "svg.fonttype": "none",
}
# label: axis text; collapse: the direction that means more collapse (absent: none);
# doc: one line; scale: "log" draws line plots on a log axis when every value is > 0.
METRIC_INFO = {
    "rankme": {"label": "RankMe", "collapse": "low", "doc":
               "exp of the entropy of the normalised singular values of the N×D "
               "representations (Garrido et al. 2023); at most min(N, D)."},
    "matrix_entropy_rank": {"label": "matrix-entropy rank", "collapse": "low", "doc":
                            "exp of the entropy of the normalised covariance eigenvalues "
                            "(effective rank, Roy & Vetterli 2007)."},
    "anisotropy": {"label": "anisotropy (mean cosine)", "collapse": "high", "doc":
                   "mean cosine similarity over all distinct pairs of representations "
                   "(Ethayarajh 2019); 1 = all vectors point the same way."},
    "participation_ratio": {"label": "participation ratio", "collapse": "low", "doc":
                            "(Σλ)² / Σλ² of the covariance eigenvalues: the number of "
                            "dimensions the variance is spread over."},
    "alpha_req": {"label": "α-ReQ (spectral decay)", "collapse": "high", "doc":
                  "power-law exponent of the eigenvalue decay (Agrawal et al. 2022); "
                  "larger α = variance in fewer directions."},
    "distinct_1": {"label": "distinct-1", "collapse": "low", "doc":
                   "unique unigrams / all unigrams over the samples (Li et al. 2016)."},
    "distinct_2": {"label": "distinct-2", "collapse": "low", "doc":
                   "unique bigrams / all bigrams over the samples (Li et al. 2016)."},
    "distinct_3": {"label": "distinct-3", "collapse": "low", "doc":
                   "unique trigrams / all trigrams over the samples (Li et al. 2016)."},
    "mean_pairwise_cosine": {"label": "mean pairwise cosine", "collapse": "high", "doc":
                             "mean cosine similarity between the sample embeddings; "
                             "1 = every sample means the same."},
    "semantic_spread": {"label": "semantic spread", "collapse": "low", "doc":
                        "1 − mean pairwise cosine of the sample embeddings; "
                        "0 = every sample means the same."},
    "vendi_score": {"label": "Vendi score", "collapse": "low", "doc":
                    "exp of the entropy of the eigenvalues of K/n (Friedman & Dieng "
                    "2023): the effective number of distinct samples."},
    "self_bleu": {"label": "Self-BLEU", "collapse": "high", "doc":
                  "mean BLEU of each sample against all the others (Zhu et al. 2018); "
                  "1 = the samples repeat each other."},
    # human-vs-model divergence (metrics/divergence.py)
    "js_ngram_1": {"label": "JS divergence, unigrams (bits)", "collapse": "high", "doc":
                   "Jensen-Shannon divergence between pooled word distributions, in [0, 1]."},
    "js_ngram_2": {"label": "JS divergence, bigrams (bits)", "collapse": "high", "doc":
                   "Jensen-Shannon divergence between pooled bigram distributions."},
    "js_sentence_length": {"label": "JS divergence, sentence length", "collapse": "high",
                           "doc": "JS between sentence-length distributions (pooled-quantile "
                                  "bins)."},
    "js_type_token_ratio": {"label": "JS divergence, type-token ratio", "collapse": "high",
                            "doc": "JS between per-text type-token-ratio distributions."},
    "js_punctuation_rate": {"label": "JS divergence, punctuation rate", "collapse": "high",
                            "doc": "JS between per-text punctuation-rate distributions."},
    # agents (studies/agents.py)
    "jaccard_to_anchor": {"label": "Jaccard to anchor", "collapse": "high", "doc":
                          "mean over agents of |A∩W|/|A∪W| of the anchor's and the agent's "
                          "word sets (Asymptotic Semantic Collapse)."},
    "cosine_to_anchor": {"label": "cosine to anchor", "collapse": "high", "doc":
                         "mean embedding cosine (MiniLM) between each agent's text and the "
                         "anchor's."},
    "compliance": {"label": "compliance", "collapse": "high", "doc":
                   "mean fraction of the anchor's explicit constraints each agent satisfies."},
    "hash_collisions": {"label": "hash collisions", "collapse": "high", "doc":
                        "agents whose normalised text equals another agent's."},
    "hash_collision_fraction": {"label": "hash-collision fraction", "collapse": "high",
                                "doc": "hash collisions / number of agents."},
    "anchor_copy_fraction": {"label": "anchor copies", "collapse": "high", "doc":
                             "fraction of agents whose normalised text equals the anchor's."},
    "mean_pairwise_jaccard": {"label": "mean pairwise Jaccard", "collapse": "high", "doc":
                              "mean word-set Jaccard over all pairs of agents."},
    "vocabulary_entropy": {"label": "vocabulary entropy (bits)", "collapse": "low", "doc":
                           "Shannon entropy of the pooled word distribution of all agents."},
    "state_entropy": {"label": "state entropy (bits)", "collapse": "low", "doc":
                      "von Neumann entropy of (1/P)Σ x̂x̂ᵀ over the agents' unit vectors; "
                      "0 = all agents point the same way."},
    "geodesic_distance_to_anchor": {"label": "geodesic distance to anchor (rad)",
                                    "collapse": "low", "scale": "log", "doc":
                                    "mean great-circle distance of the agents to the anchor."},
    "endpoint_gap": {"label": "endpoint gap (rad)", "collapse": "low", "doc":
                     "mean distance between the smooth and noisy runs' final states; "
                     "0 = path independence."},
    # intention (studies/probes/intention.py)
    "intention_entropy": {"label": "H_int (bits)", "collapse": "low", "doc":
                          "entropy of the next-token distribution just before the answer, "
                          "full vocabulary (Intention Collapse)."},
    "intention_entropy_top100": {"label": "H_int, top-100 renormalised (bits)",
                                 "collapse": "low", "doc": "as the paper's code computes it."},
    "dim_eff": {"label": "dim_eff (90% variance)", "collapse": "low", "doc":
                "fewest principal components holding 90% of the variance."},
    "probe_auroc": {"label": "probe AUROC (Recov)", "collapse": "low", "doc":
                    "held-out AUROC of a linear probe predicting correctness from the hidden "
                    "state; 0.5 = nothing recoverable."},
    "entropy_auroc": {"label": "AUROC of −H_int", "collapse": "low", "doc":
                      "how well H_int alone separates right from wrong answers."},
    "accuracy": {"label": "accuracy", "doc": "first integer after the cue equals the answer."},
    # ambiguity (studies/probes/ambiguity.py)
    "candidate_entropy": {"label": "candidate entropy (bits)", "collapse": "low", "doc":
                          "entropy of the model's probabilities over an item's listed "
                          "interpretations (NRR-Core); low at the ambiguous turn = early "
                          "collapse."},
    "normalized_candidate_entropy": {"label": "candidate entropy / log2 m", "collapse": "low",
                                     "doc": "the same divided by its maximum."},
    "entropy_drop": {"label": "entropy drop, turn 1 → 2 (bits)", "collapse": "low", "doc":
                     "how much the reading sharpens once the second turn arrives."},
    "interpretation_entropy": {"label": "interpretation entropy (bits)", "collapse": "low",
                               "doc": "entropy of meaning classes among k sampled answers "
                                      "(NRR-Phi); the greedy baseline is 0."},
    "num_interpretations": {"label": "meaning classes among k answers", "collapse": "low",
                            "doc": "number of distinct meanings the model offers."},
    "candidate_coverage": {"label": "share of listed readings reached", "collapse": "low",
                           "doc": "share of candidates that are some answer's nearest."},
    "conflict_rate": {"label": "answers with conflict markers", "collapse": "low", "doc":
                      "share of answers that hedge or contrast ('but', 'maybe', けど)."},
    # tokenizer (studies/probes/tokenizer.py)
    "nonunique_word_type_rate": {"label": "non-unique word types", "collapse": "high", "doc":
                                 "share of word types that another token-id sequence also "
                                 "decodes to."},
    "nonunique_token_rate": {"label": "non-unique token occurrences", "collapse": "high",
                             "doc": "share of token occurrences inside such words."},
    "mean_log10_encodings": {"label": "log10 encodings per word", "collapse": "high", "doc":
                             "mean log10 of the exact number of encodings per word type."},
    "phantom_edit_rate": {"label": "phantom edits", "collapse": "high", "doc":
                          "answers equal to the target only up to a tokenizer artifact, or "
                          "through non-canonical ids (Say Anything but This)."},
    "probe_correct_rate": {"label": "replacement correct", "collapse": "low", "doc":
                           "the exact target string through canonical ids."},
    "edit_error_rate": {"label": "edit errors", "collapse": "high", "doc":
                        "wrong word, source unchanged, or extra changes."},
    # passkey and drift (studies/probes/passkey.py, drift.py)
    "passkey_accuracy": {"label": "passkey accuracy", "collapse": "low", "doc":
                         "share of prompts whose hidden 5-digit key the model repeats "
                         "(greedy), per prompt length (Stuffed Mamba)."},
    "passkey_cell_accuracy": {"label": "passkey accuracy (depth × length)", "collapse": "low",
                              "doc": "accuracy per needle depth and prompt length."},
    "passkey_collapse_length": {"label": "collapse length (tokens)", "collapse": "low", "doc":
                                "smallest length with accuracy below the threshold."},
    "perplexity_ratio": {"label": "perplexity ratio B/A", "collapse": "high", "doc":
                         "pooled perplexity of the edited or second model over the "
                         "reference's (same tokenizer)."},
    "bits_per_byte_ratio": {"label": "bits-per-byte ratio B/A", "collapse": "high", "doc":
                            "the tokenizer-free version of the ratio."},
    "bits_per_byte": {"label": "bits per byte", "collapse": "high", "doc":
                      "total NLL in bits / UTF-8 bytes of the text."},
    "perplexity": {"label": "perplexity", "collapse": "high", "doc":
                   "exp(total NLL / predicted tokens)."},
    "drift_collapse": {"label": "collapse flag", "collapse": "high", "doc":
                       "1 when the pooled ratio is at or above the threshold (default 2)."},
    "drift_collapsed_documents": {"label": "documents over threshold", "collapse": "high",
                                  "doc": "share of documents whose own ratio passes it."},
}


_PREFIXES = ("mean_", "median_", "pooled_", "min_", "max_")  # same direction as the metric


def metric_info(metric: str) -> dict:
    """METRIC_INFO of ``metric``, or of the metric it summarises (``mean_rankme``...);
    {} when unknown."""
    if metric in METRIC_INFO:
        return METRIC_INFO[metric]
    for prefix in _PREFIXES:
        if metric.startswith(prefix) and metric[len(prefix):] in METRIC_INFO:
            return METRIC_INFO[metric[len(prefix):]]
    return {}


def metric_label(metric: str, sep: str = "  ") -> str:
    """Axis label: the metric's name and, where known, which direction means collapse."""
    info = metric_info(metric)
    if not info:
        return metric
    if not info.get("collapse"):
        return info["label"]
    return f"{info['label']}{sep}({info['collapse']}er = more collapsed)"


def _short(text, n=40) -> str:
    text = str(text)
    return text if len(text) <= n else text[: n - 1] + "…"


@contextlib.contextmanager
def _figure(width: float, height: float):
    """Yield (figure, buffer); on exit the figure is drawn as PNG into the buffer."""
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    buf = io.BytesIO()
    with matplotlib.rc_context(STYLE):
        fig = Figure(figsize=(width, height), layout="constrained")
        FigureCanvasAgg(fig)
        yield fig, buf
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})


def _axis(values) -> tuple[list, list | None]:
    """Numeric positions for x values and tick labels when they are not all numbers."""
    if all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
        return list(values), None
    order = list(dict.fromkeys(map(str, values)))
    return [order.index(str(v)) for v in values], order


def _reference(label: str) -> tuple[str, bool]:
    """Split a series label into (label without its source, is it a closed-form reference):
    a closed form is drawn dashed in the colour of the simulation it belongs to."""
    parts = [p for p in label.split(", ") if p]
    ref = "source=closed_form" in parts
    kept = [p for p in parts if p not in ("source=closed_form", "source=simulation")]
    return ", ".join(kept), ref


def line_plot(series: dict, *, metric: str, x_label: str, title: str) -> bytes:
    """One line per series ``{label: {"x", "y", "lo"?, "hi"?}}`` with an optional band."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    allx = [x for s in series.values() for x in s["x"]]
    _, ticks = _axis(allx)
    with _figure(7.0 if len(series) <= 4 else 8.6, 3.8) as (fig, buf):
        ax = fig.subplots()
        colours: dict[str, str] = {}
        for i, (label, s) in enumerate(series.items()):
            xs = [ticks.index(str(x)) for x in s["x"]] if ticks else s["x"]
            base, reference = _reference(label)
            colour = colours.setdefault(base, COLORS[len(colours) % len(COLORS)])
            style = dict(color=colour, linestyle="--" if reference else
                         LINESTYLES[(len(colours) - 1) // len(COLORS) % len(LINESTYLES)])
            shown = f"{base} (closed form)" if reference else base
            ax.plot(xs, s["y"], marker="o" if len(xs) <= 40 and not reference else None,
                    label=_short(shown) if shown else None, **style)
            if s.get("lo") is not None:
                ax.fill_between(xs, s["lo"], s["hi"], color=style["color"], alpha=0.18,
                                linewidth=0)
        if ticks:
            ax.set_xticks(range(len(ticks)), [_short(t, 12) for t in ticks])
        elif all(float(x).is_integer() for x in allx):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel=x_label, ylabel=metric_label(metric, "\n"), title=_short(title, 90))
        if metric_info(metric).get("scale") == "log" and all(
                y > 0 for s in series.values() for y in s["y"]):
            ax.set_yscale("log")  # plain tick labels: mathtext is off (user text has '$')
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}"))
        if len(series) > 4:
            ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5))
        elif any(series):
            ax.legend()
    return buf.getvalue()


def heatmap(panels: dict, *, metric: str, row_label: str, col_label: str,
            title: str) -> bytes:
    """One heatmap per panel ``{label: (matrix, row_ticks, col_ticks)}`` (NaN = blank),
    sharing one colour scale."""
    import numpy as np

    mats = [np.asarray(m, dtype=np.float64) for m, _, _ in panels.values()]
    finite = np.concatenate([m[np.isfinite(m)] for m in mats])
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    rows, cols = mats[0].shape
    width = min(4.0 + len(panels) * (0.9 + 0.42 * cols), 14.0)
    with _figure(width, min(max(2.8, 1.4 + 0.3 * rows), 10.0)) as (fig, buf):
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, (label, (_, rt, ct)), m in zip(axes, panels.items(), mats):
            im = ax.imshow(m, aspect="auto", vmin=lo, vmax=hi, interpolation="nearest")
            ax.grid(False)
            ax.set_xticks(range(m.shape[1]), [_short(t, 8) for t in ct])
            ax.set_yticks(range(m.shape[0]), [_short(t, 8) for t in rt])
            ax.set(xlabel=col_label, ylabel=row_label, title=_short(label, 40) or None)
            if m.size <= 160:
                for (r, c), v in np.ndenumerate(m):
                    if np.isfinite(v):
                        dark = (v - lo) / ((hi - lo) or 1.0) < 0.55
                        ax.text(c, r, f"{v:.2g}", ha="center", va="center", fontsize=7,
                                color="white" if dark else "black")
        cbar = fig.colorbar(im, ax=list(axes), shrink=0.9)
        cbar.set_label(metric_label(metric, "\n"))
        fig.suptitle(_short(title, 90), fontsize=STYLE["axes.titlesize"])
    return buf.getvalue()


def strip_plot(groups: dict, *, metric: str, title: str) -> bytes:
    """Per-item values (e.g. one per prompt) as jittered points per group ``{label: [v]}``,
    the mean marked with a black bar and its value."""
    import numpy as np

    rng = np.random.default_rng(0)
    with _figure(7.0, 1.5 + 0.62 * len(groups)) as (fig, buf):
        ax = fig.subplots()
        for i, (label, values) in enumerate(groups.items()):
            v = np.asarray(values, dtype=np.float64)
            y = i + rng.uniform(-0.16, 0.16, v.size)
            ax.scatter(v, y, s=16, color=COLORS[i % len(COLORS)],
                       alpha=0.75 if v.size <= 200 else 0.35, linewidths=0, zorder=3)
            mean = v.mean()
            ax.plot([mean, mean], [i - 0.3, i + 0.3], color="black", linewidth=2.2)
            ax.annotate(f"mean {mean:.3g}  (n={v.size})", (mean, i - 0.32), fontsize=8,
                        ha="center", va="bottom",
                        bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="none", alpha=0.8))
        ax.set_yticks(range(len(groups)), [_short(g, 24) or "all" for g in groups])
        ax.set_ylim(len(groups) - 0.4, -0.75)  # first group on top
        ax.grid(axis="y", visible=False)
        ax.set(xlabel=metric_label(metric), title=_short(title, 90))
    return buf.getvalue()
