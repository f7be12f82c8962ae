"""Representation geometry per layer, from one streaming pass of texts through a model.

Each layer's residual stream (embedding output, every block, final norm) feeds a float64
``Moments`` accumulator batch by batch; nothing larger than one batch of activations is
held. From each accumulator: RankMe (uncentred singular values, Garrido et al. 2023),
matrix-entropy rank of the covariance (the variant of "Tracing the Representation
Geometry"), participation ratio, effective dimension, α-ReQ, anisotropy and IsoScore; the
outlier-coordinate diagnostics (the variance and squared-norm shares of the top coordinate
and its index: massive activations, Sun et al. 2024); and the spectral metrics again on
z-scored coordinates (``basis="standardised"``: the correlation matrix of the same moments).

The same forward pass also feeds (each optional): attention entropy per layer × head
(reduced inside each attention hook, never all layers' B×H×T×T), the rank-collapse residual
per layer (Dong et al. 2021, both norms, mean over sequences) and the logit-lens commitment
layer (final norm + unembedding on each layer's real tokens, chunked). Measured extra CPU
time on SmolLM2-135M (8 texts × 128 tokens, 2 shared cores, forward 11 s): attention
entropy within noise (≤ ~3%), rank-collapse residual ~1 s (~9%), logit lens ~37 s (~3.4×
the forward; ~6 s on every 8th token) — hence on, on, off by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .. import metrics
from ..models.capture import (NO_ATTENTION, attention_entropy_reducer, layout,
                              moments_in_torch, stream)
from ..models.lens import logit_lens_top1
from ..stats.moments import Moments


@dataclass
class LayerGeometry:
    """Per-layer accumulators filled by :func:`accumulate` (all from the same batches).

    ``attention[l]``: summed ``attention_entropy_reducer`` output of block l;
    ``residual[norm]``: per-layer sums of the per-sequence rank-collapse residual over
    ``sequences`` sequences (those with ≥ 2 tokens); ``lens_agree[l]``: tokens whose
    logit-lens top-1 at layer l equals the final top-1; ``commit[l]``: tokens whose
    commitment layer is l; ``lens_tokens``: tokens the logit lens saw.
    """

    names: list[str]
    moments: list[Moments]
    tokens: int = 0
    truncated: int = 0
    attention: dict = field(default_factory=dict)
    residual: dict = field(default_factory=dict)
    sequences: int = 0
    lens_agree: np.ndarray | None = None
    commit: np.ndarray | None = None
    lens_tokens: int = 0

    def __call__(self, batch) -> None:
        for layer, acc in enumerate(self.moments):
            acc.update(batch.tokens(layer))
        self.tokens += int(batch.mask.sum())

    def add_attention(self, batch) -> None:
        for layer, sums in (batch.attention or {}).items():
            old = self.attention.get(layer)
            self.attention[layer] = sums if old is None else {k: old[k] + v
                                                               for k, v in sums.items()}

    def add_residual(self, batch) -> None:
        """Dong et al. 2021 residual ‖X − 1x̄ᵀ‖/‖X‖ of each sequence, both norms, per layer."""
        keep = batch.mask.sum(-1) >= 2
        if not bool(keep.any()):
            return
        mask = batch.mask[keep].cpu().numpy()
        for layer, h in enumerate(batch.hidden):
            res = metrics.rank_collapse_residuals(h[keep].cpu().numpy(), mask)
            for norm, values in res.items():
                self.residual.setdefault(norm, np.zeros(len(self.names)))[layer] += values.sum()
        self.sequences += int(keep.sum())


def commitment_layers(top: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(agreement (L+1, N) bool, commitment layer (N,)) from logit-lens top-1 ids whose last
    row is the final prediction: the commitment layer of a token is the first layer from
    which the top-1 equals the final top-1 and stays equal (Distributional Semantics
    Tracing; nostalgebraist's logit lens)."""
    agree = top == top[-1]
    stays = np.logical_and.accumulate(agree[::-1], axis=0)[::-1]
    return agree, stays.argmax(axis=0)


