"""Results folders: ``metrics.json`` (flat records + run metadata), tables, timings.

A run folder holds what collapsekit wrote and nothing it did not:

- ``metrics.json``: ``{collapsekit_version, study, created, finished, config, config_hash,
  seeds, model, packages, timings, tables, files, records, ...meta}``. ``records`` is a flat
  list of ``{metric, value, study, ...scope}`` (scope: layer, head, model, prompt_id,
  generation, seed, ci_low, ci_high, section, note, ...). JSON has no NaN or infinity:
  a non-finite number (value or scope) is written as ``null``. numpy scalars become Python
  numbers. The file is rewritten atomically (temp file + ``os.replace``) by :meth:`Run.write`.
- ``tables/<name>.parquet`` and ``tables/<name>.csv`` (same content; Parquet keeps types,
  CSV is for people without pyarrow; nested cells are JSON text in the CSV; non-finite
  numbers are null in both).
- ``index.html`` and ``plots/*.png`` from :func:`collapsekit.report.html.render`.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import math
import numbers
import os
import platform
import re
import time
from importlib import metadata
from pathlib import Path

from collapsekit import __version__
from collapsekit.errors import InputFileError, RunDirError

METRICS = "metrics.json"
REPORT = "index.html"
LOCK = ".collapsekit.lock"  # the pid of the process writing the run
GENERATOR = "<meta name='generator' content='collapsekit'>"  # marks our index.html
PLOTS_MANIFEST = "plots/.collapsekit"  # the PNGs the last render wrote
# Fields that annotate a record rather than identify it: re-adding a record that differs
# only in these (or in value) replaces it.
ANNOTATIONS = frozenset({"ci_low", "ci_high", "note", "closed_form"})
_PACKAGES = ("numpy", "scipy", "torch", "transformers", "sentence-transformers",
             "scikit-learn", "accelerate", "gguf", "safetensors", "pyarrow", "matplotlib")
_RESERVED = frozenset({"collapsekit_version", "study", "created", "finished", "config",
                       "config_hash", "packages", "timings", "tables", "files", "done",
                       "records"})
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def jsonable(x, where: str = "value"):
    """``x`` as plain JSON data: numpy scalars/arrays to Python, non-finite floats to None,
    tuples to lists, paths to str. Raises ValueError naming ``where`` for anything else."""
    if x is None or isinstance(x, (bool, str)):
        return x
    if isinstance(x, numbers.Integral):
        return int(x)
    if isinstance(x, numbers.Real):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, os.PathLike):
        return os.fspath(x)
    if hasattr(x, "tolist") and hasattr(x, "dtype"):  # numpy scalar or array
        return jsonable(x.tolist(), where)
    if isinstance(x, dict):
        return {str(k): jsonable(v, f"{where}.{k}") for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v, f"{where}[{i}]") for i, v in enumerate(x)]
    raise ValueError(f"{where} is a {type(x).__name__}, which cannot be stored in JSON: "
                     "pass numbers, strings, booleans, lists or dicts")


def config_hash(config: dict) -> str:
    """sha256 of the canonical JSON of ``config`` (sorted keys, no whitespace)."""
    text = json.dumps(jsonable(config, "config"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _flat(d, prefix=""):
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def _diff_keys(old: dict, new: dict) -> list[str]:
    a, b = _flat(old), _flat(new)
    return sorted(k for k in a.keys() | b.keys() if a.get(k, ...) != b.get(k, ...))


def _packages() -> dict:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)`` then move the file over ``path``; no partial file remains."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def ours(html_file: Path) -> bool:
    """Whether ``html_file`` is a report collapsekit wrote (or there is none)."""
    if not html_file.exists():
        return True
    with open(html_file, encoding="utf-8", errors="replace") as fh:
        head = fh.read(4096)
    return GENERATOR in head or "<title>collapsekit · " in head


def written_plots(run_dir: Path) -> list[Path]:
    """The PNGs the last render wrote (its manifest ``plots/.collapsekit``), and the
    manifest itself: the only plot files a new render or ``--force`` removes."""
    manifest = run_dir / PLOTS_MANIFEST
    if not manifest.is_file():
        return []
    names = [n for n in manifest.read_text(encoding="utf-8").split("\n") if n.endswith(".png")]
    return [run_dir / "plots" / Path(n).name for n in names] + [manifest]


def _alive(pid: int) -> bool:
    """Whether process ``pid`` exists."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def load_run(path) -> dict:
    """The content of a run's ``metrics.json`` (``path``: the folder or the file)."""
    path = Path(path)
    file = path / METRICS if path.is_dir() else path
    if not file.is_file():
        raise InputFileError(f"{path} is not a collapsekit results folder (no {METRICS}): "
                             "pass the --out folder of a finished or interrupted run")
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputFileError(f"{file} is not valid JSON ({e}): rerun the study with --force "
                             "to rewrite it") from None
    if not isinstance(data, dict) or not isinstance(data.get("records"), list):
        raise InputFileError(f"{file} has no list of records: it was not written by "
                             "collapsekit; rerun the study with --force to rewrite it")
    return data


