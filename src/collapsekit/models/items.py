"""One vector per item word (or short phrase) from a causal LM, for the concepts study.

- ``layer=None``: the input-embedding rows E[t] of the item's tokens (the static token
  embeddings the "From Tokens to Thoughts" paper analyses), averaged over the item's tokens
  when the tokenizer splits it (``"blue jay"`` → mean of its token rows). No forward pass.
- ``layer=l``: the residual stream at capture point l of ``models.capture`` (0 = the
  embedding output, 1..L = block outputs, L+1 = the final norm) with the item alone as the
  text after a document-start token (see ``_document_start``; without one the item sits at
  position 0, the attention sink, whose states are ~100× larger: SmolLM2 block 15 norms
  ~25 000 vs ~200), averaged over the item's own tokens.

The item is tokenized with a leading space (``" robin"``) when ``prefix_space``: the form a
word takes inside running text, which byte-level BPE and SentencePiece vocabularies spell
with one token far more often than the bare word.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import CollapsekitError, NotApplicable
from .capture import iter_capture


def item_token_ids(tokenizer, items: list[str], *, prefix_space: bool = True
                   ) -> list[list[int]]:
    """Token ids (no special tokens) of each item. An item that becomes the unknown token is
    refused (``NotApplicable``: ``scan`` skips the study for such a model), since its vector
    would be the <unk> row shared by every such item."""
    texts = [(" " + it) if prefix_space else it for it in items]
    ids = tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]
    unk = tokenizer.unk_token_id
    for item, seq in zip(items, ids):
        if not seq:
            raise CollapsekitError(f"item {item!r} has no tokens: remove it from the CSV")
        if unk is not None and unk in seq:
            raise NotApplicable(f"item {item!r} is not in the tokenizer's vocabulary (it "
                                "becomes the unknown token): remove or respell it")
    return ids


def _document_start(tok) -> str:
    """The token text to put before an item when the tokenizer adds none itself:
    ``<|endoftext|>`` where the vocabulary has it (the GPT-2 / SmolLM2 document separator;
    SmolLM2-Instruct's bos_token is the chat marker <|im_start|>, which turns some items
    into attention sinks), else ``bos_token``; "" when the tokenizer adds its own BOS."""
    if len(tok("a")["input_ids"]) > len(tok("a", add_special_tokens=False)["input_ids"]):
        return ""
    if "<|endoftext|>" in tok.get_vocab():
        return "<|endoftext|>"
    return tok.bos_token or ""


def item_vectors(lm, items: list[str], *, layer: int | None = None, prefix_space: bool = True,
                 batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """((N, D) float64 vectors, (N,) token counts) of ``items`` (see the module docstring)."""
    model, tok = lm.model, lm.tokenizer
    ids = item_token_ids(tok, items, prefix_space=prefix_space)
    counts = np.array([len(s) for s in ids])
    if layer is None:
        emb = model.get_input_embeddings().weight.detach()
        rows = [emb[torch.tensor(s, device=emb.device)].double().mean(0) for s in ids]
        return torch.stack(rows).cpu().numpy(), counts
    n_points = lm.n_layers + 2
    if not 0 <= layer < n_points:
        raise CollapsekitError(f"layer={layer} is out of range for this model: use 0 (the "
                               f"embedding output) .. {n_points - 1} (the final norm)")
    texts = [(" " + it) if prefix_space else it for it in items]
    start = _document_start(tok)
    if start:
        texts = [start + t for t in texts]
    out = []
    for batch in iter_capture(model, tok, texts, batch_size=batch_size, layers=[layer]):
        h = batch.hidden[layer]
        for row in range(h.shape[0]):
            real = torch.nonzero(batch.mask[row]).reshape(-1)
            n = int(counts[batch.offset + row])
            seq = batch.input_ids[row, real].tolist()
            if seq[-n:] != ids[batch.offset + row]:  # the item must close the text
                raise CollapsekitError(f"the tokenizer adds tokens after {texts[batch.offset + row]!r}: "
                                       "omit --layer to use the input embeddings")
            out.append(h[row, real[-n:]].double().mean(0))
    return torch.stack(out).cpu().numpy(), counts
