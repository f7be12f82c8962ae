"""Command line: maps each command onto a study; nothing else lives here.

Study commands are generated from the registry (:data:`collapsekit.studies.STUDIES`) when
the command line starts, so a study registered by a plugin has its command too. Errors a
user can act on print as one line and exit with code 2 (``--debug`` shows the traceback);
usage errors are click's own one-line messages, also exit 2. Heavy libraries are imported
inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from . import __version__
from .errors import CollapsekitError

STATE = {"debug": False}
OUT = click.Path(path_type=Path)


def _console():
    from rich.console import Console

    return Console(stderr=True)


REPORTS = "collapse-report"  # the parent of every default --out folder


def default_out(command: str, *parts) -> Path:
    """``collapse-report/<command>[-<part>...]``: each command, model (and --quick) gets its
    own folder, so commands run one after another never meet in one folder. A part is a
    model spec, a learner, or "quick"; a model spec contributes its last path component."""
    import re

    names = [command]
    for part in parts:
        if part:
            name = Path(str(part).split(":", 1)[-1].rstrip("/\\")).name
            names.append(re.sub(r"[^A-Za-z0-9._+]+", "-", name.removesuffix(".gguf")))
    return Path(REPORTS) / "-".join(names)


def _finish(out: Path, as_json: bool, console) -> None:
    if as_json:
        sys.stdout.write((out / "metrics.json").read_text() + "\n")
    shown = [p for p in (out / "index.html", out / "metrics.json") if p.exists()]
    console.print("done: " + " and ".join(map(str, shown)), markup=False, style="bold green")


@click.group(no_args_is_help=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="show tracebacks on errors")
@click.version_option(__version__, "--version", message="%(version)s")
def app(debug: bool):
    """collapsekit: measure collapse in language models."""
    STATE["debug"] = debug


@app.command()
@click.option("--learner", help="e.g. linear, gaussian, ngram, lm")
@click.option("--strategy", help="comma-separated, e.g. replace,accumulate")
@click.option("--generations", type=int, help="[default: 10]")
@click.option("--seeds", type=int, help="independent repetitions")
@click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
              help="learner parameter (repeat)")
@click.option("--config", type=OUT, help="TOML sweep file")
@click.option("--out", type=OUT, default=None,
              help="results folder [default: collapse-report/simulate-LEARNER]")
@click.option("--resume", is_flag=True, help="continue a run in --out made with the same config")
@click.option("--force", is_flag=True, help="overwrite a run in --out made with another config")
@click.option("--json", "as_json", is_flag=True, help="print metrics.json to stdout when done")
def simulate(learner, strategy, generations, seeds, params, config, out, resume, force,
             as_json):
    """Recursive training on generated data: replace vs accumulate, with closed forms."""
    from .studies.recursion import run_simulate

    console = _console()
    out = out or default_out("simulate", learner or (config and Path(config).stem))
    run_simulate(out, learner=learner, strategies=strategy, generations=generations,
                 seeds=seeds, params=_pairs(params, "--param"),
                 config_file=str(config) if config else None, resume=resume, force=force,
                 console=console)
    _finish(out, as_json, console)


@app.command()
@click.argument("runs", type=OUT, nargs=-1, required=True)
@click.option("--seed", type=int, default=0, help="random seed (same seed, same numbers)")
@click.option("--out", type=OUT, default=None,
              help="results folder [default: collapse-report/compare-RUN_A-RUN_B]")
@click.option("--force", is_flag=True, help="overwrite a run in --out made with another config")
@click.option("--json", "as_json", is_flag=True, help="print metrics.json to stdout when done")
@click.option("--depth", type=click.Choice(["auto", "relative", "absolute"]), default="auto",
              show_default=True, help="per-layer curves: layer / last layer (auto: when the "
              "runs' depths differ) or the layer index")
def compare(runs, seed, out, force, as_json, depth):
    """Two or more results folders side by side: overlaid curves, matched differences, and
    the cross-model homogeneity of their samples."""
    from .studies.compare import run_compare_many

    console = _console()
    out = out or default_out("compare", *(Path(r).resolve().name for r in runs))
    run_compare_many(runs, out, seed=seed, force=force, console=console)
    if depth != "auto":
        from .report.html import render

        render(out, depth=depth)
    _finish(out, as_json, console)


def _run_options(fn):
    """--out/--resume/--force/--json/--report and the model loading options."""
    for opt in reversed([
            click.option("--quick", is_flag=True, help="the studies' smaller settings"),
            click.option("--param", "params", multiple=True, metavar="NAME=VALUE",
                         help="set a parameter (STUDY.NAME=VALUE for one study; repeat)"),
            click.option("--device", default=None, help="auto, cpu, cuda, cuda:1, mps"),
            click.option("--dtype", default=None, type=click.Choice(
                ["float32", "bfloat16", "float16"]), help="compute dtype [default: float32]"),
            click.option("--resume", is_flag=True, help="continue a run in --out made with "
                         "the same config (finished runs are skipped)"),
            click.option("--force", is_flag=True, help="overwrite a run in --out made with "
                         "another config"),
            click.option("--json", "as_json", is_flag=True, help="print metrics.json to "
                         "stdout when done"),
            click.option("--report/--no-report", default=True, help="render index.html")]):
        fn = opt(fn)
    return fn


@app.command()
@click.argument("model_or_folder")
@click.option("--studies", default="geometry", show_default=True,
              help="studies to run on each checkpoint, comma-separated")
@click.option("--seed", type=int, default=0, help="random seed (same seed, same numbers)")
@click.option("--out", type=OUT, default=None,
              help="results folder [default: collapse-report/trajectory-<model>]")
@_run_options
def trajectory(model_or_folder, studies, seed, out, quick, params, device, dtype, resume,
               force, as_json, report):
    """Studies on every checkpoint of a training run (a folder of checkpoint-N folders,
    org/name@rev1,rev2 or a .txt list), one folder, metrics against training step."""
    from .studies.trajectory import run_trajectory

    out = out or default_out("trajectory", model_or_folder)
    run_trajectory(out, model_or_folder, studies=[s.strip() for s in studies.split(",")
                                                  if s.strip()],
                   quick=quick, params=_pairs(params, "--param"), seed=seed,
                   device=device or "auto", dtype=dtype or "float32", resume=resume,
                   force=force, report=report)
    _finish(out, as_json, _console())


@app.command()
@click.argument("sweep_file", type=OUT, required=False)
@click.option("--study", "studies", multiple=True, help="study to run (repeat)")
@click.option("--model", "models", multiple=True, help="model spec or folder of "
              "checkpoint-N folders (repeat)")
@click.option("--grid", multiple=True, metavar="NAME=V1,V2",
              help="one run per value (STUDY.NAME for one study; repeat for a grid)")
@click.option("--seed", "seeds", default=None, metavar="LIST", help="seeds, e.g. 0,1,2")
@click.option("--ray-address", default=None, help="join a Ray cluster: auto or "
              "ray://host:port [default: start a local one]")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="CPUs of the local Ray cluster [default: all]")
@click.option("--no-ray", is_flag=True, help="run the runs one after another in this process")
@click.option("--out", type=OUT, default=None,
              help="results folder [default: collapse-report/sweep[-<file>]]")
@_run_options
def sweep(sweep_file, studies, models, grid, seeds, ray_address, workers, no_ray, out,
          quick, params, device, dtype, resume, force, as_json, report):
    """A grid of (study, model or checkpoint, settings, seed) runs as Ray tasks, each in its
    own folder, compared in one report. SWEEP_FILE: TOML with the same keys."""
    from .studies.sweep import run_sweep

    console = _console()
    out = out or default_out("sweep", sweep_file and Path(sweep_file).stem)
    run_sweep(out, file=sweep_file, studies=list(studies) or None,
              models=list(models) or None, params=_pairs(params, "--param"),
              grid=_pairs(grid, "--grid"), seeds=seeds, quick=quick or None, device=device,
              dtype=dtype, ray_address=ray_address, workers=workers, use_ray=not no_ray,
              resume=resume, force=force, report=report, console=console)
    _finish(out, as_json, console)


@app.command()
@click.argument("run_dir", type=OUT)
@click.option("--depth", type=click.Choice(["auto", "relative", "absolute"]), default="auto",
              show_default=True, help="per-layer curves of compared runs: layer / last layer "
              "(auto: when their depths differ) or the layer index")
def report(run_dir, depth):
    """(Re)render index.html and plots of a results folder."""
    from .report.html import render

    click.echo(str(render(run_dir, depth=depth)))


@app.command("metrics")
@click.argument("names", nargs=-1)
def metrics_command(names):
    """The metric catalogue: label, collapse direction, unit and reference of every metric a
    study records (all, or the NAMES given)."""
    from .metrics.catalog import CATALOG, lookup

    for name in names or CATALOG:
        info = lookup(name)
        if info is None:
            raise CollapsekitError(f"no metric {name!r} in the catalogue: run `collapsekit "
                                   "metrics` for the list")
        arrow = {"low": "lower = more collapsed", "high": "higher = more collapsed"}.get(
            info.collapse, "no collapse direction")
        click.echo(f"{name}: {info.label} [{info.unit or 'score'}; {arrow}] "
                   f"{info.doc} ({info.reference})")


def _pairs(items, flag: str) -> dict:
    """``NAME=VALUE`` strings as a dict; a CollapsekitError names a malformed one."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CollapsekitError(f"{flag} {item!r} is not key=value: write e.g. {flag} k=4")
        out[key.strip()] = value.strip()
    return out


