"""Training-data pool with provenance, for many independent simulations ("lanes") at once.

Rows are added in chunks of shape (lanes, n, *item_shape) (dtype object for texts); every
row of a chunk shares its provenance: origin ("real" or "synthetic"), the generation it was
born in (0 for the original real data; t for rows drawn from the generation-t model and
for real rows arriving for generation t+1), the generator that made it, the sampling
settings, and the filter decision that let it in (filter, number of candidates drawn,
verifier score of each kept row). Rows have global indices in order of arrival. A
:class:`Selection` names a training set: whole chunks plus per-lane row indices. Chunks no
strategy will read again can be dropped (their provenance stays).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Chunk:
    """Rows ``start:stop`` of a pool with their shared provenance."""

    start: int
    stop: int
    origin: str
    born: int
    generator: str
    settings: dict = field(default_factory=dict)
    filter: str | None = None
    candidates: int | None = None
    scores: np.ndarray | None = None  # (lanes, rows) verifier scores of the kept rows
    items: np.ndarray | None = None  # None once dropped

    @property
    def size(self) -> int:
        return self.stop - self.start

    def describe(self) -> dict:
        return {"start": self.start, "stop": self.stop, "origin": self.origin,
                "born": self.born, "generator": self.generator, "settings": self.settings,
                "filter": self.filter, "candidates": self.candidates}


@dataclass(frozen=True)
class Selection:
    """A training set: all rows of ``chunks`` plus ``rows`` ((lanes, k) global indices)."""

    chunks: tuple[int, ...] = ()
    rows: np.ndarray | None = None


class Pool:
    """Rows of data for ``lanes`` parallel simulations with chunk-level provenance."""

    def __init__(self, lanes: int):
        if lanes < 1:
            raise ValueError(f"a pool needs at least one lane, got {lanes}")
        self.lanes = lanes
        self.chunks: list[Chunk] = []
        self._stats: dict[int, object] = {}
        self._rowmeta: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return self.chunks[-1].stop if self.chunks else 0

    def add(self, items: np.ndarray, *, origin: str, born: int, generator: str,
            settings: dict | None = None, filter: str | None = None,
            candidates: int | None = None, scores: np.ndarray | None = None) -> int:
        """Append ``items`` (lanes, n, ...) as one chunk; returns the chunk id."""
        if origin not in ("real", "synthetic"):
            raise ValueError(f"origin must be 'real' or 'synthetic', got {origin!r}")
        if items.ndim < 2 or items.shape[0] != self.lanes:
            raise ValueError(f"items have shape {items.shape}: expected ({self.lanes}, n, ...)")
        if self.chunks and items.shape[2:] != self.chunks[0].items.shape[2:]:
            raise ValueError(f"items of shape {items.shape[2:]} do not match the pool's "
                             f"{self.chunks[0].items.shape[2:]}")
        start = len(self)
        self.chunks.append(Chunk(start, start + items.shape[1], origin, int(born), generator,
                                 dict(settings or {}), filter, candidates, scores, items))
        self._rowmeta = None
        return len(self.chunks) - 1

    def drop(self, keep) -> None:
        """Release the items (and cached statistics) of every chunk not in ``keep``."""
        keep = set(keep)
        for cid, c in enumerate(self.chunks):
            if cid not in keep and c.items is not None:
                c.items = c.items[:, :0]
                c.scores = None
                self._stats.pop(cid, None)

    def _items(self, cid: int) -> np.ndarray:
        c = self.chunks[cid]
        if c.items.shape[1] != c.size:
            raise RuntimeError(f"chunk {cid} was dropped but is still selected")
        return c.items

    def indices(self, sel: Selection) -> np.ndarray:
        """All row indices of ``sel`` as a (lanes, n) array."""
        parts = [np.broadcast_to(np.arange(self.chunks[c].start, self.chunks[c].stop),
                                 (self.lanes, self.chunks[c].size)) for c in sel.chunks]
        if sel.rows is not None:
            parts.append(sel.rows)
        if not parts:
            return np.empty((self.lanes, 0), dtype=np.int64)
        return np.concatenate(parts, axis=1)

    def chunks_of(self, sel: Selection) -> set[int]:
        """Ids of the chunks that rows of ``sel`` come from."""
        out = set(sel.chunks)
        if sel.rows is not None and sel.rows.size:
            starts = np.array([c.start for c in self.chunks])
            out |= set(np.unique(np.searchsorted(starts, sel.rows, side="right") - 1).tolist())
        return out

    def _gather(self, rows: np.ndarray) -> np.ndarray:
        starts = np.array([c.start for c in self.chunks])
        cid = np.searchsorted(starts, rows, side="right") - 1
        lane = np.broadcast_to(np.arange(self.lanes)[:, None], rows.shape)
        first = self._items(int(cid.flat[0])) if rows.size else self.chunks[0].items
        out = np.empty(rows.shape + first.shape[2:], dtype=first.dtype)
        for c in np.unique(cid):
            mask = cid == c
            out[mask] = self._items(int(c))[lane[mask], rows[mask] - starts[c]]
        return out

    def take(self, sel: Selection) -> np.ndarray:
        """The items of ``sel``: (lanes, n, ...)."""
        parts = [self._items(c) for c in sel.chunks]
        if sel.rows is not None:
            parts.append(self._gather(sel.rows))
        if not parts:
            raise ValueError("the training set is empty: every strategy needs at least one "
                             "example per generation")
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def summarize(self, sel: Selection, fn, merge):
        """``merge`` of ``fn(items)`` over the parts of ``sel``; whole chunks are
        summarised once and cached (accumulating strategies stay O(1) per chunk)."""
        parts = []
        for c in sel.chunks:
            if c not in self._stats:
                self._stats[c] = fn(self._items(c))
            parts.append(self._stats[c])
        if sel.rows is not None and sel.rows.shape[1]:
            parts.append(fn(self._gather(sel.rows)))
        if not parts:
            raise ValueError("the training set is empty: every strategy needs at least one "
                             "example per generation")
        out = parts[0]
        for p in parts[1:]:
            out = merge(out, p)
        return out

    # provenance queries --------------------------------------------------------------
    def row_meta(self) -> tuple[np.ndarray, np.ndarray]:
        """(born, is_real) of every row."""
        if self._rowmeta is None:
            self._rowmeta = (np.repeat([c.born for c in self.chunks],
                                       [c.size for c in self.chunks]),
                             np.repeat([c.origin == "real" for c in self.chunks],
                                       [c.size for c in self.chunks]))
        return self._rowmeta

    def age_histogram(self, sel: Selection, now: int) -> np.ndarray:
        """(lanes, now + 1) counts of the rows of ``sel`` by the generation they were born
        in (column b = born in generation b)."""
        out = np.zeros((self.lanes, now + 1), dtype=np.int64)
        for c in sel.chunks:
            out[:, self.chunks[c].born] += self.chunks[c].size
        if sel.rows is not None and sel.rows.size:
            born = self.row_meta()[0][sel.rows] + (now + 1) * np.arange(self.lanes)[:, None]
            out += np.bincount(born.ravel(), minlength=out.size).reshape(out.shape)
        return out

    def real_fraction(self, sel: Selection) -> np.ndarray:
        """Fraction of real rows in ``sel``, per lane."""
        real = sum(self.chunks[c].size for c in sel.chunks if self.chunks[c].origin == "real")
        total = sum(self.chunks[c].size for c in sel.chunks)
        real = np.full(self.lanes, float(real))
        if sel.rows is not None:
            real += self.row_meta()[1][sel.rows].sum(axis=1)
            total += sel.rows.shape[1]
        return real / total

    def mean_age(self, sel: Selection, now: int) -> np.ndarray:
        """Mean of ``now − born`` over the rows of ``sel``, per lane."""
        hist = self.age_histogram(sel, now)
        return hist @ (now - np.arange(now + 1)) / hist.sum(axis=1)
