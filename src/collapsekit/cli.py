"""Command line: maps each command to a study; nothing else lives here.

Errors a user can act on print as one line and exit with code 2 (``--debug`` shows the
traceback). Heavy libraries are imported inside the commands, so ``--help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from . import __version__
from .errors import CollapsekitError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="collapsekit: measure collapse in language models.")
STATE = {"debug": False}

Out = typer.Option(None, "--out", help="results folder (default: a folder named after the command)")
Json = typer.Option(False, "--json", help="print metrics.json to stdout when done")
Resume = typer.Option(False, "--resume", help="continue a run in --out made with the same config")
Force = typer.Option(False, "--force", help="overwrite a run in --out made with another config")
Model = typer.Option("embedded:smollm2-135m-instruct", "--model",
                     help="embedded:NAME, a .gguf file, a Hugging Face folder or a hub id")
Seed = typer.Option(0, "--seed", help="random seed (same seed, same numbers)")
Device = typer.Option("auto", "--device", help="auto, cpu, cuda, cuda:1, mps")


def _console():
    from rich.console import Console

    return Console(stderr=True)


def _finish(out: Path, as_json: bool, console) -> None:
    if as_json:
        sys.stdout.write((out / "metrics.json").read_text() + "\n")
    console.print(f"[bold green]done[/]: {out / 'index.html'} and {out / 'metrics.json'}")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="show tracebacks on errors"),
          version: bool = typer.Option(False, "--version", help="print the version and exit")):
    STATE["debug"] = debug
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@app.command()
def scan(model: str = Model, out: Optional[Path] = Out, quick: bool = typer.Option(
             False, "--quick", help="smaller run (k=4, short samples, 48 human texts)"),
         prompts: str = typer.Option("bundled", "--prompts", help="prompt file or 'bundled'"),
         k: Optional[int] = typer.Option(None, "--k", help="samples per prompt"),
         n_prompts: Optional[int] = typer.Option(None, "--n-prompts", help="use the first N"),
         temperature: float = typer.Option(1.0, "--temperature"),
         top_p: float = typer.Option(1.0, "--top-p"), top_k: int = typer.Option(0, "--top-k"),
         max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens"),
         human: str = typer.Option("wikipedia", "--human", help="news, wikipedia or kjv"),
         seed: int = Seed, device: str = Device,
         dtype: str = typer.Option("float32", "--dtype", help="float32, bfloat16, float16"),
         probes: str = typer.Option(
             "all", "--probes", help="quick probes to run, comma-separated (agents, intention,"
             " ambiguity, tokenizer, passkey, drift), 'all' or 'none'"),
         resume: bool = Resume, force: bool = Force, as_json: bool = Json):
    """Geometry, diversity, human-vs-model divergence and quick probes of one model, with a
    human baseline, into one report."""
    from .studies.scan import PROBES, ScanConfig, run_scan

    named = {"all": PROBES, "none": ()}
    chosen = named.get(probes.strip().lower(),
                       tuple(p.strip() for p in probes.split(",") if p.strip()))
    opts = dict(model=model, prompts=prompts, temperature=temperature, top_p=top_p,
                top_k=top_k, human_source=human, seed=seed, device=device, dtype=dtype,
                probes=chosen)
    opts.update({key: v for key, v in (("k", k), ("max_new_tokens", max_new_tokens))
                 if v is not None})
    if quick:
        cfg, n_prompts = ScanConfig.quick(**opts), n_prompts or 12
    else:
        cfg = ScanConfig(**opts)
    out = out or Path("collapse-report")
    console = _console()
    run_scan(cfg, out, resume=resume, force=force, n_prompts=n_prompts, console=console)
    _finish(out, as_json, console)


@app.command()
def geometry(model: str = Model,
             texts: Optional[Path] = typer.Option(None, "--texts", help="one text per line, or JSONL"),
             human: str = typer.Option("wikipedia", "--human",
                                       help="bundled human text when --texts is not given"),
             n: int = typer.Option(256, "--n", help="number of texts to use"),
             max_length: int = typer.Option(256, "--max-length", help="tokens per text"),
             batch_size: int = typer.Option(8, "--batch-size"),
             neural_collapse: bool = typer.Option(
                 False, "--neural-collapse", help="also NC1-NC4 with the next token as class"),
             nc_layer: list[str] = typer.Option(
                 ["final_norm"], "--nc-layer", help="layer name for neural collapse (repeat)"),
             nc_max_classes: Optional[int] = typer.Option(
                 None, "--nc-max-classes", help="keep the K most frequent next tokens"),
             nc_min_count: int = typer.Option(2, "--nc-min-count",
                                              help="classes seen at least this often"),
             nc_heldout: int = typer.Option(32, "--nc-heldout", help="held-out texts for NC4"),
             logit_lens: bool = typer.Option(
                 False, "--logit-lens", help="also the logit-lens commitment layer (costs "
                 "~3x the forward pass; see --logit-lens-every)"),
             logit_lens_every: int = typer.Option(
                 1, "--logit-lens-every", help="logit lens on every k-th token only"),
             length_collapse: bool = typer.Option(
                 False, "--length-collapse", help="also the embedder's length-collapse curve "
                 "(32..512 tokens) with TempScale tau in {1, 0.9, 0.8}"),
             device: str = Device, out: Optional[Path] = Out, resume: bool = Resume,
             force: bool = Force, as_json: bool = Json):
    """Per-layer representation geometry of a model on a text file (streamed)."""
    from .studies.geometry import run_geometry

    out = out or Path("collapse-geometry")
    console = _console()
    nc = dict(layers=tuple(nc_layer), max_classes=nc_max_classes, min_count=nc_min_count,
              heldout=nc_heldout) if neural_collapse else None
    run_geometry(model, out, texts=texts, human=human, n=n, max_length=max_length,
                 batch_size=batch_size, device=device, neural_collapse=nc, resume=resume,
                 force=force, console=console, logit_lens=logit_lens,
                 logit_lens_every=logit_lens_every,
                 length_collapse={} if length_collapse else None)
    _finish(out, as_json, console)


@app.command()
def diversity(samples: Optional[Path] = typer.Option(
                  None, "--samples", help="JSONL with 'text' and 'prompt_id' per line"),
              model: Optional[list[str]] = typer.Option(
                  None, "--model", help="sample this model (repeat to compare models)"),
              temperatures: Optional[str] = typer.Option(
                  None, "--temperatures", help="sweep, e.g. 0.3,0.7,1.0 (overrides --temperature)"),
              momentum: float = typer.Option(
                  0.2, "--momentum", help="alpha of the greedy-vs-momentum check; 0 skips it"),
              prompts: str = typer.Option("bundled", "--prompts", help="prompt file or 'bundled'"),
              k: int = typer.Option(8, "--k"), temperature: float = typer.Option(1.0, "--temperature"),
              top_p: float = typer.Option(1.0, "--top-p"), top_k: int = typer.Option(0, "--top-k"),
              max_new_tokens: int = typer.Option(48, "--max-new-tokens"), seed: int = Seed,
              device: str = Device, out: Optional[Path] = Out, resume: bool = Resume,
              force: bool = Force, as_json: bool = Json):
    """Output diversity of samples: from a file (--samples) or by sampling (--model)."""
    from .studies.diversity import run_diversity

    if (samples is None) == (not model):
        raise CollapsekitError("give exactly one of --samples FILE or --model SPEC")
    out = out or Path("collapse-diversity")
    console = _console()
    run_diversity(out, samples=samples, model=model or None, prompts=prompts, k=k,
                  decoding=dict(temperature=temperature, top_p=top_p, top_k=top_k,
                                max_new_tokens=max_new_tokens), temperatures=temperatures,
                  momentum=momentum, seed=seed, device=device, resume=resume, force=force,
                  console=console)
    _finish(out, as_json, console)


@app.command()
def simulate(learner: Optional[str] = typer.Option(None, "--learner",
                                                   help="e.g. linear, gaussian, ngram, lm"),
             strategy: Optional[str] = typer.Option(None, "--strategy",
                                                    help="comma-separated, e.g. replace,accumulate"),
             generations: Optional[int] = typer.Option(None, "--generations"),
             seeds: Optional[int] = typer.Option(None, "--seeds", help="independent repetitions"),
             param: list[str] = typer.Option([], "--param", help="learner parameter k=v (repeat)"),
             config: Optional[Path] = typer.Option(None, "--config", help="TOML sweep file"),
             out: Optional[Path] = Out, resume: bool = Resume, force: bool = Force,
             as_json: bool = Json):
    """Recursive training on generated data: replace vs accumulate, with closed forms."""
    from .studies.recursion import run_simulate

    params = {}
    for item in param:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise CollapsekitError(f"--param {item!r} is not key=value: write e.g. --param d=10")
        params[key.strip()] = value.strip()
    out = out or Path("collapse-simulate")
    console = _console()
    run_simulate(out, learner=learner, strategies=strategy, generations=generations, seeds=seeds, params=params,
                 config_file=str(config) if config else None, resume=resume, force=force,
                 console=console)
    _finish(out, as_json, console)


@app.command()
def compare(run_a: Path = typer.Argument(..., help="first results folder"),
            run_b: Path = typer.Argument(..., help="second results folder"),
            seed: int = Seed, out: Optional[Path] = Out, force: bool = Force,
            as_json: bool = Json):
    """Two results folders side by side: overlaid curves, matched differences, and the
    cross-model homogeneity of their samples."""
    from .studies.compare import run_compare

    out = out or Path("collapse-compare")
    console = _console()
    run_compare(run_a, run_b, out, seed=seed, force=force, console=console)
    _finish(out, as_json, console)


@app.command()
def agents(model: str = Model, out: Optional[Path] = Out, quick: bool = typer.Option(
               False, "--quick", help="1 scenario, 4 agents, 3 rounds, 40-token rewrites"),
           scenarios: Optional[Path] = typer.Option(
               None, "--scenarios", help="JSONL scenario file (default: the bundled ones)"),
           rounds: Optional[int] = typer.Option(
               None, "--rounds", help="rewrite rounds (--manifold: update steps)"),
           n_agents: Optional[int] = typer.Option(
               None, "--agents", help="use the first N peripheral agents of each scenario"),
           neighbours: bool = typer.Option(
               False, "--neighbours", help="also show each agent its two ring neighbours"),
           temperature: float = typer.Option(0.8, "--temperature",
                                             help="of the stochastic run (greedy runs too)"),
           max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens"),
           manifold: bool = typer.Option(
               False, "--manifold", help="model-free projection dynamics on the sphere"),
           dim: Optional[int] = typer.Option(None, "--dim", help="--manifold: dimension"),
           eta: Optional[float] = typer.Option(None, "--eta", help="--manifold: step size"),
           sigma: Optional[float] = typer.Option(
               None, "--sigma", help="--manifold: noise sigma0 (decays as sigma0/(1+t))"),
           seed: int = Seed, device: str = Device, resume: bool = Resume, force: bool = Force,
           as_json: bool = Json):
    """Anchor/peripheral agents: semantic collapse onto a fixed anchor, greedy vs stochastic."""
    from .studies.agents import run_agents

    extra = {k: v for k, v in (("dim", dim), ("eta", eta), ("sigma", sigma)) if v is not None}
    out = out or Path("collapse-agents")
    console = _console()
    run_agents(out, model=model, quick=quick, seed=seed, device=device, resume=resume,
               force=force, console=console, scenarios=scenarios, rounds=rounds,
               n_agents=n_agents, neighbours=neighbours, temperature=temperature,
               max_new_tokens=max_new_tokens, manifold=manifold, **extra)
    _finish(out, as_json, console)


@app.command()
def intention(model: str = Model, out: Optional[Path] = Out, quick: bool = typer.Option(
                  False, "--quick", help="24 problems, reasoning of 48 tokens, probe on 4 layers"),
              problems: Optional[Path] = typer.Option(
                  None, "--problems", help="JSONL with id, question and integer answer "
                  "(default: the bundled arithmetic problems)"),
              n_items: Optional[int] = typer.Option(None, "--n-items",
                                                    help="use the first N problems"),
              cot_tokens: Optional[int] = typer.Option(
                  None, "--cot-tokens", help="most tokens of reasoning (and of babble)"),
              seed: int = Seed, device: str = Device, resume: bool = Resume,
              force: bool = Force, as_json: bool = Json):
    """Intention collapse: entropy, dimensionality and probe recoverability of the state
    just before the answer, for direct answers, chain of thought and a babble control."""
    from .studies.probes.intention import run_intention

    out = out or Path("collapse-intention")
    console = _console()
    run_intention(out, model=model, quick=quick, seed=seed, device=device, resume=resume,
                  force=force, console=console, problems=problems, n_items=n_items,
                  cot_tokens=cot_tokens)
    _finish(out, as_json, console)


@app.command()
def ambiguity(model: str = Model, out: Optional[Path] = Out, quick: bool = typer.Option(
                  False, "--quick", help="8 items sampled, k=6, 32 new tokens (all scored)"),
              items: str = typer.Option("bundled", "--items",
                                        help="two-turn items (JSONL) or 'bundled'"),
              n_sampled: Optional[int] = typer.Option(
                  None, "--n-sampled", help="items whose interpretations are sampled"),
              k: Optional[int] = typer.Option(None, "--k", help="sampled answers per item"),
              max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens"),
              threshold: Optional[float] = typer.Option(
                  None, "--threshold", help="cosine at which two answers mean the same "
                  "(default 0.6)"),
              seed: int = Seed, device: str = Device, resume: bool = Resume,
              force: bool = Force, as_json: bool = Json):
    """Ambiguity preservation: interpretation entropy vs greedy, two-turn disambiguation."""
    from .studies.probes.ambiguity import run_ambiguity

    out = out or Path("collapse-ambiguity")
    console = _console()
    run_ambiguity(out, model=model, quick=quick, seed=seed, device=device, resume=resume,
                  force=force, console=console, items=items, n_sampled=n_sampled, k=k,
                  max_new_tokens=max_new_tokens, threshold=threshold)
    _finish(out, as_json, console)


@app.command()
def tokenizer(model: str = Model, out: Optional[Path] = Out, quick: bool = typer.Option(
                  False, "--quick", help="200 texts, 16 replacement probes, 48 new tokens"),
              texts: Optional[Path] = typer.Option(
                  None, "--texts", help="one text per line, or JSONL (default: human text)"),
              human: str = typer.Option("news", "--human",
                                        help="bundled human text when --texts is not given"),
              n_texts: Optional[int] = typer.Option(None, "--n-texts",
                                                    help="use the first N texts"),
              n_probes: Optional[int] = typer.Option(None, "--n-probes",
                                                     help="replacement probe cases"),
              max_new_tokens: Optional[int] = typer.Option(None, "--max-new-tokens"),
              no_probe: bool = typer.Option(
                  False, "--no-probe", help="only the non-unique search: loads the "
                  "tokenizer, not the weights"),
              seed: int = Seed, device: str = Device, resume: bool = Resume,
              force: bool = Force, as_json: bool = Json):
    """Tokenizer consistency: non-unique encodings of a corpus's words and the phantom-edit
    replacement probe."""
    from .studies.probes.tokenizer import run_tokenizer

    out = out or Path("collapse-tokenizer")
    console = _console()
    run_tokenizer(out, model=model, texts=texts, human=human, n_texts=n_texts,
                  n_probes=n_probes, max_new_tokens=max_new_tokens, probe=not no_probe,
                  quick=quick, seed=seed, device=device, resume=resume, force=force,
                  console=console)
    _finish(out, as_json, console)


@app.command()
def passkey(model: str = Model, out: Optional[Path] = Out, quick: bool = typer.Option(
                False, "--quick", help="lengths 128-1024 tokens, 3 depths, 1 trial"),
            lengths: Optional[str] = typer.Option(
                None, "--lengths", help="prompt lengths in tokens, e.g. 512,2048,8192 "
                "(clamped to the model's context)"),
            depths: Optional[str] = typer.Option(None, "--depths",
                                                 help="needle depths in [0, 1], e.g. 0,0.5,1"),
            trials: Optional[int] = typer.Option(None, "--trials",
                                                 help="trials per (length, depth)"),
            threshold: float = typer.Option(0.5, "--threshold", help="collapse length: the "
                                            "first length with accuracy below this"),
            filler: str = typer.Option("wikipedia", "--filler",
                                       help="news, wikipedia, kjv or repeat"),
            chunk: int = typer.Option(512, "--chunk", help="prefill chunk in tokens (memory)"),
            seed: int = Seed, device: str = Device, resume: bool = Resume, force: bool = Force,
            as_json: bool = Json):
    """Passkey retrieval accuracy versus context length (state collapse)."""
    from .studies.probes.passkey import run_passkey

    def numbers(text, kind, flag):
        try:
            return [kind(x) for x in text.split(",") if x.strip()] if text else None
        except ValueError:
            raise CollapsekitError(f"{flag} {text!r}: give comma-separated numbers, "
                                   "e.g. 256,1024") from None

    out = out or Path("collapse-passkey")
    console = _console()
    run_passkey(out, model=model, quick=quick, seed=seed, device=device, resume=resume,
                force=force, console=console, lengths=numbers(lengths, int, "--lengths"),
                depths=numbers(depths, float, "--depths"), trials=trials, threshold=threshold,
                filler=filler, chunk=chunk)
    _finish(out, as_json, console)


@app.command()
def drift(model: Optional[list[str]] = typer.Option(
              None, "--model", help="one model (compared with rank-one edits of itself) or "
              "two: --model A --model B (B against A)"),
          edit: bool = typer.Option(False, "--edit", help="rank-one edits of the model (the "
                                    "default with one --model)"),
          edits: Optional[int] = typer.Option(None, "--edits",
                                              help="successive edits (default 3 quick, 5)"),
          edit_layer: Optional[int] = typer.Option(None, "--edit-layer",
                                                   help="block whose MLP is edited (middle)"),
          edit_scale: float = typer.Option(5.0, "--edit-scale",
                                           help="each edit's spectral norm / the matrix's"),
          threshold: float = typer.Option(2.0, "--threshold",
                                          help="collapse flag: perplexity ratio at or above"),
          texts: Optional[Path] = typer.Option(None, "--texts", help="reference corpus: one "
                                               "text per line, or JSONL (default: Wikipedia)"),
          n: Optional[int] = typer.Option(None, "--n", help="documents (default 8 quick, 64)"),
          words: Optional[int] = typer.Option(None, "--words",
                                              help="words per document (default 64 quick, 256)"),
          quick: bool = typer.Option(False, "--quick", help="8 short documents, 3 edits"),
          seed: int = Seed, device: str = Device, out: Optional[Path] = Out,
          resume: bool = Resume, force: bool = Force, as_json: bool = Json):
    """Perplexity drift between two models, or after successive rank-one weight edits."""
    from .studies.probes.drift import run_drift

    if edit and model and len(model) > 1:
        raise CollapsekitError("--edit compares one model with edits of itself: give one --model")
    out = out or Path("collapse-drift")
    console = _console()
    run_drift(out, model=model or None, quick=quick, seed=seed, device=device, resume=resume,
              force=force, console=console, edits=edits, layer=edit_layer, scale=edit_scale,
              threshold=threshold, texts=texts, n=n, words=words)
    _finish(out, as_json, console)


@app.command()
def report(run_dir: Path = typer.Argument(..., help="a results folder")):
    """(Re)render index.html and plots of a results folder."""
    from .report.html import render

    typer.echo(str(render(run_dir)))


def main() -> None:
    """Entry point: one-line errors with exit code 2 unless --debug."""
    import click

    try:
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.ClickException as exc:  # usage errors: click's own message, exit 2
        exc.show()
        sys.exit(exc.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        typer.echo("interrupted: what was written is kept; rerun with --resume to continue",
                   err=True)
        sys.exit(130)
    except (CollapsekitError, ValueError, OSError) as exc:
        if STATE["debug"]:
            raise
        if isinstance(exc, OSError) and not isinstance(exc, CollapsekitError):
            # disk full, permissions: results written so far stay valid
            exc = f"{exc.strerror or exc} ({exc.filename or ''}); free space or fix " \
                  "permissions, then rerun with --resume"
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