def load(path):
    """The records of a run's ``metrics.json`` (``path``: the folder or the file) as a
    ``pandas.DataFrame``: one row per record, one column per field (absent fields NaN)."""
    import pandas as pd

    return pd.DataFrame.from_records(load_run(path)["records"])


def read_table(run_dir, name: str) -> dict[str, list]:
    """Columns of ``tables/<name>.parquet`` in a run folder, as ``{column: values}``."""
    import pyarrow.parquet as pq

    file = Path(run_dir) / "tables" / f"{name}.parquet"
    if not file.is_file():
        raise InputFileError(f"{file} does not exist: the run has no table {name!r} "
                             "(see 'tables' in its metrics.json for the ones it has)")
    try:
        return pq.read_table(file).to_pydict()
    except Exception as e:  # pyarrow raises several types for corrupt files
        raise InputFileError(f"{file} is not a readable Parquet file ({e}): rerun the "
                             "study with --force") from None


def _record_key(rec: dict):
    return tuple(sorted((k, json.dumps(v)) for k, v in rec.items()
                        if k != "value" and k not in ANNOTATIONS))


class Run:
    """A results folder (``run.path``): metrics.json (records + metadata), tables, timings.

    Opening a folder that already holds a run raises :class:`RunDirError` unless
    ``resume`` (same config: existing records are kept, see :meth:`has`) or ``force``
    (the files collapsekit wrote there are removed; nothing else is touched).
    """

    def __init__(self, out_dir, *, study: str, config: dict, resume=False, force=False):
        if not isinstance(study, str) or not _NAME.fullmatch(study):
            raise ValueError(f"study name {study!r} is not a plain name: use letters, "
                             "digits, '_', '-' or '.'")
        if not isinstance(config, dict):
            raise ValueError(f"config is a {type(config).__name__}: pass a dict")
        if resume and force:
            raise ValueError("resume and force were both given: pass --resume to continue "
                             "a run or --force to overwrite it, not both")
        self.path = Path(out_dir)
        if self.path.exists() and not self.path.is_dir():
            raise RunDirError(f"{self.path} is a file, not a folder: choose another --out")
        cfg = jsonable(config, "config")
        self._data = {
            "collapsekit_version": __version__, "study": study, "created": _now(),
            "finished": None, "config": cfg, "config_hash": config_hash(cfg), "seeds": {},
            "model": {}, "packages": _packages(), "timings": {}, "tables": {}, "files": [],
            "done": [], "records": [],
        }
        if (self.path / METRICS).exists():
            self._open_existing(resume, force)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise RunDirError(f"cannot create {self.path} ({e.strerror}): choose another "
                              "--out") from None
        self._lock()
        self._index = {_record_key(r): i for i, r in enumerate(self._data["records"])}
        self.write()

    def _lock(self) -> None:
        """Hold ``LOCK`` for this process; RunDirError while another live process holds it
        (a lock left by a dead process is taken over)."""
        lock = self.path / LOCK
        for _ in range(2):
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    pid = int(lock.read_text().strip() or 0)
                except (OSError, ValueError):
                    pid = 0
                if pid == os.getpid():
                    return
                if pid > 0 and _alive(pid):
                    raise RunDirError(f"another collapsekit process (pid {pid}) is writing to "
                                      f"{self.path}: wait for it to finish, or choose another "
                                      "--out") from None
                with contextlib.suppress(FileNotFoundError):
                    lock.unlink()  # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return

    def release(self) -> None:
        """Give up the lock (when this process holds it)."""
        lock = self.path / LOCK
        with contextlib.suppress(OSError, ValueError):
            if int(lock.read_text().strip()) == os.getpid():
                lock.unlink()

    def _open_existing(self, resume: bool, force: bool) -> None:
        if force:
            self._clear()
            return
        try:
            old = load_run(self.path)
        except InputFileError:
            raise RunDirError(f"{self.path / METRICS} cannot be read as a collapsekit run: "
                              "pass --force to overwrite it or choose another --out") from None
        new = self._data
        if old.get("config_hash") != new["config_hash"] or old.get("study") != new["study"]:
            diff = _diff_keys({"study": old.get("study"), **(old.get("config") or {})},
                              {"study": new["study"], **new["config"]})
            which = ", ".join(diff[:6]) + (", ..." if len(diff) > 6 else "") or "config"
            raise RunDirError(
                f"{self.path} holds a run with a different config ({which}); pass --resume "
                "to continue it only if the config is the same, --force to overwrite, or "
                "choose another --out")
        if not resume:
            raise RunDirError(f"{self.path} already holds a run with this config: pass "
                              "--resume to continue it, --force to overwrite it, or choose "
                              "another --out")
        for key, value in old.items():
            if key not in ("collapsekit_version", "packages", "finished"):
                new[key] = value

    def _clear(self) -> None:
        """Remove the files collapsekit wrote in a run folder (its ``files``, ``tables``,
        the plots of the last render, metrics.json, index.html), never anything else."""
        if not ours(self.path / REPORT):
            raise RunDirError(f"{self.path / REPORT} was not written by collapsekit: move it "
                              "away or choose another --out (it is never overwritten)")
        try:
            old = load_run(self.path)
        except InputFileError:
            old = {}
        root = self.path.resolve()
        tables = [rel for t in (old.get("tables") or {}).values() if isinstance(t, dict)
                  for rel in (t.get("parquet"), t.get("csv")) if rel]
        for rel in [*(old.get("files") or []), *tables]:
            target = (self.path / str(rel)).resolve()
            if target.is_file() and root in target.parents:
                target.unlink()
                if target.parent != root:
                    with contextlib.suppress(OSError):  # only if now empty
                        target.parent.rmdir()
        for target in written_plots(self.path):
            target.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # only if now empty
            (self.path / "plots").rmdir()
        for name in (METRICS, REPORT):
            with contextlib.suppress(FileNotFoundError):
                (self.path / name).unlink()

    # records -------------------------------------------------------------------------
    @property
    def records(self) -> list[dict]:
        return self._data["records"]

    def add(self, metric: str, value, **scope) -> dict:
        """Add ``{metric, value, study, **scope}``; replaces a record with the same metric
        and scope (ci_low, ci_high, note and closed_form do not count as scope). NaN/inf -> null."""
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"metric name {metric!r} is not a non-empty string")
        if "study" in scope:
            raise ValueError("scope field 'study' is set by the run: remove it from add()")
        try:
            v = jsonable(value)
        except ValueError:
            v = ...
        if isinstance(v, bool) or not (v is None or isinstance(v, (int, float))):
            raise ValueError(f"value of {metric!r} is {repr(value)[:60]}: pass one real number "
                             "(or None when it could not be computed)")
        rec = {"metric": metric, "value": v, "study": self._data["study"]}
        for k, v in scope.items():
            v = jsonable(v, f"scope field {k!r} of {metric!r}")
            if isinstance(v, (list, dict)):
                raise ValueError(f"scope field {k!r} of {metric!r} is a {type(v).__name__}:"
                                 " records are flat, pass a number or a string")
            rec[k] = v
        key = _record_key(rec)
        if key in self._index:
            self.records[self._index[key]] = rec
        else:
            self._index[key] = len(self.records)
            self.records.append(rec)
        return rec

    def add_many(self, records) -> None:
        """Add each ``{"metric": ..., "value": ..., **scope}`` dict (see :meth:`add`); a
        ``study`` field in a record is replaced by this run's study."""
        for i, rec in enumerate(records):
            if not isinstance(rec, dict) or "metric" not in rec or "value" not in rec:
                raise ValueError(f"record {i} is not a dict with 'metric' and 'value' keys")
            rest = {k: v for k, v in rec.items() if k not in ("metric", "value")}
            rest.pop("study", None)
            self.add(rec["metric"], rec["value"], **rest)

    def remove(self, metric: str, **scope) -> int:
        """Drop the records of ``metric`` whose fields include all of ``scope`` (e.g. a
        stale failure note once the stage succeeded); returns how many were dropped."""
        want = jsonable(scope, "scope")
        keep = [r for r in self.records if not (r["metric"] == metric and all(
            r.get(k, ...) == v for k, v in want.items()))]
        dropped = len(self.records) - len(keep)
        if dropped:
            self._data["records"] = keep
            self._index = {_record_key(r): i for i, r in enumerate(keep)}
        return dropped

    def has(self, metric: str, **scope) -> bool:
        """Whether a record of ``metric`` exists whose fields include all of ``scope``."""
        want = jsonable(scope, "scope")
        return any(r["metric"] == metric and all(r.get(k, ...) == v for k, v in want.items())
                   for r in self.records)

    def discard_if_empty(self) -> bool:
        """Remove this run's ``metrics.json`` (and the folder, if then empty) when the run
        holds nothing: no record, table, file or finished stage. Returns whether it did."""
        d = self._data
        if d["records"] or d["tables"] or d["files"] or d.get("done"):
            return False
        with contextlib.suppress(FileNotFoundError):
            (self.path / METRICS).unlink()
        self.release()
        with contextlib.suppress(OSError):
            self.path.rmdir()
        return True

    def done(self, stage: str) -> bool:
        """Whether ``stage`` finished in this run (a resumed run skips it)."""
        return stage in self._data.setdefault("done", [])

    def mark_done(self, stage: str) -> None:
        """Record that ``stage`` finished, and write."""
        if not self.done(stage):
            self._data["done"].append(stage)
        self.write()

    # metadata ------------------------------------------------------------------------
    def meta(self, **kv) -> None:
        """Set run metadata. ``model=`` and ``seeds=`` dicts are merged into what is there;
        other keys (e.g. ``samples_table="samples"``) are stored at the top level."""
        for key, value in kv.items():
            if key in _RESERVED:
                raise ValueError(f"metadata key {key!r} is managed by the run: use another "
                                 "name")
            value = jsonable(value, f"metadata {key!r}")
            old = self._data.get(key)
            if key in ("model", "seeds") and isinstance(value, dict) and isinstance(old, dict):
                old.update(value)
            else:
                self._data[key] = value

    @contextlib.contextmanager
    def timer(self, name: str):
        """``with run.timer("sampling"):`` adds the elapsed seconds to ``timings[name]``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            timings = self._data["timings"]
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

    def file(self, relpath: str) -> Path:
        """A path inside the run folder for a file a study writes itself (registered, so
        ``force`` removes it later). Parent folders are created."""
        target = (self.path / relpath).resolve()
        if self.path.resolve() not in target.parents:
            raise ValueError(f"{relpath!r} points outside the run folder: pass a relative "
                             "path such as 'samples/model.jsonl'")
        target.parent.mkdir(parents=True, exist_ok=True)
        rel = target.relative_to(self.path.resolve()).as_posix()
        if rel not in self._data["files"]:
            self._data["files"].append(rel)
        return target

    # tables --------------------------------------------------------------------------
    def table(self, name: str, rows) -> Path:
        """Write ``rows`` (list of dicts, or dict of equal-length columns) to
        ``tables/<name>.parquet`` and ``tables/<name>.csv``; returns the Parquet path."""
        import pyarrow as pa
        import pyarrow.csv as pcsv
        import pyarrow.parquet as pq

        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ValueError(f"table name {name!r} is not a plain name: use letters, digits,"
                             " '_', '-' or '.'")
        if isinstance(rows, dict):
            lengths = {k: len(v) for k, v in rows.items()}
            if len(set(lengths.values())) > 1:
                raise ValueError(f"table {name!r} has columns of different lengths "
                                 f"{lengths}: pass equal-length columns")
            cols = {str(k): jsonable(list(v), f"table {name!r} column {k!r}")
                    for k, v in rows.items()}
        elif isinstance(rows, (list, tuple)) and all(isinstance(r, dict) for r in rows):
            keys = list(dict.fromkeys(k for r in rows for k in r))
            cols = {str(k): [jsonable(r.get(k), f"table {name!r} column {k!r}") for r in rows]
                    for k in keys}
        else:
            raise ValueError(f"table {name!r}: pass a list of dicts or a dict of columns")
        if not cols:
            raise ValueError(f"table {name!r} has no columns: pass at least one column")
        try:
            tab = pa.table(cols)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
            raise ValueError(f"table {name!r} has a column of mixed types ({e}): give each "
                             "column one type") from None
        folder = self.path / "tables"
        folder.mkdir(exist_ok=True)
        flat = pa.table({c: pa.array([None if v is None else json.dumps(v)
                                      for v in tab[c].to_pylist()], pa.string())
                         if pa.types.is_nested(tab[c].type) else tab[c]
                         for c in tab.column_names})
        out = folder / f"{name}.parquet"
        atomic_write(out, lambda p: pq.write_table(tab, str(p)))
        atomic_write(folder / f"{name}.csv", lambda p: pcsv.write_csv(flat, str(p)))
        self._data["tables"][name] = {"parquet": f"tables/{name}.parquet",
                                      "csv": f"tables/{name}.csv", "rows": tab.num_rows,
                                      "columns": tab.column_names}
        self.write()
        return out

    def read_table(self, name: str) -> dict[str, list]:
        """Columns of a table written by :meth:`table`."""
        return read_table(self.path, name)

    # persistence ---------------------------------------------------------------------
    def write(self) -> Path:
        """Write metrics.json atomically; call after every stage."""
        head = {k: v for k, v in self._data.items() if k != "records"}
        rows = [json.dumps(r, allow_nan=False, ensure_ascii=False) for r in self.records]
        text = (json.dumps(head, indent=1, allow_nan=False, ensure_ascii=False)[:-2]
                + ',\n "records": [' + ("\n  " + ",\n  ".join(rows) + "\n " if rows else "")
                + "]\n}\n")  # one record per line
        out = self.path / METRICS
        atomic_write(out, lambda p: p.write_text(text, encoding="utf-8"))
        return out

    def finish(self) -> Path:
        """Stamp the finish time, write, and release the lock."""
        self._data["finished"] = _now()
        out = self.write()
        self.release()
        return out

    def to_dict(self) -> dict:
        """The metrics.json content (a live view: do not modify)."""
        return self._data