def _common(takes_model: bool, many: bool, out_help: str) -> list:
    """The options every study command takes."""
    opts = [click.Option(["--out"], type=OUT, default=None, help="results folder "
                         f"[default: {out_help}]"),
            click.Option(["--quick"], is_flag=True, help="the study's smaller settings"),
            click.Option(["--param", "params"], multiple=True, metavar="NAME=VALUE",
                         help="set a study parameter (repeat)"),
            click.Option(["--seed"], type=int, default=0, help="random seed (same seed, same "
                         "numbers)"),
            click.Option(["--resume"], is_flag=True, help="continue a run in --out made with "
                         "the same config"),
            click.Option(["--force"], is_flag=True, help="overwrite a run in --out made with "
                         "another config"),
            click.Option(["--json", "as_json"], is_flag=True, help="print metrics.json to "
                         "stdout when done"),
            click.Option(["--report/--no-report"], default=True, help="render index.html "
                         "(--no-report: later, with collapsekit report DIR)")]
    if takes_model:
        opts += [click.Option(["--model"], multiple=many, default=None,
                              help="embedded:NAME, a .gguf file, a Hugging Face folder or a "
                              "hub id" + (" (repeat to compare models)" if many else "")),
                 click.Option(["--device"], default="auto", help="auto, cpu, cuda, cuda:1, "
                              "mps"),
                 click.Option(["--dtype"], default="float32", type=click.Choice(
                     ["float32", "bfloat16", "float16"]), help="compute dtype"),
                 click.Option(["--device-map"], default=None, type=click.Choice(
                     ["auto", "balanced", "balanced_low_0", "sequential"]),
                     help="spread a model too large for one device over all of them "
                     "(instead of --device)"),
                 click.Option(["--trust-remote-code"], is_flag=True, help="run a hub "
                              "model's own Python code (only for models you trust)")]
    return opts


