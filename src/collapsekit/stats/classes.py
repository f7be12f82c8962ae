"""Streaming, mergeable per-class sufficient statistics of labelled D-dim vectors (float64).

For each tracked class c: count n_c, shifted feature sum S_c = Σ_{i∈c} (x_i − s) (K×D) and
shifted sum of squared norms q_c = Σ_{i∈c} ‖x_i − s‖², with s a fixed pilot shift (the mean
of the first batch, so large common offsets such as LM "massive activations" cancel before
squaring). Globally, a :class:`~collapsekit.stats.moments.Moments` holds N, the mean m and
the exactly centred scatter Σ_i (x_i − m)(x_i − m)ᵀ (Chan et al. merges). From these, in
O(K·D²) and without a second pass (Papyan, Han & Donoho 2020, "Prevalence of neural
collapse"; Wu & Papyan 2024, "Linguistic Collapse")::

    μ_c = s + S_c / n_c,   var_c = q_c / n_c − ‖S_c / n_c‖²   (= mean ‖x − μ_c‖²),
    N Σ_W = Σ_i (x_i − m)(x_i − m)ᵀ − Σ_c n_c (μ_c − m)(μ_c − m)ᵀ

A batch is reduced with a sort + segment sum (O(B·D), never a B×K one-hot product); shards
merge by addition after moving to a common shift. Memory is K·D·8 bytes (49152 × 576 ≈
226 MB): track a subset with ``ClassMoments.from_counts(counts, max_classes=, min_count=)``
and the constructor refuses, before allocating, a configuration above ``max_bytes``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..params import check_int
from .moments import Moments, _is_tensor, host, on_float64_device, to_numpy64

__all__ = ["ClassMoments", "ClassStats", "select_classes", "memory_bytes"]

DEFAULT_MAX_BYTES = 4 * 2**30
GLOBAL_MEANS = ("class_means", "sample")
SINGLETONS = ("exclude", "include")  # classes seen once: left out, or kept with variance 0


def memory_bytes(n_classes: int, dim: int, num_classes: int | None = None) -> int:
    """Bytes a :class:`ClassMoments` holds: K×D sums, K counts and squared norms, the D×D
    scatter, and an int64 label→row table of ``num_classes`` entries when tracking a subset."""
    return 8 * (n_classes * (dim + 2) + dim * dim + 4 * dim + (num_classes or 0))


def _fmt_bytes(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.1f} MiB"


def select_classes(counts, *, max_classes: int | None = None, min_count: int = 1) -> np.ndarray:
    """Ids (ascending) of the classes with ``counts[c] >= min_count``, keeping only the
    ``max_classes`` most frequent (ties broken by the lower id) when given."""
    counts = np.asarray(counts)
    if counts.ndim != 1 or counts.size == 0 or not np.issubdtype(counts.dtype, np.integer):
        raise ValueError(f"counts must be a non-empty 1-D integer array (label frequencies), "
                         f"got dtype {counts.dtype} and shape {counts.shape}")
    if (counts < 0).any():
        raise ValueError("counts contains negative values: pass label frequencies")
    min_count = check_int("min_count", min_count, 1)
    ids = np.flatnonzero(counts >= min_count)
    if max_classes is not None:
        max_classes = check_int("max_classes", max_classes, 2)
        order = np.lexsort((ids, -counts[ids]))  # by count descending, then id ascending
        ids = np.sort(ids[order[:max_classes]])
    return ids


@dataclass
class ClassStats:
    """Finalized class statistics of the included classes (n_c >= 2, or >= 1 when
    ``singletons="include"``).

    ``centred_means`` = μ_c − μ_G (K×D) with μ_G = ``global_mean`` ("class_means": the mean
    of the K class means, or "sample": the mean of the N included samples); ``variances``
    = var_c; ``sigma_w`` = Σ_W (D×D, 1/N). Classes tracked but seen once (no within-class
    variance) or never are excluded and counted; ``ignored_samples`` had untracked labels.
    ``singletons``: how classes seen once were handled ("exclude" or "include", see
    :meth:`ClassMoments.finalize`); they are counted in ``singleton_classes`` either way.
    """

    classes: np.ndarray
    counts: np.ndarray
    centred_means: np.ndarray
    global_mean: np.ndarray
    variances: np.ndarray
    sigma_w: np.ndarray
    n_samples: int
    singleton_classes: int
    unseen_classes: int
    ignored_samples: int
    global_mean_kind: str
    singletons: str = "exclude"

    @property
    def means(self) -> np.ndarray:
        """Class means μ_c (K×D) in the original coordinates."""
        return self.centred_means + self.global_mean


class ClassMoments:
    """Per-class counts, sums and squared norms plus the global scatter of a labelled stream.

    ``num_classes``: labels are ints in [0, num_classes). ``classes``: ids to track (default
    all); rows with other labels are skipped and counted in ``ignored``. ``max_bytes``: the
    constructor raises, naming the memory needed, when :func:`memory_bytes` exceeds it.
    Fed torch tensors on an accelerator (or on the CPU with ``resident=True``), the state
    stays there in float64 (sums by ``index_add_``); results and ``state_dict`` are numpy,
    and ``finalize``, ``merge`` and ``state_dict`` bring the state back to the host first.
    """

    def __init__(self, num_classes: int, dim: int, *, classes=None,
                 max_bytes: int = DEFAULT_MAX_BYTES, name: str | None = None,
                 resident: bool = False):
        self.name = name
        self.resident = bool(resident)
        self.num_classes = check_int("num_classes", num_classes, 2)
        self.dim = check_int("dim", dim, 1)
        if classes is None:
            self.classes, table = np.arange(self.num_classes), None
        else:
            ids = np.asarray(classes)
            if ids.ndim != 1 or (ids.size and not np.issubdtype(ids.dtype, np.integer)):
                raise self._err(f"classes must be a 1-D array of int class ids, got dtype "
                                f"{ids.dtype} and shape {ids.shape}")
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise self._err(f"classes holds ids outside [0, {self.num_classes}): pass "
                                "label values below num_classes")
            self.classes = np.unique(ids).astype(np.int64)
            table = self.classes.size < self.num_classes
        k = self.classes.size
        if k < 2:
            raise self._err(f"{k} class(es) tracked; neural collapse needs at least 2: lower "
                            "min_count or raise max_classes")
        need = memory_bytes(k, self.dim, self.num_classes if table else None)
        if need > max_bytes:
            raise self._err(
                f"tracking {k} classes × {self.dim} dims needs {_fmt_bytes(need)} of float64 "
                f"statistics, above max_bytes = {_fmt_bytes(max_bytes)}: pass max_classes= "
                "(keep the most frequent) or min_count=, or raise max_bytes")
        self._row = None
        if table:
            self._row = np.full(self.num_classes, -1, dtype=np.int64)
            self._row[self.classes] = np.arange(k)
        self.n = np.zeros(k, dtype=np.int64)
        self.sums = np.zeros((k, self.dim))
        self.sq = np.zeros(k)
        self.shift = None  # pilot shift s, set by the first non-empty batch
        self.moments = Moments(self.dim, unit_sum=False, name=name, resident=resident)
        self.ignored = 0

    @classmethod
    def from_counts(cls, counts, dim: int, *, max_classes: int | None = None,
                    min_count: int = 1, **kw) -> "ClassMoments":
        """Track the classes :func:`select_classes` keeps from label frequencies ``counts``
        (length = num_classes), e.g. from a cheap counting pass over the same data."""
        ids = select_classes(counts, max_classes=max_classes, min_count=min_count)
        return cls(len(counts), dim, classes=ids, **kw)

    def _err(self, msg: str) -> ValueError:
        return ValueError(f"{self.name}: {msg}" if self.name else f"ClassMoments: {msg}")

    # -- accumulation -------------------------------------------------------------------------
    def _rows(self, labels, n: int) -> np.ndarray:
        if hasattr(labels, "detach") and hasattr(labels, "cpu"):
            labels = labels.detach().cpu().numpy()
        labels = np.asarray(labels)
        if labels.ndim != 1 or labels.shape[0] != n:
            raise self._err(f"labels must be 1-D with one label per row ({n}), got shape "
                            f"{labels.shape}")
        if n and not np.issubdtype(labels.dtype, np.integer):
            raise self._err(f"labels must be integers, got dtype {labels.dtype}: pass class ids")
        if n and (labels.min() < 0 or labels.max() >= self.num_classes):
            bad = labels[(labels < 0) | (labels >= self.num_classes)][0]
            raise self._err(f"label {bad} is outside [0, {self.num_classes}): pass "
                            "num_classes larger than every label")
        return labels.astype(np.int64) if self._row is None else self._row[labels]

    def update(self, x, labels) -> "ClassMoments":
        """Add rows ``x`` (n, D) with integer ``labels`` (n,). Returns self."""
        if _is_tensor(self.sums) or (self.shift is None and on_float64_device(
                x, cpu=self.resident)):
            return self._update_tensor(x, labels)
        x = to_numpy64(x)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise self._err(f"expected a batch of shape (n, {self.dim}), got {x.shape}")
        rows = self._rows(labels, x.shape[0])
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x)).any(axis=1).sum())
            raise self._err(f"batch contains NaN or inf in {bad} of {x.shape[0]} rows; fix "
                            "or drop those rows before update()")
        keep = rows >= 0
        if not keep.all():
            self.ignored += int((~keep).sum())
            x, rows = x[keep], rows[keep]
        if x.shape[0] == 0:
            return self
        if self.shift is None:
            self.shift = x.mean(axis=0)
        self.moments.update(x)
        y = x - self.shift
        order = np.argsort(rows, kind="stable")
        ids, starts = np.unique(rows[order], return_index=True)
        self.sums[ids] += np.add.reduceat(y[order], starts, axis=0)
        self.sq += np.bincount(rows, weights=np.einsum("ij,ij->i", y, y), minlength=len(self.n))
        self.n += np.bincount(rows, minlength=len(self.n))
        return self

    def _update_tensor(self, x, labels) -> "ClassMoments":
        """:meth:`update` on the device: the same sums by ``index_add_`` in float64."""
        if not _is_tensor(x):
            x = self.sums.new_tensor(to_numpy64(x))
        x = x.detach().to(self.sums.device if _is_tensor(self.sums) else x.device).double()
        if x.dim() != 2 or x.shape[1] != self.dim:
            raise self._err(f"expected a batch of shape (n, {self.dim}), got {tuple(x.shape)}")
        rows = x.new_tensor(self._rows(labels, x.shape[0])).long()  # validated on the host
        if not bool(x.isfinite().all()):
            bad = int((~x.isfinite()).any(dim=1).sum())
            raise self._err(f"batch contains NaN or inf in {bad} of {x.shape[0]} rows; fix "
                            "or drop those rows before update()")
        keep = rows >= 0
        if not bool(keep.all()):
            self.ignored += int((~keep).sum())
            x, rows = x[keep], rows[keep]
        if x.shape[0] == 0:
            return self
        if self.shift is None:
            self.shift = x.mean(dim=0)
            self.n, self.sums, self.sq = (rows.new_tensor(self.n), x.new_tensor(self.sums),
                                          x.new_tensor(self.sq))
        self.moments.update(x)
        y = x - self.shift
        self.sums.index_add_(0, rows, y)
        self.sq.index_add_(0, rows, (y * y).sum(dim=1))
        self.n += rows.bincount(minlength=len(self.n))
        return self

    def _to_host(self) -> "ClassMoments":
        """Move a device-resident state to numpy (in place). Returns self."""
        if _is_tensor(self.sums):
            self.n, self.sums, self.sq, self.shift = (host(a) for a in (
                self.n, self.sums, self.sq, self.shift))
        return self

    def merge(self, other: "ClassMoments") -> "ClassMoments":
        """Add another accumulator of the same classes and dimension, in place. Returns self."""
        if not isinstance(other, ClassMoments):
            raise self._err(f"merge() needs a ClassMoments, got {type(other).__name__}")
        self._to_host()
        other._to_host()
        if (other.num_classes, other.dim) != (self.num_classes, self.dim) or not np.array_equal(
                other.classes, self.classes):
            raise self._err("cannot merge accumulators of different num_classes, dim or "
                            "tracked classes; build all shards with the same arguments")
        self.ignored += other.ignored
        if other.shift is None:
            return self
        sums, sq = other.sums, other.sq
        if self.shift is None:
            self.shift = other.shift.copy()
        else:  # x − s_a = (x − s_b) + d, d = s_b − s_a
            d = other.shift - self.shift
            sq = sq + 2 * (sums @ d) + other.n * (d @ d)
            sums = sums + np.outer(other.n, d)
        self.sums += sums
        self.sq += sq
        self.n += other.n
        self.moments.merge(other.moments)
        return self

    # -- results ------------------------------------------------------------------------------
    def finalize(self, *, global_mean: str = "class_means",
                 singletons: str = "exclude") -> ClassStats:
        """Statistics of the classes seen at least twice (see :class:`ClassStats`).

        ``singletons="include"`` also keeps the classes seen once, with within-class
        variance exactly 0: the Linguistic-Collapse code (Wu & Papyan 2024) keeps every
        class with count >= ``min_per_class`` (default 1) and its var_sums / counts is 0
        (to float32 round-off) for a class seen once."""
        self._to_host()
        if global_mean not in GLOBAL_MEANS:
            raise self._err(f"global_mean must be one of {GLOBAL_MEANS}, got {global_mean!r}")
        if singletons not in SINGLETONS:
            raise self._err(f"singletons must be one of {SINGLETONS}, got {singletons!r}")
        least = 1 if singletons == "include" else 2
        inc = self.n >= least
        k = int(inc.sum())
        if k < 2:
            raise self._err(f"only {k} class(es) have {least} or more samples (of "
                            f"{self.moments.n} samples); neural collapse needs at least 2 "
                            "such classes: pass more data or fewer classes")
        seen = self.n > 0
        n = self.n[seen].astype(np.float64)
        rel = self.sums[seen] / n[:, None]  # μ_c − s for every seen class
        dev = rel - (self.moments.mean - self.shift)  # μ_c − m
        scatter = self.moments.cov() * self.moments.n - (dev * n[:, None]).T @ dev
        sigma_w = (scatter + scatter.T) / 2
        counts, rel_inc = self.n[inc], self.sums[inc] / self.n[inc][:, None]
        variances = np.maximum(self.sq[inc] / counts - np.einsum("ij,ij->i", rel_inc, rel_inc), 0)
        variances[counts == 1] = 0.0  # one sample: no spread (not the formula's round-off)
        n_inc = int(counts.sum())
        centre = rel_inc.mean(axis=0) if global_mean == "class_means" else (
            counts @ rel_inc / n_inc)
        return ClassStats(
            classes=self.classes[inc], counts=counts, centred_means=rel_inc - centre,
            global_mean=self.shift + centre, variances=variances, sigma_w=sigma_w / n_inc,
            n_samples=n_inc, singleton_classes=int((self.n == 1).sum()),
            unseen_classes=int((self.n == 0).sum()), ignored_samples=self.ignored,
            global_mean_kind=global_mean, singletons=singletons)

    # -- persistence (plain arrays: .npz / safetensors, no pickle) ------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays; ``from_state_dict`` rebuilds the accumulator."""
        self._to_host()
        state = {f"moments.{k}": v for k, v in self.moments.state_dict().items()}
        state.update(num_classes=np.array(self.num_classes), classes=self.classes.copy(),
                     n=self.n.copy(), sums=self.sums.copy(), sq=self.sq.copy(),
                     shift=np.zeros(self.dim) if self.shift is None else self.shift.copy(),
                     ignored=np.array(self.ignored))
        return state

    @classmethod
    def from_state_dict(cls, state, *, name: str | None = None,
                        max_bytes: int = DEFAULT_MAX_BYTES) -> "ClassMoments":
        """Rebuild from :meth:`state_dict` output (e.g. loaded from .npz)."""
        keys = {"num_classes", "classes", "n", "sums", "sq", "shift", "ignored"}
        if not keys <= set(state):
            raise ValueError(f"ClassMoments state is missing {sorted(keys - set(state))}; "
                             "pass the dict returned by state_dict()")
        sums = np.asarray(state["sums"], dtype=np.float64)
        obj = cls(int(np.asarray(state["num_classes"])), sums.shape[-1],
                  classes=np.asarray(state["classes"]), max_bytes=max_bytes, name=name)
        n, sq = np.asarray(state["n"], dtype=np.int64), np.asarray(state["sq"], dtype=np.float64)
        if sums.shape != obj.sums.shape or n.shape != obj.n.shape or sq.shape != obj.sq.shape:
            raise ValueError("ClassMoments state is inconsistent (shapes of n, sums, sq and "
                             "classes differ); pass the dict returned by state_dict()")
        obj.n, obj.sums, obj.sq, obj.ignored = n.copy(), sums.copy(), sq.copy(), int(
            np.asarray(state["ignored"]))
        obj.moments = Moments.from_state_dict(
            {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("moments.")},
            name=name)
        if obj.n.sum() != obj.moments.n:
            raise ValueError("ClassMoments state is inconsistent (class counts do not add up "
                             "to the global count); pass the dict returned by state_dict()")
        obj.shift = np.asarray(state["shift"], dtype=np.float64).copy() if obj.moments.n else None
        return obj

    def __repr__(self) -> str:
        return (f"ClassMoments(samples={self.moments.n}, classes={len(self.classes)}/"
                f"{self.num_classes}, dim={self.dim})")
