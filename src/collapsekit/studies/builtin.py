"""The studies collapsekit ships, registered in :data:`collapsekit.studies.STUDIES`.

Each entry names its stage as ``"module:function"`` so that listing studies (``--help``)
imports no numerical library. Defaults are the full settings; ``quick`` the smaller run;
``scan`` the overrides ``collapsekit scan`` uses (probes run there at quick settings).
"""

from __future__ import annotations

from ..params import Param
from .registry import STUDIES, Study

P = "collapsekit.studies."
HUMAN = ("news", "wikipedia", "kjv")
TEXTS = Param(str, None, "text file, one text per line or JSONL (default: human text)")
JUDGE = Param(str, "cosine", "meaning judge: cosine[:T] (T default: threshold), nli:MODEL "
              "(bidirectional entailment) or lm:MODEL (e.g. lm:smollm2)")


def _register(*studies: Study) -> None:
    for st in studies:
        STUDIES[st.name] = st


_register(
    Study(
        "geometry", section="geometry", stage=P + "geometry:study_stage",
        check=P + "geometry:check",
        doc="Per-layer representation geometry (RankMe, α-ReQ, anisotropy, ...), attention "
            "entropy and rank collapse, streamed over a corpus.",
        params={
            "texts": TEXTS,
            "human": Param(str, "wikipedia", "bundled human text when texts is not given",
                           choices=HUMAN),
            "n": Param(int, 256, "number of texts", low=2),
            "max_length": Param(int, 256, "tokens per text", low=8),
            "batch_size": Param(int, 8, "texts per forward pass", low=1),
            "shards": Param(int, 1, "split the corpus across N Ray workers, merged exactly",
                            low=1),
            "attention": Param(bool, True, "attention entropy per head"),
            "rank_collapse": Param(bool, True, "rank-collapse residual per layer"),
            "alpha_preset": Param(str, "paper", "α-ReQ fit: paper (ranks 11-100), reptrix "
                                  "(11-100, 1/r weights), tracing (12-100, 1/r)",
                                  choices=("paper", "reptrix", "tracing")),
            "neural_collapse": Param(bool, False, "NC1-NC4 with the next token as class"),
            "nc_layer": Param(str, ("final_norm",), "layers for neural collapse", many=True),
            "nc_max_classes": Param(int, None, "keep the K most frequent next tokens", low=2),
            "nc_min_count": Param(int, 2, "classes seen at least this often", low=1),
            "nc_heldout": Param(int, 32, "held-out texts for NC4", low=0),
            "nc_singletons": Param(str, "exclude", "classes seen once: exclude, or include "
                                   "with variance 0 (the Linguistic-Collapse code; needs "
                                   "nc_min_count=1)", choices=("exclude", "include")),
            "nc_cdnv_power": Param(int, 1, "CDNV denominator ‖μ_i − μ_j‖^(2p): 1 = Galanti "
                                   "et al., 2 = the Linguistic-Collapse code",
                                   choices=(1, 2)),
            "logit_lens": Param(bool, False, "logit-lens commitment layer (~3x the pass)"),
            "logit_lens_every": Param(int, 1, "logit lens on every k-th token", low=1),
            "length_collapse": Param(bool, False, "the embedder's length-collapse curve with "
                                     "TempScale tau in {1, 0.9, 0.8}"),
        },
        quick={"n": 48, "max_length": 96},
        scan={"n": 128, "max_length": 128}),
    Study(
        "diversity", section="diversity", stage=P + "diversity:study_stage",
        check=P + "diversity:check", many_models=True,
        needs_model=lambda s: s.samples is None,
        doc="Output diversity: lexical, semantic and meaning-class metrics per prompt, "
            "degeneration loops, cross-model homogeneity, with a human baseline; from a "
            "samples file or by sampling one or more models.",
        params={
            "samples": Param(str, None, "JSONL with 'text' and 'prompt_id' per line "
                             "(instead of sampling a model)"),
            "prompts": Param(str, "bundled", "prompt file or 'bundled'"),
            "n_prompts": Param(int, None, "use the first N prompts", low=1),
            "k": Param(int, 8, "samples per prompt", low=2),
            "temperature": Param(float, 1.0, "sampling temperature", low=0),
            "temperatures": Param(float, None, "sweep, e.g. 0.3,0.7,1.0", many=True, low=0,
                                  open_low=True),
            "top_p": Param(float, 1.0, "nucleus mass", low=0, high=1),
            "top_k": Param(int, 0, "top-k (0: off)", low=0),
            "max_new_tokens": Param(int, 48, "tokens per sample", low=1),
            "momentum": Param(float, 0.2, "alpha of the greedy-vs-momentum check; 0 skips it",
                              low=0),
            "threshold": Param(float, 0.9, "cosine at which two samples mean the same",
                               low=-1, high=1),
            "judge": JUDGE,
            "seq_logprob": Param(str, "mean", "sequence log-prob of the likelihood semantic "
                                 "entropy: mean token log-prob (length-normalised) or sum",
                                 choices=("mean", "sum")),
            "sample_batch": Param(int, None, "rows per forward pass while sampling", low=1),
            "human": Param(str, "wikipedia", "human reference text", choices=HUMAN),
            "divergence": Param(bool, False, "also human-vs-model JS divergence"),
        },
        quick={"k": 4, "max_new_tokens": 24, "n_prompts": 12},
        scan={"max_new_tokens": 40, "momentum": 0.0, "divergence": True,
              "sample_batch": 128}),
    Study(
        "agents", section="agents", stage=P + "agents:study_stage", check=P + "agents:check",
        scan={}, scan_quick=True,
        doc="Anchor/peripheral agents: semantic collapse onto a fixed anchor, greedy vs "
            "stochastic.",
        params={
            "scenarios": Param(str, None, "JSONL scenario file (default: the bundled ones)"),
            "n_scenarios": Param(int, None, "use the first N scenarios", low=1),
            "rounds": Param(int, 8, "rewrite rounds", low=1),
            "n_agents": Param(int, None, "first N peripheral agents per scenario", low=2,
                              flag="--agents"),
            "neighbours": Param(bool, False, "also show each agent its ring neighbours"),
            "temperature": Param(float, 0.8, "of the stochastic run (greedy runs too)",
                                 low=0, open_low=True),
            "max_new_tokens": Param(int, 64, "tokens per rewrite", low=1),
            "batch_size": Param(int, None, "rows per forward pass", low=1),
        },
        quick={"n_scenarios": 1, "n_agents": 4, "rounds": 3, "max_new_tokens": 40}),
    Study(
        "manifold", section="agents manifold", stage=P + "manifold:manifold_stage",
        needs_model=False,
        doc="Model-free projection dynamics of agents on the unit sphere: smooth vs noisy "
            "updates toward a fixed anchor.",
        params={
            "n_agents": Param(int, 8, "agents", low=1, flag="--agents"),
            "rounds": Param(int, 200, "update steps", low=1),
            "dim": Param(int, 16, "dimension of the sphere's space", low=2),
            "eta": Param(float, 0.3, "step size in (0, 1]", low=0, high=1, open_low=True),
            "sigma": Param(float, 0.2, "noise sigma0 (decays as sigma0/(1+t)^decay)", low=0),
            "decay": Param(float, 1.0, "noise decay exponent", low=0, open_low=True),
        },
        quick={"rounds": 50}),
    Study(
        "concepts", section="concepts", stage=P + "concepts:study_stage",
        check=P + "concepts:check", scan={}, scan_quick=True,
        doc="Compression vs meaning: rate, distortion and the IB objective of the human "
            "categories and of k-means clusters of the model's item embeddings, AMI with "
            "the human categories, typicality vs distance to the centroid.",
        params={
            "concepts": Param(str, None, "CSV category,item,typicality (default: the bundled "
                              "membership lists, which have no typicality ratings)"),
            "layer": Param(int, None, "capture point: 0 embedding output, 1..L blocks, L+1 "
                           "final norm (default: the input-embedding matrix)", low=0),
            "ks": Param(int, None, "k-means cluster counts (default: C/2, C, 2C for C "
                        "categories)", many=True, low=2),
            "beta": Param(float, 1.0, "β of L = rate + β·distortion", low=0),
            "n_init": Param(int, 10, "k-means restarts (best inertia kept)", low=1),
            "prefix_space": Param(bool, True, "tokenize ' item' (the in-text form) rather "
                                  "than 'item'"),
        },
        quick={"n_init": 3}),
    Study(
        "intention", section="intention", stage=P + "probes.intention:study_stage",
        check=P + "probes.intention:check", scan={}, scan_quick=True,
        doc="Intention collapse: entropy, dimensionality and probe recoverability of the "
            "state before the answer, for direct answers, chain of thought and babble.",
        params={
            "problems": Param(str, None, "JSONL with id, question and integer answer "
                              "(default: the bundled arithmetic problems)"),
            "n_items": Param(int, None, "use the first N problems", low=2),
            "cot_tokens": Param(int, 128, "most tokens of reasoning (and of babble)", low=1),
            "answer_tokens": Param(int, 8, "tokens decoded for the answer", low=1),
            "top_k": Param(int, 100, "top-k renormalised entropy", low=1),
            "folds": Param(int, 5, "cross-validation folds of the probe", low=2),
            "probe_layers": Param(int, None, "evenly spaced layers for the probe (all)",
                                  low=1),
            "batch_size": Param(int, 16, "rows per readout forward", low=1),
            "sample_batch": Param(int, 48, "rows per forward while generating", low=1),
        },
        quick={"n_items": 24, "cot_tokens": 48, "probe_layers": 4}),
    Study(
        "ambiguity", section="ambiguity", stage=P + "probes.ambiguity:study_stage",
        check=P + "probes.ambiguity:check", scan={}, scan_quick=True,
        doc="Ambiguity preservation: interpretation entropy vs greedy, two-turn "
            "disambiguation.",
        params={
            "items": Param(str, "bundled", "two-turn items (JSONL) or 'bundled'"),
            "n_sampled": Param(int, None, "items whose interpretations are sampled", low=1),
            "k": Param(int, 10, "sampled answers per item", low=2),
            "max_new_tokens": Param(int, 48, "tokens per answer", low=1),
            "threshold": Param(float, 0.6, "cosine at which two answers mean the same",
                               low=-1, high=1),
            "judge": JUDGE,
            "batch_size": Param(int, 16, "rows per forward pass", low=1),
        },
        quick={"n_sampled": 8, "k": 6, "max_new_tokens": 32}),
    Study(
        "tokenizer", section="tokenizer", stage=P + "probes.tokenizer:study_stage",
        check=P + "probes.tokenizer:check", scan={}, scan_quick=True,
        needs_model=lambda s: s.probe,
        doc="Tokenizer consistency: non-unique encodings of a corpus's words and the "
            "phantom-edit replacement probe.",
        params={
            "texts": TEXTS,
            "human": Param(str, "news", "bundled human text when texts is not given",
                           choices=HUMAN),
            "n_texts": Param(int, None, "use the first N texts", low=1),
            "n_probes": Param(int, 128, "replacement probe cases", low=1),
            "max_new_tokens": Param(int, 96, "tokens per probe answer", low=1),
            "max_words": Param(int, 24, "longest probe sentence in words", low=1),
            "probe": Param(bool, True, "the replacement probe (--no-probe: only the search, "
                           "which loads the tokenizer, not the weights)"),
        },
        quick={"n_texts": 200, "n_probes": 16, "max_new_tokens": 48, "max_words": 16}),
    Study(
        "passkey", section="passkey", stage=P + "probes.passkey:study_stage",
        scan={}, scan_quick=True,
        doc="Passkey retrieval accuracy versus context length (state collapse).",
        params={
            "lengths": Param(int, (256, 512, 1024, 2048, 4096, 8192), "prompt lengths in "
                             "tokens (clamped to the model's context)", low=1, many=True),
            "depths": Param(float, (0.0, 0.25, 0.5, 0.75, 1.0), "needle depths in [0, 1]",
                            low=0, high=1, many=True),
            "trials": Param(int, 4, "trials per (length, depth)", low=1),
            "threshold": Param(float, 0.5, "collapse length: first length with accuracy "
                               "below this", low=0, high=1, open_low=True),
            "filler": Param(str, "wikipedia", "filler text", choices=(*HUMAN, "repeat")),
            "max_new_tokens": Param(int, 8, "tokens decoded per answer", low=1),
            "chunk": Param(int, 512, "prefill chunk in tokens (memory)", low=1),
            "batch_tokens": Param(int, 4096, "prompt tokens per batch", low=1),
        },
        quick={"lengths": (128, 256, 512, 1024), "depths": (0.0, 0.5, 1.0), "trials": 1}),
    Study(
        "drift", section="drift", stage=P + "probes.drift:study_stage",
        check=P + "probes.drift:check", many_models=True, scan={}, scan_quick=True,
        doc="Perplexity drift between two models (--model A --model B), or of one model "
            "after successive rank-one weight edits.",
        params={
            "edits": Param(int, 5, "successive rank-one edits (one model)", low=1),
            "edit_layer": Param(int, None, "block whose MLP is edited (default: middle)",
                                low=0),
            "edit_scale": Param(float, 5.0, "each edit's spectral norm / the matrix's",
                                low=0),
            "threshold": Param(float, 2.0, "collapse flag: perplexity ratio at or above",
                               low=1, open_low=True),
            "texts": TEXTS,
            "human": Param(str, "wikipedia", "bundled human text when texts is not given",
                           choices=HUMAN),
            "n": Param(int, 64, "documents", low=1),
            "words": Param(int, 256, "words per document", low=1),
            "batch_size": Param(int, 4, "documents per forward pass", low=1),
        },
        quick={"n": 8, "words": 64, "edits": 3}),
    Study(
        "finetune", section="finetune", stage=P + "finetune:study_stage",
        check=P + "finetune:check",
        doc="Self-consuming fine-tune: each generation trains on the previous one's samples "
            "(replace) or on human text plus every sample so far (accumulate), optionally "
            "with a share of junk text; held-out perplexity, geometry, policy entropy and "
            "sample diversity per generation; resumable per generation.",
        params={
            "strategies": Param(str, ("replace", "accumulate"), "what generation g trains "
                                "on: replace (the previous samples) or accumulate (human text "
                                "+ all samples so far)", many=True,
                                choices=("replace", "accumulate"), flag="--strategy"),
            "generations": Param(int, 5, "fine-tuned generations after generation 0", low=1),
            "steps": Param(int, 16, "AdamW steps per generation", low=1),
            "lr": Param(float, 1e-4, "AdamW learning rate", low=0, open_low=True),
            "batch_size": Param(int, 8, "texts per training step", low=1),
            "n_samples": Param(int, 32, "model samples per generation (one per human prefix)",
                               low=2),
            "max_new_tokens": Param(int, 48, "tokens per sample", low=1),
            "prompt_tokens": Param(int, 8, "human-prefix tokens each sample continues", low=1),
            "temperature": Param(float, 1.0, "sampling temperature", low=0, open_low=True),
            "max_length": Param(int, 64, "tokens per human text (training, held-out, probe)",
                                low=2),
            "train_blocks": Param(int, 2, "fine-tune the last N blocks + final norm, the rest "
                                  "frozen (0: all)", low=0),
            "mix": Param(str, None, "junk=F: the fraction F of every training batch that is "
                         "junk text (default: none)"),
            "junk_file": Param(str, None, "junk texts, one per line or JSONL (default: the "
                               "bundled set)"),
            "texts": TEXTS,
            "human": Param(str, "wikipedia", "bundled human text when texts is not given",
                           choices=HUMAN),
            "data": Param(str, "self", "where training samples come from", choices=("self",)),
            "n_real": Param(int, 32, "human texts in the accumulate pool", low=1),
            "n_heldout": Param(int, 32, "held-out human texts for perplexity", low=1),
            "n_probe": Param(int, 16, "probe texts for geometry and policy entropy", low=2),
            "embedding": Param(bool, True, "embedding cosine of the samples (sentence "
                               "embedder)"),
            "eval_batch": Param(int, 8, "texts per forward pass when measuring", low=1),
            "sample_batch": Param(int, None, "rows per forward pass while sampling", low=1),
        },
        quick={"generations": 3, "steps": 8, "n_samples": 16, "n_real": 16, "n_heldout": 16,
               "max_new_tokens": 32, "lr": 3e-4}),
)