def accumulate(lm, texts: list[str], *, batch_size: int = 8, max_length: int = 256,
               progress=None, attention: bool = False, rank_collapse: bool = False,
               logit_lens: bool = False, logit_lens_every: int = 1,
               extra=()) -> LayerGeometry:
    """Stream ``texts`` through ``lm`` once and return per-layer accumulators: moments, and
    optionally attention-entropy sums, rank-collapse residuals and logit-lens counts, all
    filled from the same forward pass; each of ``extra`` (callables) also gets every batch
    (e.g. neural-collapse accumulators riding along)."""
    if logit_lens and (not isinstance(logit_lens_every, int) or logit_lens_every < 1):
        raise ValueError(f"logit_lens_every must be a positive integer, got {logit_lens_every!r}")
    geo = LayerGeometry(names=[], moments=[])

    def consume(batch):
        if not geo.moments:
            geo.names = list(batch.layer_names)
            geo.moments = [Moments(h.shape[-1], name=n,  # OPT-350m: final width 512
                                   resident=moments_in_torch())
                           for n, h in zip(geo.names, batch.hidden)]
        geo(batch)
        geo.add_attention(batch)
        if rank_collapse:
            geo.add_residual(batch)
        if logit_lens:
            agree, commit = commitment_layers(logit_lens_top1(lm, batch, every=logit_lens_every))
            if geo.lens_agree is None:
                geo.lens_agree = np.zeros(len(agree), dtype=np.int64)
                geo.commit = np.zeros(len(agree), dtype=np.int64)
            geo.lens_agree += agree.sum(axis=1)
            geo.commit += np.bincount(commit, minlength=len(agree))
            geo.lens_tokens += agree.shape[1]
        for consumer in extra:
            consumer(batch)
        if progress:
            progress(len(batch.input_ids))

    def truncated(*_):
        geo.truncated += 1

    reducer = attention_entropy_reducer if attention else None
    stream(lm.model, lm.tokenizer, texts, [consume], batch_size=batch_size,
           max_length=max_length, on_truncate=truncated, attention_reducer=reducer)
    return geo


def spectral_metrics(acc: Moments, basis: str = "raw", alpha_preset: str = "paper"
                     ) -> dict[str, float]:
    """The spectral metrics of one accumulator in ``basis`` ("raw" or "standardised": the
    z-scored coordinates, see :func:`metrics.spectrum`); α-ReQ with ``alpha_preset``."""
    ev = metrics.spectrum(acc, basis=basis)
    try:
        alpha = metrics.alpha_req(ev, preset=alpha_preset)
    except ValueError:  # fewer than 3 positive eigenvalues in the rank range: α undefined
        alpha = metrics.AlphaReq(float("nan"), float("nan"), 0)
    return {
        "rankme": metrics.rankme(acc, basis=basis),
        "matrix_entropy_rank": metrics.matrix_entropy_rank(ev),
        "participation_ratio": metrics.participation_ratio(ev),
        "dim_eff": float(metrics.dim_eff(ev)),
        "alpha_req": alpha.alpha,
        "alpha_req_r2": alpha.r2,
        "isoscore": metrics.isoscore(acc, basis=basis),
    }


def layer_metrics(acc: Moments, alpha_preset: str = "paper") -> dict[str, float]:
    """All per-layer geometry metrics of one accumulator in the raw basis, with the
    outlier-coordinate diagnostics (variance share, its index, squared-norm share)."""
    values = spectral_metrics(acc, alpha_preset=alpha_preset)
    top = metrics.top_coordinate(acc)
    values.update(anisotropy=metrics.anisotropy(acc), top_coordinate_share=top.share,
                  top_coordinate=top.index,
                  top_coordinate_norm_share=metrics.top_coordinate_share(acc, center=False))
    return values


