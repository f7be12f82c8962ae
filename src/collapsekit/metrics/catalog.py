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
_REC = "collapsekit.studies.recursion.learners."

CATALOG: dict[str, MetricInfo] = {
    # geometry, per layer (studies/geometry.py)
    "rankme": MetricInfo(
        label="RankMe", collapse="low", unit="dimensions",
        reference="Garrido et al. 2023 (RankMe), eq. 1: ε added after normalisation as in "
                  "the paper and its code",
        function="collapsekit.metrics.rankme",
        doc="exp of the entropy of the normalised singular values of the N×D "
            "representations (Garrido et al. 2023); at most min(N, D)."),
    "matrix_entropy_rank": MetricInfo(
        label="matrix-entropy rank", collapse="low", unit="dimensions",
        reference="Roy & Vetterli 2007 (effective rank); the variant of Li et al. 2025 "
                  "(Tracing the Representation Geometry), whose code adds ε = 1e-7 (here 0)",
        function="collapsekit.metrics.matrix_entropy_rank",
        doc="exp of the entropy of the normalised covariance eigenvalues "
            "(effective rank, Roy & Vetterli 2007)."),
    "anisotropy": MetricInfo(
        label="anisotropy (mean cosine)", collapse="high", unit="cosine",
        reference="Ethayarajh 2019; the paper estimates it from random pairs, this is the "
                  "exact mean over all pairs",
        function="collapsekit.metrics.anisotropy",
        doc="mean cosine similarity over all distinct pairs of representations "
            "(Ethayarajh 2019); 1 = all vectors point the same way."),
    "participation_ratio": MetricInfo(
        label="participation ratio", collapse="low", unit="dimensions",
        reference="Gao et al. 2017",
        function="collapsekit.metrics.participation_ratio",
        doc="(Σλ)² / Σλ² of the covariance eigenvalues: the number of "
            "dimensions the variance is spread over."),
    "alpha_req": MetricInfo(
        label="α-ReQ (spectral decay)", collapse="high", unit="",
        reference="Agrawal et al. 2022 (α-ReQ), ranks 11–100; the code of Li et al. 2025 "
                  "fits ranks 12–100 weighted by 1/r (ranks=(12, 100), weighted=True)",
        function="collapsekit.metrics.alpha_req",
        doc="power-law exponent of the eigenvalue decay (Agrawal et al. 2022); "
            "larger α = variance in fewer directions."),
    "alpha_req_r2": MetricInfo(
        label="α-ReQ fit R²", collapse=None, unit="",
        reference="Agrawal et al. 2022 (α-ReQ)",
        function="collapsekit.metrics.alpha_req",
        doc="coefficient of determination of the log-log fit behind alpha_req; near 1 = "
            "the spectrum is a clean power law."),
    "dim_eff": MetricInfo(
        label="dim_eff (90% variance)", collapse="low", unit="dimensions",
        reference="Vera 2026 (Intention Collapse), effective dimensionality at 90% variance",
        function="collapsekit.metrics.dim_eff",
        doc="fewest principal components holding 90% of the variance."),
    "isoscore": MetricInfo(
        label="IsoScore", collapse="low", unit="fraction",
        reference="Rudman et al. 2022 (IsoScore), Algorithm 1; the reference package needs "
                  "N > D and takes points as columns, here zero eigenvalues (N ≤ D) are kept",
        function="collapsekit.metrics.isoscore",
        doc="how uniformly the variance uses the D dimensions: 0 = one direction, "
            "1 = isotropic."),
    "rank_collapse_residual": MetricInfo(
        label="rank-collapse residual (Frobenius)", collapse="low", unit="",
        reference="Dong et al. 2021 (Attention is not all you need: pure attention loses "
                  "rank doubly exponentially with depth); mean over sequences",
        function="collapsekit.metrics.rank_collapse_residual_batch",
        doc="‖X − 1x̄ᵀ‖_F / ‖X‖_F per sequence, x̄ the mean token, averaged over "
            "sequences; 0 = every token has the same representation."),
    "rank_collapse_residual_l1linf": MetricInfo(
        label="rank-collapse residual (√(ℓ1·ℓ∞))", collapse="low", unit="",
        reference="Dong et al. 2021, the paper's composite norm √(‖R‖₁‖R‖∞); with the row "
                  "mean instead of the paper's argmin (an upper bound)",
        function="collapsekit.metrics.rank_collapse_residual_batch",
        doc="the same relative residual to rank one in the paper's √(‖·‖₁‖·‖∞) norm, "
            "averaged over sequences."),
    # geometry summary: which layer (the values themselves resolve as min_/max_ prefixes)
    "min_rankme_layer": MetricInfo(
        label="layer of lowest RankMe", collapse=None, unit="layer",
        reference="collapsekit summary of RankMe (Garrido et al. 2023)",
        function="collapsekit.studies.geometry.summary",
        doc="index of the layer (0 = embeddings) where RankMe is lowest."),
    "max_anisotropy_layer": MetricInfo(
        label="layer of highest anisotropy", collapse=None, unit="layer",
        reference="collapsekit summary of anisotropy (Ethayarajh 2019)",
        function="collapsekit.studies.geometry.summary",
        doc="index of the layer (0 = embeddings) where anisotropy is highest."),
    # attention, per layer × head (studies/geometry.py, metrics/attention.py)
    "attention_entropy": MetricInfo(
        label="attention entropy (nats)", collapse="low", unit="nats",
        reference="Zhai et al. 2023 (Stabilizing Transformer Training by Preventing "
                  "Attention Entropy Collapse)",
        function="collapsekit.metrics.attention_entropy_from_sums",
        doc="mean over query rows of −Σ_j a_ij log a_ij over the allowed (causal, "
            "non-padding) keys; near 0 = the head looks at one token."),
    "attention_entropy_normalised": MetricInfo(
        label="normalised attention entropy", collapse="low", unit="fraction",
        reference="Zhai et al. 2023 (entropy collapse, < 0.1); Jha & Reagen 2025 "
                  "(Entropy-Guided Attention for Private LLMs: entropic overload, > 0.9)",
        function="collapsekit.metrics.attention_entropy_from_sums",
        doc="mean over query rows of the entropy divided by log(#allowed keys), in [0, 1]; "
            "1 = uniform attention."),
    "attention_collapsed_heads": MetricInfo(
        label="heads with collapsed attention", collapse="high", unit="fraction",
        reference="Zhai et al. 2023 (attention entropy collapse)",
        function="collapsekit.metrics.attention_entropy_from_sums",
        doc="share of the layer's heads whose mean normalised entropy is below 0.1 "
            "(attention locked on about one key)."),
    "attention_overloaded_heads": MetricInfo(
        label="heads with entropic overload", collapse="high", unit="fraction",
        reference="Jha & Reagen 2025 (Entropy-Guided Attention for Private LLMs)",
        function="collapsekit.metrics.attention_entropy_from_sums",
        doc="share of the layer's heads whose mean normalised entropy is above 0.9 "
            "(near-uniform attention)."),
    # logit lens (studies/geometry.py, models/lens.py)
    "logit_lens_agreement": MetricInfo(
        label="logit-lens agreement with the final top-1", collapse=None, unit="fraction",
        reference="nostalgebraist 2020 (the logit lens)",
        function="collapsekit.studies.geometry.commitment_layers",
        doc="share of tokens whose logit-lens top-1 at this layer equals the model's own "
            "final top-1."),
    "commitment_layer_mean": MetricInfo(
        label="mean commitment layer", collapse=None, unit="layer",
        reference="nostalgebraist 2020 (logit lens); commitment layer as in Distributional "
                  "Semantics Tracing",
        function="collapsekit.studies.geometry.commitment_layers",
        doc="mean over tokens of the first layer from which the logit-lens top-1 equals "
            "the final top-1 and stays equal."),
    # diversity, per prompt and pooled (studies/diversity.py)
    "distinct_1": MetricInfo(
        label="distinct-1", collapse="low", unit="fraction",
        reference="Li et al. 2016 (A Diversity-Promoting Objective Function); the paper "
                  "words it per token (per_token=True), the same for n = 1",
        function="collapsekit.metrics.distinct_n",
        doc="unique unigrams / all unigrams over the samples (Li et al. 2016)."),
    "distinct_2": MetricInfo(
        label="distinct-2", collapse="low", unit="fraction",
        reference="Li et al. 2016; the paper divides by all tokens (per_token=True), here "
                  "by all bigrams",
        function="collapsekit.metrics.distinct_n",
        doc="unique bigrams / all bigrams over the samples (Li et al. 2016)."),
    "distinct_3": MetricInfo(
        label="distinct-3", collapse="low", unit="fraction",
        reference="Li et al. 2016; the paper divides by all tokens (per_token=True), here "
                  "by all trigrams",
        function="collapsekit.metrics.distinct_n",
        doc="unique trigrams / all trigrams over the samples (Li et al. 2016)."),
    "mean_pairwise_cosine": MetricInfo(
        label="mean pairwise cosine", collapse="high", unit="cosine",
        reference="exact mean over distinct pairs, the identity behind anisotropy "
                  "(Ethayarajh 2019)",
        function="collapsekit.metrics.mean_pairwise_cosine",
        doc="mean cosine similarity between the sample embeddings; "
            "1 = every sample means the same."),
    "semantic_spread": MetricInfo(
        label="semantic spread", collapse="low", unit="",
        reference="collapsekit: 1 − mean pairwise cosine of sentence embeddings",
        function="collapsekit.studies.diversity.group_metrics",
        doc="1 − mean pairwise cosine of the sample embeddings; "
            "0 = every sample means the same."),
    "vendi_score": MetricInfo(
        label="Vendi score", collapse="low", unit="",
        reference="Friedman & Dieng 2023 (The Vendi Score), q = 1, cosine kernel",
        function="collapsekit.metrics.vendi_score",
        doc="exp of the entropy of the eigenvalues of K/n (Friedman & Dieng "
            "2023): the effective number of distinct samples."),
    "self_bleu": MetricInfo(
        label="Self-BLEU", collapse="high", unit="",
        reference="Zhu et al. 2018 (Texygen), BLEU-4 with NLTK smoothing method1; equals "
                  "averaging NLTK sentence_bleu",
        function="collapsekit.metrics.self_bleu",
        doc="mean BLEU of each sample against all the others (Zhu et al. 2018); "
            "1 = the samples repeat each other."),
    # meaning classes, per prompt (studies/diversity.py, metrics/uncertainty.py)
    "semantic_entropy": MetricInfo(
        label="semantic entropy (nats)", collapse="low", unit="nats",
        reference="Farquhar et al. 2024 (Nature), discrete form; classes by embedding "
                  "cosine ≥ 0.9 instead of the paper's bidirectional NLI entailment",
        function="collapsekit.metrics.semantic_entropy",
        doc="entropy of the meaning-class frequencies of the k samples; 0 = one meaning."),
    "semantic_entropy_likelihood": MetricInfo(
        label="semantic entropy, likelihood form (nats)", collapse="low", unit="nats",
        reference="Farquhar et al. 2024 (Rao–Blackwellised form of Kuhn, Gal & Farquhar "
                  "2023); Kuhn et al.'s code also shifts log p(C) by 5",
        function="collapsekit.metrics.semantic_entropy",
        doc="−Σ p̄(C) log p̄(C), p̄(C) ∝ Σ exp(sequence log-prob) of the class's samples."),
    "num_semantic_sets": MetricInfo(
        label="number of semantic sets", collapse="low", unit="classes",
        reference=f"{_LIN}, U_NumSet; counted as connected components (LM-Polygraph), the "
                  "reference code counts first-member classes (method='greedy')",
        function="collapsekit.metrics.num_semantic_sets",
        doc="connected components of the 'same meaning' graph of the k samples."),
    "num_distinct_classes": MetricInfo(
        label="distinct meaning classes", collapse="low", unit="classes",
        reference="Zhang et al. 2025 (NoveltyBench), distinct_k; classes here from the "
                  "embedding-cosine judge",
        function="collapsekit.metrics.num_distinct_classes",
        doc="number of meaning classes among the k samples (first-member assignment)."),
    "eigv": MetricInfo(
        label="EigV (soft number of meanings)", collapse="low", unit="classes",
        reference=f"{_LIN}, U_EigV; W = max(cos, 0) with unit diagonal, as the reference "
                  "code sets it",
        function="collapsekit.metrics.eigv",
        doc="Σ_k max(0, 1 − λ_k) over the normalised graph Laplacian of the similarity; "
            "1 = one clique of meaning."),
    "degmat": MetricInfo(
        label="DegMat", collapse="low", unit="",
        reference=f"{_LIN}, U_Deg; the reference code's average equals m·U_Deg",
        function="collapsekit.metrics.degmat",
        doc="trace(m·I − D)/m² of the similarity degrees; 0 = all samples equivalent."),
    # degeneration (studies/diversity.py)
    "loop_rate": MetricInfo(
        label="samples ending in a loop", collapse="high", unit="fraction",
        reference="Holtzman et al. 2020; Xu et al. 2022; only loops that reach the end of "
                  "the text, ≥ 3 repeats",
        function="collapsekit.metrics.loop_rate",
        doc="share of samples whose text ends in a repetition loop (whitespace words)."),
    "loop_period": MetricInfo(
        label="loop period (words)", collapse=None, unit="words",
        reference="Holtzman et al. 2020; Xu et al. 2022",
        function="collapsekit.metrics.repetition_loops",
        doc="mean period of the end-of-text loops found (NaN when no sample loops)."),
    "first_loop_position": MetricInfo(
        label="first-loop position (words)", collapse=None, unit="words",
        reference="Holtzman et al. 2020; Xu et al. 2022",
        function="collapsekit.metrics.repetition_loops",
        doc="mean word position where the end-of-text loop starts (NaN when none loops)."),
    "seq_rep_4": MetricInfo(
        label="seq-rep-4", collapse="high", unit="fraction",
        reference="Su et al. 2022 (SimCTG) rep-n, a mean over texts; the SimCTG code sums "
                  "counts over texts and skips each last n-gram (reference=True)",
        function="collapsekit.metrics.rep_n",
        doc="1 − unique/total 4-grams per sample, averaged over samples with 4-grams."),
    # homogeneity across models (studies/diversity.py, studies/compare.py)
    "hivemind_similarity": MetricInfo(
        label="within/cross-model cosine", collapse="high", unit="cosine",
        reference="Jiang et al. 2025 (Artificial Hivemind)",
        function="collapsekit.studies.diversity.homogeneity",
        doc="per prompt, mean cosine within one model's samples (row = col) or between "
            "two models' samples (row ≠ col)."),
    "cross_model_cosine": MetricInfo(
        label="cross-model cosine", collapse="high", unit="cosine",
        reference="Jiang et al. 2025 (Artificial Hivemind)",
        function="collapsekit.studies.compare.homogeneity_stage",
        doc="mean over shared prompts of the cosine between the two runs' samples."),
    "within_model_cosine": MetricInfo(
        label="within-model cosine", collapse="high", unit="cosine",
        reference="Jiang et al. 2025 (Artificial Hivemind)",
        function="collapsekit.studies.compare.homogeneity_stage",
        doc="mean over shared prompts of the pairwise cosine of one run's own samples."),
    "matched_records": MetricInfo(
        label="matched records", collapse=None, unit="count",
        reference="collapsekit (compare)",
        function="collapsekit.studies.compare.differences",
        doc="records with the same metric and scope in both compared runs."),
    # length collapse (studies/length_collapse.py)
    "centroid_distance": MetricInfo(
        label="distance to centroid", collapse="low", unit="",
        reference="Zhou et al. 2024 (Length-Induced Embedding Collapse in Transformer-based "
                  "Models)",
        function="collapsekit.studies.length_collapse.bucket_metrics",
        doc="mean Euclidean distance of the L2-normalised embeddings to their centroid."),
    # human-vs-model divergence (metrics/divergence.py)
    "js_ngram_1": MetricInfo(
        label="JS divergence, unigrams (bits)", collapse="high", unit="bits",
        reference="Lin 1991 (Jensen-Shannon); The Necessity of Imperfection 2025",
        function="collapsekit.metrics.js_divergence_ci",
        doc="Jensen-Shannon divergence between pooled word distributions, in [0, 1]."),
    "js_ngram_2": MetricInfo(
        label="JS divergence, bigrams (bits)", collapse="high", unit="bits",
        reference="Lin 1991 (Jensen-Shannon); The Necessity of Imperfection 2025",
        function="collapsekit.metrics.js_divergence_ci",
        doc="Jensen-Shannon divergence between pooled bigram distributions."),
    "js_sentence_length": MetricInfo(
        label="JS divergence, sentence length", collapse="high", unit="bits",
        reference="The Necessity of Imperfection 2025 (stylometric features)",
        function="collapsekit.metrics.stylometric_divergence",
        doc="JS between sentence-length distributions (pooled-quantile "
            "bins)."),
    "js_type_token_ratio": MetricInfo(
        label="JS divergence, type-token ratio", collapse="high", unit="bits",
        reference="The Necessity of Imperfection 2025 (stylometric features)",
        function="collapsekit.metrics.stylometric_divergence",
        doc="JS between per-text type-token-ratio distributions."),
    "js_punctuation_rate": MetricInfo(
        label="JS divergence, punctuation rate", collapse="high", unit="bits",
        reference="The Necessity of Imperfection 2025 (stylometric features)",
        function="collapsekit.metrics.stylometric_divergence",
        doc="JS between per-text punctuation-rate distributions."),
    # agents (studies/agents.py)
    "jaccard_to_anchor": MetricInfo(
        label="Jaccard to anchor", collapse="high", unit="fraction",
        reference=_ASC,
        function="collapsekit.metrics.jaccard",
        doc="mean over agents of |A∩W|/|A∪W| of the anchor's and the agent's "
            "word sets (Asymptotic Semantic Collapse)."),
    "cosine_to_anchor": MetricInfo(
        label="cosine to anchor", collapse="high", unit="cosine",
        reference=_ASC,
        function="collapsekit.studies.agents.round_metrics",
        doc="mean embedding cosine (MiniLM) between each agent's text and the "
            "anchor's."),
    "compliance": MetricInfo(
        label="compliance", collapse="high", unit="fraction",
        reference=_ASC,
        function="collapsekit.metrics.compliance",
        doc="mean fraction of the anchor's explicit constraints each agent satisfies."),
    "hash_collisions": MetricInfo(
        label="hash collisions", collapse="high", unit="count",
        reference=_ASC,
        function="collapsekit.metrics.hash_collisions",
        doc="agents whose normalised text equals another agent's."),
    "hash_collision_fraction": MetricInfo(
        label="hash-collision fraction", collapse="high", unit="fraction",
        reference=_ASC,
        function="collapsekit.studies.agents.round_metrics",
        doc="hash collisions / number of agents."),
    "anchor_copy_fraction": MetricInfo(
        label="anchor copies", collapse="high", unit="fraction",
        reference=_ASC,
        function="collapsekit.studies.agents.round_metrics",
        doc="fraction of agents whose normalised text equals the anchor's."),
    "mean_pairwise_jaccard": MetricInfo(
        label="mean pairwise Jaccard", collapse="high", unit="fraction",
        reference=_ASC,
        function="collapsekit.metrics.mean_pairwise_jaccard",
        doc="mean word-set Jaccard over all pairs of agents."),
    "vocabulary_entropy": MetricInfo(
        label="vocabulary entropy (bits)", collapse="low", unit="bits",
        reference=_ASC,
        function="collapsekit.metrics.vocabulary_entropy",
        doc="Shannon entropy of the pooled word distribution of all agents."),
    "state_entropy": MetricInfo(
        label="state entropy (bits)", collapse="low", unit="bits",
        reference=f"{_ASC}: node entropy as von Neumann entropy",
        function="collapsekit.metrics.von_neumann_entropy",
        doc="von Neumann entropy of (1/P)Σ x̂x̂ᵀ over the agents' unit vectors; "
            "0 = all agents point the same way."),
    "geodesic_distance_to_anchor": MetricInfo(
        label="geodesic distance to anchor (rad)", collapse="low", unit="radians",
        reference=f"{_ASC} (manifold mode)",
        function="collapsekit.studies.manifold.manifold_dynamics",
        doc="mean great-circle distance of the agents to the anchor.", scale="log"),
    "endpoint_gap": MetricInfo(
        label="endpoint gap (rad)", collapse="low", unit="radians",
        reference=f"{_ASC} (manifold mode: path independence)",
        function="collapsekit.studies.manifold.manifold_dynamics",
        doc="mean distance between the smooth and noisy runs' final states; "
            "0 = path independence."),
    # intention (studies/probes/intention.py)
    "intention_entropy": MetricInfo(
        label="H_int (bits)", collapse="low", unit="bits",
        reference="Vera 2026 (Intention Collapse), the paper's definition (full vocabulary)",
        function="collapsekit.metrics.intention_entropy",
        doc="entropy of the next-token distribution just before the answer, "
            "full vocabulary (Intention Collapse)."),
    "intention_entropy_top100": MetricInfo(
        label="H_int, top-100 renormalised (bits)", collapse="low", unit="bits",
        reference="Vera 2026; the paper's code renormalises over the top 100 tokens",
        function="collapsekit.metrics.intention_entropy",
        doc="as the paper's code computes it."),
    "probe_auroc": MetricInfo(
        label="probe AUROC (Recov)", collapse="low", unit="",
        reference="Vera 2026 (Recov); held out by stratified k-fold, never in-sample",
        function="collapsekit.metrics.probe_auroc",
        doc="held-out AUROC of a linear probe predicting correctness from the hidden "
            "state; 0.5 = nothing recoverable."),
    "entropy_auroc": MetricInfo(
        label="AUROC of −H_int", collapse="low", unit="",
        reference="Vera 2026 (Intention Collapse)",
        function="collapsekit.metrics.intention.auroc",
        doc="how well H_int alone separates right from wrong answers."),
    "accuracy": MetricInfo(
        label="accuracy", collapse=None, unit="fraction",
        reference="Vera 2026 (Intention Collapse)",
        function="collapsekit.metrics.intention.parse_answer",
        doc="first integer after the cue equals the answer."),
    "generated_tokens": MetricInfo(
        label="generated tokens before the cue", collapse=None, unit="tokens",
        reference="Vera 2026 (Intention Collapse): CoT and babble regimes",
        function="collapsekit.studies.probes.intention.score_regime",
        doc="mean number of tokens the model wrote before the answer cue (0 for direct)."),
    # ambiguity (studies/probes/ambiguity.py)
    "candidate_entropy": MetricInfo(
        label="candidate entropy (bits)", collapse="low", unit="bits",
        reference="Saito 2025 (NRR-Core)",
        function="collapsekit.metrics.ambiguity.entropy_bits",
        doc="entropy of the model's probabilities over an item's listed "
            "interpretations (NRR-Core); low at the ambiguous turn = early "
            "collapse."),
    "normalized_candidate_entropy": MetricInfo(
        label="candidate entropy / log2 m", collapse="low", unit="fraction",
        reference="Saito 2025 (NRR-Core)",
        function="collapsekit.metrics.ambiguity.entropy_bits",
        doc="the same divided by its maximum."),
    "entropy_drop": MetricInfo(
        label="entropy drop, turn 1 → 2 (bits)", collapse="low", unit="bits",
        reference="Saito 2025 (NRR-Core)",
        function="collapsekit.studies.probes.ambiguity.score_items",
        doc="how much the reading sharpens once the second turn arrives."),
    "intended_probability": MetricInfo(
        label="p(intended reading)", collapse=None, unit="fraction",
        reference="Saito 2025 (NRR-Core)",
        function="collapsekit.metrics.ambiguity.candidate_distribution",
        doc="the model's probability of the reading the second turn selects."),
    "intended_accuracy": MetricInfo(
        label="intended reading on top", collapse=None, unit="fraction",
        reference="Saito 2025 (NRR-Core)",
        function="collapsekit.metrics.ambiguity.candidate_distribution",
        doc="share of items whose most probable reading is the intended one."),
    "interpretation_entropy": MetricInfo(
        label="interpretation entropy (bits)", collapse="low", unit="bits",
        reference="Saito 2026 (NRR-Phi); meaning classes by embedding cosine with Kuhn et "
                  "al.'s first-member rule",
        function="collapsekit.metrics.state_entropy",
        doc="entropy of meaning classes among k sampled answers "
            "(NRR-Phi); the greedy baseline is 0."),
    "num_interpretations": MetricInfo(
        label="meaning classes among k answers", collapse="low", unit="classes",
        reference="Saito 2026 (NRR-Phi)",
        function="collapsekit.metrics.semantic_classes",
        doc="number of distinct meanings the model offers."),
    "candidate_coverage": MetricInfo(
        label="share of listed readings reached", collapse="low", unit="fraction",
        reference="Saito 2026 (NRR-Phi)",
        function="collapsekit.studies.probes.ambiguity.interpretation_rows",
        doc="share of candidates that are some answer's nearest."),
    "conflict_rate": MetricInfo(
        label="answers with conflict markers", collapse="low", unit="fraction",
        reference="Saito 2026 (NRR-Phi), stage 1 conflict detection (rule-based markers)",
        function="collapsekit.metrics.detect_conflicts",
        doc="share of answers that hedge or contrast ('but', 'maybe', けど)."),
    "input_conflict_rate": MetricInfo(
        label="inputs with conflict markers", collapse=None, unit="fraction",
        reference="Saito 2026 (NRR-Phi), stage 1 conflict detection (rule-based markers)",
        function="collapsekit.metrics.detect_conflicts",
        doc="share of the ambiguous first turns that carry a conflict marker themselves."),
    # tokenizer (studies/probes/tokenizer.py)
    "nonunique_word_type_rate": MetricInfo(
        label="non-unique word types", collapse="high", unit="fraction",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.nonunique_search",
        doc="share of word types that another token-id sequence also "
            "decodes to."),
    "nonunique_token_rate": MetricInfo(
        label="non-unique token occurrences", collapse="high", unit="fraction",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.nonunique_search",
        doc="share of token occurrences inside such words."),
    "mean_log10_encodings": MetricInfo(
        label="log10 encodings per word", collapse="high", unit="",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.nonunique_search",
        doc="mean log10 of the exact number of encodings per word type."),
    "word_types": MetricInfo(
        label="word types searched", collapse=None, unit="count",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.nonunique_search",
        doc="word types of the corpus whose encodings were counted."),
    "skipped_word_types": MetricInfo(
        label="word types skipped", collapse=None, unit="count",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.nonunique_search",
        doc="word types whose canonical ids leave the vocabulary (unknown or added tokens)."),
    "decode_mismatches": MetricInfo(
        label="examples that decode differently", collapse=None, unit="count",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.nonunique_search",
        doc="word types whose non-canonical example does not decode to the same text as "
            "the canonical ids."),
    "probe_cases": MetricInfo(
        label="replacement cases", collapse=None, unit="count",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.probe_cases",
        doc="replacement-probe cases the model answered."),
    "phantom_edit_rate": MetricInfo(
        label="phantom edits", collapse="high", unit="fraction",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.classify_case",
        doc="answers equal to the target only up to a tokenizer artifact, or "
            "through non-canonical ids (Say Anything but This)."),
    "probe_correct_rate": MetricInfo(
        label="replacement correct", collapse="low", unit="fraction",
        reference=_SAY,
        function="collapsekit.studies.probes.tokenizer.classify_case",
        doc="the exact target string through canonical ids."),
    "edit_error_rate": MetricInfo(
        label="edit errors", collapse="high", unit="fraction",
        reference=_SAY,
        function="collapsekit.metrics.classify_edit",
        doc="wrong word, source unchanged, or extra changes."),
    # passkey and drift (studies/probes/passkey.py, drift.py)
    "passkey_accuracy": MetricInfo(
        label="passkey accuracy", collapse="low", unit="fraction",
        reference="Chen et al. 2024 (Stuffed Mamba); task of Mohtashami & Jaggi 2023",
        function="collapsekit.studies.probes.passkey.summarise",
        doc="share of prompts whose hidden 5-digit key the model repeats "
            "(greedy), per prompt length (Stuffed Mamba)."),
    "passkey_cell_accuracy": MetricInfo(
        label="passkey accuracy (depth × length)", collapse="low", unit="fraction",
        reference="Chen et al. 2024 (Stuffed Mamba); task of Mohtashami & Jaggi 2023",
        function="collapsekit.studies.probes.passkey.summarise",
        doc="accuracy per needle depth and prompt length."),
    "passkey_collapse_length": MetricInfo(
        label="collapse length (tokens)", collapse="low", unit="tokens",
        reference="Chen et al. 2024 (Stuffed Mamba)",
        function="collapsekit.studies.probes.passkey.collapse_length",
        doc="smallest length with accuracy below the threshold."),
    "perplexity_ratio": MetricInfo(
        label="perplexity ratio B/A", collapse="high", unit="",
        reference=_DRIFT,
        function="collapsekit.studies.probes.drift.ratio_ci",
        doc="pooled perplexity of the edited or second model over the "
            "reference's (same tokenizer)."),
    "bits_per_byte_ratio": MetricInfo(
        label="bits-per-byte ratio B/A", collapse="high", unit="",
        reference=f"{_DRIFT}; bits per byte instead of perplexity across tokenizers",
        function="collapsekit.studies.probes.drift.ratio_ci",
        doc="the tokenizer-free version of the ratio."),
    "bits_per_byte": MetricInfo(
        label="bits per byte", collapse="high", unit="bits",
        reference=_DRIFT,
        function="collapsekit.models.perplexity.DocumentNLL.pooled_bits_per_byte",
        doc="total NLL in bits / UTF-8 bytes of the text."),
    "perplexity": MetricInfo(
        label="perplexity", collapse="high", unit="",
        reference=_DRIFT,
        function="collapsekit.models.perplexity.DocumentNLL.pooled_perplexity",
        doc="exp(total NLL / predicted tokens)."),
    "drift_collapse": MetricInfo(
        label="collapse flag", collapse="high", unit="",
        reference=f"{_DRIFT}; the threshold 2 is collapsekit's",
        function="collapsekit.studies.probes.drift.DriftMonitor.measure",
        doc="1 when the pooled ratio is at or above the threshold (default 2)."),
    "drift_collapsed_documents": MetricInfo(
        label="documents over threshold", collapse="high", unit="fraction",
        reference=_DRIFT,
        function="collapsekit.studies.probes.drift.DriftMonitor.measure",
        doc="share of documents whose own ratio passes it."),
    # scan (studies/runner.py)
    "probe_skipped": MetricInfo(
        label="probe skipped", collapse=None, unit="",
        reference="collapsekit (scan)",
        function="collapsekit.studies.runner.run_scan",
        doc="1 when a probe could not run on this model; the note says why."),
    # neural collapse, per layer (studies/neural_collapse.py, metrics/neural_collapse.py)
    "nc1": MetricInfo(
        label="NC1 (within / between variability)", collapse="low", unit="",
        reference=f"{_NC}; Papyan's code inverts the top K − 1 directions (svds), the same "
                  "when Σ_B has rank K − 1 < D",
        function="collapsekit.metrics.neural_collapse.nc1",
        doc="Tr(Σ_W Σ_B⁺) / K of the features around their class means; 0 = each class "
            "at one point."),
    "cdnv": MetricInfo(
        label="CDNV", collapse="low", unit="",
        reference="Galanti, György & Hutter 2022; the Linguistic-Collapse code (Wu & Papyan "
                  "2024) divides by ‖μ_i − μ_j‖⁴ (p=2)",
        function="collapsekit.metrics.neural_collapse.cdnv",
        doc="mean over class pairs of (var_i + var_j) / (2‖μ_i − μ_j‖²)."),
    "equinorm_cv": MetricInfo(
        label="NC2 equinorm CV", collapse="low", unit="",
        reference=f"{_NC} (Fig. 2); population std, Papyan's notebook uses ddof=1",
        function="collapsekit.metrics.neural_collapse.equinorm_cv",
        doc="std / mean of the centred class-mean norms; 0 = equal norms."),
    "etf_error": MetricInfo(
        label="NC2 distance to a simplex ETF", collapse="low", unit="",
        reference=f"{_NC}; under class imbalance need not reach 0 (Dang et al. 2023)",
        function="collapsekit.metrics.neural_collapse.etf_error",
        doc="Frobenius distance of the normalised class-mean Gram to a simplex ETF's."),
    "cos_mean": MetricInfo(
        label="mean cosine of class means", collapse=None, unit="cosine",
        reference=f"{_NC} (Fig. 3, equiangularity)",
        function="collapsekit.metrics.neural_collapse.mean_cosine",
        doc="mean cosine between centred class means; a simplex ETF has −1/(K−1)."),
    "cos_std": MetricInfo(
        label="std of cosines of class means", collapse="low", unit="cosine",
        reference=f"{_NC} (Fig. 3, equiangularity)",
        function="collapsekit.metrics.neural_collapse.mean_cosine",
        doc="population std of the cosines between centred class means; 0 = equiangular."),
    "duality_error": MetricInfo(
        label="NC3 self-duality error", collapse="low", unit="",
        reference=f"{_NC} plot its square; the Linguistic-Collapse code (Wu & Papyan 2024) "
                  "reports it unsquared, as here",
        function="collapsekit.metrics.neural_collapse.self_duality",
        doc="‖W/‖W‖_F − M̃/‖M̃‖_F‖_F between classifier rows and centred class means."),
    "duality_cos_mean": MetricInfo(
        label="NC3 mean cosine classifier/mean", collapse="high", unit="cosine",
        reference="Wu & Papyan 2024 (Linguistic Collapse)",
        function="collapsekit.metrics.neural_collapse.self_duality",
        doc="mean over classes of cos(W_c, μ_c − μ_G); 1 = self-dual."),
    "uniform_duality_cv": MetricInfo(
        label="UNC3 cosine CV", collapse="low", unit="",
        reference="Wu & Papyan 2024 (Linguistic Collapse), UNC3",
        function="collapsekit.metrics.neural_collapse.self_duality",
        doc="std / mean of those cosines over classes; 0 = uniformly self-dual."),
    "n_classes": MetricInfo(
        label="classes included", collapse=None, unit="count",
        reference="collapsekit (class statistics)",
        function="collapsekit.metrics.neural_collapse.collapse_metrics",
        doc="classes seen at least twice, used by the NC metrics."),
    "n_samples": MetricInfo(
        label="samples included", collapse=None, unit="count",
        reference="collapsekit (class statistics)",
        function="collapsekit.metrics.neural_collapse.collapse_metrics",
        doc="samples of the included classes."),
    "singleton_classes": MetricInfo(
        label="singleton classes", collapse=None, unit="count",
        reference="collapsekit (class statistics)",
        function="collapsekit.metrics.neural_collapse.collapse_metrics",
        doc="classes seen once, excluded (no within-class variance)."),
    "unseen_classes": MetricInfo(
        label="unseen classes", collapse=None, unit="count",
        reference="collapsekit (class statistics)",
        function="collapsekit.metrics.neural_collapse.collapse_metrics",
        doc="tracked classes with no sample."),
    "ignored_samples": MetricInfo(
        label="samples with untracked labels", collapse=None, unit="count",
        reference="collapsekit (class statistics)",
        function="collapsekit.metrics.neural_collapse.collapse_metrics",
        doc="samples whose class was not among the tracked classes."),
    "nc4_agreement": MetricInfo(
        label="NC4 agreement", collapse="high", unit="fraction",
        reference=f"{_NC} (NC4, nearest class-centre classifier)",
        function="collapsekit.metrics.neural_collapse.ncc_agreement",
        doc="held-out tokens where the nearest class mean equals the classifier's argmax."),
    "nc4_ncc_accuracy": MetricInfo(
        label="nearest-class-mean accuracy", collapse=None, unit="fraction",
        reference=f"{_NC} (NC4)",
        function="collapsekit.metrics.neural_collapse.nc4_predictions",
        doc="held-out tokens whose nearest class mean is the true next token."),
    "nc4_classifier_accuracy": MetricInfo(
        label="classifier accuracy", collapse=None, unit="fraction",
        reference=f"{_NC} (NC4)",
        function="collapsekit.metrics.neural_collapse.nc4_predictions",
        doc="held-out tokens whose classifier argmax is the true next token."),
    "nc4_tokens": MetricInfo(
        label="NC4 tokens", collapse=None, unit="tokens",
        reference=f"{_NC} (NC4)",
        function="collapsekit.metrics.neural_collapse.nc4_predictions",
        doc="held-out next-token samples NC4 was measured on."),
    # recursive training on generated data (studies/recursion, `collapsekit simulate`)
    "nll_real": MetricInfo(
        label="held-out real NLL (nats)", collapse="high", unit="nats",
        reference="Shumailov et al. 2024 (Gaussian, exact cross-entropy); Kazdan et al. "
                  "2024 (gmm, kde: held-out sample)",
        function=_REC + "gaussian.GaussianLearner.evaluate",
        doc="cross-entropy of the real distribution under the fitted model (gaussian: "
            "exact; gmm, kde: mean over a real test sample)."),
    "kl_real_model": MetricInfo(
        label="KL(real ‖ model) (nats)", collapse="high", unit="nats",
        reference="Shumailov et al. 2024 (Gaussian example)",
        function=_REC + "gaussian.GaussianLearner.evaluate",
        doc="exact KL divergence from the true Gaussian to the fitted one."),
    "w2": MetricInfo(
        label="W₂ to the truth", collapse="high", unit="",
        reference="Dowson & Landau 1982; Givens & Shortt 1984 (closed form for Gaussians)",
        function=_REC + "gaussian.GaussianLearner.evaluate",
        doc="2-Wasserstein distance between the fitted and the true Gaussian."),
    "cov_trace": MetricInfo(
        label="covariance trace", collapse="low", unit="",
        reference="Shumailov et al. 2024 (variance collapse); Kazdan et al. 2024 (kde)",
        function=_REC + "gaussian.GaussianLearner.evaluate",
        doc="total variance of the fitted model; under replace the ML trace decays as "
            "((m−1)/m)^t.", scale="log"),
    "mean_error": MetricInfo(
        label="squared mean error", collapse="high", unit="",
        reference="Shumailov et al. 2024 (Gaussian example)",
        function=_REC + "gaussian.GaussianLearner.evaluate",
        doc="‖μ̂ − μ‖² of the fitted mean."),
    "test_error": MetricInfo(
        label="test error ‖ŵ − w*‖²", collapse="high", unit="",
        reference="Dohmatob et al. 2024 (Model Collapse Demystified); Gerstgrasser et al. "
                  "2024 (accumulate)",
        function=_REC + "linear.LinearLearner.evaluate",
        doc="exact E_x (xᵀŵ − xᵀw*)² = ‖ŵ − w*‖² for x ~ N(0, I)."),
    "entropy": MetricInfo(
        label="entropy of the model (nats)", collapse="low", unit="nats",
        reference="Wright 1931; Fisher 1930 (Wright–Fisher drift)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="Shannon entropy of the fitted categorical distribution."),
    "support_size": MetricInfo(
        label="support size", collapse="low", unit="count",
        reference="Wright 1931; Fisher 1930; Dohmatob et al. 2024 (A Tale of Tails)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="categories (or n-gram vocabulary words) with non-zero model probability."),
    "gini_simpson": MetricInfo(
        label="Gini–Simpson 1 − Σp²", collapse="low", unit="fraction",
        reference="Wright 1931; Fisher 1930 (heterozygosity)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="probability that two draws differ; under replace (1 − 1/m)^t (1 − Σp₀²)."),
    "missing_mass": MetricInfo(
        label="missing mass", collapse="high", unit="fraction",
        reference="Dohmatob et al. 2024 (A Tale of Tails)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="real probability outside the model's support (the memoriser's test error)."),
    "tv_real": MetricInfo(
        label="TV to the truth", collapse="high", unit="fraction",
        reference="Dohmatob et al. 2024 (A Tale of Tails)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="total variation distance between the model and the true distribution."),
    "js_real": MetricInfo(
        label="JS to the truth (nats)", collapse="high", unit="nats",
        reference="Lin 1991 (Jensen-Shannon)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="Jensen–Shannon divergence between the model and the true distribution."),
    "kl_model_real": MetricInfo(
        label="KL(model ‖ real) (nats)", collapse="high", unit="nats",
        reference="Dohmatob et al. 2024 (A Tale of Tails)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="KL divergence from the model to the true distribution."),
    "tail_mass": MetricInfo(
        label="model mass on the real tail", collapse="low", unit="fraction",
        reference="Dohmatob et al. 2024 (A Tale of Tails)",
        function=_REC + "categorical.CategoricalLearner.evaluate",
        doc="model probability of the items ranked beyond the head of the Zipf truth."),
    "fixation_generation": MetricInfo(
        label="generation of fixation", collapse=None, unit="generations",
        reference="Wright 1931; Fisher 1930 (diffusion approximation of fixation time)",
        function=_REC + "categorical.CategoricalLearner.summaries",
        doc="first generation with a single category left (NaN when it never fixes)."),
    "cross_entropy": MetricInfo(
        label="held-out real cross-entropy (nats/token)", collapse="high", unit="nats",
        reference="Shumailov et al. 2024; Gerstgrasser et al. 2024; n-gram smoothing: "
                  "Jelinek & Mercer 1980",
        function=_REC + "ngram.NgramLearner.evaluate",
        doc="mean NLL per token of real held-out text under the model (ngram, lm)."),
    "mean_length": MetricInfo(
        label="sample length (words)", collapse=None, unit="words",
        reference="Shumailov et al. 2024 (tail loss)",
        function=_REC + "ngram.NgramLearner.evaluate",
        doc="mean number of words in the model's samples."),
    "js_unigram_real": MetricInfo(
        label="JS unigrams to real (nats)", collapse="high", unit="nats",
        reference="Lin 1991 (Jensen-Shannon)",
        function=_REC + "ngram.NgramLearner.evaluate",
        doc="Jensen–Shannon divergence between the model's and the real unigram "
            "distributions."),
    "real_fraction": MetricInfo(
        label="real fraction of the training set", collapse=None, unit="fraction",
        reference="Gerstgrasser et al. 2024 (accumulate vs replace)",
        function="collapsekit.studies.recursion.pool.Pool.real_fraction",
        doc="share of the generation's training rows that are real data."),
    "mean_age": MetricInfo(
        label="mean age of training rows", collapse=None, unit="generations",
        reference="Gerstgrasser et al. 2024 (accumulate vs replace)",
        function="collapsekit.studies.recursion.pool.Pool.mean_age",
        doc="mean generations since the training rows were born."),
}


def lookup(name: str) -> MetricInfo | None:
    """The entry of ``name``, or of the metric it summarises (``mean_rankme`` → ``rankme``,
    by the prefixes in ``PREFIXES``); None when unknown."""
    if name in CATALOG:
        return CATALOG[name]
    for prefix in PREFIXES:
        if name.startswith(prefix) and name[len(prefix):] in CATALOG:
            return CATALOG[name[len(prefix):]]
    return None
