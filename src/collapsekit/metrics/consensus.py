"""Consensus (agent semantic collapse) metrics: how far peripheral agents' texts have been
absorbed by an anchor's and by each other's ("Asymptotic Semantic Collapse in Hierarchical
Optimization": Jaccard-to-anchor, compliance, hash collisions, node entropy).

Words: a text is lowercased, every Unicode punctuation character (category P*) is deleted
and whitespace is collapsed (:func:`normalise`); its words are the whitespace-separated
pieces of that ("Don't" → "dont", "e-mail" → "email"). Bad input raises ``ValueError``.
"""

from __future__ import annotations

import hashlib
import math
import unicodedata
from collections import Counter
from itertools import combinations

import numpy as np

from ..params import check_int
from .semantic import unit_rows

# kind -> the field holding its argument
CONSTRAINT_KINDS = {"must_mention": "term", "must_not_mention": "term",
                    "max_words": "value", "min_words": "value"}


def _text(text, name: str = "text") -> str:
    if not isinstance(text, str):
        raise ValueError(f"{name} is a {type(text).__name__}, not a str: pass the text itself "
                         "(missing values are often float NaN)")
    return text


def _texts(texts, min_texts: int) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, (list, tuple)):
        raise ValueError("texts must be a list of strings; wrap a single text in a list")
    if len(texts) < min_texts:
        raise ValueError(f"need at least {min_texts} texts, got {len(texts)}: pass more texts")
    return [_text(t, f"texts[{i}]") for i, t in enumerate(texts)]


def normalise(text: str) -> str:
    """Lowercase, punctuation (Unicode category P*) deleted, whitespace collapsed."""
    kept = "".join(c for c in _text(text).lower()
                   if not unicodedata.category(c).startswith("P"))
    return " ".join(kept.split())


def words(text: str) -> list[str]:
    """The words of ``text`` (see the module docstring)."""
    return normalise(text).split()


def jaccard(a: str, b: str) -> float:
    """Jaccard similarity of the word sets A, B of two texts: |A ∩ B| / |A ∪ B|, in [0, 1].
    Two texts without words are identical: J = 1."""
    sa, sb = set(words(_text(a, "a"))), set(words(_text(b, "b")))
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def mean_pairwise_jaccard(texts) -> float:
    """Mean :func:`jaccard` over the n(n−1)/2 distinct pairs of texts (n ≥ 2)."""
    texts = _texts(texts, 2)
    return float(np.mean([jaccard(a, b) for a, b in combinations(texts, 2)]))


def text_hash(text: str) -> str:
    """sha256 hex digest of :func:`normalise` (text)."""
    return hashlib.sha256(normalise(text).encode()).hexdigest()


def hash_collisions(texts) -> int:
    """Number of texts whose :func:`text_hash` equals that of at least one other text
    (two identical texts: 2; three texts, two alike: 2; all different: 0)."""
    counts = Counter(text_hash(t) for t in _texts(texts, 1))
    return sum(c for c in counts.values() if c > 1)


def vocabulary_entropy(texts) -> float:
    """Shannon entropy in bits of the pooled word distribution of ``texts``:
    H = −Σ_w p_w log2 p_w with p_w = (count of w in all texts) / (number of words)."""
    counts = Counter(w for t in _texts(texts, 1) for w in words(t))
    total = sum(counts.values())
    if total == 0:
        raise ValueError("the texts contain no words (only punctuation or whitespace): "
                         "pass texts with words")
    p = np.array(list(counts.values()), dtype=np.float64) / total
    return float(max(0.0, -(p * np.log2(p)).sum()))


def check_constraints(constraints) -> list[dict]:
    """``constraints`` validated: a list of ``{"kind": ..., "term"|"value": ...}`` with kind
    in :data:`CONSTRAINT_KINDS`; terms are non-empty strings with words, values ints ≥ 0."""
    if not isinstance(constraints, (list, tuple)):
        raise ValueError(f"constraints must be a list of {{'kind': ...}} objects, got "
                         f"{type(constraints).__name__}")
    for i, c in enumerate(constraints):
        kind = c.get("kind") if isinstance(c, dict) else None
        if kind not in CONSTRAINT_KINDS:
            raise ValueError(f"constraint {i} has kind {kind!r}: use one of "
                             f"{', '.join(CONSTRAINT_KINDS)}")
        field = CONSTRAINT_KINDS[kind]
        arg = c.get(field)
        if field == "term" and not (isinstance(arg, str) and words(arg)):
            raise ValueError(f"constraint {i} ({kind}) needs a 'term' with at least one word")
        if field == "value":
            check_int(f"constraint {i} ({kind}): value", arg, 0)
        if set(c) - {"kind", field}:
            raise ValueError(f"constraint {i} ({kind}) has unknown fields "
                             f"{sorted(set(c) - {'kind', field})}: give only 'kind' and "
                             f"'{field}'")
    return list(constraints)


def _mentions(text_words: list[str], term: str) -> bool:
    t = words(term)
    return any(text_words[i:i + len(t)] == t for i in range(len(text_words) - len(t) + 1))


def satisfied(text: str, constraints) -> list[bool]:
    """For each constraint, whether ``text`` meets it. ``must_mention`` / ``must_not_mention``:
    the term's words occur (do not occur) as consecutive words of the text (whole words:
    "art" is not in "part"); ``max_words`` / ``min_words``: the text's word count."""
    w = words(_text(text))
    out = []
    for c in check_constraints(constraints):
        kind = c["kind"]
        if kind == "must_mention":
            out.append(_mentions(w, c["term"]))
        elif kind == "must_not_mention":
            out.append(not _mentions(w, c["term"]))
        elif kind == "max_words":
            out.append(len(w) <= c["value"])
        else:
            out.append(len(w) >= c["value"])
    return out


def compliance(text: str, constraints) -> float:
    """Fraction of the anchor's constraints that ``text`` satisfies (see :func:`satisfied`)."""
    ok = satisfied(text, constraints)
    if not ok:
        raise ValueError("constraints is empty: compliance needs at least one constraint")
    return sum(ok) / len(ok)


def von_neumann_entropy(states) -> float:
    """Von Neumann entropy in bits of the agents' density matrix, the node entropy used
    here for "available degrees of freedom": with unit rows x̂_i of the (n, d) ``states``,
    ρ = (1/n) Σ_i x̂_i x̂_iᵀ (trace 1) and S = −Σ_k λ_k log2 λ_k over its eigenvalues.
    0 iff all agents point the same way; log2(min(n, d)) at most (orthogonal agents)."""
    u = unit_rows(states, "states")
    lam = np.linalg.svd(u / math.sqrt(len(u)), compute_uv=False) ** 2
    lam = lam[lam > 0]
    return float(max(0.0, -(lam * np.log2(lam)).sum()))
