"""``collapsekit scan``: the main job — geometry, diversity and a human baseline for one model.

Stages, each written to the results folder as soon as it finishes, so an interrupted scan
resumes (``--resume``) without recomputing: (1) load the model, (2) stream a slice of real
human text through it and compute per-layer geometry, (3) sample k continuations of each
prompt into ``samples.jsonl`` (a content-keyed cache: samples already written are reused),
(4) embed samples and human texts and score diversity and the human-vs-model divergence,
(5) run each probe at its quick settings (agents, intention, ambiguity, tokenizer, passkey,
drift; ``probes`` chooses; a probe the model cannot run, e.g. for a too short context, is
recorded as ``probe_skipped`` with the reason and the scan goes on), (6) render the report.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

from ..corpora import human_texts
from ..io import read_prompts
from ..models.registry import DEFAULT_MODEL
from ..results import Run
from . import diversity, geometry
from .probes import divergence as probe_divergence


PROBES = ("agents", "intention", "ambiguity", "tokenizer", "passkey", "drift")


def probe_stages() -> dict:
    """Probe name → its ``stage(run, lm, *, quick, seed, console)`` function."""
    from . import agents
    from .probes import ambiguity, drift, intention, passkey, tokenizer

    return {"agents": agents.stage, "intention": intention.stage,
            "ambiguity": ambiguity.stage, "tokenizer": tokenizer.stage,
            "passkey": passkey.stage, "drift": drift.stage}


@dataclass(frozen=True)
class ScanConfig:
    model: str = DEFAULT_MODEL
    prompts: str = "bundled"
    k: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    max_new_tokens: int = 40
    human_source: str = "wikipedia"
    human_n: int = 128
    max_length: int = 128
    batch_size: int = 8  # texts per forward pass (geometry)
    sample_batch: int = 32  # rows per forward pass while sampling
    seed: int = 0
    device: str = "auto"
    dtype: str = "float32"
    probes: tuple[str, ...] = PROBES  # quick probes to run after geometry and diversity

    @classmethod
    def quick(cls, **overrides) -> "ScanConfig":
        """A smaller scan for a first look or CI: 12 prompts' worth of work."""
        base = dict(k=4, max_new_tokens=24, human_n=48, max_length=96)
        return cls(**{**base, **overrides})

    def validate(self) -> None:
        if self.k < 2:
            raise ValueError(f"k={self.k}: diversity needs at least 2 samples per prompt")
        if self.human_n < 2:
            raise ValueError(f"human_n={self.human_n}: geometry needs at least 2 texts")
        if self.max_new_tokens < 1 or self.max_length < 8 or min(self.batch_size,
                                                                  self.sample_batch) < 1:
            raise ValueError("max_new_tokens ≥ 1, max_length ≥ 8 and batch_size ≥ 1 are needed")
        unknown = sorted(set(self.probes) - set(PROBES))
        if unknown or isinstance(self.probes, str):
            raise ValueError(f"unknown probe(s) {unknown or self.probes!r}: choose from "
                             f"{', '.join(PROBES)}")


def run_scan(cfg: ScanConfig, out: str | Path, *, resume: bool = False, force: bool = False,
             n_prompts: int | None = None, console=None) -> Path:
    """Run every stage of the scan into ``out`` and return the path of ``index.html``."""
    from ..models.registry import load_model, resolve
    from ..models.sampling import Decoding
    from ..report.html import render

    cfg.validate()
    resolve(cfg.model)  # a bad spec or prompt file fails before the results folder is made
    prompts = read_prompts(cfg.prompts)[:n_prompts]
    config = {**asdict(cfg), "n_prompts": len(prompts)}
    run = Run(out, study="scan", config=config, resume=resume, force=force)
    say = console.log if console else (lambda *a: None)

    with run.timer("load_model"):
        lm = load_model(cfg.model, device=cfg.device, dtype=cfg.dtype, progress=say)
    run.meta(model=lm.describe(), seeds=[cfg.seed])
    say(f"loaded {cfg.model} ({lm.n_layers} layers, d={lm.hidden_size}) on {lm.device}")

    human = human_texts(cfg.human_source, min_words=40)
    geometry.stage(run, lm, human[:cfg.human_n], batch_size=cfg.batch_size,
                   max_length=cfg.max_length, console=console, source=cfg.human_source)

    decoding = Decoding(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k,
                        max_new_tokens=cfg.max_new_tokens)
    samples = diversity.sample_stage(run, lm, prompts, k=cfg.k, decoding=decoding,
                                     seed=cfg.seed, batch_size=cfg.sample_batch,
                                     console=console)
    if not run.has("mean_semantic_spread", section="diversity", source="model"):
        diversity.multi_stage(run, {(cfg.model, cfg.temperature): samples}, human=human,
                              seed=cfg.seed, prompts=dict(enumerate(prompts)))
    probe_divergence.stage(run, [s.text for s in samples], human, seed=cfg.seed)

    stages = probe_stages()
    for name in cfg.probes:
        say(f"probe: {name} (quick)")
        try:
            with run.timer(f"probe_{name}"):
                stages[name](run, lm, quick=True, seed=cfg.seed, console=console)
            run.remove("probe_skipped", probe=name)  # a resumed scan that now got through
        except ValueError as exc:  # e.g. a context too short for the probe: keep the scan
            warnings.warn(f"scan: probe {name} skipped: {exc}", stacklevel=2)
            run.add("probe_skipped", 1, section="probes", probe=name, note=str(exc))
        run.write()

    run.finish()
    return render(run.path)
