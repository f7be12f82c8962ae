"""Length-induced embedding collapse, with and without TempScale (Zhou et al. 2024).

The same documents are cut to their first b tokens for each bucket b (the embedder's own
tokenizer; b counts [CLS] and [SEP], so b − 2 text tokens) and embedded. Per bucket and τ:

- ``mean_pairwise_cosine``: mean cosine over distinct pairs of embeddings (rises = collapse);
- ``centroid_distance``: mean Euclidean distance of the L2-normalised embeddings to their
  centroid (falls = collapse);
- ``rankme``: RankMe (Garrido et al. 2023) of the N×d embedding matrix (falls = collapse).

Only documents with at least max(buckets) − 2 tokens are used, so every bucket sees the same
documents and only the length changes. all-MiniLM-L6-v2 was fine-tuned with
``max_seq_length`` = 256 but has 512 position embeddings; sentence-transformers' ``encode``
would silently cut longer inputs to 256, so this study feeds token ids to the model
directly and records ``beyond_trained_length`` = True for buckets above ``max_seq_length``.
Buckets above the position-embedding count are refused.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from ..mitigate.tempscale import temp_scale
from ..models.embedders import embed_ids

BUCKETS = (32, 64, 128, 256, 512)
TAUS = (1.0, 0.9, 0.8)


def long_documents(tokenizer, texts: list[str], min_tokens: int, n: int | None = None
                   ) -> list[list[int]]:
    """Token ids (no special tokens) of the first ``n`` texts with ≥ ``min_tokens`` tokens."""
    ids = tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return [seq for seq in ids if len(seq) >= min_tokens][:n]


def bucket_metrics(emb: np.ndarray) -> dict[str, float]:
    """Mean pairwise cosine, mean distance to the centroid (unit rows), RankMe."""
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    return {"mean_pairwise_cosine": metrics.mean_pairwise_cosine(emb),
            "centroid_distance": float(np.linalg.norm(unit - unit.mean(0), axis=1).mean()),
            "rankme": metrics.rankme(emb)}


def length_collapse(st, texts: list[str], *, buckets=BUCKETS, taus=TAUS,
                    n: int | None = None, batch_size: int = 16) -> list[dict]:
    """Rows ``{tokens, tau, documents, beyond_trained_length, <bucket_metrics>}`` for every
    bucket × τ, on the same documents (see the module docstring)."""
    buckets = sorted({int(b) for b in buckets})
    limit = int(st[0].auto_model.config.max_position_embeddings)
    if not buckets or buckets[0] < 3 or buckets[-1] > limit:
        raise ValueError(f"buckets must be token lengths in [3, {limit}] (the embedder's "
                         f"position embeddings), got {list(buckets)}")
    if not taus or any(not (isinstance(t, (int, float)) and t > 0) for t in taus):
        raise ValueError(f"taus must be positive numbers, got {taus!r}")
    docs = long_documents(st.tokenizer, texts, buckets[-1] - 2, n)
    if len(docs) < 2:
        raise ValueError(f"only {len(docs)} text(s) have >= {buckets[-1] - 2} tokens: pass "
                         "longer documents or smaller buckets")
    rows = []
    for tau in taus:
        with temp_scale(st, float(tau)):
            for b in buckets:
                emb = embed_ids(st, docs, b, batch_size=batch_size)
                rows.append({"tokens": b, "tau": float(tau), "documents": len(docs),
                             "beyond_trained_length": b > st.max_seq_length,
                             **bucket_metrics(emb)})
    return rows


def stage(run, texts: list[str], *, spec: str | None = None, buckets=BUCKETS, taus=TAUS,
          n: int | None = None, console=None) -> None:
    """Length-collapse stage: records per (tokens, tau) and the table ``length_collapse``."""
    from ..models.embedders import DEFAULT_EMBEDDER, load_embedder

    if run.has("mean_pairwise_cosine", section="length collapse"):
        return
    with run.timer("length_collapse"):
        if console:
            console.log("length collapse: embedding documents per length bucket and τ")
        rows = length_collapse(load_embedder(spec or DEFAULT_EMBEDDER), texts,
                               buckets=buckets, taus=taus, n=n)
        for r in rows:
            for metric in ("mean_pairwise_cosine", "centroid_distance", "rankme"):
                run.add(metric, r[metric], section="length collapse", length=r["tokens"],
                        tau=r["tau"], documents=r["documents"])
        run.table("length_collapse", rows)
        run.meta(embedder=spec or DEFAULT_EMBEDDER)
    run.write()