def _run(name: str, *, out, quick, params, seed, resume, force, as_json, report, flags,
         model=None, device="auto", dtype="float32", studies=None, device_map=None,
         trust_remote_code=False) -> None:
    from .studies import run_scan, run_study

    models = model if isinstance(model, tuple) else (model,)
    out = out or default_out(name, *models, "quick" if quick else None)
    given = {**_pairs(params, "--param"), **{k: v for k, v in flags.items() if v is not None}}
    common = dict(model=(list(model) or None) if isinstance(model, tuple) else model,
                  quick=quick, params=given, seed=seed, device=device, dtype=dtype,
                  resume=resume, force=force, report=report, device_map=device_map,
                  trust_remote_code=trust_remote_code)
    if name == "scan":
        run_scan(out, studies=studies, **common)
    else:
        run_study(name, out, **common)
    _finish(out, as_json, _console())


def study_command(study):
    """A click command for a registered study: the common options, ``--param``, and one
    option per parameter (``--name``; booleans as ``--name/--no-name``)."""
    opts = _common(study.takes_model, study.many_models,
                   f"{REPORTS}/{study.name}[-MODEL][-quick]")
    names = {}
    for pname, p in study.params.items():
        flag = p.flag or "--" + pname.replace("_", "-")
        names[flag.lstrip("-").replace("-", "_")] = pname
        default = p.default if not p.many or p.default is None else ",".join(map(str, p.default))
        help_ = f"{p.doc} [default: {default}]"
        if p.kind is bool:
            opts.append(click.Option([f"{flag}/--no-{flag[2:]}"], default=None, help=help_))
        else:
            opts.append(click.Option([flag], default=None, help=help_,
                                     metavar="LIST" if p.many else p.kind.__name__.upper()))

    def callback(**kw):
        flags = {names[k]: kw.pop(k) for k in list(kw) if k in names}
        _run(study.name, flags=flags, **kw)

    return click.Command(study.name, params=opts, callback=callback, help=study.doc)