_register(Study(
    "numbers", section="numbers", stage=P + "numbers:study_stage", check=P + "numbers:check",
    doc="Number representations in task contexts (plain, parity, primality, each also under "
        "social pressure): per layer the shared / class-specific (divergence) split, probe "
        "accuracy, distortion against the plain context; the divergence ablated vs a random "
        "subspace of equal rank.",
    params={
        "n": Param(int, 100, "largest integer: items are 0..n", low=12, high=999),
        "contexts": Param(str, ("plain", "parity", "primality", "plain_pressure",
                                "parity_pressure", "primality_pressure"),
                          "task contexts", many=True,
                          choices=("plain", "parity", "primality", "plain_pressure",
                                   "parity_pressure", "primality_pressure")),
        "shared_rank": Param(int, 0, "within-class principal directions added to the "
                             "shared subspace (besides the mean)", low=0),
        "folds": Param(int, 5, "cross-validation folds of the probe", low=2),
        "permutations": Param(int, 20, "label shuffles for the chance level of the "
                              "divergence share (0: none)", low=0),
        "ablation_layers": Param(int, None, "evenly spaced blocks ablated (default all; "
                                 "0: no ablation)", low=0),
        "batch_size": Param(int, 16, "prompts per forward pass", low=1),
    },
    quick={"n": 40, "ablation_layers": 3}))
