"""The checkpoints of one training run, from what a user passes as ``--model``.

- a local folder of ``checkpoint-*`` folders (what ``transformers.Trainer`` writes with
  ``save_steps``): every ``checkpoint-N`` holding a ``config.json``, step N;
- revisions of a hub model, ``org/name@step1000,step2000`` (Pythia, OLMo): one spec
  ``org/name@REV`` per revision, the step read from the revision (``step(\\d+)``);
- a list file (``.txt``): one spec per line, optionally followed by its step
  (``./ckpt/a 500``); blank lines and ``#`` comments are skipped.

Each checkpoint is ``(name, step, spec)``, sorted by step. A step is always known: when a
name carries no number (``step1000``, ``checkpoint-500``, ``global_step7``, a trailing
number), the list file must give it.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

from ..errors import CollapsekitError, InputFileError

_STEP = (re.compile(r"(?:global_)?step[-_]?(\d+)", re.I), re.compile(r"checkpoint-(\d+)$"),
         re.compile(r"(\d+)$"))
_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


class Checkpoint(NamedTuple):
    name: str  # a plain name, unique in the trajectory (a folder name for its results)
    step: int
    spec: str  # what models.registry.load_model takes


def step_of(name: str) -> int | None:
    """The training step a checkpoint name carries (``step1000``, ``checkpoint-500``,
    ``stage1-step2000-tokens8B``, ``…_7``), or None."""
    for pattern in _STEP:
        m = pattern.search(name)
        if m:
            return int(m.group(1))
    return None


def _plain(text: str) -> str:
    return _SAFE.sub("_", text).strip("_.") or "checkpoint"


def _from_folder(folder: Path) -> list[Checkpoint]:
    subs = [p for p in folder.iterdir() if p.is_dir() and re.fullmatch(r"checkpoint-\d+",
                                                                          p.name)]
    if not subs:
        raise InputFileError(f"{folder} holds no checkpoint-N folders: point at the output "
                             "folder of a training run (Trainer's save_steps), or list the "
                             "checkpoints in a .txt file, one per line")
    bad = [p.name for p in subs if not (p / "config.json").is_file()]
    if bad:
        raise InputFileError(f"{folder}: {', '.join(sorted(bad)[:3])} hold no config.json "
                             "(not a full model): save full checkpoints, or list the usable "
                             "ones in a .txt file")
    return [Checkpoint(p.name, step_of(p.name), str(p.resolve())) for p in subs]


def _from_list(file: Path) -> list[Checkpoint]:
    out = []
    for i, line in enumerate(file.read_text(encoding="utf-8").splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        spec, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest and not rest.isdigit():
            raise InputFileError(f"{file} line {i}: {rest!r} is not a step: write "
                                 "'SPEC' or 'SPEC STEP' (a whole number)")
        path = (file.parent / spec) if not Path(spec).is_absolute() else Path(spec)
        if spec.startswith(".") or path.exists():
            spec = str(path.resolve())
        label = spec.rpartition("@")[2] if "@" in spec else Path(spec).name
        step = int(rest) if rest else step_of(label)
        if step is None:
            raise InputFileError(f"{file} line {i}: no step in {label!r}: write the step "
                                 f"after the spec ('{spec} 1000')")
        out.append(Checkpoint(_plain(label), step, spec))
    if not out:
        raise InputFileError(f"{file} lists no checkpoint: write one model spec per line")
    return out


def _from_revisions(spec: str) -> list[Checkpoint]:
    repo, _, revs = spec.partition("@")
    out = []
    for rev in (r.strip() for r in revs.split(",")):
        step = step_of(rev) if rev else None
        if step is None:
            raise CollapsekitError(f"revision {rev!r} of {repo} carries no step (e.g. "
                                   "step1000): list the revisions with their steps in a "
                                   ".txt file, one 'SPEC@REV STEP' per line")
        out.append(Checkpoint(_plain(rev), step, f"{repo}@{rev}"))
    return out


def checkpoints(spec: str) -> list[Checkpoint]:
    """The checkpoints ``spec`` names (see the module docstring), sorted by step; a
    CollapsekitError names what is wrong (no checkpoints, a step missing, a name twice)."""
    if not isinstance(spec, str) or not spec.strip():
        raise CollapsekitError("no checkpoints given: pass a folder of checkpoint-N folders, "
                               "org/name@rev1,rev2 or a .txt list of specs")
    spec = spec.strip()
    path = Path(spec).expanduser()
    if spec.startswith((".", "/", "~")) and not path.exists():
        raise CollapsekitError(f"no such folder or file {path}: check the path")
    if path.is_dir():
        found = _from_folder(path)
    elif path.is_file() and path.suffix != ".gguf":
        found = _from_list(path)
    elif "@" in spec and not spec.startswith((".", "/", "~")):
        found = _from_revisions(spec)
    else:
        raise CollapsekitError(f"{spec!r} names no checkpoints: pass a folder of "
                               "checkpoint-N folders, org/name@rev1,rev2 or a .txt list of "
                               "specs (a missing path? check it)")
    names = [c.name for c in found]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise CollapsekitError(f"checkpoint name(s) {', '.join(twice)} appear twice: give "
                               "each checkpoint once")
    return sorted(found, key=lambda c: (c.step, c.name))
