"""The logit lens (nostalgebraist 2020): the final norm and unembedding applied to each
layer's residual stream, read off as next-token predictions."""

from __future__ import annotations

import numpy as np
import torch

from .capture import find_layers


def unembedding(model) -> tuple[np.ndarray, np.ndarray | None]:
    """(W (V, D), b (V,) or None): the output embedding (LM head) of ``model`` as float64
    arrays on the CPU."""
    head = model.get_output_embeddings()
    w = head.weight.detach().to("cpu", torch.float64).numpy()
    b = getattr(head, "bias", None)
    return w, None if b is None else b.detach().to("cpu", torch.float64).numpy()


def logit_lens_top1(lm, batch, *, every: int = 1, chunk_bytes: int = 2**26) -> np.ndarray:
    """(L+1, N) top-1 token ids of the logit lens (final norm + unembedding) at the
    embedding output and after each block, on every ``every``-th real token of ``batch``.

    Row L (last block) is the model's own top-1: final norm of the last block *is* the
    final-norm capture. Computed layer by layer in chunks of ≤ ``chunk_bytes`` of logits,
    never holding (tokens × vocab) for more than one chunk."""
    _, _, norm = find_layers(lm.model)
    head = lm.model.get_output_embeddings()
    n = len(batch.hidden) - 1  # embed + L blocks
    final = batch.tokens(n)[::every]
    rows = max(1, chunk_bytes // (4 * head.weight.shape[0]))
    top = np.empty((n, len(final)), dtype=np.int64)
    with torch.inference_mode():
        for layer in range(n):
            h = final if layer == n - 1 else batch.tokens(layer)[::every]
            for i in range(0, len(h), rows):
                x = h[i:i + rows] if layer == n - 1 else norm(h[i:i + rows])
                top[layer, i:i + rows] = head(x).argmax(-1).cpu().numpy()
    return top
