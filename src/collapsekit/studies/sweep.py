"""``collapsekit sweep [SWEEP.toml]``: a grid of (study, model or checkpoint, settings, seed)
runs, as Ray tasks, into one folder with one combined report.

A sweep file (TOML) and the command's flags say the same things (a flag replaces the
file's key)::

    studies = ["diversity"]                       # --study diversity (repeat)
    models = ["./tiny-a", "./ckpts"]              # --model (repeat); a folder of
                                                  # checkpoint-N folders expands
    seeds = [0, 1]                                # --seed 0,1
    quick = true                                  # --quick
    device = "cuda"                               # --device
    [params]                                      # --param NAME=VALUE: every run
    "diversity.n_prompts" = 4
    [grid]                                        # --grid NAME=V1,V2: one run per value
    temperature = [0.7, 1.0]

``NAME`` or ``STUDY.NAME`` as in ``scan``. A grid axis applies to the studies that have
the parameter; a list-valued parameter takes a list per run in the file
(``temperatures = [[0.3, 0.7], [1.0]]``). Each run is an ordinary
:func:`~collapsekit.studies.runner.run_study` into ``runs/<id>/``: a Ray task asking for
one CPU (and one GPU with ``--device cuda``), retried when its worker dies. A finished
run is never recomputed on ``--resume``; a failed one is recorded with its one-line error
and the others go on. At the end every finished run is compared in the sweep's own folder
(:func:`collapsekit.studies.compare.compare_into`): records with a ``run`` field and the
run's grid fields, the ``comparison`` table, and homogeneity of their samples.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputFileError, NotApplicable
from ..results import Run, load_run
from .checkpoints import checkpoints
from .distributed import one_line, run_tasks, start
from .registry import get, hook
from .runner import split_params

KEYS = ("studies", "models", "seeds", "quick", "device", "dtype", "params", "grid")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=,-]+")


@dataclass
class Unit:
    """One run of the sweep."""

    id: str
    study: str
    model: str | None
    params: dict  # every setting the user gave for this run (fixed and grid)
    seed: int
    fields: dict = field(default_factory=dict)  # added to its records: model, grid values


def read_sweep_file(path) -> dict:
    """The settings of a TOML sweep file; InputFileError for unreadable files and keys."""
    path = Path(path)
    try:
        import tomllib
    except ImportError:  # Python 3.10
        raise InputFileError("sweep files need Python 3.11 or newer (tomllib): give the "
                             "sweep as flags instead") from None
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputFileError(f"sweep file {path} does not exist: check the path") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputFileError(f"sweep file {path} is not valid TOML ({exc})") from None
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise InputFileError(f"sweep file {path}: unknown key(s) {', '.join(unknown)}; it takes "
                             f"{', '.join(KEYS)}")
    for key in ("params", "grid"):
        if not isinstance(data.get(key, {}), dict):
            raise InputFileError(f"sweep file {path}: [{key}] must be a table of NAME = value")
    return data


def _list(name: str, value) -> list:
    """``value`` as a list of distinct values; text is split at commas (``0.7,1.0``)."""
    items = [x.strip() for x in value.split(",")] if isinstance(value, str) else \
        list(value) if isinstance(value, (list, tuple)) else [value]
    if not items:
        raise ValueError(f"{name} is empty: give at least one value")
    if len({json.dumps(v) for v in items}) < len(items):
        raise ValueError(f"{name} repeats a value: give each value once")
    return items


def _models(entries) -> list[tuple[str, dict]]:
    """(spec, record fields) per model: a folder of checkpoint-N folders, a .txt list or
    org/name@rev1,rev2 expands to its checkpoints."""
    from ..models.registry import resolve

    out = []
    for entry in entries:
        path = Path(entry).expanduser()
        many = ((path.is_dir() and not (path / "config.json").is_file())
                or (path.is_file() and path.suffix == ".txt")
                or ("@" in entry and "," in entry))
        if many:
            out += [(c.spec, {"model": entry, "checkpoint": c.name, "step": c.step})
                    for c in checkpoints(entry)]
        else:
            resolve(entry)  # a bad spec fails before anything runs
            out.append((entry, {"model": entry}))
    return out


def _label(fields: dict) -> str:
    """A short name of a run's model: its checkpoint, folder or file name, embedded name or
    hub id."""
    if fields.get("checkpoint"):
        return str(fields["checkpoint"])
    spec = str(fields["model"]).removeprefix("embedded:")
    return Path(spec).name if Path(spec).expanduser().exists() else spec.replace("/", "-")


def _shown(value) -> object:
    return ",".join(map(str, value)) if isinstance(value, tuple) else value


def expand(*, studies, models=(), params=None, grid=None, seeds=(0,), quick=False) -> list[Unit]:
    """Every run of the sweep; ValueError names a bad study, setting, value or model
    before anything runs."""
    if not studies:
        raise ValueError("no studies to sweep: give --study NAME (or studies = [...] in the "
                         "sweep file)")
    chosen = [get(n) for n in _list("studies", studies)]
    seeds = [int(s) if isinstance(s, str) and s.lstrip("-").isdigit() else s
             for s in _list("seeds", seeds)]
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int):
            raise ValueError(f"seed {s!r} is not a whole number: give e.g. --seed 0,1")
    fixed = split_params(params, chosen)
    axes = split_params({k: _list(f"grid {k}", v) for k, v in (grid or {}).items()}, chosen)
    specs = _models(_list("models", [models] if isinstance(models, str) else models)) \
        if models else []
    if any(st.takes_model for st in chosen) and not specs:
        raise ValueError("no models to sweep: give --model (repeat) or models = [...]")
    units: list[Unit] = []
    checked: set = set()
    for st in chosen:
        names = list(axes[st.name])
        for spec, mfields in (specs if st.takes_model else [(None, {})]):
            for combo in itertools.product(*(axes[st.name][n] for n in names)):
                chosen_values = dict(zip(names, combo))
                for seed in seeds:
                    given = {**fixed[st.name], **chosen_values}
                    s = st.settings(given, quick=quick, seed=seed,
                                    model=(spec,) if st.many_models else spec)
                    key = json.dumps([st.name, given], sort_keys=True, default=str)
                    if st.check and key not in checked:  # input files, before any run
                        hook(st.check)(s)
                        checked.add(key)
                    typed = {n: _shown(s[n]) for n in names}
                    units.append(Unit("", st.name, spec, given, seed,
                                      {**mfields, **typed, "seed": seed}))
    seen: dict[str, int] = {}
    for u in units:
        parts = [u.study, _label(u.fields) if u.model else ""]
        parts += [f"{k}={v}" for k, v in u.fields.items()
                  if k not in ("model", "checkpoint", "step", "seed")]
        base = _UNSAFE.sub("-", "_".join(p for p in parts + [f"seed{u.seed}"] if p))[:120]
        seen[base] = seen.get(base, 0) + 1
        u.id = base
    for u in units:  # two models with the same folder name: tell them apart
        if seen[u.id] > 1:
            digest = hashlib.sha256(json.dumps([u.model, u.params, u.seed], sort_keys=True,
                                               default=str).encode()).hexdigest()[:8]
            u.id = f"{u.id}_{digest}"
    return units


def run_unit(payload: dict) -> dict:
    """One sweep run (in a Ray worker or in this process): ``run_study`` into its folder;
    returns {status: done | skipped | failed, error, seconds, host}. Runs from the
    driver's working folder, so relative paths mean what they meant there."""
    import socket

    from .runner import run_study

    os.chdir(payload["cwd"])
    start_time, status, error = time.perf_counter(), "done", ""
    try:
        run_study(payload["study"], payload["out"], model=payload["model"],
                  quick=payload["quick"], params=payload["params"], seed=payload["seed"],
                  device=payload["device"], dtype=payload["dtype"], resume=payload["resume"],
                  force=payload["force"], report=False)
    except NotApplicable as exc:
        status, error = "skipped", one_line(exc)
    except Exception as exc:  # noqa: BLE001 - a failed run is recorded, the sweep goes on
        status, error = "failed", one_line(exc)
    return {"status": status, "error": error, "seconds": time.perf_counter() - start_time,
            "host": socket.gethostname()}


