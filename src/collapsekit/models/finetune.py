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


def train_step(model, optimizer, enc: Mapping) -> float | None:
    """One optimizer step on the causal-LM loss of the padded batch ``enc`` (padding labelled
    -100); returns that loss (mean nats/token, before the update), or None, with no step,
    when no row has a second real token to predict."""
    labels = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
    if int((labels[:, 1:] != -100).sum()) == 0:
        return None
    loss = model(**enc, labels=labels).loss
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    return float(loss.detach())


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


# --- the self-consuming fine-tune study (studies/finetune.py) ---------------------------
def freeze_all_but_last(model, n_blocks: int) -> list[str]:
    """Freeze every parameter except those of the last ``n_blocks`` decoder blocks and the
    final norm (``n_blocks`` = 0: train everything); returns the trainable parameter names
    (as in ``named_parameters``, tied weights once). An untied output head stays frozen:
    the last blocks carry the change."""
    from .capture import find_layers

    if n_blocks < 0:
        raise ValueError(f"n_blocks={n_blocks}: give 0 (all) or a positive number of blocks")
    if n_blocks == 0:
        for p in model.parameters():
            p.requires_grad_(True)
    else:
        _, blocks, norm = find_layers(model)
        if n_blocks > len(blocks):
            raise ValueError(f"train_blocks={n_blocks} but the model has {len(blocks)} blocks: "
                             f"give at most {len(blocks)} (0 trains all)")
        for p in model.parameters():
            p.requires_grad_(False)
        for module in (*blocks[-n_blocks:], norm):
            for p in module.parameters():
                p.requires_grad_(True)
    return [n for n, p in model.named_parameters() if p.requires_grad]


def trainable_state(model) -> dict:
    """Detached copies of the trainable parameters, by name (see :func:`freeze_all_but_last`)."""
    return {n: p.detach().clone().contiguous() for n, p in model.named_parameters()
            if p.requires_grad}


def load_trainable(model, state: Mapping) -> None:
    """Copy ``state`` (name → tensor, from :func:`trainable_state` or a checkpoint) into the
    model's parameters of those names; KeyError naming a missing one."""
    params = dict(model.named_parameters())
    missing = sorted(set(state) - set(params))
    if missing:
        raise KeyError(f"checkpoint holds tensors the model lacks: {', '.join(missing[:5])}")
    with torch.no_grad():
        for name, value in state.items():
            params[name].copy_(value.to(params[name].device, params[name].dtype))


def save_trainable(model, path) -> None:
    """The trainable parameters as a safetensors file (written to a temporary name, then
    renamed, so a killed run never leaves half a checkpoint)."""
    import os

    from safetensors.torch import save_file

    tmp = f"{path}.tmp{os.getpid()}"
    save_file({k: v.cpu() for k, v in trainable_state(model).items()}, tmp)
    os.replace(tmp, path)


def read_checkpoint(path) -> dict:
    """name → tensor of a safetensors checkpoint (CPU)."""
    from safetensors.torch import load_file

    return load_file(str(path))


def train_losses(model, batches: Iterable[Mapping], *, lr: float) -> list[float | None]:
    """A fresh AdamW(lr) over the trainable parameters, one :func:`train_step` per batch
    (consumed lazily), model left in eval mode; the loss of each step."""
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    try:
        return [train_step(model, opt, enc) for enc in batches]
    finally:
        model.eval()


def logits_batches(model, tokenizer, texts: list[str], *, max_length: int,
                   batch_size: int = 8):
    """Yield (logits (B, T, V), real-token mask (B, T)) of ``texts`` in right-padded
    batches cut to ``max_length`` tokens (no special tokens added), under inference mode;
    e.g. for :class:`collapsekit.monitor.PolicyEntropy`."""
    device = device_of(model)
    for s in range(0, len(texts), batch_size):
        enc = encode_batch(tokenizer, texts[s:s + batch_size], max_length=max_length,
                           device=device)
        with torch.inference_mode():
            yield model(**enc).logits, enc["attention_mask"].bool()
