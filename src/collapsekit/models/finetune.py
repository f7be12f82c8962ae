"""Fine-tuning a causal LM in place, for studies that train (the recursion study's ``lm``
learner): weight snapshots, padded batches, AdamW steps with the padding masked out of the
labels, and short ancestral continuations of token-id prefixes.

Continuations go through Hugging Face ``generate`` (``do_sample=True``, the global torch
random stream), not :func:`collapsekit.models.sampling.sample`, whose per-sample content-keyed
uniforms would draw other tokens and so change the learner's published curves
(docs/simulate.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch


def manual_seed(seed: int) -> None:
    """Seed torch's global random stream (dropout, ``generate``'s draws)."""
    torch.manual_seed(seed)


def snapshot(model) -> dict:
    """A detached copy of ``model``'s state dict (to restore with :func:`restore`)."""
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def restore(model, state: Mapping) -> None:
    """Load a :func:`snapshot` back into ``model``."""
    model.load_state_dict(state)


def device_of(model):
    """The device of ``model``'s first parameter."""
    return next(model.parameters()).device


def encode_batch(tokenizer, texts: Iterable[str], *, max_length: int, device,
                 side: str = "right") -> dict:
    """``tokenizer(texts)`` without special tokens, truncated to ``max_length`` tokens and
    padded on ``side`` (the tokenizer's own padding side is restored), as tensors on
    ``device``."""
    old, tokenizer.padding_side = tokenizer.padding_side, side
    try:
        enc = tokenizer(list(texts), return_tensors="pt", padding=True, truncation=True,
                        max_length=max_length, add_special_tokens=False)
    finally:
        tokenizer.padding_side = old
    return {k: v.to(device) for k, v in enc.items()}


def train_step(model, optimizer, enc: Mapping) -> bool:
    """One optimizer step on the causal-LM loss of the padded batch ``enc`` (padding labelled
    -100); False, with no step, when no row has a second real token to predict."""
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    if int((labels[:, 1:] != -100).sum()) == 0:
        return False
    model(**enc, labels=labels).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return True


def fine_tune(model, batches: Iterable[Mapping], *, lr: float) -> None:
    """AdamW(lr) steps in training mode, one :func:`train_step` per batch of ``batches``
    (consumed lazily, so a generator may draw each batch when it is needed); the model is
    left in eval mode."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    for enc in batches:
        train_step(model, opt, enc)
    model.eval()


def continue_ids(model, tokenizer, prefixes: list[list[int]], *, max_new_tokens: int,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> list[str]:
    """Ancestral continuations (``generate`` with ``do_sample=True``) of the token-id
    ``prefixes``, left-padded into one batch; the decoded texts, prefix included, special
    tokens skipped."""
    old, tokenizer.padding_side = tokenizer.padding_side, "left"
    try:
        enc = tokenizer.pad({"input_ids": prefixes}, padding=True, return_tensors="pt")
    finally:
        tokenizer.padding_side = old
    device = device_of(model)
    enc = {k: v.to(device) for k, v in enc.items()}
    with torch.inference_mode():
        gen = model.generate(**enc, do_sample=True, max_new_tokens=max_new_tokens,
                             temperature=temperature, top_k=top_k, top_p=top_p,
                             pad_token_id=tokenizer.pad_token_id, repetition_penalty=1.0)
    return tokenizer.batch_decode(gen, skip_special_tokens=True)
