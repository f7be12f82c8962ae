"""Neural collapse of a causal LM with the next token as the class (Wu & Papyan 2024).

One streaming pass: each real position t of a text (except the last) is a sample whose
feature is the residual stream at a captured layer and whose label is the token at t + 1.
A cheap tokenizer-only pass counts labels first, so ``max_classes`` / ``min_count`` pick
the tracked classes before anything K×D is allocated (and texts then run shortest first, to
pad little). Per layer, a float64
:class:`ClassMoments` gives NC1, CDNV, NC2; at ``final_norm`` the unembedding rows are the
classifier (NC3), and NC4 compares, on held-out texts, the nearest class mean with the
LM's argmax restricted to the included classes.
"""

from __future__ import annotations

import numpy as np

from ..metrics.neural_collapse import collapse_metrics, nc4_predictions
from ..models.capture import next_token_pairs, stream
from ..models.lens import unembedding
from ..stats.classes import ClassMoments

SECTION = "neural collapse"
_FINAL = "final_norm"


def layer_names(n_layers: int) -> list[str]:
    """Capture-point names: embed, block_1..block_L, final_norm."""
    return ["embed", *(f"block_{i}" for i in range(1, n_layers + 1)), _FINAL]


def resolve_layers(layers, names: list[str]) -> list[int]:
    """Indices of ``layers`` given by name ("final_norm", "block_3") or index (-1 = last)."""
    if isinstance(layers, (str, int)):
        layers = [layers]
    out = []
    for layer in layers:
        if isinstance(layer, str) and layer in names:
            out.append(names.index(layer))
        elif (isinstance(layer, (int, np.integer)) and not isinstance(layer, bool)
              and -len(names) <= layer < len(names)):
            out.append(int(layer) % len(names))
        else:
            raise ValueError(f"unknown layer {layer!r}: use embed, block_1..block_"
                             f"{len(names) - 2}, final_norm or an index in "
                             f"[-{len(names)}, {len(names)})")
    if not out:
        raise ValueError("layers is empty: pass at least one, e.g. ('final_norm',)")
    return sorted(set(out))


