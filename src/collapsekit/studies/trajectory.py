"""``collapsekit trajectory MODEL_OR_FOLDER``: chosen studies on every checkpoint of one
training run, into one results folder.

Each (checkpoint, study) is an ordinary :func:`~collapsekit.studies.runner.run_study` into
``runs/<checkpoint>/<study>/`` (so its records are exactly those of the single run), then
its records are copied into the trajectory's folder with ``checkpoint`` and ``step`` fields.
A finished (checkpoint, study) is recorded as done and never recomputed on ``--resume``; an
interrupted one resumes inside its own folder. The report draws scalar metrics against the
training step and per-layer metrics as layer × step heatmaps.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import NotApplicable
from ..results import Run, load_run
from .checkpoints import checkpoints
from .registry import get
from .runner import run_study, split_params


def _say(text: str) -> None:
    from rich.console import Console

    Console(stderr=True).log(text, markup=False)


def copy_records(run: Run, unit_dir: Path, **fields) -> int:
    """Add the records of the run in ``unit_dir`` to ``run`` with ``fields`` set; a field
    the record already has with another value is kept as ``record_<field>``. Returns how
    many records."""
    records = load_run(unit_dir)["records"]
    run.add_many({**r, **{f"record_{k}": r[k] for k in fields
                          if k in r and r[k] != fields[k]}, **fields} for r in records)
    return len(records)


def run_trajectory(out, model: str, *, studies, quick: bool = False,
                   params: dict | None = None, seed: int = 0, device: str = "auto",
                   dtype: str = "float32", resume: bool = False, force: bool = False,
                   report: bool = True) -> Path:
    """Run ``studies`` (names) on every checkpoint ``model`` names (see
    :mod:`collapsekit.studies.checkpoints`) into ``out``; returns the path of index.html.
    ``params``: ``STUDY.NAME`` or ``NAME`` → value, as in ``scan``."""
    from ..models.registry import resolve
    from ..report.html import render

    if isinstance(studies, str) or not studies:
        raise ValueError("trajectory needs a list of studies, e.g. --studies geometry,diversity")
    chosen = [get(n) for n in studies]
    free = [st.name for st in chosen if not st.takes_model]
    if free:
        raise ValueError(f"{', '.join(free)} run(s) on no model: a trajectory runs studies "
                         "of a model on each checkpoint")
    by_study = split_params(params, chosen)
    for st in chosen:  # bad settings fail before anything is made
        st.settings(by_study[st.name], quick=quick, seed=seed)
    ckpts = checkpoints(model)
    for c in ckpts:
        resolve(c.spec)
    config = {"model": model, "checkpoints": [list(c) for c in ckpts],
              "studies": [st.name for st in chosen], "params": by_study, "quick": quick,
              "seed": seed, "dtype": dtype}
    run = Run(out, study="trajectory", config=config, resume=resume, force=force)
    run.meta(seeds=[seed], checkpoints=[{"name": c.name, "step": c.step, "spec": c.spec}
                                        for c in ckpts])
    try:
        for c in ckpts:
            for st in chosen:
                unit = f"{c.name}/{st.name}"
                if run.done(unit):
                    continue
                _say(f"trajectory: {unit} (step {c.step})")
                folder = run.path / "runs" / c.name / st.name
                try:
                    with run.timer(unit):
                        run_study(st.name, folder, model=c.spec, quick=quick,
                                  params=by_study[st.name], seed=seed, device=device,
                                  dtype=dtype, resume=resume, force=force, report=False)
                except NotApplicable as exc:
                    run.add("probe_skipped", 1, section="probes", probe=st.name,
                            checkpoint=c.name, step=c.step, note=str(exc))
                else:
                    copy_records(run, folder, checkpoint=c.name, step=c.step)
                run.mark_done(unit)
    except BaseException:
        run.release()
        raise
    run.finish()
    return render(run.path) if report else run.path / "index.html"
