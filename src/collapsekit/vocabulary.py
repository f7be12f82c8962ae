"""Token surfaces and exact segmentation counts: pure Python on strings, bytes and id lists.

A :class:`Vocabulary` maps each token id to its surface (the bytes it decodes to). For a
string s of n bytes and multiplicity m(p) = number of ids with surface p, the number of
token-id sequences that decode to s is the dynamic programme

    N(n) = 1,   N(i) = Σ_{p : s[i:i+|p|] = p} m(p) · N(i + |p|),   count = N(0),

O(n · longest piece) lookups with exact integers, without enumerating the sequences.
:meth:`Vocabulary.breakdown` counts each artifact kind of
:mod:`collapsekit.metrics.tokenization` exactly with constrained runs of the same DP.

It depends on neither the model side nor the metric side, so both use it:
:func:`collapsekit.models.tokenization.vocabulary` builds one from a tokenizer, and
:mod:`collapsekit.metrics.tokenization` (which re-exports it) classifies with it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

_SPACE = frozenset(b" \t\n\r\x0b\x0c")


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
