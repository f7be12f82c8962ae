"""Non-unique tokenization and phantom edits: pure functions on strings, bytes and id lists.

Source: Mukherjee, Armstrong & Ayoobi (2026), "Say Anything but This: When Tokenizer Betrays
Reasoning in LLMs" — subword tokenizers are not injective: several token-id sequences decode
to the same surface string, and a model asked to replace one word can return the right
string through the wrong ids (a *phantom edit*).

A :class:`Vocabulary` maps each token id to its surface (the bytes it decodes to). For a
string s of n bytes and multiplicity m(p) = number of ids with surface p, the number of
token-id sequences that decode to s is the dynamic programme

    N(n) = 1,   N(i) = Σ_{p : s[i:i+|p|] = p} m(p) · N(i + |p|),   count = N(0),

O(n · longest piece) lookups with exact integers, without enumerating the sequences.

Artifact kinds of an encoding e ≠ c of s, where c is the canonical (tokenizer) encoding
(this study's taxonomy; the paper's eight kinds are not spelled out in its abstract):

1. ``byte_fallback``: e uses a byte piece — a byte-fallback token (``<0xNN>``) or a piece
   whose bytes are not valid UTF-8 on their own (part of a multi-byte character);
2. ``whitespace_boundary``: otherwise, e's token boundaries at whitespace junctions (byte
   positions between a whitespace and a non-whitespace byte) differ from c's (" the" vs
   " " + "the");
3. ``intra_word``: otherwise — the same whitespace attachment, another split of the word
   ("the" vs "th" + "e").

:meth:`Vocabulary.breakdown` counts each kind exactly with constrained runs of the same DP.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence

KINDS = ("whitespace_boundary", "intra_word", "byte_fallback")
PHANTOM_KINDS = (*KINDS, "normalisation", "added_token")
ERROR_KINDS = ("unchanged", "wrong_word", "extra_changes")
_SPACE = frozenset(b" \t\n\r\x0b\x0c")
# Typographic variants folded with NFKC in the normalisation check.
_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                       "\u2013": "-", "\u2014": "-", "\u2212": "-"})


def _as_bytes(s) -> bytes:
    if isinstance(s, str):
        return s.encode("utf-8")
    if isinstance(s, (bytes, bytearray)):
        return bytes(s)
    raise ValueError(f"expected a str or bytes surface, got {type(s).__name__}")


def _valid_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def junctions(text) -> set[int]:
    """Byte positions 0 < p < n between a whitespace and a non-whitespace byte."""
    b = _as_bytes(text)
    return {p for p in range(1, len(b)) if (b[p - 1] in _SPACE) != (b[p] in _SPACE)}


class Vocabulary:
    """Token surfaces for exact segmentation counts.

    ``surfaces``: token id → surface (str or bytes; str is UTF-8 encoded). ``byte_ids``: ids
    of byte-fallback tokens. Empty surfaces are ignored (they cannot segment anything).
    """

    def __init__(self, surfaces: Mapping[int, str | bytes], *, byte_ids=()):
        if not isinstance(surfaces, Mapping) or not surfaces:
            raise ValueError("the vocabulary is empty: give a mapping token id -> surface")
        self.surface: dict[int, bytes] = {}
        self.pieces: dict[bytes, list[int]] = {}
        for i, s in surfaces.items():
            b = _as_bytes(s)
            if b:
                self.surface[int(i)] = b
                self.pieces.setdefault(b, []).append(int(i))
        if not self.pieces:
            raise ValueError("every surface in the vocabulary is empty")
        self.byte_ids = frozenset(int(i) for i in byte_ids)
        self.dirty = frozenset(i for i, b in self.surface.items()
                               if i in self.byte_ids or not _valid_utf8(b))
        self.clean_pieces = {}
        for b, ids in self.pieces.items():
            keep = [i for i in ids if i not in self.dirty]
            if keep:
                self.clean_pieces[b] = keep
        self.max_len = max(map(len, self.pieces))

    # counting --------------------------------------------------------------------------
    def count(self, text, *, clean: bool = False, forbid_end=(), no_cross=()) -> int:
        """Number of id sequences decoding to ``text`` (the DP in the module docstring).

        ``clean``: only pieces that are not byte pieces. ``forbid_end``: positions where no
        token may end; ``no_cross``: positions no token may span (a boundary is required).
        """
        s = _check_text(text)
        pieces = self.clean_pieces if clean else self.pieces
        forbid, cross = set(forbid_end), set(no_cross)
        n = len(s)
        ways = [0] * (n + 1)
        ways[n] = 1
        for i in range(n - 1, -1, -1):
            total = 0
            for j in range(i + 1, min(n, i + self.max_len) + 1):
                if j - 1 > i and j - 1 in cross:  # s[i:j] would span a required boundary
                    break
                if ways[j] and j not in forbid:
                    ids = pieces.get(s[i:j])
                    if ids:
                        total += len(ids) * ways[j]
            ways[i] = total
        return ways[0]

    def canonical_check(self, text, ids: Sequence[int]) -> tuple[bytes, list[int]]:
        """(text bytes, boundary offsets 0..n) of ``ids``; ValueError if they do not spell
        ``text`` or use an id outside the vocabulary."""
        s = _check_text(text)
        ids = [int(i) for i in ids]
        missing = [i for i in ids if i not in self.surface]
        if missing:
            raise ValueError(f"token ids {missing[:5]} are not in the vocabulary (special or "
                             "added tokens): drop them first")
        offs = [0]
        for i in ids:
            offs.append(offs[-1] + len(self.surface[i]))
        if b"".join(self.surface[i] for i in ids) != s:
            raise ValueError(f"the token ids do not spell the text {s!r}: pass the encoding "
                             "of exactly this text")
        return s, offs

    def breakdown(self, text, canonical: Sequence[int]) -> dict[str, int]:
        """``{"encodings": N, <kind>: number of non-canonical encodings of that kind}`` for
        every kind in KINDS; the kinds sum to N − 1 (see the module docstring)."""
        s, offs = self.canonical_check(text, canonical)
        bounds = set(offs[1:-1])
        junc = junctions(s)
        total = self.count(s)
        clean = self.count(s, clean=True)
        same = self.count(s, clean=True, forbid_end=junc - bounds, no_cross=junc & bounds)
        canon_clean = not any(int(i) in self.dirty for i in canonical)
        return {"encodings": total, "whitespace_boundary": clean - same,
                "intra_word": same - canon_clean,
                "byte_fallback": total - clean - (not canon_clean)}

    # examples and classification -----------------------------------------------------
    def kind(self, text, ids: Sequence[int], canonical: Sequence[int]) -> str | None:
        """Artifact kind of encoding ``ids`` relative to ``canonical`` (None if equal)."""
        s, offs = self.canonical_check(text, ids)
        _, coffs = self.canonical_check(s, canonical)
        if [int(i) for i in ids] == [int(i) for i in canonical]:
            return None
        if any(int(i) in self.dirty for i in ids):
            return "byte_fallback"
        junc = junctions(s)
        if set(offs) & junc != set(coffs) & junc:
            return "whitespace_boundary"
        return "intra_word"

    def _ordered(self, piece: bytes) -> list[int]:
        """Ids with surface ``piece``: ordinary tokens first, then by id."""
        return sorted(self.pieces.get(piece, ()), key=lambda i: (i in self.dirty, i))

    def alternative(self, text, canonical: Sequence[int]) -> list[int] | None:
        """A non-canonical encoding of ``text`` with the fewest tokens, or None when the
        encoding is unique. Ties: the earliest deviation from ``canonical``, then the shorter
        piece there, then ordinary tokens before byte pieces, then the smaller id."""
        s, offs = self.canonical_check(text, canonical)
        canonical = [int(i) for i in canonical]
        n, inf = len(s), float("inf")
        fewest = [inf] * (n + 1)
        fewest[n] = 0
        for i in range(n - 1, -1, -1):
            for j in range(i + 1, min(n, i + self.max_len) + 1):
                if s[i:j] in self.pieces and fewest[j] + 1 < fewest[i]:
                    fewest[i] = fewest[j] + 1
        best = None
        for k, i in enumerate(offs[:-1]):
            for j in range(i + 1, min(n, i + self.max_len) + 1):
                for tid in self._ordered(s[i:j]):
                    if (j, tid) == (offs[k + 1], canonical[k]) or fewest[j] == inf:
                        continue
                    cost = k + 1 + fewest[j]
                    if best is None or cost < best[0]:
                        best = (cost, k, j, tid)
        if best is None:
            return None
        _, k, j, tid = best
        out = canonical[:k] + [tid]
        while j < n:  # complete along a fewest-token path: longest piece first
            j2 = next(e for e in range(min(n, j + self.max_len), j, -1)
                      if s[j:e] in self.pieces and fewest[e] == fewest[j] - 1)
            out.append(self._ordered(s[j:j2])[0])
            j = j2
        return out


def _check_text(text) -> bytes:
    s = _as_bytes(text)
    if not s:
        raise ValueError("the text is empty: give a non-empty string")
    return s


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_FOLD)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _byte_fallback_match(output: str, target: str) -> bool:
    """Whether ``output`` equals ``target`` except where it shows U+FFFD (bytes that did not
    decode), each run of which stands for one or more non-ASCII characters."""
    if "\ufffd" not in output:
        return False
    parts = [re.escape(p) for p in re.split("\ufffd+", output)]
    return re.fullmatch("[^\\x00-\\x7f]+".join(parts), target) is not None


def classify_edit(output: str, target: str, source: str) -> tuple[str, str | None]:
    """Classify a replacement-probe answer against the ``target`` text (``source`` with the
    designated word replaced): ``("match", None)`` for the same string (whether the ids match
    is checked separately), ``("phantom_edit", kind)`` when the strings differ only by a
    tokenizer artifact, else ``("edit_error", kind)``.

    Phantom kinds, in order: ``whitespace_boundary`` (equal after removing all whitespace),
    ``normalisation`` (equal after NFKC and folding typographic quotes/dashes, whitespace
    removed), ``byte_fallback`` (U+FFFD where the target has non-ASCII characters). Error
    kinds: ``unchanged`` (the source returned, up to whitespace), ``wrong_word`` (same word
    count, a single word differs from the target), ``extra_changes`` (anything else).
    """
    for name, value in (("output", output), ("target", target), ("source", source)):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not target or not source:
        raise ValueError("target and source must be non-empty strings")
    if output == target:
        return "match", None
    if _squeeze(output) == _squeeze(target):
        return "phantom_edit", "whitespace_boundary"
    if _squeeze(_normalise(output)) == _squeeze(_normalise(target)):
        return "phantom_edit", "normalisation"
    if _byte_fallback_match(output, target):
        return "phantom_edit", "byte_fallback"
    if _squeeze(output) == _squeeze(source):
        return "edit_error", "unchanged"
    got, want = output.split(), target.split()
    if len(got) == len(want) and sum(a != b for a, b in zip(got, want)) == 1:
        return "edit_error", "wrong_word"
    return "edit_error", "extra_changes"