def label_counts(tokenizer, texts, *, max_length: int, num_classes: int,
                 chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """(next-token label frequencies of length ``num_classes``, token length of each text),
    tokenizing as capture does (truncated to ``max_length``)."""
    counts = np.zeros(num_classes, dtype=np.int64)
    lengths = []
    for i in range(0, len(texts), chunk):
        ids = tokenizer(list(texts[i:i + chunk]), truncation=True, max_length=max_length,
                        verbose=False)["input_ids"]
        lengths += map(len, ids)
        labels = np.fromiter((t for seq in ids for t in seq[1:]), dtype=np.int64)
        if labels.size and labels.max() >= num_classes:
            raise ValueError(f"token id {int(labels.max())} is outside the unembedding's "
                             f"{num_classes} rows: tokenizer and model do not match")
        counts += np.bincount(labels, minlength=num_classes)
    return counts, np.array(lengths, dtype=np.int64)


def by_length(texts, lengths) -> list[str]:
    """Texts sorted by token length: batches of similar lengths waste little on padding
    (the statistics do not depend on the order)."""
    return [texts[i] for i in np.argsort(lengths, kind="stable")]


def count_histogram(counts: np.ndarray, included: np.ndarray) -> list[dict]:
    """Rows per class-count bin 0, 1, 2–3, 4–7, …: classes, tokens, classes included."""
    inc = np.zeros(len(counts), dtype=bool)
    inc[included] = True
    bins = np.where(counts > 0, np.floor(np.log2(np.maximum(counts, 1))).astype(int) + 1, 0)
    rows = []
    for b in range(int(bins.max()) + 1):
        sel = bins == b
        lo, hi = (0, 0) if b == 0 else (2 ** (b - 1), 2**b - 1)
        rows.append({"count_min": lo, "count_max": hi, "classes": int(sel.sum()),
                     "tokens": int(counts[sel].sum()), "included": int(inc[sel].sum())})
    return rows


def _nc4(lm, stats, w, b, texts, layer: int, *, batch_size: int, max_length: int, tick) -> dict:
    means, wk = stats.means, w[stats.classes]
    bk = None if b is None else b[stats.classes]
    tally = np.zeros(4, dtype=np.int64)  # agree, ncc correct, classifier correct, n

    def consume(batch):
        x, y = next_token_pairs(batch, layer)
        if len(x):
            ncc, clf = nc4_predictions(x, means, wk, bias=bk)
            y = y.cpu().numpy()
            tally[:] += (int((ncc == clf).sum()), int((stats.classes[ncc] == y).sum()),
                         int((stats.classes[clf] == y).sum()), len(y))
        tick(len(batch.input_ids))

    _, lengths = label_counts(lm.tokenizer, texts, max_length=max_length, num_classes=len(w))
    stream(lm.model, lm.tokenizer, by_length(texts, lengths), [consume], batch_size=batch_size,
           max_length=max_length, layers=[layer], on_truncate=lambda *_: None)
    n = max(int(tally[3]), 1)
    return {"nc4_agreement": tally[0] / n, "nc4_ncc_accuracy": tally[1] / n,
            "nc4_classifier_accuracy": tally[2] / n, "nc4_tokens": int(tally[3])}


FIELDS = ("global_mean", "cdnv_power", "dim", "singletons")  # fields of records, not records


def record_fields(res: dict) -> dict:
    """Scope fields of every NC record from :func:`collapse_metrics` output: ``K`` and
    ``D`` (NC1 = Tr(Σ_W Σ_B⁺)/K is comparable only at similar K/D; it is unstable near
    K ≈ D) and the singleton handling (``singletons``)."""
    return {"K": int(res["n_classes"]), "D": int(res["dim"]), "singletons": res["singletons"]}


class Accumulators:
    """The neural-collapse accumulators of one pass: per wanted layer a float64
    :class:`ClassMoments` over the classes chosen from a tokenizer-only label count.
    Call it on each :class:`CaptureBatch` (it can ride along another study's forward
    pass, e.g. geometry's), then :meth:`finish`."""

    def __init__(self, lm, texts, *, layers=(_FINAL,), max_classes=None, min_count=1,
                 max_length=256, singletons="exclude", cdnv_power=1):
        self.singletons, self.cdnv_power = singletons, cdnv_power
        self.names = layer_names(lm.n_layers)
        self.wanted = resolve_layers(layers, self.names)
        self.w, self.b = unembedding(lm.model)
        self.counts, self.lengths = label_counts(lm.tokenizer, texts, max_length=max_length,
                                                 num_classes=len(self.w))
        self.accs = {l: ClassMoments.from_counts(self.counts, lm.hidden_size,
                                                 max_classes=max_classes, min_count=min_count,
                                                 name=self.names[l]) for l in self.wanted}
        self.truncated = 0

    def __call__(self, batch) -> None:
        for l, acc in self.accs.items():
            acc.update(*next_token_pairs(batch, l))

    def finish(self, run, lm, *, heldout_texts=None, batch_size=8, max_length=256,
               console=None) -> None:
        """Metrics per layer (NC4 on ``heldout_texts`` at final_norm) into ``run``. Every
        record carries K (classes included) and D (feature dimension), which decide whether
        NC1 values are comparable (see :func:`record_fields`); cdnv carries its ``power``."""
        from .progress import progress_bar

        final = self.names.index(_FINAL)
        results, included = {}, None
        for l, acc in self.accs.items():
            stats = acc.finalize(singletons=self.singletons)
            results[l] = collapse_metrics(stats, classifier=self.w if l == final else None,
                                          cdnv_power=self.cdnv_power)
            if included is None or l == final:
                included = stats.classes
            if l == final and heldout_texts:
                with progress_bar("neural collapse NC4", len(heldout_texts), console) as tick:
                    results[l].update(_nc4(lm, stats, self.w, self.b, heldout_texts, l,
                                           batch_size=batch_size, max_length=max_length,
                                           tick=tick))
        for l, res in results.items():
            fields = record_fields(res)
            for metric, value in res.items():
                if metric not in FIELDS:
                    extra = {"power": res["cdnv_power"]} if metric == "cdnv" else {}
                    run.add(metric, value, section=SECTION, layer=l, layer_name=self.names[l],
                            **fields, **extra)
        run.table("nc_class_counts", count_histogram(self.counts, included))
        run.meta(neural_collapse_tokens=int(self.counts.sum()),
                 neural_collapse_truncated_texts=self.truncated,
                 neural_collapse_global_mean="class_means", neural_collapse_vocab=len(self.w))
        run.write()


def stage(run, lm, texts, *, layers=(_FINAL,), heldout_texts=None, max_classes=None,
          min_count=1, batch_size=8, max_length=256, console=None, singletons="exclude",
          cdnv_power=1) -> None:
    """Neural-collapse stage with its own forward pass: records per layer under section
    "neural collapse" and the table ``nc_class_counts``; skipped when ``run`` already holds
    it (resume)."""
    from .progress import progress_bar

    if run.has("nc1", section=SECTION):
        return
    nc = Accumulators(lm, texts, layers=layers, max_classes=max_classes, min_count=min_count,
                      max_length=max_length, singletons=singletons, cdnv_power=cdnv_power)

    def on_truncate(*_):
        nc.truncated += 1

    with run.timer("neural_collapse"):
        with progress_bar("neural collapse", len(texts), console) as tick:
            def consume(batch):
                nc(batch)
                tick(len(batch.input_ids))

            stream(lm.model, lm.tokenizer, by_length(texts, nc.lengths), [consume],
                   batch_size=batch_size, max_length=max_length, layers=nc.wanted,
                   on_truncate=on_truncate)
        nc.finish(run, lm, heldout_texts=heldout_texts, batch_size=batch_size,
                  max_length=max_length, console=console)
