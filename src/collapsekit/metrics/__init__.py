"""Pure metric functions of arrays, texts and ``stats`` accumulators, and their catalogue
(``CATALOG``); the public names are listed in ``__all__``."""

from .ambiguity import detect_conflicts, state_entropy
from .attention import (AttentionEntropy, attention_entropy,
                        attention_entropy_from_sums)
from .catalog import CATALOG
from .concepts import (category_ami, centroid_distances, ib_objective, kmeans_labels,
                       partition_distortion, partition_rate, typicality_spearman)
from .consensus import (compliance, hash_collisions, jaccard, mean_pairwise_jaccard,
                        vocabulary_entropy, von_neumann_entropy)
from .divergence import js_divergence, js_divergence_ci, stylometric_divergence
from .intention import intention_entropy, probe_auroc
from .lexical import (compression_ratio, distinct_n, ead, homogenization, loop_rate,
                      ngram_diversity, rep_n, repetition_loops, self_bleu, self_repetition,
                      simctg_diversity)
from .neural_collapse import neural_collapse
from .semantic import (chamfer_distance, mean_pairwise_cosine, mean_pairwise_cosine_between,
                       semantic_volume, vendi_score)
from .spectrum import (AlphaReq, TopCoordinate, alpha_req, anisotropy, constant_coordinates,
                       dim_eff, isoscore, matrix_entropy_rank, participation_ratio,
                       rank_collapse_residual, rank_collapse_residual_batch,
                       rank_collapse_residuals, rankme, spectrum,
                       top_coordinate, top_coordinate_share)
from .tokenization import classify_edit
from .uncertainty import (cosine_judge, degmat, eigv, num_distinct_classes, num_semantic_sets,
                          semantic_classes, semantic_entropy)

__all__ = [
    "CATALOG",
    "category_ami", "centroid_distances", "ib_objective", "kmeans_labels",
    "partition_distortion", "partition_rate", "typicality_spearman",
    "classify_edit", "compliance", "detect_conflicts", "hash_collisions", "intention_entropy",
    "jaccard", "mean_pairwise_jaccard", "probe_auroc", "state_entropy", "vocabulary_entropy",
    "von_neumann_entropy",
    "AlphaReq", "AttentionEntropy", "attention_entropy", "attention_entropy_from_sums",
    "alpha_req", "anisotropy", "chamfer_distance", "compression_ratio",
    "cosine_judge", "degmat", "dim_eff", "distinct_n", "ead", "eigv", "homogenization",
    "isoscore", "js_divergence", "js_divergence_ci", "loop_rate", "matrix_entropy_rank", "mean_pairwise_cosine",
    "mean_pairwise_cosine_between", "neural_collapse", "ngram_diversity", "num_distinct_classes",
    "num_semantic_sets", "participation_ratio", "rank_collapse_residual",
    "rank_collapse_residual_batch", "rank_collapse_residuals", "rankme", "rep_n", "repetition_loops", "self_bleu",
    "self_repetition", "semantic_classes", "semantic_entropy", "semantic_volume",
    "simctg_diversity", "spectrum", "stylometric_divergence", "top_coordinate_share",
    "TopCoordinate", "constant_coordinates", "top_coordinate", "vendi_score",
]
