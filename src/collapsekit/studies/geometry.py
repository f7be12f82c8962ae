"""Representation geometry per layer, from one streaming pass of texts through a model.

Each layer's residual stream (embedding output, every block, final norm) feeds a float64
``Moments`` accumulator batch by batch; nothing larger than one batch of activations is
held. From each accumulator: RankMe (uncentred singular values, Garrido et al. 2023),
matrix-entropy rank of the covariance (the variant of "Tracing the Representation
Geometry"), participation ratio, effective dimension, α-ReQ, anisotropy and IsoScore.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import metrics
from ..models.capture import stream
from ..stats.moments import Moments

LAYER_METRICS = ("rankme", "matrix_entropy_rank", "participation_ratio", "dim_eff",
                 "alpha_req", "alpha_req_r2", "anisotropy", "isoscore")


@dataclass
class LayerGeometry:
    """Per-layer accumulators filled by :func:`accumulate`."""

    names: list[str]
    moments: list[Moments]
    tokens: int = 0
    truncated: int = 0

    def __call__(self, batch) -> None:
        for layer, acc in enumerate(self.moments):
            acc.update(batch.tokens(layer))
        self.tokens += int(batch.mask.sum())


def accumulate(lm, texts: list[str], *, batch_size: int = 8, max_length: int = 256,
               progress=None) -> LayerGeometry:
    """Stream ``texts`` through ``lm`` and return per-layer moment accumulators."""
    geo = LayerGeometry(names=[], moments=[])

    def consume(batch):
        if not geo.moments:
            geo.names = list(batch.layer_names)
            geo.moments = [Moments(lm.hidden_size, name=n) for n in geo.names]
        geo(batch)
        if progress:
            progress(len(batch.input_ids))

    def truncated(*_):
        geo.truncated += 1

    stream(lm.model, lm.tokenizer, texts, [consume], batch_size=batch_size,
           max_length=max_length, on_truncate=truncated)
    return geo


def layer_metrics(acc: Moments) -> dict[str, float]:
    """All per-layer geometry metrics of one accumulator."""
    ev = metrics.spectrum(acc)
    try:
        alpha = metrics.alpha_req(ev)
    except ValueError:  # fewer than 3 positive eigenvalues in the rank range: α undefined
        alpha = metrics.AlphaReq(float("nan"), float("nan"), 0)
    return {
        "rankme": metrics.rankme(acc),
        "matrix_entropy_rank": metrics.matrix_entropy_rank(ev),
        "participation_ratio": metrics.participation_ratio(ev),
        "dim_eff": float(metrics.dim_eff(ev)),
        "alpha_req": alpha.alpha,
        "alpha_req_r2": alpha.r2,
        "anisotropy": metrics.anisotropy(acc),
        "isoscore": metrics.isoscore(acc),
    }


def record(run, geo: LayerGeometry, *, section: str = "geometry", **scope) -> list[dict]:
    """Add one record per (metric, layer) to ``run``; return the per-layer table rows."""
    rows = []
    for layer, (name, acc) in enumerate(zip(geo.names, geo.moments)):
        values = layer_metrics(acc)
        rows.append({"layer": layer, "layer_name": name, "tokens": acc.n, **values})
        for metric, value in values.items():
            run.add(metric, value, section=section, layer=layer, layer_name=name, **scope)
    return rows


def summary(rows: list[dict]) -> dict[str, float]:
    """Scalars that summarise a per-layer curve: where the representation is most collapsed."""
    rank = np.array([r["rankme"] for r in rows])
    aniso = np.array([r["anisotropy"] for r in rows])
    return {"min_rankme": float(rank.min()), "min_rankme_layer": int(rank.argmin()),
            "max_anisotropy": float(aniso.max()), "max_anisotropy_layer": int(aniso.argmax())}


def stage(run, lm, texts: list[str], *, batch_size: int, max_length: int, console=None,
          **scope) -> None:
    """The geometry stage of a study: skipped when ``run`` already holds it (resume)."""
    from .progress import progress_bar

    if run.has("rankme", section="geometry"):
        return
    with run.timer("geometry"), progress_bar("geometry", len(texts), console) as tick:
        geo = accumulate(lm, texts, batch_size=batch_size, max_length=max_length,
                         progress=tick)
        rows = record(run, geo, **scope)
        run.table("geometry_layers", rows)
        for key, value in summary(rows).items():
            run.add(key, value, section="geometry summary")
        run.meta(geometry_tokens=geo.tokens, geometry_truncated_texts=geo.truncated)
    run.write()


def run_geometry(model: str, out, *, texts=None, human: str = "wikipedia", n: int = 256,
                 max_length: int = 256, batch_size: int = 8, device: str = "auto",
                 neural_collapse: dict | None = None, resume: bool = False, force: bool = False,
                 console=None):
    """``collapsekit geometry``: per-layer geometry of ``model`` on a text file or human text.

    ``neural_collapse``: when given (options ``layers``, ``max_classes``, ``min_count``,
    ``heldout`` = number of held-out texts for NC4), also measure neural collapse with the
    next token as the class; held-out texts are the ones after the first ``n``."""
    from ..corpora import human_texts
    from ..io import read_texts
    from ..models.registry import load_model, resolve
    from ..report.html import render
    from ..results import Run

    resolve(model)
    nc = dict(neural_collapse) if neural_collapse is not None else None
    heldout = nc.pop("heldout", 0) if nc else 0
    every = read_texts(texts) if texts else human_texts(human, n + heldout, min_words=40)
    corpus, heldout_texts = every[:n], every[n:n + heldout]
    if len(corpus) < 2:
        raise ValueError(f"geometry needs at least 2 texts, got {len(corpus)}")
    config = dict(model=model, texts=str(texts) if texts else f"human:{human}", n=len(corpus),
                  max_length=max_length, batch_size=batch_size, neural_collapse=neural_collapse)
    run = Run(out, study="geometry", config=config, resume=resume, force=force)
    with run.timer("load_model"):
        lm = load_model(model, device=device)
    run.meta(model=lm.describe())
    stage(run, lm, corpus, batch_size=batch_size, max_length=max_length, console=console)
    if nc is not None:
        from . import neural_collapse as nc_study

        with run.timer("neural_collapse"):
            nc_study.stage(run, lm, corpus, heldout_texts=heldout_texts or None,
                           batch_size=batch_size, max_length=max_length, console=console, **nc)
        run.write()
    run.finish()
    return render(run.path)