def record(run, geo: LayerGeometry, *, section: str = "geometry", alpha_preset: str = "paper",
           **scope) -> list[dict]:
    """Add one record per (metric, layer) to ``run``; return the per-layer table rows.

    With residuals accumulated, also ``rank_collapse_residual`` (Frobenius) and
    ``rank_collapse_residual_l1linf`` (√(‖·‖₁‖·‖∞)), each the mean over sequences. The
    spectral metrics are recorded twice: raw (no ``basis`` field) and on z-scored
    coordinates (``basis="standardised"``; the note names constant coordinates left out),
    so that one outlier coordinate is not read as collapse; table columns ``*_standardised``."""
    rows = []
    for layer, (name, acc) in enumerate(zip(geo.names, geo.moments)):
        values = layer_metrics(acc, alpha_preset)
        for norm, metric in (("fro", "rank_collapse_residual"),
                             ("l1linf", "rank_collapse_residual_l1linf")):
            if norm in geo.residual:
                values[metric] = float(geo.residual[norm][layer] / geo.sequences)
        std = spectral_metrics(acc, "standardised", alpha_preset)
        rows.append({"layer": layer, "layer_name": name, "tokens": acc.n, **values,
                     **{f"{k}_standardised": v for k, v in std.items()}})
        for metric, value in values.items():
            run.add(metric, value, section=section, layer=layer, layer_name=name, **scope,
                    **_preset(metric, alpha_preset))
        const = metrics.constant_coordinates(acc)
        note = {"note": f"{const} constant coordinate(s) left out"} if const else {}
        for metric, value in std.items():
            run.add(metric, value, section=section, layer=layer, layer_name=name,
                    basis="standardised", **scope, **note, **_preset(metric, alpha_preset))
    return rows


def _preset(metric: str, preset: str) -> dict:
    """α-ReQ records name their fit preset (ranks and weights, ``metrics.alpha_req``)."""
    return {"preset": preset} if metric.startswith("alpha_req") else {}


def record_attention(run, geo: LayerGeometry, *, collapse: float = metrics.attention.COLLAPSE,
                     overload: float = metrics.attention.OVERLOAD, **scope) -> list[dict]:
    """Records per (layer, head) of mean and normalised attention entropy, and per layer the
    fraction of heads flagged as collapsed / overloaded; returns the per-head table rows."""
    rows = []
    for layer in sorted(geo.attention):
        s = geo.attention[layer]
        ent = metrics.attention_entropy_from_sums(
            s["entropy_sum"], s["norm_entropy_sum"], s["rows"], s["norm_rows"],
            collapse=collapse, overload=overload)
        name = geo.names[layer]
        for head in range(len(ent.mean)):
            row = {"layer": layer, "head": head, "layer_name": name,
                   "attention_entropy": float(ent.mean[head]),
                   "attention_entropy_normalised": float(ent.normalised[head]),
                   "collapsed": bool(ent.collapsed[head]),
                   "overloaded": bool(ent.overloaded[head])}
            rows.append(row)
            for metric in ("attention_entropy", "attention_entropy_normalised"):
                run.add(metric, row[metric], section="attention", layer=layer, head=head,
                        layer_name=name, **scope)
        for metric, flags in (("attention_collapsed_heads", ent.collapsed),
                              ("attention_overloaded_heads", ent.overloaded)):
            run.add(metric, float(flags.mean()), section="attention heads", layer=layer,
                    layer_name=name, **scope)
    return rows


def record_logit_lens(run, geo: LayerGeometry, **scope) -> list[dict]:
    """``logit_lens_agreement`` per layer, the commitment-layer histogram rows, and its mean."""
    n = geo.lens_tokens
    rows = [{"layer": l, "layer_name": geo.names[l], "tokens": int(c), "fraction": c / n}
            for l, c in enumerate(geo.commit)]
    for layer, agree in enumerate(geo.lens_agree):
        run.add("logit_lens_agreement", float(agree / n), section="logit lens", layer=layer,
                layer_name=geo.names[layer], **scope)
    mean = float(np.arange(len(geo.commit)) @ geo.commit / n)
    run.add("commitment_layer_mean", mean, section="logit lens summary", tokens=n, **scope)
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    """Scalars that summarise a per-layer curve: where the representation is most collapsed."""
    rank = np.array([r["rankme"] for r in rows])
    aniso = np.array([r["anisotropy"] for r in rows])
    return {"min_rankme": float(rank.min()), "min_rankme_layer": int(rank.argmin()),
            "max_anisotropy": float(aniso.max()), "max_anisotropy_layer": int(aniso.argmax())}


