"""Per-document negative log-likelihood of a causal LM, streamed in padded batches.

Each document is encoded without special tokens and prefixed with one start token (the
tokenizer's BOS, else its EOS — the usual document separator), so every token of the text
is predicted: for document d with tokens x_1..x_n,

    NLL_d = −Σ_{i=1..n} ln p(x_i | start, x_<i)          (nats)
    PPL_d = exp(NLL_d / n),    pooled PPL = exp(Σ_d NLL_d / Σ_d n_d)
    BPB_d = NLL_d / ln 2 / bytes_d   (bits per UTF-8 byte of the text)

Perplexity per token depends on the tokenizer; bits per byte does not, so models with
different tokenizers are compared by BPB. Padding is masked; sums are float64.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NotApplicable
from ..params import check_int
from .longcontext import context_length


@dataclass
class DocumentNLL:
    """Total NLL (nats), predicted tokens and UTF-8 bytes per document, and a hash of the
    token ids (equal hashes = the two tokenizers cut the corpus identically)."""

    nll: np.ndarray
    tokens: np.ndarray
    bytes: np.ndarray
    ids_hash: str

    def perplexity(self) -> np.ndarray:
        return np.exp(self.nll / self.tokens)

    def pooled_perplexity(self) -> float:
        return float(math.exp(self.nll.sum() / self.tokens.sum()))

    def bits_per_byte(self) -> np.ndarray:
        return self.nll / math.log(2) / self.bytes

    def pooled_bits_per_byte(self) -> float:
        return float(self.nll.sum() / math.log(2) / self.bytes.sum())


def encode_documents(tokenizer, texts: list[str], limit: int | None = None
                     ) -> list[list[int]]:
    """``[start] + ids`` of each text (see the module docstring); ValueError for an empty
    corpus, an empty document, or one longer than ``limit`` tokens."""
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise ValueError("texts must be a list of strings")
    if not texts:
        raise ValueError("the reference corpus is empty: give at least one document")
    start = tokenizer.bos_token_id if tokenizer.bos_token_id is not None \
        else tokenizer.eos_token_id
    if start is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to start documents")
    out = []
    for i, text in enumerate(texts):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"document {i} is empty or not a string: remove it")
        ids = [start] + list(tokenizer(text, add_special_tokens=False)["input_ids"])
        if limit is not None and len(ids) > limit:
            raise NotApplicable(f"document {i} has {len(ids)} tokens, more than the model's "
                             f"{limit}-token context: cut the documents shorter")
        out.append(ids)
    return out


def token_nll(model, input_ids, attention_mask, *, dtype=torch.float32, **inputs
              ) -> torch.Tensor:
    """(B, T − 1) NLL in nats of each token after the first of every row given the tokens
    before it, the logits cast to ``dtype`` first. Padded positions (``attention_mask[:, 1:]``
    = 0) hold meaningless values: mask them. ``inputs`` go to the model as well."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask,
                   **inputs).logits[:, :-1].to(dtype)
    return torch.nn.functional.cross_entropy(logits.transpose(1, 2), input_ids[:, 1:],
                                             reduction="none")


def batch_nll(model, enc) -> tuple[float, int]:
    """(summed NLL in nats, predicted tokens) of the padded batch ``enc`` (``input_ids``,
    ``attention_mask`` as a tokenizer returns them), float64 logits; the first token of each
    row is context only (no start token is added, unlike :func:`document_nll`)."""
    with torch.inference_mode():
        nll = token_nll(model, **enc, dtype=torch.float64)
        mask = enc["attention_mask"][:, 1:].bool()
        return float(nll[mask].sum()), int(mask.sum())


def document_nll(model, tokenizer, texts: list[str], *, batch_size: int = 4,
                 progress=None) -> DocumentNLL:
    """NLL of every document of ``texts`` under ``model`` (see the module docstring),
    ``batch_size`` documents per forward pass (right-padded, masked). ``progress(n)`` is
    called with the number of documents done after each batch."""
    batch_size = check_int("batch_size", batch_size, 1)
    docs = encode_documents(tokenizer, texts, context_length(model))
    if any(len(d) < 2 for d in docs):
        raise ValueError("a document encodes to zero tokens: remove it")
    device = next(model.parameters()).device
    nll = np.zeros(len(docs))
    with torch.inference_mode():
        for s in range(0, len(docs), batch_size):
            batch = docs[s:s + batch_size]
            width = max(map(len, batch))
            ids = torch.tensor([d + [d[0]] * (width - len(d)) for d in batch], device=device)
            mask = torch.tensor([[1] * len(d) + [0] * (width - len(d)) for d in batch],
                                device=device)
            ce = token_nll(model, ids, mask, dtype=torch.float32)
            if not torch.isfinite(ce).all():
                raise ValueError("the model produced NaN/inf log-probabilities: load it in "
                                 "float32 or bfloat16 instead of float16")
            nll[s:s + len(batch)] = (ce.double() * mask[:, 1:]).sum(-1).cpu().numpy()
            if progress:
                progress(len(batch))
    digest = hashlib.sha256(json.dumps(docs).encode()).hexdigest()
    return DocumentNLL(nll=nll, tokens=np.array([len(d) - 1 for d in docs]),
                       bytes=np.array([len(t.encode("utf-8")) for t in texts]),
                       ids_hash=digest)
