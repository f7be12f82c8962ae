"""Subspace ablation in the residual stream, and the readout the numbers study needs.

``ablated(model, point, basis)`` installs a forward hook on capture point ``point`` (the
points of :mod:`collapsekit.models.capture`: 1..L = block outputs, L+1 = final norm) that
replaces its output h, at every position, by

    h − (h Q) Qᵀ,   Q = ``basis`` (D, k) with orthonormal columns,

so the subspace span(Q) is erased from the residual stream there and every later layer sees
it gone. k = 0 leaves the model unchanged. ``read_numbers`` runs prompts and returns the
state of one marked token per prompt at chosen capture points and the logit margin of two
answer tokens at the last position.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch

from ..errors import NotApplicable
from .capture import find_layers, iter_capture


def _points(model) -> list:
    embed, blocks, norm = find_layers(model)
    return [embed, *blocks, norm]


@contextmanager
def ablated(model, point: int, basis):
    """Erase span(``basis``) from capture point ``point``'s output (module docstring); the
    hook is removed on exit. The hook runs before hooks installed inside the block (e.g.
    ``iter_capture``'s), which therefore see the ablated states."""
    points = _points(model)
    if isinstance(point, bool) or not isinstance(point, (int, np.integer)) \
            or not 1 <= point < len(points):
        raise ValueError(f"ablation point {point!r} is not a block output or the final norm: "
                         f"use 1..{len(points) - 1}")
    q = np.asarray(basis, dtype=np.float64)
    dim = model.get_input_embeddings().weight.shape[1]
    if q.ndim != 2 or q.shape[0] != dim:
        raise ValueError(f"ablation basis must be (D={dim}, k), got shape {q.shape}")
    if q.shape[1] and not np.allclose(q.T @ q, np.eye(q.shape[1]), atol=1e-6):
        raise ValueError("ablation basis columns are not orthonormal: orthonormalise them "
                         "(e.g. metrics.numbers.gram_schmidt)")
    if q.shape[1] == 0:
        yield
        return
    weight = model.get_input_embeddings().weight
    qt = torch.from_numpy(q).to(device=weight.device, dtype=torch.float32)

    def hook(module, args, output):
        h = output[0] if isinstance(output, (tuple, list)) else output
        hq = h.float()
        new = (hq - (hq @ qt) @ qt.T).to(h.dtype)
        if isinstance(output, (tuple, list)):
            return type(output)((new, *output[1:]))
        return new

    handle = points[point].register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


def token_index(tokenizer, text: str, upto: str) -> int:
    """Index, in ``tokenizer(text)``, of the last token of the prefix ``upto`` of ``text``;
    refused when tokenising the prefix alone does not give the first tokens of ``text``
    (a token would straddle the boundary)."""
    if not text.startswith(upto) or not upto:
        raise ValueError(f"{upto!r} is not a non-empty prefix of {text!r}")
    full, head = tokenizer(text)["input_ids"], tokenizer(upto)["input_ids"]
    if full[:len(head)] != head:
        raise ValueError(f"the tokenizer merges a token across the end of {upto!r} in "
                         f"{text!r}: put a space or punctuation after it")
    return len(head) - 1


def answer_ids(tokenizer, answers: tuple[str, str]) -> tuple[int, int]:
    """First token id of each of the two answer strings (e.g. " odd", " even"); refused
    when they coincide (the tokenizer cannot tell the answers apart)."""
    ids = tuple(tokenizer(a, add_special_tokens=False)["input_ids"][:1] for a in answers)
    if not all(ids) or ids[0] == ids[1]:
        raise NotApplicable(f"the tokenizer spells the answers {answers[0]!r} and "
                            f"{answers[1]!r} with the same first token (or none): this model "
                            "cannot be scored on the task")
    return ids[0][0], ids[1][0]


def read_numbers(model, tokenizer, texts: list[str], positions: list[int], *,
                 points: list[int], answers: tuple[int, int] | None = None,
                 batch_size: int = 16, progress=None) -> tuple[np.ndarray, np.ndarray | None]:
    """(states, margins): states (len(points), N, D) float64 of token ``positions[i]`` of
    text i at each capture point (None when ``points`` is empty); margins (N,) =
    logit(answers[0]) − logit(answers[1]) at the last position, from the final-norm state
    and the LM head rows of the two tokens (before any final soft-capping, which keeps the
    sign), or None without ``answers``."""
    n_points = len(_points(model))
    final = n_points - 1
    wanted = sorted(set(points) | ({final} if answers is not None else set()))
    head = model.get_output_embeddings()
    if answers is not None:
        w = head.weight[list(answers)].detach().float()
        bias = getattr(head, "bias", None)
        b = bias[list(answers)].detach().float() if bias is not None else torch.zeros(2)
    states, margins, i0 = [], [], 0
    for batch in iter_capture(model, tokenizer, texts, batch_size=batch_size, layers=wanted,
                              progress=progress):
        rows = []
        for r in range(batch.mask.shape[0]):
            real = batch.mask[r].nonzero().flatten()
            pos = positions[i0 + r]
            if not 0 <= pos < real.numel():
                raise ValueError(f"position {pos} is outside text {i0 + r} "
                                 f"({real.numel()} tokens)")
            rows.append((r, real[pos], real[-1]))
        idx = torch.tensor([t[0] for t in rows])
        at = torch.stack([t[1] for t in rows])
        states.append(np.stack([batch.hidden[p][idx, at].double().cpu().numpy()
                                for p in points]) if points else None)
        if answers is not None:
            last = batch.hidden[final][idx, torch.stack([t[2] for t in rows])]
            logit = last @ w.to(last.device).T + b.to(last.device)
            margins.append((logit[:, 0] - logit[:, 1]).double().cpu().numpy())
        i0 += len(rows)
    return (np.concatenate(states, axis=1) if points else None,
            np.concatenate(margins) if answers is not None else None)
