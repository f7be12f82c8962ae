"""``collapsekit concepts``: how a model's item embeddings trade compression for meaning
against human categories (Shani et al. 2025, "From Tokens to Thoughts"; the formulas are in
:mod:`collapsekit.metrics.concepts`, the vectors come from :mod:`collapsekit.models.items`).

For the human partition and for k-means partitions of the model's vectors at each k:
``concept_rate`` (I(X;C), bits), ``concept_distortion`` and ``concept_ib_objective``
(L = rate + β·distortion); per k, ``concept_ami`` with the human categories (scope
``k_vs_categories``: fewer, equal or more clusters than categories; the summary judges
"equal"); with typicality ratings, ``typicality_spearman`` per category and its mean;
and ``concept_ib_gap`` = L(human) − L(k-means at k = number of categories).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputFileError
from ..io import read_data_or_file

SECTION = "concepts"
HEADER = ["category", "item", "typicality"]


@dataclass(frozen=True)
class Concepts:
    """Items with their human category and, when the file gives them, typicality ratings."""

    categories: list[str]
    items: list[str]
    typicality: np.ndarray | None  # higher = more typical; None: membership only
    source: str


def read_concepts(path: str | Path | None = None) -> Concepts:
    """``category,item,typicality`` rows from a CSV (default: the bundled membership lists).
    Lines starting with # are comments; typicality is a number on every row or on none."""
    text, where = read_data_or_file(path, "concepts.csv", "concepts")
    numbered = [(n, ln) for n, ln in enumerate(text.split("\n"), 1)
                if ln.strip() and not ln.lstrip().startswith("#")]
    if not numbered:
        raise InputFileError(f"{where} has no rows: give a header {','.join(HEADER)} and rows")
    parsed = list(csv.reader(ln for _, ln in numbered))
    if [c.strip().lower() for c in parsed[0]] != HEADER:
        raise InputFileError(f"{where}, line {numbered[0][0]}: the header must be "
                             f"{','.join(HEADER)}, got {','.join(parsed[0])}")
    cats, items, typ, seen = [], [], [], {}
    for (n, _), row in zip(numbered[1:], parsed[1:]):
        if len(row) != 3:
            raise InputFileError(f"{where}, line {n}: expected 3 fields (category,item,"
                                 f"typicality), got {len(row)}; leave typicality empty if "
                                 "you have none")
        cat, item, t = (f.strip() for f in row)
        if not cat or not item:
            raise InputFileError(f"{where}, line {n}: empty {'category' if not cat else 'item'}"
                                 ": give every row a category and an item")
        if item.lower() in seen:
            raise InputFileError(f"{where}, line {n}: item {item!r} already appears on line "
                                 f"{seen[item.lower()]}: each item belongs to one category")
        seen[item.lower()] = n
        value = None
        if t:
            try:
                value = float(t)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise InputFileError(f"{where}, line {n}: typicality {t!r} is not a finite "
                                     "number")
        if typ and (typ[0] is None) != (value is None):
            raise InputFileError(f"{where}, line {n}: typicality is given on some rows but "
                                 "not on others: fill every row or leave the column empty")
        cats.append(cat)
        items.append(item)
        typ.append(value)
    sizes = {c: cats.count(c) for c in dict.fromkeys(cats)}
    if len(sizes) < 2:
        raise InputFileError(f"{where}: {len(sizes)} category; the study compares partitions "
                             "and needs at least 2 categories")
    small = [c for c, k in sizes.items() if k < 2]
    if small:
        raise InputFileError(f"{where}: categor{'y' if len(small) == 1 else 'ies'} "
                             f"{', '.join(small)} ha{'s' if len(small) == 1 else 've'} one "
                             "item: give each category at least 2 items")
    typicality = None if typ[0] is None else np.asarray(typ, dtype=np.float64)
    return Concepts(cats, items, typicality, where)


