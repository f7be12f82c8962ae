"""The metric catalogue: one entry per metric name a study records.

``CATALOG[name]`` is a :class:`MetricInfo` for the name as it appears in ``metrics.json``
records. Summaries of a catalogued metric (``mean_X``, ``median_X``, ``pooled_X``,
``min_X``, ``max_X``) share its entry; :func:`lookup` resolves them. Fields:

- ``label``: axis text; ``doc``: one line;
- ``collapse``: the direction that means more collapse, ``"low"`` or ``"high"``; None for
  counts and diagnostics;
- ``unit``: "bits", "nats", "fraction", "cosine", "dimensions", "tokens", ... ("" for a
  unitless score or ratio);
- ``reference``: paper and year, and how the reference code differs where it does;
- ``function``: dotted name of the public function that computes the value, a string so
  that importing the catalogue imports nothing else;
- ``scale``: "log" draws line plots on a log axis when every value is > 0.

This module imports nothing from collapsekit (metrics never import studies, models or
report).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CATALOG", "PREFIXES", "MetricInfo", "lookup"]


@dataclass(frozen=True)
class MetricInfo:
    """What a recorded metric is; see the module docstring."""

    label: str
    collapse: str | None
    unit: str
    reference: str
    function: str
    doc: str
    scale: str | None = None


PREFIXES = ("mean_", "median_", "pooled_", "min_", "max_")  # same direction as the metric

_NC = "Papyan, Han & Donoho 2020"
_LIN = "Lin, Trivedi & Sun 2023 (Generating with Confidence)"
_ASC = "Asymptotic Semantic Collapse in Hierarchical Optimization (agents seed paper)"
_SAY = "Mukherjee, Armstrong & Ayoobi 2026 (Say Anything but This)"
_DRIFT = "Yang et al. 2024 (The Butterfly Effect of Model Editing)"
_NUM = "The Geometric Price of Discrete Logic (numbers seed paper, 2026)"
_TT = "Shani et al. 2025 (From Tokens to Thoughts: How LLMs and Humans Trade Compression " \
      "for Meaning)"


def _m(label: str, collapse: str | None, unit: str, function: str, reference: str, doc: str,
       scale: str | None = None) -> MetricInfo:
    """An entry; ``function`` is relative to ``collapsekit.``."""
    return MetricInfo(label, collapse, unit, reference, "collapsekit." + function, doc, scale)


CATALOG: dict[str, MetricInfo] = {
    # geometry, per layer (studies/geometry.py)
    "rankme": _m("RankMe", "low", "dimensions", "metrics.rankme",
                 "Garrido et al. 2023 (RankMe), eq. 1: ε added after normalisation as in the "
                 "paper and its code",
                 "exp of the entropy of the normalised singular values of the N×D "
                 "representations (Garrido et al. 2023); at most min(N, D)."),
    "matrix_entropy_rank": _m(
        "matrix-entropy rank", "low", "dimensions", "metrics.matrix_entropy_rank",
        "Roy & Vetterli 2007 (effective rank); the variant of Li et al. 2025 (Tracing the "
        "Representation Geometry), whose code adds ε = 1e-7 (here 0)",
        "exp of the entropy of the normalised covariance eigenvalues (effective rank, Roy & "
        "Vetterli 2007)."),
    "anisotropy": _m("anisotropy (mean cosine)", "high", "cosine", "metrics.anisotropy",
                     "Ethayarajh 2019; the paper estimates it from random pairs, this is the "
                     "exact mean over all pairs",
                     "mean cosine similarity over all distinct pairs of representations "
                     "(Ethayarajh 2019); 1 = all vectors point the same way."),
    "participation_ratio": _m(
        "participation ratio", "low", "dimensions", "metrics.participation_ratio",
        "Gao et al. 2017",
        "(Σλ)² / Σλ² of the covariance eigenvalues: the number of dimensions the variance is "
        "spread over."),
    "alpha_req": _m("α-ReQ (spectral decay)", "high", "", "metrics.alpha_req",
                    "Agrawal et al. 2022 (α-ReQ); the record's preset: paper = ranks 11–100 "
                    "least squares (collapsekit's range), reptrix = 11–100 weighted 1/r (the "
                    "authors' library, 0.1.0), tracing = 12–100 weighted 1/r (Li et al. 2025 "
                    "code)",
                    "power-law exponent of the eigenvalue decay (Agrawal et al. 2022); "
                    "larger α = variance in fewer directions."),
    "alpha_req_r2": _m("α-ReQ fit R²", None, "", "metrics.alpha_req",
                       "Agrawal et al. 2022 (α-ReQ)",
                       "coefficient of determination of the log-log fit behind alpha_req; "
                       "near 1 = the spectrum is a clean power law."),
    "dim_eff": _m("dim_eff (90% variance)", "low", "dimensions", "metrics.dim_eff",
                  "Vera 2026 (Intention Collapse), effective dimensionality at 90% variance",
                  "fewest principal components holding 90% of the variance."),
    "isoscore": _m("IsoScore", "low", "fraction", "metrics.isoscore",
                   "Rudman et al. 2022 (IsoScore), Algorithm 1; the reference package needs "
                   "N > D and takes points as columns, here zero eigenvalues (N ≤ D) are kept",
                   "how uniformly the variance uses the D dimensions: 0 = one direction, 1 = "
                   "isotropic."),
    "top_coordinate_share": _m(
        "top-coordinate share of the variance", "high", "fraction",
        "metrics.top_coordinate_share",
        "Sun et al. 2024 (Massive Activations in Large Language Models); Timkey & van "
        "Schijndel 2021 (All bark and no bite: rogue dimensions)",
        "max_j Var(x_j) / Σ_j Var(x_j): share of the variance in the single largest "
        "coordinate; ~1/D when isotropic, near 1 when one outlier coordinate dominates the "
        "covariance spectrum (an outlier, not a loss of rank: see basis=standardised)."),
    "top_coordinate_norm_share": _m(
        "top-coordinate share of E[x²]", "high", "fraction", "metrics.top_coordinate",
        "Sun et al. 2024 (Massive Activations in Large Language Models)",
        "max_j E[x_j²] / Σ_j E[x_j²]: share of the squared norm in the single largest "
        "coordinate (uncentred: a large constant offset counts too)."),
    "top_coordinate": _m(
        "top coordinate (index)", None, "index", "metrics.top_coordinate",
        "Sun et al. 2024 (Massive Activations in Large Language Models)",
        "0-based index of the coordinate with the largest variance (the one "
        "top_coordinate_share measures)."),
    "rank_collapse_residual": _m(
        "rank-collapse residual (Frobenius)", "low", "",
        "metrics.rank_collapse_residual_batch",
        "Dong et al. 2021 (Attention is not all you need: pure attention loses rank doubly "
        "exponentially with depth); mean over sequences",
        "‖X − 1x̄ᵀ‖_F / ‖X‖_F per sequence, x̄ the mean token, averaged over sequences; 0 = "
        "every token has the same representation."),
    "rank_collapse_residual_l1linf": _m(
        "rank-collapse residual (√(ℓ1·ℓ∞))", "low", "",
        "metrics.rank_collapse_residual_batch",
        "Dong et al. 2021, the paper's composite norm √(‖R‖₁‖R‖∞); with the row mean instead "
        "of the paper's argmin (an upper bound)",
        "the same relative residual to rank one in the paper's √(‖·‖₁‖·‖∞) norm, averaged "
        "over sequences."),
    # geometry summary: which layer (the values themselves resolve as min_/max_ prefixes)
    "min_rankme_layer": _m(
        "layer of lowest RankMe", None, "layer", "studies.geometry.summary",
        "collapsekit summary of RankMe (Garrido et al. 2023)",
        "index of the layer (0 = embeddings) where RankMe is lowest."),
    "max_anisotropy_layer": _m(
        "layer of highest anisotropy", None, "layer", "studies.geometry.summary",
        "collapsekit summary of anisotropy (Ethayarajh 2019)",
        "index of the layer (0 = embeddings) where anisotropy is highest."),
    # attention, per layer × head (studies/geometry.py, metrics/attention.py)
    "attention_entropy": _m(
        "attention entropy (nats)", "low", "nats", "metrics.attention_entropy_from_sums",
        "Zhai et al. 2023 (Stabilizing Transformer Training by Preventing Attention Entropy "
        "Collapse)",
        "mean over query rows of −Σ_j a_ij log a_ij over the allowed (causal, non-padding) "
        "keys; near 0 = the head looks at one token."),
    "attention_entropy_normalised": _m(
        "normalised attention entropy", "low", "fraction",
        "metrics.attention_entropy_from_sums",
        "Zhai et al. 2023 (entropy collapse, < 0.1); Jha & Reagen 2025 (Entropy-Guided "
        "Attention for Private LLMs: entropic overload, > 0.9)",
        "mean over query rows of the entropy divided by log(#allowed keys), in [0, 1]; 1 = "
        "uniform attention."),
    "attention_collapsed_heads": _m(
        "heads with collapsed attention", "high", "fraction",
        "metrics.attention_entropy_from_sums",
        "Zhai et al. 2023 (attention entropy collapse)",
        "share of the layer's heads whose mean normalised entropy is below 0.1 (attention "
        "locked on about one key)."),
    "attention_overloaded_heads": _m(
        "heads with entropic overload", "high", "fraction",
        "metrics.attention_entropy_from_sums",
        "Jha & Reagen 2025 (Entropy-Guided Attention for Private LLMs)",
        "share of the layer's heads whose mean normalised entropy is above 0.9 (near-uniform "
        "attention)."),
    # logit lens (studies/geometry.py, models/lens.py)
    "logit_lens_agreement": _m(
        "logit-lens agreement with the final top-1", None, "fraction",
        "studies.geometry.commitment_layers",
        "nostalgebraist 2020 (the logit lens)",
        "share of tokens whose logit-lens top-1 at this layer equals the model's own final "
        "top-1."),
    "commitment_layer_mean": _m(
        "mean commitment layer", None, "layer", "studies.geometry.commitment_layers",
        "nostalgebraist 2020 (logit lens); commitment layer as in Distributional Semantics "
        "Tracing",
        "mean over tokens of the first layer from which the logit-lens top-1 equals the "
        "final top-1 and stays equal."),
    # diversity, per prompt and pooled (studies/diversity.py)
    "distinct_1": _m("distinct-1", "low", "fraction", "metrics.distinct_n",
                     "Li et al. 2016 (A Diversity-Promoting Objective Function); the paper "
                     "words it per token (per_token=True), the same for n = 1",
                     "unique unigrams / all unigrams over the samples (Li et al. 2016)."),
    "distinct_2": _m("distinct-2", "low", "fraction", "metrics.distinct_n",
                     "Li et al. 2016; the paper divides by all tokens (per_token=True), here "
                     "by all bigrams",
                     "unique bigrams / all bigrams over the samples (Li et al. 2016)."),
    "distinct_3": _m("distinct-3", "low", "fraction", "metrics.distinct_n",
                     "Li et al. 2016; the paper divides by all tokens (per_token=True), here "
                     "by all trigrams",
                     "unique trigrams / all trigrams over the samples (Li et al. 2016)."),
    "mean_pairwise_cosine": _m(
        "mean pairwise cosine", "high", "cosine", "metrics.mean_pairwise_cosine",
        "exact mean over distinct pairs, the identity behind anisotropy (Ethayarajh 2019)",
        "mean cosine similarity between the sample embeddings; 1 = every sample means the "
        "same."),
    "semantic_spread": _m("semantic spread", "low", "", "studies.diversity.group_metrics",
                          "collapsekit: 1 − mean pairwise cosine of sentence embeddings",
                          "1 − mean pairwise cosine of the sample embeddings; 0 = every "
                          "sample means the same."),
    "vendi_score": _m("Vendi score", "low", "", "metrics.vendi_score",
                      "Friedman & Dieng 2023 (The Vendi Score), q = 1, cosine kernel",
                      "exp of the entropy of the eigenvalues of K/n (Friedman & Dieng 2023): "
                      "the effective number of distinct samples."),
    "self_bleu": _m("Self-BLEU", "high", "", "metrics.self_bleu",
                    "Zhu et al. 2018 (Texygen), BLEU-4 with NLTK smoothing method1; equals "
                    "averaging NLTK sentence_bleu",
                    "mean BLEU of each sample against all the others (Zhu et al. 2018); 1 = "
                    "the samples repeat each other."),
    # meaning classes, per prompt (studies/diversity.py, metrics/uncertainty.py)
    "semantic_entropy": _m(
        "semantic entropy (nats)", "low", "nats", "metrics.semantic_entropy",
        "Farquhar et al. 2024 (Nature), discrete form; classes by the record's judge: the "
        "paper's bidirectional NLI entailment with --judge nli:MODEL, embedding cosine ≥ 0.9 "
        "by default",
        "entropy of the meaning-class frequencies of the k samples; 0 = one meaning."),
    "semantic_entropy_likelihood": _m(
        "semantic entropy, likelihood form (nats)", "low", "nats", "metrics.semantic_entropy",
        "Farquhar et al. 2024 (Rao–Blackwellised form of Kuhn, Gal & Farquhar 2023); sequence "
        "log-prob = mean token log-prob, as both reference codes (seq_logprob=sum: the sum); "
        "Kuhn et al.'s code also shifts log p(C) by 5",
        "−Σ p̄(C) log p̄(C), p̄(C) ∝ Σ exp(sequence log-prob) of the class's samples."),
    "num_semantic_sets": _m(
        "number of semantic sets", "low", "classes", "metrics.num_semantic_sets",
        "Lin, Trivedi & Sun 2023 (Generating with Confidence), U_NumSet; counted as "
        "connected components (LM-Polygraph); the reference code's chained assignment is "
        "method='lin'",
        "connected components of the 'same meaning' graph of the k samples."),
    "num_distinct_classes": _m(
        "distinct meaning classes", "low", "classes", "metrics.num_distinct_classes",
        "Zhang et al. 2025 (NoveltyBench), distinct_k; classes here from the record's "
        "judge (default embedding cosine)",
        "number of meaning classes among the k samples (first-member assignment)."),
    "eigv": _m("EigV (soft number of meanings)", "low", "classes", "metrics.eigv",
               "Lin, Trivedi & Sun 2023 (Generating with Confidence), U_EigV; W from the "
               "judge (cosine: max(cos, 0); nli: mean entailment probability) with unit "
               "diagonal, as the reference code sets it",
               "Σ_k max(0, 1 − λ_k) over the normalised graph Laplacian of the similarity; 1 "
               "= one clique of meaning."),
    "degmat": _m("DegMat", "low", "", "metrics.degmat",
                 "Lin, Trivedi & Sun 2023 (Generating with Confidence), U_Deg; the reference "
                 "code's average equals m·U_Deg",
                 "trace(m·I − D)/m² of the similarity degrees; 0 = all samples equivalent."),
    # degeneration (studies/diversity.py)
    "loop_rate": _m("samples ending in a loop", "high", "fraction", "metrics.loop_rate",
                    "Holtzman et al. 2020; Xu et al. 2022; only loops that reach the end of "
                    "the text, ≥ 3 repeats",
                    "share of samples whose text ends in a repetition loop (whitespace "
                    "words)."),
    "loop_period": _m("loop period (words)", None, "words", "metrics.repetition_loops",
                      "Holtzman et al. 2020; Xu et al. 2022",
                      "mean period of the end-of-text loops found (NaN when no sample loops)."),
    "first_loop_position": _m(
        "first-loop position (words)", None, "words", "metrics.repetition_loops",
        "Holtzman et al. 2020; Xu et al. 2022",
        "mean word position where the end-of-text loop starts (NaN when none loops)."),
    "seq_rep_4": _m("seq-rep-4", "high", "fraction", "metrics.rep_n",
                    "Su et al. 2022 (SimCTG) rep-n, a mean over texts; the SimCTG code sums "
                    "counts over texts and skips each last n-gram (reference=True)",
                    "1 − unique/total 4-grams per sample, averaged over samples with 4-grams."),
    # homogeneity across models (studies/diversity.py, studies/compare.py)
    "hivemind_similarity": _m(
        "within/cross-model cosine", "high", "cosine", "studies.diversity.homogeneity",
        "Jiang et al. 2025 (Artificial Hivemind)",
        "per prompt, mean cosine within one model's samples (row = col) or between two "
        "models' samples (row ≠ col)."),
    "cross_model_cosine": _m(
        "cross-model cosine", "high", "cosine", "studies.diversity.record_homogeneity",
        "Jiang et al. 2025 (Artificial Hivemind)",
        "mean over (shared) prompts of the cosine between two models' or runs' samples."),
    "within_model_cosine": _m(
        "within-model cosine", "high", "cosine", "studies.diversity.record_homogeneity",
        "Jiang et al. 2025 (Artificial Hivemind)",
        "mean over (shared) prompts of the pairwise cosine of one model's or run's own "
        "samples."),
    "matched_records": _m("matched records", None, "count", "studies.compare.differences",
                          "collapsekit (compare)",
                          "records with the same metric and scope in both compared runs."),
    # sweeps (studies/sweep.py)
    "run_failed": _m("run failed", None, "", "studies.sweep.run_sweep", "collapsekit (sweep)",
                     "1 for a sweep run that failed; the note holds its one-line error."),
    "runs_done": _m("runs done", None, "count", "studies.sweep.run_sweep",
                    "collapsekit (sweep)", "sweep runs finished (of ``runs``)."),
    # length collapse (studies/length_collapse.py)
    "centroid_distance": _m(
        "distance to centroid", "low", "", "studies.length_collapse.bucket_metrics",
        "Zhou et al. 2024 (Length-Induced Embedding Collapse in Transformer-based Models)",
        "mean Euclidean distance of the L2-normalised embeddings to their centroid."),
    # human-vs-model divergence (metrics/divergence.py)
    "js_ngram_1": _m(
        "JS divergence, unigrams (bits)", "high", "bits", "metrics.js_divergence_ci",
        "Lin 1991 (Jensen-Shannon); The Necessity of Imperfection 2025",
        "Jensen-Shannon divergence between pooled word distributions, in [0, 1]."),
    "js_ngram_2": _m(
        "JS divergence, bigrams (bits)", "high", "bits", "metrics.js_divergence_ci",
        "Lin 1991 (Jensen-Shannon); The Necessity of Imperfection 2025",
        "Jensen-Shannon divergence between pooled bigram distributions."),
    "js_sentence_length": _m(
        "JS divergence, sentence length", "high", "bits", "metrics.stylometric_divergence",
        "The Necessity of Imperfection 2025 (stylometric features)",
        "JS between sentence-length distributions (pooled-quantile bins)."),
    "js_type_token_ratio": _m(
        "JS divergence, type-token ratio", "high", "bits", "metrics.stylometric_divergence",
        "The Necessity of Imperfection 2025 (stylometric features)",
        "JS between per-text type-token-ratio distributions."),
    "js_punctuation_rate": _m(
        "JS divergence, punctuation rate", "high", "bits", "metrics.stylometric_divergence",
        "The Necessity of Imperfection 2025 (stylometric features)",
        "JS between per-text punctuation-rate distributions."),
    # agents (studies/agents.py)
    "jaccard_to_anchor": _m("Jaccard to anchor", "high", "fraction", "metrics.jaccard",
                            _ASC,
                            "mean over agents of |A∩W|/|A∪W| of the anchor's and the agent's "
                            "word sets (Asymptotic Semantic Collapse)."),
    "cosine_to_anchor": _m(
        "cosine to anchor", "high", "cosine", "studies.agents.round_metrics",
        _ASC,
        "mean embedding cosine (MiniLM) between each agent's text and the anchor's."),
    "compliance": _m("compliance", "high", "fraction", "metrics.compliance",
                     _ASC,
                     "mean fraction of the anchor's explicit constraints each agent "
                     "satisfies."),
    "hash_collisions": _m("hash collisions", "high", "count", "metrics.hash_collisions",
                          _ASC,
                          "agents whose normalised text equals another agent's."),
    "hash_collision_fraction": _m(
        "hash-collision fraction", "high", "fraction", "studies.agents.round_metrics",
        _ASC,
        "hash collisions / number of agents."),
    "anchor_copy_fraction": _m(
        "anchor copies", "high", "fraction", "studies.agents.round_metrics",
        _ASC,
        "fraction of agents whose normalised text equals the anchor's."),
    "mean_pairwise_jaccard": _m(
        "mean pairwise Jaccard", "high", "fraction", "metrics.mean_pairwise_jaccard",
        _ASC,
        "mean word-set Jaccard over all pairs of agents."),
    "vocabulary_entropy": _m(
        "vocabulary entropy (bits)", "low", "bits", "metrics.vocabulary_entropy",
        _ASC,
        "Shannon entropy of the pooled word distribution of all agents."),
    "state_entropy": _m("state entropy (bits)", "low", "bits", "metrics.von_neumann_entropy",
                        "Asymptotic Semantic Collapse in Hierarchical Optimization (agents "
                        "seed paper): node entropy as von Neumann entropy",
                        "von Neumann entropy of (1/P)Σ x̂x̂ᵀ over the agents' unit vectors; "
                        "0 = all agents point the same way."),
    "geodesic_distance_to_anchor": _m(
        "geodesic distance to anchor (rad)", "low", "radians",
        "studies.manifold.manifold_dynamics",
        "Asymptotic Semantic Collapse in Hierarchical Optimization (agents seed paper) "
        "(manifold mode)",
        "mean great-circle distance of the agents to the anchor.",
        scale="log"),
    "endpoint_gap": _m(
        "endpoint gap (rad)", "low", "radians", "studies.manifold.manifold_dynamics",
        "Asymptotic Semantic Collapse in Hierarchical Optimization (agents seed paper) "
        "(manifold mode: path independence)",
        "mean distance between the smooth and noisy runs' final states; 0 = path "
        "independence."),
    # intention (studies/probes/intention.py)
    "intention_entropy": _m("H_int (bits)", "low", "bits", "metrics.intention_entropy",
                            "Vera 2026 (Intention Collapse), the paper's definition (full "
                            "vocabulary)",
                            "entropy of the next-token distribution just before the answer, "
                            "full vocabulary (Intention Collapse)."),
    "intention_entropy_top100": _m(
        "H_int, top-100 renormalised (bits)", "low", "bits", "metrics.intention_entropy",
        "Vera 2026; the paper's code renormalises over the top 100 tokens",
        "as the paper's code computes it."),
    "probe_auroc": _m("probe AUROC (Recov)", "low", "", "metrics.probe_auroc",
                      "Vera 2026 (Recov); held out by stratified k-fold, never in-sample",
                      "held-out AUROC of a linear probe predicting correctness from the "
                      "hidden state; 0.5 = nothing recoverable."),
    "entropy_auroc": _m("AUROC of −H_int", "low", "", "metrics.intention.auroc",
                        "Vera 2026 (Intention Collapse)",
                        "how well H_int alone separates right from wrong answers."),
    "accuracy": _m("accuracy", None, "fraction", "metrics.intention.parse_answer",
                   "Vera 2026 (Intention Collapse)",
                   "first integer after the cue equals the answer."),
    "generated_tokens": _m(
        "generated tokens before the cue", None, "tokens",
        "studies.probes.intention.score_regime",
        "Vera 2026 (Intention Collapse): CoT and babble regimes",
        "mean number of tokens the model wrote before the answer cue (0 for direct)."),
    # ambiguity (studies/probes/ambiguity.py)
    "candidate_entropy": _m(
        "candidate entropy (bits)", "low", "bits", "metrics.ambiguity.entropy_bits",
        "Saito 2025 (NRR-Core)",
        "entropy of the model's probabilities over an item's listed interpretations "
        "(NRR-Core); low at the ambiguous turn = early collapse."),
    "normalized_candidate_entropy": _m(
        "candidate entropy / log2 m", "low", "fraction", "metrics.ambiguity.entropy_bits",
        "Saito 2025 (NRR-Core)",
        "the same divided by its maximum."),
    "entropy_drop": _m(
        "entropy drop, turn 1 → 2 (bits)", "low", "bits",
        "studies.probes.ambiguity.score_items",
        "Saito 2025 (NRR-Core)",
        "how much the reading sharpens once the second turn arrives."),
    "intended_probability": _m(
        "p(intended reading)", None, "fraction", "metrics.ambiguity.candidate_distribution",
        "Saito 2025 (NRR-Core)",
        "the model's probability of the reading the second turn selects."),
    "intended_accuracy": _m(
        "intended reading on top", None, "fraction",
        "metrics.ambiguity.candidate_distribution",
        "Saito 2025 (NRR-Core)",
        "share of items whose most probable reading is the intended one."),
    "interpretation_entropy": _m(
        "interpretation entropy (bits)", "low", "bits", "metrics.state_entropy",
        "Saito 2026 (NRR-Phi); meaning classes by the record's judge (default embedding "
        "cosine ≥ 0.6) with Kuhn et al.'s first-member rule",
        "entropy of meaning classes among k sampled answers (NRR-Phi); the greedy baseline "
        "is 0."),
    "num_interpretations": _m(
        "meaning classes among k answers", "low", "classes", "metrics.semantic_classes",
        "Saito 2026 (NRR-Phi)",
        "number of distinct meanings the model offers."),
    "candidate_coverage": _m(
        "share of listed readings reached", "low", "fraction",
        "studies.probes.ambiguity.interpretation_rows",
        "Saito 2026 (NRR-Phi)",
        "share of candidates that are some answer's nearest."),
    "conflict_rate": _m(
        "answers with conflict markers", "low", "fraction", "metrics.detect_conflicts",
        "Saito 2026 (NRR-Phi), stage 1 conflict detection (rule-based markers)",
        "share of answers that hedge or contrast ('but', 'maybe', けど)."),
    "input_conflict_rate": _m(
        "inputs with conflict markers", None, "fraction", "metrics.detect_conflicts",
        "Saito 2026 (NRR-Phi), stage 1 conflict detection (rule-based markers)",
        "share of the ambiguous first turns that carry a conflict marker themselves."),
    # tokenizer (studies/probes/tokenizer.py)
    "nonunique_word_type_rate": _m(
        "non-unique word types", "high", "fraction",
        "studies.probes.tokenizer.nonunique_search",
        _SAY,
        "share of word types that another token-id sequence also decodes to."),
    "nonunique_token_rate": _m(
        "non-unique token occurrences", "high", "fraction",
        "studies.probes.tokenizer.nonunique_search",
        _SAY,
        "share of token occurrences inside such words."),
    "mean_log10_encodings": _m(
        "log10 encodings per word", "high", "", "studies.probes.tokenizer.nonunique_search",
        _SAY,
        "mean log10 of the exact number of encodings per word type."),
    "word_types": _m(
        "word types searched", None, "count", "studies.probes.tokenizer.nonunique_search",
        _SAY,
        "word types of the corpus whose encodings were counted."),
    "skipped_word_types": _m(
        "word types skipped", None, "count", "studies.probes.tokenizer.nonunique_search",
        _SAY,
        "word types whose canonical ids leave the vocabulary (unknown or added tokens)."),
    "decode_mismatches": _m(
        "examples that decode differently", None, "count",
        "studies.probes.tokenizer.nonunique_search",
        _SAY,
        "word types whose non-canonical example does not decode to the same text as the "
        "canonical ids."),
    "probe_cases": _m(
        "replacement cases", None, "count", "studies.probes.tokenizer.probe_cases",
        _SAY,
        "replacement-probe cases the model answered."),
    "phantom_edit_rate": _m(
        "phantom edits", "high", "fraction", "studies.probes.tokenizer.classify_case",
        _SAY,
        "answers equal to the target only up to a tokenizer artifact, or through "
        "non-canonical ids (Say Anything but This)."),
    "probe_correct_rate": _m(
        "replacement correct", "low", "fraction", "studies.probes.tokenizer.classify_case",
        _SAY,
        "the exact target string through canonical ids."),
    "edit_error_rate": _m("edit errors", "high", "fraction", "metrics.classify_edit",
                          _SAY,
                          "wrong word, source unchanged, or extra changes."),
    # passkey and drift (studies/probes/passkey.py, drift.py)
    "passkey_accuracy": _m(
        "passkey accuracy", "low", "fraction", "studies.probes.passkey.summarise",
        "Chen et al. 2024 (Stuffed Mamba); task of Mohtashami & Jaggi 2023",
        "share of prompts whose hidden 5-digit key the model repeats (greedy), per prompt "
        "length (Stuffed Mamba)."),
    "passkey_cell_accuracy": _m(
        "passkey accuracy (depth × length)", "low", "fraction",
        "studies.probes.passkey.summarise",
        "Chen et al. 2024 (Stuffed Mamba); task of Mohtashami & Jaggi 2023",
        "accuracy per needle depth and prompt length."),
    "passkey_collapse_length": _m(
        "collapse length (tokens)", "low", "tokens", "studies.probes.passkey.collapse_length",
        "Chen et al. 2024 (Stuffed Mamba)",
        "smallest length with accuracy below the threshold."),
    "perplexity_ratio": _m(
        "perplexity ratio B/A", "high", "", "studies.probes.drift.ratio_ci",
        _DRIFT,
        "pooled perplexity of the edited or second model over the reference's (same "
        "tokenizer)."),
    "bits_per_byte_ratio": _m(
        "bits-per-byte ratio B/A", "high", "", "studies.probes.drift.ratio_ci",
        "Yang et al. 2024 (The Butterfly Effect of Model Editing); bits per byte instead of "
        "perplexity across tokenizers",
        "the tokenizer-free version of the ratio."),
    "bits_per_byte": _m(
        "bits per byte", "high", "bits", "models.perplexity.DocumentNLL.pooled_bits_per_byte",
        _DRIFT,
        "total NLL in bits / UTF-8 bytes of the text."),
    "perplexity": _m(
        "perplexity", "high", "", "models.perplexity.DocumentNLL.pooled_perplexity",
        _DRIFT,
        "exp(total NLL / predicted tokens)."),
    "drift_collapse": _m(
        "collapse flag", "high", "", "studies.probes.drift.DriftMonitor.measure",
        "Yang et al. 2024 (The Butterfly Effect of Model Editing); the threshold 2 is "
        "collapsekit's",
        "1 when the pooled ratio is at or above the threshold (default 2)."),
    "drift_collapsed_documents": _m(
        "documents over threshold", "high", "fraction",
        "studies.probes.drift.DriftMonitor.measure",
        _DRIFT,
        "share of documents whose own ratio passes it."),
    # scan (studies/runner.py)
    "probe_skipped": _m("probe skipped", None, "", "studies.runner.run_scan",
                        "collapsekit (scan)",
                        "1 when a probe could not run on this model; the note says why."),
    # neural collapse, per layer (studies/neural_collapse.py, metrics/neural_collapse.py)
    "nc1": _m("NC1 (within / between variability)", "low", "", "metrics.neural_collapse.nc1",
              "Papyan, Han & Donoho 2020; Papyan's code inverts the top K − 1 directions "
              "(svds), the same when Σ_B has rank K − 1 < D",
              "Tr(Σ_W Σ_B⁺) / K of the features around their class means; 0 = each class at "
              "one point."),
    "cdnv": _m("CDNV", "low", "", "metrics.neural_collapse.cdnv",
               "Galanti, György & Hutter 2022; the Linguistic-Collapse code (Wu & Papyan "
               "2024) divides by ‖μ_i − μ_j‖⁴ (p=2)",
               "mean over class pairs of (var_i + var_j) / (2‖μ_i − μ_j‖^(2p)); the record's "
               "power field is p (1 = Galanti et al., 2 = the LC code)."),
    "equinorm_cv": _m("NC2 equinorm CV", "low", "", "metrics.neural_collapse.equinorm_cv",
                      "Papyan, Han & Donoho 2020 (Fig. 2); population std, Papyan's notebook "
                      "uses ddof=1",
                      "std / mean of the centred class-mean norms; 0 = equal norms."),
    "etf_error": _m(
        "NC2 distance to a simplex ETF", "low", "", "metrics.neural_collapse.etf_error",
        "Papyan, Han & Donoho 2020; under class imbalance need not reach 0 (Dang et al. 2023)",
        "Frobenius distance of the normalised class-mean Gram to a simplex ETF's."),
    "cos_mean": _m(
        "mean cosine of class means", None, "cosine", "metrics.neural_collapse.mean_cosine",
        "Papyan, Han & Donoho 2020 (Fig. 3, equiangularity)",
        "mean cosine between centred class means; a simplex ETF has −1/(K−1)."),
    "cos_std": _m(
        "std of cosines of class means", "low", "cosine",
        "metrics.neural_collapse.mean_cosine",
        "Papyan, Han & Donoho 2020 (Fig. 3, equiangularity)",
        "population std of the cosines between centred class means; 0 = equiangular."),
    "duality_error": _m(
        "NC3 self-duality error", "low", "", "metrics.neural_collapse.self_duality",
        "Papyan, Han & Donoho 2020 plot its square; the Linguistic-Collapse code (Wu & "
        "Papyan 2024) reports it unsquared, as here",
        "‖W/‖W‖_F − M̃/‖M̃‖_F‖_F between classifier rows and centred class means."),
    "duality_cos_mean": _m(
        "NC3 mean cosine classifier/mean", "high", "cosine",
        "metrics.neural_collapse.self_duality",
        "Wu & Papyan 2024 (Linguistic Collapse)",
        "mean over classes of cos(W_c, μ_c − μ_G); 1 = self-dual."),
    "uniform_duality_cv": _m(
        "UNC3 cosine CV", "low", "", "metrics.neural_collapse.self_duality",
        "Wu & Papyan 2024 (Linguistic Collapse), UNC3",
        "std / mean of those cosines over classes; 0 = uniformly self-dual."),
    "n_classes": _m(
        "classes included", None, "count", "metrics.neural_collapse.collapse_metrics",
        "collapsekit (class statistics)",
        "K, the classes used by the NC metrics: seen at least twice (or once, with "
        "singletons=include). Every NC record also carries K and D as fields: NC1 is "
        "comparable only at similar K/D and unstable near K ≈ D."),
    "n_samples": _m(
        "samples included", None, "count", "metrics.neural_collapse.collapse_metrics",
        "collapsekit (class statistics)",
        "samples of the included classes."),
    "singleton_classes": _m(
        "singleton classes", None, "count", "metrics.neural_collapse.collapse_metrics",
        "collapsekit (class statistics)",
        "classes seen once: excluded (no within-class variance), or with singletons=include "
        "kept with variance 0 as the Linguistic-Collapse code does."),
    "cdnv_undefined_pairs": _m(
        "CDNV pairs left out (0/0)", None, "count", "metrics.neural_collapse.cdnv_pairs",
        "collapsekit; the Linguistic-Collapse code gives NaN for such a pair",
        "class pairs with coincident means and zero variances (e.g. two classes seen once in "
        "the same context), whose CDNV ratio is 0/0: left out of the CDNV mean."),
    "unseen_classes": _m(
        "unseen classes", None, "count", "metrics.neural_collapse.collapse_metrics",
        "collapsekit (class statistics)",
        "tracked classes with no sample."),
    "ignored_samples": _m(
        "samples with untracked labels", None, "count",
        "metrics.neural_collapse.collapse_metrics",
        "collapsekit (class statistics)",
        "samples whose class was not among the tracked classes."),
    "nc4_agreement": _m(
        "NC4 agreement", "high", "fraction", "metrics.neural_collapse.ncc_agreement",
        "Papyan, Han & Donoho 2020 (NC4, nearest class-centre classifier)",
        "held-out tokens where the nearest class mean equals the classifier's argmax."),
    "nc4_ncc_accuracy": _m(
        "nearest-class-mean accuracy", None, "fraction",
        "metrics.neural_collapse.nc4_predictions",
        "Papyan, Han & Donoho 2020 (NC4)",
        "held-out tokens whose nearest class mean is the true next token."),
    "nc4_classifier_accuracy": _m(
        "classifier accuracy", None, "fraction", "metrics.neural_collapse.nc4_predictions",
        "Papyan, Han & Donoho 2020 (NC4)",
        "held-out tokens whose classifier argmax is the true next token."),
    "nc4_tokens": _m("NC4 tokens", None, "tokens", "metrics.neural_collapse.nc4_predictions",
                     "Papyan, Han & Donoho 2020 (NC4)",
                     "held-out next-token samples NC4 was measured on."),
    # recursive training on generated data (studies/recursion, `collapsekit simulate`)
    "nll_real": _m(
        "held-out real NLL (nats)", "high", "nats",
        "studies.recursion.learners.gaussian.GaussianLearner.evaluate",
        "Shumailov et al. 2024 (Gaussian, exact cross-entropy); Kazdan et al. 2024 (gmm, "
        "kde: held-out sample)",
        "cross-entropy of the real distribution under the fitted model (gaussian: exact; "
        "gmm, kde: mean over a real test sample)."),
    "kl_real_model": _m(
        "KL(real ‖ model) (nats)", "high", "nats",
        "studies.recursion.learners.gaussian.GaussianLearner.evaluate",
        "Shumailov et al. 2024 (Gaussian example)",
        "exact KL divergence from the true Gaussian to the fitted one."),
    "w2": _m(
        "W₂ to the truth", "high", "",
        "studies.recursion.learners.gaussian.GaussianLearner.evaluate",
        "Dowson & Landau 1982; Givens & Shortt 1984 (closed form for Gaussians)",
        "2-Wasserstein distance between the fitted and the true Gaussian."),
    "cov_trace": _m(
        "covariance trace", "low", "",
        "studies.recursion.learners.gaussian.GaussianLearner.evaluate",
        "Shumailov et al. 2024 (variance collapse); Kazdan et al. 2024 (kde)",
        "total variance of the fitted model; under replace the ML trace decays as "
        "((m−1)/m)^t.",
        scale="log"),
    "mean_error": _m(
        "squared mean error", "high", "",
        "studies.recursion.learners.gaussian.GaussianLearner.evaluate",
        "Shumailov et al. 2024 (Gaussian example)",
        "‖μ̂ − μ‖² of the fitted mean."),
    "test_error": _m(
        "test error ‖ŵ − w*‖²", "high", "",
        "studies.recursion.learners.linear.LinearLearner.evaluate",
        "Dohmatob et al. 2024 (Model Collapse Demystified); Gerstgrasser et al. 2024 "
        "(accumulate)",
        "exact E_x (xᵀŵ − xᵀw*)² = ‖ŵ − w*‖² for x ~ N(0, I)."),
    "entropy": _m(
        "entropy of the model (nats)", "low", "nats",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Wright 1931; Fisher 1930 (Wright–Fisher drift)",
        "Shannon entropy of the fitted categorical distribution."),
    "support_size": _m(
        "support size", "low", "count",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Wright 1931; Fisher 1930; Dohmatob et al. 2024 (A Tale of Tails)",
        "categories (or n-gram vocabulary words) with non-zero model probability."),
    "gini_simpson": _m(
        "Gini–Simpson 1 − Σp²", "low", "fraction",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Wright 1931; Fisher 1930 (heterozygosity)",
        "probability that two draws differ; under replace (1 − 1/m)^t (1 − Σp₀²)."),
    "missing_mass": _m(
        "missing mass", "high", "fraction",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Dohmatob et al. 2024 (A Tale of Tails)",
        "real probability outside the model's support (the memoriser's test error)."),
    "tv_real": _m(
        "TV to the truth", "high", "fraction",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Dohmatob et al. 2024 (A Tale of Tails)",
        "total variation distance between the model and the true distribution."),
    "js_real": _m(
        "JS to the truth (nats)", "high", "nats",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Lin 1991 (Jensen-Shannon)",
        "Jensen–Shannon divergence between the model and the true distribution."),
    "kl_model_real": _m(
        "KL(model ‖ real) (nats)", "high", "nats",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Dohmatob et al. 2024 (A Tale of Tails)",
        "KL divergence from the model to the true distribution."),
    "tail_mass": _m(
        "model mass on the real tail", "low", "fraction",
        "studies.recursion.learners.categorical.CategoricalLearner.evaluate",
        "Dohmatob et al. 2024 (A Tale of Tails)",
        "model probability of the items ranked beyond the head of the Zipf truth."),
    "fixation_generation": _m(
        "generation of fixation", None, "generations",
        "studies.recursion.learners.categorical.CategoricalLearner.summaries",
        "Wright 1931; Fisher 1930 (diffusion approximation of fixation time)",
        "first generation with a single category left (NaN when it never fixes)."),
    "cross_entropy": _m(
        "held-out real cross-entropy (nats/token)", "high", "nats",
        "studies.recursion.learners.ngram.NgramLearner.evaluate",
        "Shumailov et al. 2024; Gerstgrasser et al. 2024; n-gram smoothing: Jelinek & Mercer "
        "1980",
        "mean NLL per token of real held-out text under the model (ngram, lm)."),
    "mean_length": _m(
        "sample length (words)", None, "words",
        "studies.recursion.learners.ngram.NgramLearner.evaluate",
        "Shumailov et al. 2024 (tail loss)",
        "mean number of words in the model's samples."),
    "js_unigram_real": _m(
        "JS unigrams to real (nats)", "high", "nats",
        "studies.recursion.learners.ngram.NgramLearner.evaluate",
        "Lin 1991 (Jensen-Shannon)",
        "Jensen–Shannon divergence between the model's and the real unigram distributions."),
    "real_fraction": _m(
        "real fraction of the training set", None, "fraction",
        "studies.recursion.pool.Pool.real_fraction",
        "Gerstgrasser et al. 2024 (accumulate vs replace)",
        "share of the generation's training rows that are real data."),
    "mean_age": _m(
        "mean age of training rows", None, "generations",
        "studies.recursion.pool.Pool.mean_age",
        "Gerstgrasser et al. 2024 (accumulate vs replace)",
        "mean generations since the training rows were born."),
    # self-consuming fine-tune (studies/finetune.py)
    "train_loss": _m(
        "training loss (nats/token)", None, "nats", "models.finetune.train_step",
        "Gerstgrasser et al. 2024 (Is Model Collapse Inevitable?)",
        "mean causal-LM cross-entropy of the training batches before each update; per "
        "step (records with step) and its mean over a generation's steps."),
    "train_junk_fraction": _m(
        "junk share of the training rows", None, "fraction", "studies.finetune.junk_rows",
        "Xing et al. 2025 (LLMs Can Get Brain Rot): junk-data dose-response",
        "junk rows over all rows a generation trained on: round(F·B·steps)/(B·steps)."),
    "train_pool": _m(
        "training pool (texts)", None, "texts", "studies.finetune.training_batches",
        "Gerstgrasser et al. 2024 (accumulate vs replace)",
        "texts the generation's batches were drawn from: the previous samples (replace) or "
        "human texts plus every sample so far (accumulate)."),
    # concepts: compression vs meaning (studies/concepts.py)
    "concept_rate": _m(
        "rate I(X;C) (bits)", None, "bits", "metrics.concepts.partition_rate", _TT,
        "complexity of a hard partition of N equally likely items: log2 N − (1/N) Σ_c |c| "
        "log2 |c|; scope partition=human (the categories) or kmeans (the model's clusters)."),
    "concept_distortion": _m(
        "distortion (mean squared distance to centroid)", None, "squared embedding units",
        "metrics.concepts.partition_distortion", _TT,
        "(1/N) Σ_c Σ_{x∈c} ‖x − μ_c‖²: the within-cluster variance of the item vectors, "
        "weighted by cluster size; only comparable within one model and layer."),
    "concept_ib_objective": _m(
        "IB objective L = rate + β·distortion", None, "bits", "metrics.concepts.ib_objective",
        _TT, "the paper's compression–meaning trade-off; lower = more efficient. β→0 favours "
        "one cluster, β→∞ singletons."),
    "concept_ib_gap": _m(
        "L(human) − L(k-means), k = categories", None, "bits", "studies.concepts.analyse",
        _TT, "how much less efficient the human categories are than the model's own k-means "
        "clusters at the same k; > 0 is the paper's direction (k-means seeks the least "
        "distortion for its k, a local optimum, so > 0 is the expected outcome)."),
    "concept_ami": _m(
        "AMI, model clusters vs human categories", "low", "", "metrics.concepts.category_ami",
        _TT + "; AMI: Vinh, Epps & Bailey 2010 (scikit-learn, arithmetic normalisation)",
        "adjusted mutual information between k-means clusters of the item vectors and the "
        "human categories: 1 = same partition, ≈ 0 = chance."),
    "typicality_spearman": _m(
        "Spearman ρ, typicality vs closeness to centroid", "low", "",
        "metrics.concepts.typicality_spearman",
        _TT + "; here the distance is to the category's centroid in the model's space",
        "per category, ρ between −‖x − μ_c‖ and human typicality: > 0 = the model keeps the "
        "human typicality gradient, ≈ 0 = it is lost (needs typicality ratings)."),
    "concept_items": _m(
        "items", None, "items", "studies.concepts.read_concepts", _TT,
        "items (category members) the study embedded."),
    "concept_split_items": _m(
        "items split into several tokens", None, "fraction", "models.items.item_vectors", _TT,
        "share of items the tokenizer splits; their vector is the mean of their tokens'."),
    # training monitor (collapsekit.monitor)
    "policy_entropy": _m(
        "policy entropy (nats/token)", "low", "nats", "monitor.metrics.PolicyEntropy",
        "Cui et al. 2025 (The Entropy Mechanism of Reinforcement Learning for Reasoning "
        "Language Models: entropy collapse)",
        "mean over generated tokens of −Σ_v p_v log p_v of the next-token distribution; a "
        "steady fall during training = the policy's entropy collapses."),
    "policy_entropy_top100": _m(
        "policy entropy, top-100 renormalised (nats/token)", "low", "nats",
        "monitor.metrics.PolicyEntropy",
        "Cui et al. 2025 (entropy collapse); top-k truncation as in Fan et al. 2018",
        "entropy of the next-token distribution restricted to its 100 most likely tokens and "
        "renormalised, mean over generated tokens."),
    "alert": _m(
        "collapse alert (observed value)", None, "", "monitor.callback.Monitor",
        "collapsekit (relative change against the first measured step)",
        "a monitored metric moved in its collapse direction by more than the alert's "
        "fraction of its step-0 value; the record names the metric, layer, step and "
        "baseline."),
    # numbers (studies/numbers.py)
    "numbers_shared_share": _m(
        "shared (class-agnostic) norm share", None, "fraction",
        "metrics.numbers.component_shares", _NUM,
        "Σ‖P_S x‖² / Σ‖x‖² of the number tokens' states, S = the mean direction (and "
        "shared_rank within-class principal directions), first in the Gram–Schmidt order."),
    "numbers_divergence_share": _m(
        "divergence (class-specific) norm share", "low", "fraction",
        "metrics.numbers.component_shares", _NUM,
        "Σ‖P_Δ x‖² / Σ‖x‖², Δ = the class-mean differences orthogonalised against S; small "
        "= the classes are entangled (the paper's manifold entanglement)."),
    "numbers_divergence_variance": _m(
        "divergence share of the items' spread", "low", "fraction",
        "metrics.numbers.component_shares", _NUM,
        "Σ‖P_Δ (x − μ)‖² / Σ‖x − μ‖²: how much of the variation among the numbers lies "
        "along what separates the classes."),
    "numbers_divergence_variance_null": _m(
        "divergence share of the spread, shuffled labels", None, "fraction",
        "studies.numbers.divergence_null", _NUM + "; permutation null added here",
        "mean of numbers_divergence_variance over seeded shuffles of the class labels: the "
        "level a split unrelated to the numbers reaches by chance."),
    "numbers_probe_accuracy": _m(
        "probe balanced accuracy (held out)", "low", "fraction",
        "metrics.numbers.probe_accuracy", _NUM + "; balanced accuracy, stratified k-fold",
        "held-out balanced accuracy of a logistic-regression probe for the task class "
        "(odd/even, prime/not) from the number token's state; 0.5 = chance."),
    "numbers_distortion": _m(
        "distortion vs plain context (std log distance ratio)", None, "",
        "metrics.numbers.distortion", _NUM + " (non-isometry)",
        "standard deviation over pairs of numbers of log(‖x_i − x_j‖ / ‖x^plain_i − "
        "x^plain_j‖); 0 = the context moves the numbers by a similarity (an isometry up to "
        "scale)."),
    "numbers_three_phases": _m(
        "three phases over depth (1 = yes)", None, "", "metrics.numbers.three_phases", _NUM,
        "1 when the divergence share of the spread is low, rises to an interior peak and "
        "falls again (rule: metrics.numbers.three_phases); the note names the layers."),
    "numbers_pressure_divergence_ratio": _m(
        "divergence under social pressure / without", "low", "",
        "metrics.numbers.component_shares", _NUM + " (manifold entanglement)",
        "peak over layers of the divergence share of the spread in the pressure context "
        "over the same in the plain task context; < 1 = pressure shrinks what separates the "
        "classes (the paper's manifold entanglement)."),
    "numbers_task_accuracy": _m(
        "model task accuracy (balanced)", None, "fraction", "metrics.numbers.task_accuracy",
        _NUM, "balanced accuracy of the model's answer (' odd' vs ' even', ' yes' vs ' no' "
        "by logit margin at the last position); 0.5 = chance or always one answer."),
    "numbers_task_auroc": _m(
        "model answer-margin AUROC", None, "", "metrics.intention.auroc", _NUM,
        "AUROC of the answer logit margin for the true class: whether the model's preference "
        "tracks the class even when its answer is biased; 0.5 = not at all."),
    "numbers_ablation_task_accuracy": _m(
        "task accuracy after ablation", None, "fraction", "metrics.numbers.task_accuracy",
        _NUM + " (targeted vector ablation)",
        "the model's balanced task accuracy with the divergence subspace (or a random one of "
        "equal rank) erased from the residual stream at the layer; ablation=none: clean."),
    "numbers_ablation_task_auroc": _m(
        "answer-margin AUROC after ablation", None, "", "metrics.intention.auroc", _NUM,
        "AUROC of the answer margin for the true class with the subspace erased at the "
        "layer."),
    "numbers_ablation_probe_accuracy": _m(
        "probe accuracy after ablation (held out)", None, "fraction",
        "metrics.numbers.probe_accuracy", _NUM + "; the erased subspace cross-fitted",
        "held-out probe balanced accuracy at the layer with the subspace erased, the "
        "divergence fitted on each training fold only."),
}


# The known limit of each meaning judge (records' ``judge`` field, models/judges.py).
JUDGE_LIMITS = {
    "cosine": "embedding cosine measures topic and wording, not meaning: an answer and its "
              "negation can share a class, and paraphrases can fall below the threshold "
              "(see the judge table in the README).",
    "nli": "an NLI classifier judges short answers out of context (without the question); "
           "strict bidirectional entailment splits answers that differ in detail.",
    "lm": "a small LM judge is near chance and leans toward one reply; check its accuracy "
          "on the bundled pairs (benchmarks/judge_accuracy.py).",
}


def judge_note(judge: str) -> str:
    """'Meaning classes by the <judge> judge; known limit: …' for a record's judge field."""
    limit = JUDGE_LIMITS.get(str(judge).split(":", 1)[0], "")
    return f"Meaning classes by the {judge} judge" + (f"; known limit: {limit}" if limit
                                                      else ".")


def lookup(name: str) -> MetricInfo | None:
    """The entry of ``name``, or of the metric it summarises (``mean_rankme`` → ``rankme``,
    by the prefixes in ``PREFIXES``); None when unknown."""
    if name in CATALOG:
        return CATALOG[name]
    for prefix in PREFIXES:
        if name.startswith(prefix) and name[len(prefix):] in CATALOG:
            return CATALOG[name[len(prefix):]]
    return None