def scan_command():
    """``collapsekit scan``: the registry's scan studies on one model into one report."""
    from .studies.registry import scan_studies

    opts = _common(True, False, f"{REPORTS}/scan[-MODEL][-quick]") + [click.Option(
        ["--studies"], default="all", help="studies to run, comma-separated, 'all' "
        f"({', '.join(scan_studies())}); --param STUDY.NAME=VALUE sets one study's parameter,"
        " --param NAME=VALUE every study that has it")]

    def callback(studies, **kw):
        chosen = None if studies.strip().lower() == "all" else [
            x.strip() for x in studies.split(",") if x.strip()]
        _run("scan", flags={}, studies=chosen, **kw)

    return click.Command("scan", params=opts, callback=callback, help=(
        "Geometry, diversity, human-vs-model divergence and quick probes of one model, "
        "with a human baseline, into one report."), short_help="the main job: one model, "
        "every study, one report")


def command_group():
    """The fixed commands plus ``scan`` and one command per registered study."""
    from .studies import STUDIES

    app.add_command(scan_command())
    for study in STUDIES.values():
        app.add_command(study_command(study))
    return app


def main() -> None:
    """Entry point: one-line errors with exit code 2 unless --debug."""
    try:
        code = command_group().main(standalone_mode=False, prog_name="collapsekit")
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:  # --help, --version
        sys.exit(exc.exit_code)
    except click.UsageError as exc:  # click's own message, in one line, exit 2
        where = exc.ctx.command_path if exc.ctx else "collapsekit"
        click.echo(f"error: {exc.format_message()} (see {where} --help)", err=True)
        sys.exit(2)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted: what was written is kept; rerun with --resume to continue",
                   err=True)
        sys.exit(130)
    except (CollapsekitError, ValueError, OSError) as exc:
        if STATE["debug"]:
            raise
        if isinstance(exc, OSError) and not isinstance(exc, CollapsekitError):
            # disk full, permissions: results written so far stay valid
            exc = f"{exc.strerror or exc} ({exc.filename or ''}); free space or fix " \
                  "permissions, then rerun with --resume"
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
