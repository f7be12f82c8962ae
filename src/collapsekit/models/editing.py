"""Rank-one weight edits of an MLP output matrix, a controlled stand-in for model editing.

Locate-then-edit methods such as ROME (Meng et al. 2022) change one MLP matrix by a
rank-one term; "The Butterfly Effect of Model Editing" (Yang et al. 2024) shows a few such
edits can collapse a model, seen as a perplexity surge. Here the direction is random:

    W ← W + s · ‖W‖₂ · u vᵀ,   u, v seeded random unit vectors, ‖·‖₂ the spectral norm,

so ‖ΔW‖₂ = s‖W‖₂. The edited matrix is the output projection of block ``layer``'s MLP (the
last weight matrix registered in it: ``down_proj`` in llama/gemma, ``c_proj`` in gpt2,
``dense_4h_to_h`` in GPT-NeoX/Falcon/Bloom, ``fc2`` in Phi and in OPT, whose blocks hold
fc1/fc2 themselves). A block without an MLP (Mamba) is ``NotApplicable``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import NotApplicable
from ..params import check_int, check_number
from .capture import find_layers


@dataclass(frozen=True)
class Edit:
    """What one edit did: parameter name, layer, scale s, the ‖W‖₂ it was scaled by, seed."""

    name: str
    layer: int
    scale: float
    spectral_norm: float
    seed: int


def mlp_output_matrix(model, layer: int) -> tuple[str, torch.nn.Parameter]:
    """(full parameter name, parameter) of the MLP output matrix of block ``layer``
    (0-based; negative counts from the end)."""
    _, blocks, _ = find_layers(model)
    n = len(blocks)
    layer = check_int("edit layer (block index)", layer, -n, n - 1)
    block = blocks[layer]
    mlp = next((m for name, m in block.named_children() if name in ("mlp", "feed_forward")
                or type(m).__name__.endswith("MLP")), None)
    if mlp is None and isinstance(getattr(block, "fc2", None), torch.nn.Linear):
        mlp = block.fc2  # fairseq-style blocks (OPT, XGLM): fc1/fc2 in the block itself
    if mlp is None:
        raise NotApplicable(f"block {layer} ({type(block).__name__}) has no MLP (no mlp, "
                            "feed_forward or fc2 submodule): weight edits need one")
    mats = [(k, p) for k, p in mlp.named_parameters() if p.ndim == 2]
    if not mats:
        raise ValueError(f"block {layer}'s MLP has no weight matrix to edit")
    local, param = mats[-1]
    prefix = next(k for k, m in model.named_modules() if m is mlp)
    return f"{prefix}.{local}", param


def spectral_norm(model, layer: int) -> float:
    """‖W‖₂ (largest singular value, in float64) of block ``layer``'s MLP output matrix."""
    return _spectral_norm(mlp_output_matrix(model, layer)[1])


def _spectral_norm(w: torch.Tensor) -> float:
    with torch.no_grad():
        return float(torch.linalg.matrix_norm(w.detach().double(), ord=2))


def rank_one_edit(model, *, layer: int, scale: float, seed: int = 0,
                  norm: float | None = None) -> Edit:
    """Apply W ← W + s‖W‖₂ u vᵀ in place (see the module docstring); u, v come from
    ``numpy.random.default_rng(seed)`` (same seed, same edit). ``norm``: the ‖W‖₂ to scale
    by (e.g. of the unedited matrix, so successive edits have equal size); default: the
    current matrix's."""
    scale = check_number("edit scale", scale)
    name, w = mlp_output_matrix(model, layer)
    rng = np.random.default_rng(seed)
    u, v = rng.standard_normal(w.shape[0]), rng.standard_normal(w.shape[1])
    u, v = u / np.linalg.norm(u), v / np.linalg.norm(v)
    if norm is None:
        norm = _spectral_norm(w)
    with torch.no_grad():
        delta = torch.outer(torch.from_numpy(u), torch.from_numpy(v)) * (scale * norm)
        w.add_(delta.to(device=w.device, dtype=w.dtype))
    return Edit(name=name, layer=layer, scale=float(scale), spectral_norm=norm, seed=seed)


@contextlib.contextmanager
def preserved(model, layer: int):
    """Restore block ``layer``'s MLP output matrix to its exact value on exit."""
    _, w = mlp_output_matrix(model, layer)
    saved = w.detach().clone()
    try:
        yield
    finally:
        with torch.no_grad():
            w.copy_(saved)