def _say(console, text: str) -> None:
    if console is not None:
        console.print(text, markup=False)


def run_sweep(out, *, file=None, studies=None, models=None, params=None, grid=None,
              seeds=None, quick=None, device=None, dtype=None, ray_address: str | None = None,
              workers: int | None = None, use_ray: bool = True, resume: bool = False,
              force: bool = False, report: bool = True, embedder=None, console=None) -> Path:
    """Run a sweep (see the module docstring) into ``out``; returns the path of index.html.
    Arguments given (not None) replace the sweep ``file``'s keys; ``params`` and ``grid``
    are merged into the file's, the argument winning. ``use_ray=False`` runs in this
    process; ``workers``: CPUs of a local Ray cluster."""
    from ..report.html import render
    from .compare import compare_into

    spec = read_sweep_file(file) if file else {}
    given = {"studies": studies, "models": models, "seeds": seeds, "quick": quick,
             "device": device, "dtype": dtype}
    spec.update({k: v for k, v in given.items() if v is not None})
    spec["params"] = {**spec.get("params", {}), **(params or {})}
    spec["grid"] = {**spec.get("grid", {}), **(grid or {})}
    quick, device = bool(spec.get("quick", False)), str(spec.get("device", "auto"))
    dtype = str(spec.get("dtype", "float32"))
    units = expand(studies=spec.get("studies"), models=spec.get("models") or (),
                   params=spec["params"], grid=spec["grid"], seeds=spec.get("seeds", [0]),
                   quick=quick)
    if any(u.model for u in units):
        from ..models.registry import pick_device

        pick_device(device)  # a device this torch cannot use fails before the folder
    config = {"units": [[u.id, u.study, u.model, u.params, u.seed] for u in units],
              "quick": quick, "dtype": dtype}
    run = Run(out, study="sweep", config=config, resume=resume, force=force)
    status = dict(run.to_dict().get("runs_status") or {})
    todo = [u for u in units if not run.done(u.id)]
    try:
        ray, started = start(ray_address, workers=workers) if use_ray and todo else (None, False)
    except BaseException:
        if not run.discard_if_empty():  # a wrong --ray-address leaves nothing behind
            run.release()
        raise
    if use_ray and todo and ray is None:
        _say(console, "note: ray is not installed, so the sweep runs one run after another "
                      "in this process (pip install 'collapsekit[scale]' for Ray)")
    _say(console, f"sweep: {len(todo)} of {len(units)} run(s) to do"
                  + (f" on Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs)" if ray else ""))
    cwd = os.getcwd()
    payloads = [{"study": u.study, "out": str((run.path / "runs" / u.id).resolve()),
                 "model": u.model, "quick": quick, "params": u.params, "seed": u.seed,
                 "device": device, "dtype": dtype, "resume": resume, "force": force,
                 "cwd": cwd} for u in todo]
    gpu = device.startswith("cuda")
    resources = [{"num_cpus": 1, "num_gpus": 1 if gpu else 0}] * len(todo)

    def on_result(i: int, result: dict) -> None:
        u = todo[i]
        status[u.id] = result
        run.remove("run_failed", run=u.id)
        if result["status"] == "done":
            run.mark_done(u.id)
        else:
            run.add("run_failed", 1, section="sweep", run=u.id, note=result["error"])
        run.meta(runs_status=status)
        run.write()
        _say(console, f"  {u.id}: {result['status']} ({result.get('seconds', 0):.1f} s)"
                      + (f": {result['error']}" if result.get("error") else ""))

    try:
        run_tasks(run_unit, payloads, resources=resources, ray=ray, on_result=on_result)
        finished = [u for u in units if run.done(u.id)]
        paths = [run.path / "runs" / u.id for u in finished]
        if len(finished) >= 2:
            compare_into(run, paths, [load_run(p) for p in paths], [u.id for u in finished],
                         fields=[u.fields for u in finished], embedder=embedder)
        elif finished:
            run.add_many({**r, "run": finished[0].id, **finished[0].fields}
                         for r in load_run(paths[0])["records"])
        run.table("runs", [{"run": u.id, "study": u.study, "model": u.model,
                            "settings": json.dumps(u.params, sort_keys=True, default=str),
                            "seed": u.seed, "status": status.get(u.id, {}).get("status"),
                            "error": status.get(u.id, {}).get("error", ""),
                            "seconds": status.get(u.id, {}).get("seconds")} for u in units])
        run.add("runs_done", len(finished), section="sweep", runs=len(units))
    except BaseException:
        run.release()
        raise
    finally:
        if started:
            ray.shutdown()
    run.finish()
    return render(run.path) if report else run.path / "index.html"