def stage(run, lm, texts: list[str], *, batch_size: int, max_length: int,
          attention: bool = True, rank_collapse: bool = True, logit_lens: bool = False,
          logit_lens_every: int = 1, collapse: float = metrics.attention.COLLAPSE,
          overload: float = metrics.attention.OVERLOAD, extra=(), shards: int = 1,
          alpha_preset: str = "paper", **scope) -> LayerGeometry:
    """Per-layer geometry records of ``texts`` into ``run``; returns the accumulators.

    One forward pass per batch feeds the per-layer moments and, when switched on, attention
    entropy per head (``attention``), the rank-collapse residual (``rank_collapse``) and the
    logit-lens commitment layer (``logit_lens``, on every ``logit_lens_every``-th token; off
    by default: it costs several forward passes, see the module docstring), and ``extra``
    consumers (see :func:`accumulate`); ``shards`` > 1 splits the pass across Ray workers
    (:mod:`collapsekit.studies.shards`)."""
    from .progress import progress_bar

    with progress_bar("geometry", len(texts)) as tick:
        kw = dict(batch_size=batch_size, max_length=max_length, progress=tick,
                  attention=attention, rank_collapse=rank_collapse, logit_lens=logit_lens,
                  logit_lens_every=logit_lens_every, extra=extra)
        if shards > 1:
            from .shards import accumulate_sharded

            geo = accumulate_sharded(lm, texts, shards, **kw)
        else:
            geo = accumulate(lm, texts, **kw)
        rows = record(run, geo, alpha_preset=alpha_preset, **scope)
        run.table("geometry_layers", rows)
        for key, value in summary(rows).items():
            run.add(key, value, section="geometry summary")
        if geo.attention:
            run.table("attention_heads",
                      record_attention(run, geo, collapse=collapse, overload=overload, **scope))
        elif attention and not layout(lm.model).attention:
            run.add("probe_skipped", 1, section="probes", probe="attention entropy",
                    note=f"{NO_ATTENTION} ({type(lm.model).__name__}): residual-stream "
                    "geometry only")
        if geo.lens_tokens:
            run.table("commitment_layer", record_logit_lens(run, geo, **scope))
        run.meta(geometry_tokens=geo.tokens, geometry_truncated_texts=geo.truncated)
    run.write()
    return geo


def _corpus(s) -> tuple[list[str], list[str]]:
    """(texts, held-out texts for NC4) of the geometry settings ``s``."""
    from ..corpora import human_texts
    from ..io import read_texts

    heldout = s.nc_heldout if s.neural_collapse else 0
    every = read_texts(s.texts) if s.texts else human_texts(s.human, s.n + heldout,
                                                            min_words=40)
    return every[:s.n], every[s.n:s.n + heldout]


def check(s) -> dict:
    """Read the corpus before the run is made; the config records its source and size."""
    corpus = _corpus(s)[0]
    if len(corpus) < 2:
        raise ValueError(f"geometry needs at least 2 texts, got {len(corpus)}")
    if s.neural_collapse and s.nc_singletons == "include" and s.nc_min_count > 1:
        raise ValueError(f"nc_singletons=include keeps classes seen once, but nc_min_count="
                         f"{s.nc_min_count} drops them first: pass --param nc_min_count=1")
    return {"texts": str(s.texts) if s.texts else f"human:{s.human}", "n": len(corpus)}


def study_stage(run, lm, s) -> None:
    """``collapsekit geometry``: :func:`stage` on the corpus; neural collapse (next token as
    the class, NC4 on the held-out texts) rides along the same forward pass; the embedder's
    length-collapse curve on long news and Wikipedia documents."""
    from . import neural_collapse as nc_study

    corpus, heldout = _corpus(s)
    acc = nc_study.Accumulators(lm, corpus, max_length=s.max_length, layers=s.nc_layer,
                                max_classes=s.nc_max_classes, min_count=s.nc_min_count,
                                singletons=s.nc_singletons, cdnv_power=s.nc_cdnv_power
                                ) if s.neural_collapse else None
    geo = stage(run, lm, corpus, batch_size=s.batch_size, max_length=s.max_length,
                attention=s.attention, rank_collapse=s.rank_collapse,
                logit_lens=s.logit_lens, logit_lens_every=s.logit_lens_every,
                extra=[acc] if acc else [], shards=s.shards, alpha_preset=s.alpha_preset,
                **({} if s.texts else {"source": s.human}))
    if acc is not None:
        acc.truncated = geo.truncated
        with run.timer("neural_collapse"):
            acc.finish(run, lm, heldout_texts=heldout or None, batch_size=s.batch_size,
                       max_length=s.max_length)
    if s.length_collapse:
        from ..corpora import human_texts
        from . import length_collapse as lc

        lc.stage(run, [t for src in ("news", "wikipedia") for t in human_texts(src)])
