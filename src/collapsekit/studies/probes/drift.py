"""``collapsekit drift``: perplexity drift between two models, or after rank-one edits.

"The Butterfly Effect of Model Editing" (Yang et al. 2024) uses perplexity on reference
text as a cheap surrogate for collapse after edits. Here, on a reference corpus (default:
bundled Wikipedia paragraphs cut to their first ``words`` words), with the NLLs of
:mod:`collapsekit.models.perplexity`:

- same tokenization of the corpus: ratio = pooled PPL_B / pooled PPL_A (and per document);
- different tokenizers: PPL per token is not comparable, so the ratio is of bits per byte,
  BPB_B / BPB_A (= NLL_B / NLL_A in total), and the run says so (note + ``drift_compared_by``).

Bits per byte is recorded in both cases. The **collapse flag** is raised when the pooled
ratio is ≥ ``threshold`` (default 2: the reference text became twice as surprising, far
beyond the few-percent changes of a benign edit; the paper's collapsed models reach
perplexities orders of magnitude higher). CIs: percentile bootstrap over documents.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...models.perplexity import DocumentNLL, document_nll
from ...params import check_int

SECTION = "drift"
THRESHOLD = 2.0
SCALE = 5.0


def ratio_ci(a: DocumentNLL, b: DocumentNLL, *, per_token: bool, n_boot: int = 2000,
             seed: int = 0) -> tuple[float, float, float]:
    """(pooled ratio, low, high): PPL_B/PPL_A (``per_token``) or BPB_B/BPB_A, with a 95%
    percentile bootstrap over documents."""
    den_a = a.tokens if per_token else a.bytes
    den_b = b.tokens if per_token else b.bytes

    def ratio(idx):
        na, nb = a.nll[idx].sum(-1), b.nll[idx].sum(-1)
        da, db = den_a[idx].sum(-1), den_b[idx].sum(-1)
        return np.exp(nb / db - na / da) if per_token else (nb / db) / (na / da)

    whole = float(ratio(np.arange(len(a.nll))))
    idx = np.random.default_rng(seed).integers(0, len(a.nll), (n_boot, len(a.nll)))
    lo, hi = np.quantile(ratio(idx), [0.025, 0.975])
    return whole, float(min(lo, whole)), float(max(hi, whole))


class DriftMonitor:
    """Reference NLLs computed once; :meth:`measure` compares any later model with them.

    ``DriftMonitor(reference, texts).measure(model, step=i)`` after each edit gives the
    drift curve (records with ``step=``). ``reference``/``model``: a LoadedModel, or a
    torch model with ``tokenizer=``."""

    def __init__(self, reference, texts: list[str], *, tokenizer=None,
                 threshold: float = THRESHOLD, batch_size: int = 4, seed: int = 0):
        if not threshold > 1:
            raise ValueError(f"threshold={threshold!r} must be > 1 (a ratio of perplexities)")
        self.texts, self.threshold, self.batch_size, self.seed = texts, threshold, batch_size, seed
        model, self.tokenizer = _unpack(reference, tokenizer)
        self.reference = document_nll(model, self.tokenizer, texts, batch_size=batch_size)
        self.documents: list[dict] = []

    def baseline(self, **scope) -> list[dict]:
        """Records of the reference against itself (ratio 1), e.g. ``step=0``."""
        return self._compare(self.reference, **scope)

    def measure(self, model, /, *, tokenizer=None, **scope) -> list[dict]:
        """Records (section "drift", with ``scope`` such as ``step=i`` or ``model=...``) of
        ``model`` against the reference; per-document rows go to ``self.documents``."""
        model, tok = _unpack(model, tokenizer or self.tokenizer)
        return self._compare(document_nll(model, tok, self.texts, batch_size=self.batch_size),
                             **scope)

    def _compare(self, nll: DocumentNLL, **scope) -> list[dict]:
        ref = self.reference
        same = nll.ids_hash == ref.ids_hash
        by = "perplexity" if same else "bits_per_byte"
        ratio, lo, hi = ratio_ci(ref, nll, per_token=same, seed=self.seed)
        docs = (nll.perplexity() / ref.perplexity() if same
                else nll.bits_per_byte() / ref.bits_per_byte())
        base = dict(section=SECTION, **scope)
        recs = [dict(metric="bits_per_byte", value=nll.pooled_bits_per_byte(), **base),
                dict(metric="bits_per_byte_ratio", value=nll.nll.sum() / ref.nll.sum() *
                     ref.bytes.sum() / nll.bytes.sum(), **base)]
        if same:
            recs.append(dict(metric="perplexity", value=nll.pooled_perplexity(), **base))
        recs += [dict(metric=f"{by}_ratio", value=ratio, ci_low=lo, ci_high=hi, **base),
                 dict(metric="drift_collapse", value=float(ratio >= self.threshold),
                      compared_by=by, threshold=self.threshold, **base),
                 dict(metric="drift_collapsed_documents",
                      value=float(np.mean(docs >= self.threshold)), threshold=self.threshold,
                      **base)]
        if not same:
            recs[-1]["note"] = ("different tokenizers: compared by bits per byte, not "
                                "perplexity per token")
        self.documents += [{**scope, "document": i, "tokens": int(nll.tokens[i]),
                            "bytes": int(nll.bytes[i]), "nll": float(nll.nll[i]),
                            "bits_per_byte": float(nll.bits_per_byte()[i]),
                            "ratio": float(docs[i]), "compared_by": by}
                           for i in range(len(docs))]
        return recs


def _unpack(model, tokenizer):
    if hasattr(model, "model") and hasattr(model, "tokenizer"):
        return model.model, tokenizer if tokenizer is not None else model.tokenizer
    if tokenizer is None:
        raise ValueError("pass tokenizer= with a bare model (or a LoadedModel)")
    return model, tokenizer


def reference_texts(texts=None, *, human: str = "wikipedia", n: int = 8,
                    words: int = 64) -> list[str]:
    """The reference corpus: ``texts`` (a list, or a file for io.read_texts) or bundled
    human text; each cut to its first ``words`` words, the first ``n`` kept."""
    from ...corpora import human_texts
    from ...io import read_texts

    if texts is None:
        texts = human_texts(human, n, min_words=words)
    elif isinstance(texts, (str, Path)):
        texts = read_texts(texts)
    out = [" ".join(t.split()[:words]) for t in list(texts)[:n]]
    if not out or not all(out):
        raise ValueError("the reference corpus is empty (or has empty documents): give "
                         "texts with some words")
    return out


def _record(run, recs: list[dict]) -> None:
    for r in recs:
        r = dict(r)
        run.add(r.pop("metric"), r.pop("value"), **r)


def _keep_table(run, monitor) -> None:
    old = run.read_table("drift_documents") if "drift_documents" in run.to_dict()["tables"] \
        else {}
    rows = [dict(zip(old, v)) for v in zip(*old.values())] if old else []
    run.table("drift_documents", rows + monitor.documents)
    monitor.documents = []


def edit_stage(run, lm, texts: list[str], *, edits: int, layer: int | None = None,
               scale: float = SCALE, threshold: float = THRESHOLD, seed: int = 0,
               batch_size: int = 4) -> None:
    """Apply ``edits`` successive rank-one edits to block ``layer``'s MLP output matrix of
    ``lm`` (default: the middle block; each of size s·‖W₀‖₂ with W₀ the unedited matrix;
    edit i seeded with seed·100003 + i; the matrix is restored afterwards), measuring the
    drift after each: records with ``step=`` 0..edits, 0 = the unedited model."""
    from ...models.editing import preserved, rank_one_edit, spectral_norm
    from ..progress import progress_bar

    check_int("edits", edits, 1)
    layer = lm.n_layers // 2 if layer is None else layer
    todo = [s for s in range(edits + 1)
            if not run.has("drift_collapse", section=SECTION, step=s)]
    if not todo:
        return
    with run.timer("drift_edits"), preserved(lm.model, layer), \
            progress_bar("drift", len(todo) + 1) as tick:
        monitor = DriftMonitor(lm, texts, threshold=threshold, batch_size=batch_size,
                               seed=seed)
        tick()
        norm = spectral_norm(lm.model, layer)
        log = []
        for step in range(edits + 1):
            if step:
                e = rank_one_edit(lm.model, layer=layer, scale=scale, seed=seed * 100003 + step,
                                  norm=norm)
                log.append({"step": step, "parameter": e.name, "layer": e.layer,
                            "scale": e.scale, "spectral_norm_unedited": e.spectral_norm,
                            "seed": e.seed})
            if step in todo:
                _record(run, monitor.baseline(step=0) if step == 0
                        else monitor.measure(lm, step=step))
                _keep_table(run, monitor)
                tick()
        run.table("drift_edits", log)
        run.meta(drift_compared_by="perplexity", drift_edit={"layer": layer, "scale": scale})
    run.write()


def compare_stage(run, lm_a, lm_b, texts: list[str], *, threshold: float = THRESHOLD,
                  seed: int = 0, batch_size: int = 4) -> None:
    """Model B against reference model A: records with ``model=`` (A's is the baseline)."""
    if run.has("drift_collapse", section=SECTION, model=lm_b.spec):
        return
    with run.timer("drift_compare"):
        monitor = DriftMonitor(lm_a, texts, threshold=threshold, batch_size=batch_size,
                               seed=seed)
        _record(run, monitor.baseline(model=lm_a.spec, role="reference"))
        recs = monitor.measure(lm_b, model=lm_b.spec, role="compared")
        _record(run, recs)
        _keep_table(run, monitor)
        by = next(r["compared_by"] for r in recs if r["metric"] == "drift_collapse")
        run.meta(drift_compared_by=by)
        if by == "bits_per_byte":
            run.meta(drift_note="the two tokenizers cut the corpus differently: perplexity "
                                "per token is not comparable, so the ratio is of bits per byte")
    run.write()


def _texts(s) -> list[str]:
    return reference_texts(s.texts, human=s.human, n=s.n, words=s.words)


def check(s) -> dict:
    """Read the corpus; one model (edit mode) or two (B against A)."""
    if len(s.model) > 2:
        raise ValueError(f"give one --model (edit mode) or two (B against A), not "
                         f"{len(s.model)}")
    edit_only = sorted({"edits", "edit_layer", "edit_scale"} & set(s.given))
    if len(s.model) == 2 and edit_only:
        raise ValueError(f"{', '.join(edit_only)} apply to one model (edit mode): give one "
                         "--model, or drop them")
    return {"texts": str(s.texts) if s.texts else f"human:{s.human}", "n": len(_texts(s)),
            "mode": "edit" if len(s.model) == 1 else "compare"}


def study_stage(run, models, s) -> None:
    """``collapsekit drift``: one model against rank-one-edited copies of itself (edits in
    place on one matrix, restored afterwards), or model B against model A."""
    texts = _texts(s)
    if len(models.specs) == 2:
        lm_a = models.load(models.specs[0])
        lm_b = models.load(models.specs[1])
        compare_stage(run, lm_a, lm_b, texts, threshold=s.threshold, seed=s.seed,
                      batch_size=s.batch_size)
    else:
        edit_stage(run, models.load(models.specs[0]), texts, edits=s.edits,
                   layer=s.edit_layer, scale=s.edit_scale, threshold=s.threshold,
                   seed=s.seed, batch_size=s.batch_size)