def default_ks(n_categories: int, n_items: int) -> tuple[int, ...]:
    """C/2, C and 2C for C human categories, kept within [2, N − 1]."""
    ks = {max(2, n_categories // 2), n_categories, 2 * n_categories}
    return tuple(sorted(k for k in ks if 2 <= k < n_items))


def check(s) -> dict:
    """Read the concepts file and check k against it before the run is made."""
    c = read_concepts(s.concepts)
    n, n_cat = len(c.items), len(set(c.categories))
    ks = s.ks or default_ks(n_cat, n)
    bad = [k for k in ks if not 2 <= k < n]
    if bad:
        raise InputFileError(f"--ks {','.join(map(str, bad))}: k must be in [2, {n - 1}] for "
                             f"the {n} items of {c.source}")
    return {"concepts": c.source, "n_items": n, "n_categories": n_cat, "ks": list(ks),
            "typicality": c.typicality is not None}


def analyse(x: np.ndarray, c: Concepts, *, ks, beta: float, seed: int, n_init: int
            ) -> tuple[list[dict], list[dict]]:
    """(records, per-item rows) of the study for item vectors ``x`` (rows in ``c.items``
    order); records are dicts ``{metric, value, **scope}``."""
    from ..metrics import concepts as mc

    recs = []

    def partition(labels, **scope):
        rate, dist = mc.partition_rate(labels), mc.partition_distortion(x, labels)
        recs.extend([dict(metric="concept_rate", value=rate, **scope),
                     dict(metric="concept_distortion", value=dist, **scope),
                     dict(metric="concept_ib_objective", value=mc.ib_objective(rate, dist, beta),
                          beta=beta, **scope)])
        return rate + beta * dist

    human = np.asarray(c.categories)
    n_cat = len(set(c.categories))
    l_human = partition(human, partition="human", k=n_cat)
    l_k = {}
    for k in ks:
        labels = mc.kmeans_labels(x, k, seed=seed, n_init=n_init)
        l_k[k] = partition(labels, partition="kmeans", k=k)
        versus = "equal" if k == n_cat else "fewer" if k < n_cat else "more"
        recs.append(dict(metric="concept_ami", value=mc.category_ami(human, labels), k=k,
                         k_vs_categories=versus))
    if n_cat in l_k:
        recs.append(dict(metric="concept_ib_gap", value=l_human - l_k[n_cat], k=n_cat,
                         beta=beta))
    dist = mc.centroid_distances(x, human)
    typ = [None] * len(dist) if c.typicality is None else c.typicality.tolist()
    rows = [{"category": cat, "item": it, "centroid_distance": float(d), "typicality": t}
            for cat, it, d, t in zip(c.categories, c.items, dist, typ)]
    if c.typicality is not None:
        rhos = []
        for cat in dict.fromkeys(c.categories):
            m = human == cat
            try:
                rho = mc.typicality_spearman(dist[m], c.typicality[m])
            except ValueError as exc:  # < 3 items or constant ratings: say so, go on
                recs.append(dict(metric="typicality_spearman", value=None, category=cat,
                                 note=str(exc)))
                continue
            rhos.append(rho)
            recs.append(dict(metric="typicality_spearman", value=rho, category=cat))
        if rhos:
            recs.append(dict(metric="mean_typicality_spearman", value=float(np.mean(rhos)),
                             categories=len(rhos)))
    return recs, rows


def study_stage(run, lm, s) -> None:
    """The concepts study: records in section ``concepts`` and the table ``concept_items``."""
    from ..models.items import item_vectors

    c = read_concepts(s.concepts)
    ks = s.ks or default_ks(len(set(c.categories)), len(c.items))
    with run.timer("concept_vectors"):
        x, counts = item_vectors(lm, c.items, layer=s.layer, prefix_space=s.prefix_space)
    with run.timer("concept_analysis"):
        recs, rows = analyse(x, c, ks=ks, beta=s.beta, seed=s.seed, n_init=s.n_init)
    where = "input_embeddings" if s.layer is None else f"layer_{s.layer}"
    run.add("concept_items", len(c.items), section=SECTION, vectors=where)
    run.add("concept_split_items", float(np.mean(counts > 1)), section=SECTION, vectors=where)
    for r in recs:
        run.add(r.pop("metric"), r.pop("value"), section=SECTION, vectors=where, **r)
    run.table("concept_items", [{**r, "tokens": int(n)} for r, n in zip(rows, counts)])
