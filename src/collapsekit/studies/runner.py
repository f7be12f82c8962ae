"""One runner for every study: validate → resolve the model → open the run → load the
model → metadata → stages → finish → report.

:func:`run_study` runs one registered study; :func:`run_scan` runs a list of them into one
folder (default: every study registered with a ``scan`` entry). Everything a user can get
wrong (settings, model specs, input files) fails before the results folder is made. On
``--resume`` a stage recorded as done in the run is skipped (the only place this is
decided); a stage interrupted midway resumes from what it cached. The model is loaded when
the first stage that needs it runs, so a finished run resumes without loading it.
"""

from __future__ import annotations

import warnings
from pathlib import Path

from ..errors import NotApplicable
from ..results import Run
from .registry import Models, Settings, Study, get, hook, scan_studies

COMMON = ("model", "seed", "quick", "given")  # set by the runner, not parameters


def _say(text: str) -> None:
    from rich.console import Console

    Console(stderr=True).log(text, markup=False)


class _Loader:
    """Loads models by spec for one run, keeps the latest, records each in the metadata."""

    def __init__(self, run: Run, device: str, dtype: str, load: dict | None = None):
        self.run, self.device, self.dtype, self.held = run, device, dtype, None
        self.load = load or {}  # trust_remote_code, device_map
        self.described: dict[str, dict] = {}

    def __call__(self, spec: str):
        from ..models.registry import load_model

        if self.held is None or self.held.spec != spec:
            self.held = None  # free the previous model first
            with self.run.timer(f"load_model {spec}" if self.described else "load_model"):
                self.held = load_model(spec, device=self.device, dtype=self.dtype,
                                       progress=_say, **self.load)
            lm = self.held
            _say(f"loaded {spec} ({lm.n_layers} layers, d={lm.hidden_size}) on {lm.device}")
            self.described[spec] = lm.describe()
            described = list(self.described.values())
            self.run.meta(model=described[0], **({"models": described}
                                                  if len(described) > 1 else {}))
        return self.held


def _models(study: Study, model) -> tuple[str, ...]:
    from ..models.registry import DEFAULT_MODEL, resolve

    specs = (model,) if isinstance(model, str) else (DEFAULT_MODEL,) if model is None \
        else tuple(model)
    if not specs:
        raise ValueError(f"study {study.name!r}: no --model given; name one (or leave it out "
                         f"for {DEFAULT_MODEL})")
    if len(specs) > 1 and not study.many_models:
        raise ValueError(f"study {study.name!r} takes one --model, got {len(specs)}")
    if len(set(specs)) != len(specs):
        raise ValueError(f"--model repeats a model: give distinct specs ({', '.join(specs)})")
    for spec in specs:
        resolve(spec)  # a bad spec fails before the results folder is made
    return specs


def _plan(study: Study, given: dict, *, quick: bool, seed: int, specs, in_scan: bool
          ) -> tuple[Settings, dict]:
    """(settings, this stage's config: settings + what ``check`` adds)."""
    s = study.settings(given, quick=quick, seed=seed, in_scan=in_scan,
                       model=specs if study.many_models else specs[0])
    extra = (hook(study.check) or (lambda _: None))(s) or {}
    return s, {k: v for k, v in {**s, **extra}.items() if k not in COMMON}


def _stage(run: Run, study: Study, s: Settings, load: _Loader, *, skip_na: bool) -> None:
    if run.done(study.name):
        return
    lm = None
    if study.uses_model(s):
        lm = Models(s.model, load) if study.many_models else load(s.model)
    try:
        with run.timer(study.name):
            hook(study.stage)(run, lm, s)
    except NotApplicable as exc:
        if not skip_na:
            raise
        warnings.warn(f"scan: probe {study.name} skipped: {exc}", stacklevel=2)
        run.add("probe_skipped", 1, section="probes", probe=study.name, note=str(exc))
        run.write()
        return
    run.remove("probe_skipped", probe=study.name)  # a resumed scan that now got through
    run.mark_done(study.name)


def _execute(name: str, out, steps: list[tuple[Study, Settings]], config: dict, *,
             seed: int, device: str, dtype: str, resume: bool, force: bool,
             skip_na: bool, report: bool, load: dict | None = None) -> Path:
    from ..report.html import render

    if any(study.uses_model(s) for study, s in steps):
        from ..models.registry import check_placement

        # a device this torch cannot use fails before the folder is made
        check_placement(device, (load or {}).get("device_map"))
    run = Run(out, study=name, config=config, resume=resume, force=force)
    run.meta(seeds=[seed])
    load = _Loader(run, device, dtype, load)
    try:
        for study, s in steps:
            if skip_na:
                _say(f"{name}: {study.name}")
            _stage(run, study, s, load, skip_na=skip_na)
    except BaseException:
        if not run.discard_if_empty():  # e.g. corrupt weights: no --force needed after
            run.release()
        raise
    run.finish()
    return render(run.path) if report else run.path / "index.html"


