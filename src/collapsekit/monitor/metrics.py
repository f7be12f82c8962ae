"""Stateful streaming collapse metrics for training loops, in the torchmetrics shape:
``update(...)``, ``compute() -> dict[str, float]``, ``reset()``, ``merge(other)``,
``state_dict()`` / ``load_state_dict()`` and ``sync()`` (merge every rank's state when
``torch.distributed`` is initialised; a no-op otherwise).

Inputs may be torch tensors on any device: each batch is reduced *on that device* in
float64 (means, D×D scatter, per-class sums, entropy sums) and only those small statistics
move to the CPU, where they join the float64 accumulators of :mod:`collapsekit.stats`
(``Moments``, ``ClassMoments``) through their exact pairwise merges. Activations of a corpus
are never copied to the CPU.

- :class:`SpectralGeometry`: one ``Moments`` per layer → rankme, alpha_req,
  participation_ratio, dim_eff, anisotropy, top_coordinate_share, top_coordinate_norm_share;
- :class:`AttentionEntropy`: per layer × head sums from ``capture.attention_entropy_reducer``;
- :class:`PolicyEntropy`: mean next-token entropy over the masked (generated) tokens,
  streamed over vocabulary chunks with an online log-sum-exp;
- :class:`OutputDiversity`: distinct-1/2, self-BLEU (and, with an embedder, mean pairwise
  cosine and the Vendi score) of groups of generated texts, averaged over groups;
- :class:`NeuralCollapse`: a ``ClassMoments`` → :func:`collapsekit.metrics.neural_collapse`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import torch

from .. import metrics as M
from ..params import check_int
from ..stats.classes import ClassMoments
from ..stats.moments import Moments

__all__ = ["StreamingMetric", "SpectralGeometry", "AttentionEntropy", "PolicyEntropy",
           "OutputDiversity", "NeuralCollapse", "reduce_moments"]


# -- shared machinery --------------------------------------------------------------------------
def _as_tensor(x, what: str) -> torch.Tensor:
    if isinstance(x, torch.Tensor):
        return x.detach()
    try:
        return torch.as_tensor(np.asarray(x, dtype=np.float64))
    except (TypeError, ValueError):
        raise ValueError(f"{what}: expected a numeric tensor or array, got "
                         f"{type(x).__name__}") from None


def reduce_moments(x, *, unit_sum: bool = True, name: str | None = None) -> Moments:
    """A ``Moments`` of the rows of ``x`` (n, D), reduced on x's device in float64.

    The batch is centred on its own mean there (shift = batch mean, scatter Σ (x - x̄)(x - x̄)ᵀ,
    and Σ x/‖x‖ when ``unit_sum``); only D + D² + D numbers move to the CPU. Merging the
    result into another ``Moments`` is the exact Chan et al. update, so this equals
    ``Moments.update(x)`` up to round-off.
    """
    what = name or "Moments"
    x = _as_tensor(x, what)
    if x.dim() != 2:
        raise ValueError(f"{what}: expected a 2-D batch of shape (n, D), got shape "
                         f"{tuple(x.shape)}; reshape it with x.reshape(-1, D)")
    if x.shape[1] == 0:
        raise ValueError(f"{what}: batch has zero columns (D = 0)")
    out = Moments(x.shape[1], unit_sum=unit_sum, name=name)
    if x.shape[0] == 0:
        return out
    x = x.to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        bad = int((~torch.isfinite(x)).any(dim=1).sum())
        raise ValueError(f"{what}: batch contains NaN or inf in {bad} of {x.shape[0]} rows; "
                         "fix or drop those rows before update()")
    shift = x.mean(dim=0)
    y = x - shift
    rel = y.mean(dim=0)  # round-off of the mean, kept exactly as Moments.update does
    y = y - rel
    state = {"n": np.array(x.shape[0], dtype=np.int64), "shift": shift.cpu().numpy(),
             "mean_minus_shift": rel.cpu().numpy(), "m2": (y.T @ y).cpu().numpy()}
    if unit_sum:
        norms = torch.linalg.vector_norm(x, dim=1)
        if bool((norms == 0).any()):
            raise ValueError(f"{what}: batch contains {int((norms == 0).sum())} all-zero rows, "
                             "whose direction is undefined; drop them")
        state["unit_sum"] = (x / norms[:, None]).sum(dim=0).cpu().numpy()
    return Moments.from_state_dict(state, name=name)


def _dist():
    """``torch.distributed`` when it is available and initialised, else None."""
    dist = getattr(torch, "distributed", None)
    if dist is not None and dist.is_available() and dist.is_initialized():
        return dist
    return None


class StreamingMetric:
    """Base class: ``merge`` and ``sync`` through ``state_dict``/``load_state_dict``."""

    def _fresh(self) -> "StreamingMetric":
        """An empty metric with the same settings."""
        raise NotImplementedError

    def reset(self) -> None:
        self.load_state_dict(self._fresh().state_dict())

    def merge(self, other) -> "StreamingMetric":
        raise NotImplementedError

    def state_dict(self) -> dict:
        raise NotImplementedError

    def load_state_dict(self, state: dict) -> None:
        raise NotImplementedError

    def sync(self) -> "StreamingMetric":
        """Replace this rank's state by the merge of every rank's state, in rank order (so
        every rank ends with the same state). A no-op unless torch.distributed is
        initialised. Returns self."""
        dist = _dist()
        if dist is None or dist.get_world_size() == 1:
            return self
        states: list = [None] * dist.get_world_size()
        dist.all_gather_object(states, self.state_dict())
        total = self._fresh()
        for state in states:
            part = self._fresh()
            part.load_state_dict(state)
            total.merge(part)
        self.load_state_dict(total.state_dict())
        return self

    def _check_merge(self, other) -> None:
        if type(other) is not type(self):
            raise ValueError(f"{type(self).__name__}.merge() needs a {type(self).__name__}, "
                             f"got {type(other).__name__}")


# -- spectral geometry ---------------------------------------------------------------------------
def _layer_items(hidden, mask, layers) -> list[tuple[str, torch.Tensor]]:
    """(layer name, (n, D) rows) from a CaptureBatch, a {name: tensor} mapping or a list of
    per-layer tensors (e.g. HF ``hidden_states``), keeping the real tokens of ``mask``."""
    if hasattr(hidden, "hidden") and hasattr(hidden, "layer_names"):  # a CaptureBatch
        mask = hidden.mask if mask is None else mask
        items = [(n, h) for n, h in zip(hidden.layer_names, hidden.hidden) if h is not None]
    elif isinstance(hidden, Mapping):
        items = [(str(k), v) for k, v in hidden.items()]
    elif isinstance(hidden, Sequence) and not isinstance(hidden, (str, bytes)):
        items = [(str(i), v) for i, v in enumerate(hidden)]
    else:
        raise ValueError(f"SpectralGeometry.update: expected a CaptureBatch, a dict of layer "
                         f"tensors or a list of them, got {type(hidden).__name__}")
    if not items:
        raise ValueError("SpectralGeometry.update: no layers given")
    if layers is not None:
        items = [(n, h) for n, h in items if n in layers]
    out = []
    for name, h in items:
        h = _as_tensor(h, f"layer {name}")
        if h.dim() == 3:
            if mask is not None:
                m = _as_tensor(mask, "mask").to(h.device)
                if m.dtype != torch.bool or tuple(m.shape) != tuple(h.shape[:2]):
                    raise ValueError(f"mask must be a bool tensor of shape {tuple(h.shape[:2])}"
                                     f", got {m.dtype} {tuple(m.shape)}")
                h = h[m]
            else:
                h = h.reshape(-1, h.shape[-1])
        elif h.dim() != 2:
            raise ValueError(f"layer {name}: expected (B, T, D) or (n, D), got shape "
                             f"{tuple(h.shape)}")
        out.append((name, h))
    return out


class SpectralGeometry(StreamingMetric):
    """Per-layer float64 ``Moments`` of token representations.

    ``layers``: names of the layers to keep (capture names such as "block_3", dict keys, or
    str(index) for lists); None keeps all. ``update(hidden, mask=None)`` takes a
    ``CaptureBatch``, a {layer: (B, T, D) or (n, D)} dict or a list of per-layer tensors
    (``mask`` (B, T) bool selects real tokens). ``compute()`` → ``{"<metric>/<layer>":
    value}`` for rankme, alpha_req, participation_ratio, dim_eff, anisotropy,
    top_coordinate_share (of the variance) and top_coordinate_norm_share (of the squared
    norm) (a layer with fewer than 2 rows is left out; alpha_req is NaN when the spectrum
    has too few positive eigenvalues for its fit).
    """

    METRICS = ("rankme", "alpha_req", "participation_ratio", "dim_eff", "anisotropy",
               "top_coordinate_share", "top_coordinate_norm_share")

    def __init__(self, layers: Sequence[str | int] | None = None):
        if layers is not None and (isinstance(layers, (str, bytes))
                                   or not isinstance(layers, Sequence)):
            raise ValueError(f"layers must be a list of layer names, got {layers!r}")
        self.layers = None if layers is None else [str(l) for l in layers]
        self.moments: dict[str, Moments] = {}

    def _fresh(self):
        return SpectralGeometry(self.layers)

    def update(self, hidden, mask=None) -> "SpectralGeometry":
        for name, rows in _layer_items(hidden, mask, self.layers):
            part = reduce_moments(rows, name=f"layer {name}")
            if name in self.moments:
                self.moments[name].merge(part)
            else:
                self.moments[name] = part
        return self

    def merge(self, other) -> "SpectralGeometry":
        self._check_merge(other)
        for name, m in other.moments.items():
            if name in self.moments:
                self.moments[name].merge(m)
            else:
                self.moments[name] = Moments.from_state_dict(m.state_dict(), name=m.name)
        return self

    def compute(self) -> dict[str, float]:
        if not any(m.n >= 2 for m in self.moments.values()):
            raise ValueError("SpectralGeometry: no layer holds 2 or more rows yet; call "
                             "update() with token representations first")
        out = {}
        for name, m in self.moments.items():
            if m.n < 2:
                continue
            ev = M.spectrum(m)
            try:
                alpha = M.alpha_req(ev).alpha
            except ValueError:
                alpha = math.nan
            values = {"rankme": M.rankme(m), "alpha_req": alpha,
                      "participation_ratio": M.participation_ratio(ev),
                      "dim_eff": float(M.dim_eff(ev)), "anisotropy": M.anisotropy(m),
                      "top_coordinate_share": M.top_coordinate_share(m),
                      "top_coordinate_norm_share": M.top_coordinate_share(m, center=False)}
            out.update({f"{k}/{name}": float(v) for k, v in values.items()})
        return out

    def state_dict(self) -> dict:
        return {"layers": self.layers,
                "moments": {k: m.state_dict() for k, m in self.moments.items()}}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, Mapping) or "moments" not in state:
            raise ValueError("SpectralGeometry state must be the dict of state_dict()")
        self.layers = state.get("layers")
        self.moments = {k: Moments.from_state_dict(v, name=f"layer {k}")
                        for k, v in state["moments"].items()}


# -- attention entropy ---------------------------------------------------------------------------
class AttentionEntropy(StreamingMetric):
    """Per layer × head running sums of attention entropy (``capture.attention_entropy_reducer``
    output, e.g. ``CaptureBatch.attention``). ``compute()`` → per layer the head-averaged
    ``attention_entropy/<layer>`` (nats), ``attention_entropy_normalised/<layer>`` and the
    shares ``attention_collapsed_heads/<layer>``, ``attention_overloaded_heads/<layer>``
    (:func:`collapsekit.metrics.attention_entropy_from_sums`). ``names`` maps the reducer's
    layer numbers to names (default "block_<l>")."""

    KEYS = ("entropy_sum", "norm_entropy_sum", "rows", "norm_rows")

    def __init__(self):
        self.sums: dict[str, dict[str, np.ndarray]] = {}

    def _fresh(self):
        return AttentionEntropy()

    def _add(self, name: str, sums: Mapping) -> None:
        missing = [k for k in self.KEYS if k not in sums]
        if missing:
            raise ValueError(f"AttentionEntropy: layer {name} sums lack {missing}; pass the "
                             "dicts of capture.attention_entropy_reducer")
        vals = {k: np.asarray(sums[k].detach().cpu() if hasattr(sums[k], "detach")
                              else sums[k], dtype=np.float64) for k in self.KEYS}
        h = vals["entropy_sum"]
        if h.ndim != 1 or h.size == 0 or vals["norm_entropy_sum"].shape != h.shape:
            raise ValueError(f"AttentionEntropy: layer {name}: entropy sums must be 1-D per "
                             f"head, got shapes {h.shape} and {vals['norm_entropy_sum'].shape}")
        if not all(np.isfinite(v).all() for v in vals.values()):
            raise ValueError(f"AttentionEntropy: layer {name} sums contain NaN or inf")
        if name in self.sums:
            old = self.sums[name]
            if old["entropy_sum"].shape != h.shape:
                raise ValueError(f"AttentionEntropy: layer {name} had {old['entropy_sum'].size}"
                                 f" heads, now {h.size}")
            for k in self.KEYS:
                old[k] = old[k] + vals[k]
        else:
            self.sums[name] = vals

    def update(self, attention: Mapping, names: Mapping | None = None) -> "AttentionEntropy":
        if hasattr(attention, "attention"):  # a CaptureBatch
            attention = attention.attention
        if not isinstance(attention, Mapping) or not attention:
            raise ValueError("AttentionEntropy.update: pass the non-empty {layer: sums} dict "
                             "of a capture with attention_reducer=attention_entropy_reducer")
        for layer, sums in attention.items():
            name = names[layer] if names else (f"block_{layer}" if isinstance(layer, int)
                                               else str(layer))
            self._add(name, sums)
        return self

    def merge(self, other) -> "AttentionEntropy":
        self._check_merge(other)
        for name, sums in other.sums.items():
            self._add(name, sums)
        return self

    def compute(self) -> dict[str, float]:
        if not self.sums:
            raise ValueError("AttentionEntropy: no data yet; call update() first")
        out = {}
        for name, s in self.sums.items():
            r = M.attention_entropy_from_sums(s["entropy_sum"], s["norm_entropy_sum"],
                                              s["rows"], s["norm_rows"])
            out[f"attention_entropy/{name}"] = float(np.nanmean(r.mean))
            out[f"attention_entropy_normalised/{name}"] = float(np.nanmean(r.normalised))
            out[f"attention_collapsed_heads/{name}"] = float(r.collapsed.mean())
            out[f"attention_overloaded_heads/{name}"] = float(r.overloaded.mean())
        return out

    def state_dict(self) -> dict:
        return {"sums": {k: {kk: vv.copy() for kk, vv in v.items()} for k, v in self.sums.items()}}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, Mapping) or "sums" not in state:
            raise ValueError("AttentionEntropy state must be the dict of state_dict()")
        self.sums = {}
        for name, sums in state["sums"].items():
            self._add(name, sums)


# -- policy entropy ------------------------------------------------------------------------------
def _entropy_terms(z: torch.Tensor, m, s, t):
    """One online log-sum-exp step over a vocabulary chunk ``z`` (..., c), float64."""
    cm = z.max(dim=-1).values
    m_new = cm if m is None else torch.maximum(m, cm)
    finite = torch.isfinite(m_new)
    ref = torch.where(finite, m_new, torch.zeros_like(m_new))
    e = torch.exp(z - ref[..., None])
    ez = torch.where(e > 0, e * z, torch.zeros_like(e))  # e^{-inf} · (-inf) := 0
    if m is None:
        return m_new, e.sum(-1), ez.sum(-1)
    scale = torch.where(finite, torch.exp(m - ref), torch.zeros_like(ref))
    return m_new, s * scale + e.sum(-1), t * scale + ez.sum(-1)


class PolicyEntropy(StreamingMetric):
    """Mean next-token entropy −Σ_v p_v log p_v over the masked (target / generated) tokens,
    and the entropy of the top-k renormalised distribution.

    ``update(logits, mask=None)``: logits (B, T, V) or (N, V) on any device, ``mask``
    (B, T) / (N,) bool of the positions to count (default all). The entropy is computed over
    vocabulary chunks of ``chunk`` columns with an online log-sum-exp — running max m,
    s = Σ e^{z−m}, t = Σ e^{z−m} z — and H = m + log s − t/s, so only a (B, T, chunk)
    float64 block exists at a time (no B×T×V probability tensor). ``compute()`` →
    ``{"policy_entropy": ..., "policy_entropy_top<k>": ...}`` (nats per token).
    """

    def __init__(self, top_k: int = 100, chunk: int = 8192):
        self.top_k = check_int("PolicyEntropy: top_k", top_k, 1)
        self.chunk = check_int("PolicyEntropy: chunk", chunk, 1)
        self.total = self.total_top = 0.0
        self.count = 0

    def _fresh(self):
        return PolicyEntropy(self.top_k, self.chunk)

    @property
    def top_name(self) -> str:
        return f"policy_entropy_top{self.top_k}"

    def update(self, logits, mask=None) -> "PolicyEntropy":
        z = _as_tensor(logits, "PolicyEntropy logits")
        if z.dim() not in (2, 3) or 0 in z.shape:
            raise ValueError(f"PolicyEntropy: logits must be a non-empty (B, T, V) or (N, V) "
                             f"tensor, got shape {tuple(z.shape)}")
        if mask is None:
            mask = torch.ones(z.shape[:-1], dtype=torch.bool, device=z.device)
        mask = _as_tensor(mask, "PolicyEntropy mask").to(z.device)
        if mask.dtype != torch.bool or tuple(mask.shape) != tuple(z.shape[:-1]):
            raise ValueError(f"PolicyEntropy: mask must be a bool tensor of shape "
                             f"{tuple(z.shape[:-1])}, got {mask.dtype} {tuple(mask.shape)}")
        m = s = t = None
        bad = torch.zeros_like(mask)
        for a in range(0, z.shape[-1], self.chunk):
            part = z[..., a:a + self.chunk].to(torch.float64)
            bad |= torch.isnan(part).any(-1) | (part == math.inf).any(-1)
            m, s, t = _entropy_terms(part, m, s, t)
        bad |= ~torch.isfinite(m)  # every logit -inf, or NaN/inf
        if bool((bad & mask).any()):
            raise ValueError(f"PolicyEntropy: logits of {int((bad & mask).sum())} counted "
                             "positions contain NaN or +inf, or are all -inf; check the model's "
                             "numerics (run it in float32)")
        ent = m + torch.log(s) - t / s
        k = min(self.top_k, z.shape[-1])
        top = z.topk(k, dim=-1).values.to(torch.float64)
        tm, ts, tt = _entropy_terms(top, None, None, None)
        ent_top = tm + torch.log(ts) - tt / ts
        zero = torch.zeros((), dtype=torch.float64, device=z.device)
        self.total += float(torch.where(mask, ent, zero).sum())
        self.total_top += float(torch.where(mask, ent_top, zero).sum())
        self.count += int(mask.sum())
        return self

    def merge(self, other) -> "PolicyEntropy":
        self._check_merge(other)
        if other.top_k != self.top_k:
            raise ValueError(f"PolicyEntropy: cannot merge top_k={other.top_k} into "
                             f"top_k={self.top_k}")
        self.total += other.total
        self.total_top += other.total_top
        self.count += other.count
        return self

    def compute(self) -> dict[str, float]:
        if self.count == 0:
            raise ValueError("PolicyEntropy: no token counted yet; call update() with logits "
                             "and a mask with at least one True position")
        return {"policy_entropy": self.total / self.count,
                self.top_name: self.total_top / self.count}

    def state_dict(self) -> dict:
        return {"top_k": self.top_k, "total": self.total, "total_top": self.total_top,
                "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, Mapping) or not {"total", "total_top", "count"} <= set(state):
            raise ValueError("PolicyEntropy state must be the dict of state_dict()")
        if state.get("top_k", self.top_k) != self.top_k:
            raise ValueError(f"PolicyEntropy state has top_k={state['top_k']}, this metric "
                             f"top_k={self.top_k}")
        self.total, self.total_top = float(state["total"]), float(state["total_top"])
        self.count = int(state["count"])


# -- output diversity ----------------------------------------------------------------------------
def _embedder(embedder) -> Callable | None:
    if embedder is None or callable(embedder):
        return embedder
    if isinstance(embedder, str):
        from ..models.embedders import embed

        return lambda texts: embed(list(texts), spec=embedder)
    raise ValueError(f"embedder must be None, a callable texts -> (n, d) array or a "
                     f"sentence-transformers spec string, got {type(embedder).__name__}")


class OutputDiversity(StreamingMetric):
    """Diversity of groups of generated texts (e.g. the k answers to one prompt), averaged
    over the groups seen: ``distinct_1``, ``distinct_2``, ``self_bleu`` and, with an
    ``embedder`` (a callable texts → (n, d) array, or a sentence-transformers spec such as
    ``"embedded:all-minilm-l6-v2"``), ``mean_pairwise_cosine`` and ``vendi_score``.

    A group where a metric is undefined (e.g. every text shorter than two words for
    distinct-2) does not count for that metric; ``compute()`` gives NaN for a metric no
    group defined.
    """

    def __init__(self, embedder=None):
        self.embedder = embedder
        self._embed = _embedder(embedder)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}

    def _fresh(self):
        return OutputDiversity(self.embedder)

    @property
    def names(self) -> tuple[str, ...]:
        base = ("distinct_1", "distinct_2", "self_bleu")
        return base + (("mean_pairwise_cosine", "vendi_score") if self._embed else ())

    def update(self, texts: Sequence[str]) -> "OutputDiversity":
        if isinstance(texts, (str, bytes)) or not isinstance(texts, Sequence):
            raise ValueError("OutputDiversity.update: pass a list of generated texts (one "
                             "group, e.g. the k answers to one prompt)")
        if len(texts) < 2 or not all(isinstance(t, str) for t in texts):
            raise ValueError(f"OutputDiversity.update: need a list of at least 2 strings, got "
                             f"{len(texts)} item(s) of types "
                             f"{sorted({type(t).__name__ for t in texts})}")
        fns = {"distinct_1": lambda: M.distinct_n(texts, 1),
               "distinct_2": lambda: M.distinct_n(texts, 2),
               "self_bleu": lambda: M.self_bleu(texts)}
        if self._embed is not None:
            emb = np.asarray(self._embed(list(texts)), dtype=np.float64)
            if emb.ndim != 2 or emb.shape[0] != len(texts):
                raise ValueError(f"OutputDiversity: the embedder returned shape {emb.shape} "
                                 f"for {len(texts)} texts; it must return (n, d)")
            fns["mean_pairwise_cosine"] = lambda: M.mean_pairwise_cosine(emb)
            fns["vendi_score"] = lambda: M.vendi_score(emb)
        for name, fn in fns.items():
            try:
                value = float(fn())
            except ValueError:  # undefined for this group (no n-grams, zero embeddings)
                continue
            self.sums[name] = self.sums.get(name, 0.0) + value
            self.counts[name] = self.counts.get(name, 0) + 1
        self.counts["groups"] = self.counts.get("groups", 0) + 1
        return self

    def merge(self, other) -> "OutputDiversity":
        self._check_merge(other)
        for name, v in other.sums.items():
            self.sums[name] = self.sums.get(name, 0.0) + v
        for name, c in other.counts.items():
            self.counts[name] = self.counts.get(name, 0) + c
        return self

    def compute(self) -> dict[str, float]:
        if not self.counts.get("groups"):
            raise ValueError("OutputDiversity: no group of texts yet; call update() first")
        return {n: self.sums[n] / self.counts[n] if self.counts.get(n) else math.nan
                for n in self.names}

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "counts": dict(self.counts)}

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, Mapping) or not {"sums", "counts"} <= set(state):
            raise ValueError("OutputDiversity state must be the dict of state_dict()")
        self.sums = {k: float(v) for k, v in state["sums"].items()}
        self.counts = {k: int(v) for k, v in state["counts"].items()}


# -- neural collapse -----------------------------------------------------------------------------
class NeuralCollapse(StreamingMetric):
    """Streaming neural-collapse statistics: a :class:`~collapsekit.stats.classes.ClassMoments`
    (``num_classes``, ``dim`` and its keyword arguments, e.g. ``classes=``) fed per batch
    with class sums reduced on the features' device. ``update(x (n, D), labels (n,))``;
    ``compute()`` → the scalar entries of :func:`collapsekit.metrics.neural_collapse`
    (nc1, cdnv, equinorm_cv, etf_error, ...)."""

    def __init__(self, num_classes: int, dim: int, **kw):
        self._args = (num_classes, dim, kw)
        self.acc = ClassMoments(num_classes, dim, **kw)

    def _fresh(self):
        num_classes, dim, kw = self._args
        return NeuralCollapse(num_classes, dim, **kw)

    def update(self, x, labels) -> "NeuralCollapse":
        acc = self.acc
        x = _as_tensor(x, "NeuralCollapse features")
        if x.dim() != 2 or x.shape[1] != acc.dim:
            raise ValueError(f"NeuralCollapse: expected features of shape (n, {acc.dim}), got "
                             f"{tuple(x.shape)}")
        lab = labels.detach().cpu().numpy() if hasattr(labels, "detach") else np.asarray(labels)
        rows = acc._rows(lab, x.shape[0])  # validates labels (small: n ints)
        if not bool(torch.isfinite(x).all()):
            raise ValueError("NeuralCollapse: features contain NaN or inf; fix or drop those "
                             "rows before update()")
        keep = rows >= 0
        acc.ignored += int((~keep).sum())
        if not keep.any():
            return self
        if not keep.all():
            x = x[torch.as_tensor(keep, device=x.device)]
        rows = rows[keep]
        x = x.to(torch.float64)
        if acc.shift is None:
            acc.shift = x.mean(dim=0).cpu().numpy()
        ids, inverse = np.unique(rows, return_inverse=True)
        inv = torch.as_tensor(inverse, device=x.device)
        y = x - torch.as_tensor(acc.shift, device=x.device)
        sums = torch.zeros((len(ids), acc.dim), dtype=torch.float64, device=x.device)
        sums.index_add_(0, inv, y)
        sq = torch.zeros(len(ids), dtype=torch.float64, device=x.device)
        sq.index_add_(0, inv, (y * y).sum(dim=1))
        acc.sums[ids] += sums.cpu().numpy()
        acc.sq[ids] += sq.cpu().numpy()
        acc.n[ids] += np.bincount(inverse, minlength=len(ids))
        acc.moments.merge(reduce_moments(x, unit_sum=False))
        return self

    def merge(self, other) -> "NeuralCollapse":
        self._check_merge(other)
        self.acc.merge(other.acc)
        return self

    def compute(self) -> dict[str, float]:
        out = M.neural_collapse(self.acc)
        return {k: float(v) for k, v in out.items()
                if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)}

    def state_dict(self) -> dict:
        return self.acc.state_dict()

    def load_state_dict(self, state: dict) -> None:
        kw = {k: v for k, v in self._args[2].items() if k in ("max_bytes", "name")}
        self.acc = ClassMoments.from_state_dict(state, **kw)
