"""TempScale: temperature-scaled self-attention in a BERT-style embedder.

Zhou et al. 2024, "Length-Induced Embedding Collapse in Transformer-based Models": longer
inputs flatten attention (more keys share the softmax mass), which low-pass-filters token
representations and pulls all document embeddings together. TempScale divides the attention
logits by a temperature τ < 1, sharpening the softmax:

    A = softmax(Q Kᵀ / (√d_k · τ))

In transformers 5.x every BERT-family self-attention module (``BertSelfAttention``, used by
all-MiniLM-L6-v2) passes its ``scaling`` attribute (1/√d_k) to the attention function
(eager, SDPA or flash alike), so TempScale sets ``scaling ← scaling / τ`` on each such
module and puts the original values back on exit, even after an exception.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..params import check_number


def _attention_modules(model) -> list:
    mods = [m for m in model.modules()
            if type(m).__name__.endswith("SelfAttention") and isinstance(
                getattr(m, "scaling", None), float)]
    if not mods:
        raise ValueError(f"{type(model).__name__} has no self-attention module with a float "
                         "'scaling' attribute (BERT-style, transformers >= 5): TempScale "
                         "cannot patch it")
    return mods


@contextmanager
def temp_scale(model, tau: float):
    """Inside the ``with`` block, every self-attention of ``model`` (a SentenceTransformer or
    a transformers module) uses logits divided by ``tau``; τ = 1 changes nothing."""
    check_number("tau", tau, 0, open_low=True)  # e.g. 0.9
    mods = _attention_modules(model)
    saved = [m.scaling for m in mods]
    try:
        for m, s in zip(mods, saved):
            m.scaling = s / tau
        yield model
    finally:
        for m, s in zip(mods, saved):
            m.scaling = s
