"""Ambiguity preservation: rule-based conflict detection, state entropy of interpretations,
and distributions over candidate interpretations from model log-probabilities.

After NRR-Phi (Saito 2026, "NRR-Phi: Text-to-State Mapping for Ambiguity Preservation in
LLM Inference"): text is mapped to a state of coexisting interpretations in three stages,
(1) conflict detection from explicit markers (adversative conjunctions, hedges, modals;
English and a small Japanese set), (2) interpretation extraction, (3) state construction.
A state is summarised by its Shannon entropy in bits, H = −Σ_i w_i log₂ w_i over the
interpretation weights w (NRR-Core, Saito 2025, reports H at ambiguous and disambiguated
turns of a two-turn task; a collapsed state, one interpretation, has H = 0).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from ..params import check_number
from .uncertainty import semantic_entropy

# English markers by category, matched case-insensitively on word boundaries (longest first).
EN_MARKERS = {
    "adversative": ("but", "however", "although", "though", "even though", "yet",
                    "whereas", "nevertheless", "nonetheless", "on the other hand",
                    "despite", "in spite of", "on the contrary", "then again"),
    "hedge": ("maybe", "perhaps", "possibly", "probably", "might", "seems", "seem",
              "seemed", "appears", "apparently", "likely", "unlikely", "presumably",
              "arguably", "i think", "i guess", "i suppose", "not sure", "somewhat"),
    "modal": ("could", "may", "should", "would", "must", "ought to"),
}
# Japanese markers (no spaces: substring rules). が, でも, かな, かも and はず are ambiguous
# as strings and are matched only in the contexts given in _JA_RULES.
JA_MARKERS = {
    "adversative": ("けれども", "けれど", "だけど", "けど", "しかし", "ところが", "だが",
                    "でも", "が"),
    "hedge": ("かもしれない", "かもしれません", "かも知れない", "かも", "だろう", "でしょう",
              "たぶん", "多分", "かな", "らしい"),
    "modal": ("べき", "はず"),
}
_JA_END = "。．！？!?、，,」』…\n "
_JA_RULES = {
    # clause-final adversative が: after a predicate ending and before a comma (高いが、
    # 行ったが、ですが、), or opening a sentence (が、); the subject marker (猫が) is not.
    "が": lambda t, s, e: (e < len(t) and t[e] in "、，,"
                          and (s == 0 or t[s - 1] in "いただするんう" + _JA_END)),
    # sentence-initial でも ("but"); not 誰でも ("anyone") or 今でも ("even now").
    "でも": lambda t, s, e: s == 0 or t[s - 1] in _JA_END,
    # sentence-final かな / かも; not かなり ("quite"), 静かな, かもめ ("gull").
    "かな": lambda t, s, e: e == len(t) or t[e] in _JA_END,
    "かも": lambda t, s, e: e == len(t) or t[e] in _JA_END,
    # はず ("ought to be"), not はずかしい ("embarrassed").
    "はず": lambda t, s, e: e == len(t) or t[e] not in "かし",
}
_ANY = lambda t, s, e: True  # noqa: E731
_NOT_YET = re.compile(r"(?:\bnot|\bas|\bnor|n't)\s+$", re.IGNORECASE)
# Noisy-OR weight of one marker of each category in the conflict score.
WEIGHTS = {"adversative": 0.6, "hedge": 0.4, "modal": 0.2}


@dataclass(frozen=True)
class Marker:
    """One conflict marker: ``text[start:end]`` of ``category`` in language ``lang``."""

    text: str
    start: int
    end: int
    category: str
    lang: str


@dataclass(frozen=True)
class Conflicts:
    """Markers found in a text, the conflict score in [0, 1], its flag, and the segments
    between adversative markers (the explicit interpretations of NRR-Phi's segmentation)."""

    markers: tuple[Marker, ...]
    score: float
    flag: bool
    segments: tuple[str, ...] = field(default=())

    @property
    def categories(self) -> dict[str, int]:
        """Number of markers per category."""
        out: dict[str, int] = {}
        for m in self.markers:
            out[m.category] = out.get(m.category, 0) + 1
        return out


def _en_pattern():
    pairs = sorted(((w, c) for c, ws in EN_MARKERS.items() for w in ws), key=lambda p: -len(p[0]))
    alt = "|".join(r"\s+".join(map(re.escape, w.split())) for w, _ in pairs)
    return re.compile(rf"\b(?:{alt})\b", re.IGNORECASE), {w: c for w, c in pairs}


_EN, _EN_CATEGORY = _en_pattern()
_JA = sorted(((w, c) for c, ws in JA_MARKERS.items() for w in ws), key=lambda p: -len(p[0]))


def _english(text: str) -> list[Marker]:
    out = []
    for m in _EN.finditer(text):
        word = " ".join(m.group().lower().split())
        if word == "yet" and _NOT_YET.search(text[:m.start()]):
            continue  # "not yet", "as yet", "nor yet": temporal, not adversative
        if m.group() == "May" and text[:m.start()].strip() and \
                text[:m.start()].rstrip()[-1] not in ".!?\"'":
            continue  # "in May": the month (a capital May inside a sentence)
        out.append(Marker(m.group(), m.start(), m.end(), _EN_CATEGORY[word], "en"))
    return out


def _japanese(text: str) -> list[Marker]:
    out, i = [], 0
    while i < len(text):
        for word, cat in _JA:
            end = i + len(word)
            if text.startswith(word, i) and _JA_RULES.get(word, _ANY)(text, i, end):
                out.append(Marker(word, i, end, cat, "ja"))
                i = end
                break
        else:
            i += 1
    return out


def detect_conflicts(text: str, *, weights: dict | None = None,
                     threshold: float = 0.5) -> Conflicts:
    """Rule-based conflict detection (NRR-Phi stage 1) in English and Japanese.

    Markers: adversative conjunctions, hedges and modals (``EN_MARKERS``, ``JA_MARKERS``;
    ambiguous strings only in their marker contexts, e.g. "not yet" and clause-internal
    Japanese が are skipped). Score (collapsekit's rule; NRR-Phi gives no formula): a
    noisy-OR over markers, 1 − Π_m (1 − w_category(m)), ``weights`` default ``WEIGHTS``
    (one adversative 0.6, one hedge 0.4, one modal 0.2). ``flag`` = score ≥ ``threshold``:
    one adversative, two hedges, or a hedge with a modal. ``segments``: the text split at
    adversative markers (stripped, empty parts dropped)."""
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("text is empty: pass the sentence to scan for conflict markers")
    w = {**WEIGHTS, **(weights or {})}
    if set(w) != set(WEIGHTS) or not all(isinstance(v, (int, float)) and not isinstance(
            v, bool) and 0 <= v <= 1 for v in w.values()):
        raise ValueError(f"weights must map {sorted(WEIGHTS)} to numbers in [0, 1], got "
                         f"{weights!r}")
    check_number("threshold", threshold, 0, 1, open_low=True)
    markers = tuple(sorted(_english(text) + _japanese(text), key=lambda m: m.start))
    score = 1.0 - math.prod(1.0 - w[m.category] for m in markers)
    cuts = [m for m in markers if m.category == "adversative"]
    bounds = [0] + [x for m in cuts for x in (m.start, m.end)] + [len(text)]
    parts = (text[a:b].strip(" \t\n,.;:、。，") for a, b in zip(bounds[::2], bounds[1::2]))
    return Conflicts(markers, score, score >= threshold, tuple(p for p in parts if p))


def entropy_bits(p) -> float:
    """Shannon entropy in bits, H = −Σ p_i log₂ p_i (0 log 0 = 0), of a probability vector
    (non-negative, summing to 1 within 1e-6)."""
    try:
        a = np.asarray(p, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("p must be a 1-D array of probabilities") from None
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"p must be a non-empty 1-D array of probabilities, got shape "
                         f"{a.shape}")
    if not np.isfinite(a).all() or (a < 0).any() or abs(a.sum() - 1.0) > 1e-6:
        raise ValueError("p must hold finite non-negative probabilities summing to 1: "
                         "normalise the weights first")
    nz = a[a > 0]
    return float(-(nz * np.log2(nz)).sum()) + 0.0


def state_entropy(classes) -> float:
    """State entropy in bits of interpretations given as class labels, one per sampled
    answer: H = −Σ_c (n_c/N) log₂(n_c/N) (NRR-Phi's H with weights = class frequencies; the
    discrete semantic entropy in bits). Classes [0, 0, 1, 1] give 1 bit; one class (a
    collapsed state) gives 0."""
    return semantic_entropy(classes) / math.log(2) + 0.0


def candidate_distribution(logprobs, n_tokens=None) -> np.ndarray:
    """Probabilities over candidate interpretations from their continuation log-probs:
    softmax of the total log-prob log p(c | context) (``n_tokens`` None: the model's own
    distribution restricted to the candidates, the default in collapsekit), or of the mean
    per-token log-prob log p(c | context) / |c| (``n_tokens`` given: length-normalised,
    as in multiple-choice scoring; removes the bias against long candidates)."""
    try:
        lp = np.asarray(logprobs, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError("logprobs must be a 1-D array of numbers") from None
    if lp.ndim != 1 or lp.size < 2:
        raise ValueError(f"need the log-probs of at least 2 candidates (1-D), got shape "
                         f"{lp.shape}")
    if not np.isfinite(lp).all() or (lp > 1e-9).any():
        raise ValueError("logprobs must be finite log-probabilities <= 0")
    if n_tokens is not None:
        n = np.asarray(n_tokens, dtype=np.float64)
        if n.shape != lp.shape or not np.isfinite(n).all() or (n < 1).any():
            raise ValueError(f"n_tokens must be one count >= 1 per candidate "
                             f"({lp.size}), got {n_tokens!r}")
        lp = lp / n
    e = np.exp(lp - lp.max())
    return e / e.sum()
