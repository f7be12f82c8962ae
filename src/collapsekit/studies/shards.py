"""``geometry --param shards=N``: one geometry pass split across N Ray workers, merged
exactly.

The corpus is cut into N contiguous runs of whole batches, so every worker forwards exactly
the batches the single-process pass would. Each worker loads the model itself, streams its
shard into per-layer :class:`~collapsekit.stats.moments.Moments` (and, with neural
collapse, :class:`~collapsekit.stats.classes.ClassMoments` over the classes the driver
chose from the whole corpus), plus the attention, rank-collapse and logit-lens sums; the
driver merges them in shard order with the pairwise update of Chan, Golub & LeVeque (1979).
The result equals the single-process pass up to float64 round-off (≤ 1e-10 relative,
``tests/test_scale.py``). Without ``ray`` the shards run one after another here.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import CollapsekitError
from ..models.capture import next_token_pairs
from ..stats.classes import ClassMoments
from .distributed import run_tasks, start


def bounds(n_texts: int, batch_size: int, shards: int) -> list[tuple[int, int]]:
    """(start, stop) text ranges of ``shards`` contiguous runs of whole batches."""
    n_batches = -(-n_texts // batch_size)
    if shards > n_batches:
        raise ValueError(f"shards={shards} is more than the {n_batches} batch(es) of "
                         f"{n_texts} texts at batch_size={batch_size}: use at most "
                         f"{n_batches} shards")
    parts = np.array_split(np.arange(n_batches), shards)
    return [(int(p[0]) * batch_size, min(n_texts, (int(p[-1]) + 1) * batch_size))
            for p in parts]


def merge(a, b):
    """Add the :class:`~collapsekit.studies.geometry.LayerGeometry` ``b`` (a later shard)
    into ``a``, in place; returns ``a``."""
    if a.names != b.names:
        raise ValueError(f"shards captured different layers ({a.names} vs {b.names})")
    for x, y in zip(a.moments, b.moments):
        x.merge(y)
    a.tokens += b.tokens
    a.truncated += b.truncated
    for layer, sums in b.attention.items():
        old = a.attention.get(layer)
        a.attention[layer] = sums if old is None else {k: old[k] + v for k, v in sums.items()}
    for norm, sums in b.residual.items():
        a.residual[norm] = a.residual[norm] + sums if norm in a.residual else sums
    a.sequences += b.sequences
    if b.lens_agree is not None:
        a.lens_agree = b.lens_agree if a.lens_agree is None else a.lens_agree + b.lens_agree
        a.commit = b.commit if a.commit is None else a.commit + b.commit
    a.lens_tokens += b.lens_tokens
    return a


def shard_task(payload: dict):
    """One shard (a Ray task): (LayerGeometry, {layer: ClassMoments} or None)."""
    from ..models.registry import load_model
    from .geometry import accumulate

    lm = load_model(payload["spec"], device=payload["device"], dtype=payload["dtype"])
    accs = {layer: ClassMoments(k, dim, classes=classes, name=name)
            for layer, (k, dim, classes, name) in (payload["classes"] or {}).items()}

    def nc(batch):
        for layer, acc in accs.items():
            acc.update(*next_token_pairs(batch, layer))

    geo = accumulate(lm, payload["texts"], extra=[nc] if accs else [], **payload["kw"])
    return geo, accs or None


def accumulate_sharded(lm, texts: list[str], shards: int, *, batch_size: int, extra=(),
                       progress=None, **kw):
    """:func:`~collapsekit.studies.geometry.accumulate` over ``shards`` Ray workers, merged;
    ``extra`` may hold one neural-collapse ``Accumulators``, whose class moments are
    filled from the shards."""
    nc = [e for e in extra if hasattr(e, "accs")]
    if len(nc) != len(extra) or len(nc) > 1:
        raise ValueError("shards > 1 carries only neural-collapse accumulators along")
    classes = {layer: (a.num_classes, a.dim, a.classes, a.name)
               for layer, a in nc[0].accs.items()} if nc else None
    device = str(lm.device)
    device = "cuda" if device.startswith("cuda") else device  # Ray picks the GPU
    payloads = [{"spec": lm.spec, "device": device,
                 "dtype": str(lm.model.dtype).removeprefix("torch."),
                 "texts": texts[a:b], "classes": classes,
                 "kw": {"batch_size": batch_size, **kw}}
                for a, b in bounds(len(texts), batch_size, shards)]
    ray, started = start()
    if ray is None:
        warnings.warn(f"ray is not installed: the {shards} geometry shards run one after "
                      "another in this process (pip install 'collapsekit[scale]' for Ray)",
                      stacklevel=2)
    results: list = [None] * len(payloads)

    def done(i, result):
        if isinstance(result, dict):
            raise CollapsekitError(f"geometry shard {i + 1} of {shards} failed: "
                                   f"{result['error']}")
        results[i] = result
        if progress:
            progress(len(payloads[i]["texts"]))

    try:
        run_tasks(shard_task, payloads, ray=ray, on_result=done, resources=[
            {"num_cpus": 1, "num_gpus": 1 if device == "cuda" else 0}] * len(payloads))
    finally:
        if started:
            ray.shutdown()
    geo = results[0][0]
    for other, _ in results[1:]:
        merge(geo, other)
    for _, accs in results if nc else ():
        for layer, acc in accs.items():
            nc[0].accs[layer].merge(acc)
    return geo