def run_study(name: str, out, *, model=None, quick: bool = False, params: dict | None = None,
              seed: int = 0, device: str = "auto", dtype: str = "float32",
              resume: bool = False, force: bool = False, report: bool = True,
              trust_remote_code: bool = False, device_map: str | None = None) -> Path:
    """Run the registered study ``name`` into ``out``; returns the path of index.html.
    ``params``: name → value (text as on the command line, or typed); ``model``: a spec,
    or several for a study that takes several; ``report=False`` skips rendering
    (``collapsekit report DIR`` renders later); ``trust_remote_code`` and ``device_map``
    go to ``models.registry.load_model``."""
    study = get(name)
    study.settings(params, quick=quick, seed=seed)  # bad settings fail first
    specs = _models(study, model) if study.takes_model else ()
    if not specs and model is not None:
        raise ValueError(f"study {name!r} runs on no model: drop --model")
    s, config = _plan(study, params or {}, quick=quick, seed=seed, specs=specs or (None,),
                      in_scan=False)
    if specs:
        config = {"model": list(specs) if study.many_models else specs[0], "dtype": dtype,
                  **config}
    return _execute(name, out, [(study, s)], {"seed": seed, "quick": quick, **config},
                    seed=seed, device=device, dtype=dtype, resume=resume, force=force,
                    skip_na=False, report=report,
                    load={"trust_remote_code": trust_remote_code, "device_map": device_map})


def split_params(params: dict | None, studies: list[Study]) -> dict[str, dict]:
    """Scan parameters by study: ``study.name=value`` goes to that study; a bare ``name``
    to every chosen study that has a parameter of that name."""
    out: dict[str, dict] = {st.name: {} for st in studies}
    for key, value in (params or {}).items():
        target, dot, pname = key.rpartition(".")
        if dot:
            if target not in out:
                raise ValueError(f"--param {key}: {target!r} is not one of the scan's studies "
                                 f"({', '.join(out)})")
            out[target][pname] = value
            continue
        takers = [st.name for st in studies if key in st.params]
        if not takers:
            raise ValueError(f"--param {key}: no study of this scan has a parameter {key!r}; "
                             "write STUDY.NAME=VALUE (see collapsekit STUDY --help)")
        for t in takers:
            out[t][key] = value
    return out


def run_scan(out, *, studies=None, model=None, quick: bool = False,
             params: dict | None = None, seed: int = 0, device: str = "auto",
             dtype: str = "float32", resume: bool = False, force: bool = False,
             report: bool = True, trust_remote_code: bool = False,
             device_map: str | None = None) -> Path:
    """``collapsekit scan``: each study in ``studies`` (default: the registry's scan list)
    on one model into one folder; a study the model cannot run (:class:`NotApplicable`) is
    recorded as ``probe_skipped`` and the scan goes on."""
    from ..models.registry import DEFAULT_MODEL

    if isinstance(studies, str):
        raise ValueError(f"studies={studies!r}: give a list of study names, e.g. "
                         "['geometry', 'diversity']")
    chosen = [get(n) for n in (scan_studies() if studies is None else studies)]
    if not chosen:
        raise ValueError("no studies to scan: name at least one, e.g. --studies geometry")
    by_study = split_params(params, chosen)
    model = model or DEFAULT_MODEL
    if not isinstance(model, str):
        raise ValueError("scan runs one model: give one --model (compare two scans with "
                         "collapsekit compare)")
    for st in chosen:  # bad settings fail first
        st.settings(by_study[st.name], quick=quick, seed=seed, in_scan=True)
    specs = _models(chosen[0], model)
    steps, config = [], {}
    for st in chosen:
        s, config[st.name] = _plan(st, by_study[st.name], quick=quick, seed=seed,
                                   specs=specs, in_scan=True)
        steps.append((st, s))
    return _execute("scan", out, steps, {"model": model, "dtype": dtype, "seed": seed,
                                         "quick": quick, "studies": config},
                    seed=seed, device=device, dtype=dtype, resume=resume, force=force,
                    skip_na=True, report=report,
                    load={"trust_remote_code": trust_remote_code, "device_map": device_map})
