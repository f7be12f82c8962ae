"""The sample cache: the ``Sample`` record (one JSONL line), its content key
(``sample_key``), and reading and appending cache files."""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from .decoding import Decoding

FINISH_REASONS = ("eos", "length")


@dataclass
class Sample:
    """One generated continuation; one JSONL line of the cache.

    ``token_ids`` include the stop token when ``finish_reason == "eos"``; ``text`` excludes
    it. ``token_logprobs``: log p_model(token) at temperature 1. ``sampling_logprobs``: log
    probability under the tempered, truncated distribution actually sampled (0.0 if greedy).
    """

    key: str
    prompt_id: int | str
    prompt: str
    sample_index: int
    text: str
    token_ids: list[int]
    token_logprobs: list[float]
    sampling_logprobs: list[float]
    finish_reason: str
    decoding: dict
    seed: int
    model_key: str

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> Sample:
        """Build from ``to_dict()`` output; ValueError if fields are missing or inconsistent."""
        if not isinstance(d, Mapping):
            raise ValueError(f"a sample must be a JSON object, got {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        missing = [n for n in names if n not in d]
        if missing:
            raise ValueError(f"sample is missing fields {missing}")
        s = cls(**{n: d[n] for n in names})
        if not len(s.token_ids) == len(s.token_logprobs) == len(s.sampling_logprobs):
            raise ValueError("token_ids, token_logprobs and sampling_logprobs differ in length")
        if s.finish_reason not in FINISH_REASONS:
            raise ValueError(f"finish_reason {s.finish_reason!r} is not one of {FINISH_REASONS}")
        return s


def sample_key(model_key: str, prompt: str, decoding: Decoding, seed: int, index: int) -> str:
    """sha256 hex of the JSON list [model_key, prompt, decoding.key(), seed, index]."""
    blob = json.dumps([model_key, prompt, decoding.key(), seed, index], ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def read_cache(path: Path) -> dict[str, Sample]:
    """Samples by key. A last line without its newline is dropped and cut off the file."""
    if not path.exists():
        return {}
    if not path.is_file():
        raise ValueError(f"cache {path} is not a file; pass a .jsonl file path")
    data = path.read_bytes()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        warnings.warn(f"cache {path}: dropped a truncated last line (interrupted write); "
                      "its samples will be regenerated", stacklevel=3)
        with open(path, "r+b") as f:
            f.truncate(end)
            f.flush()
            os.fsync(f.fileno())
    out = {}
    for n, line in enumerate(data[:end].split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            s = Sample.from_dict(json.loads(line))
            expected = sample_key(s.model_key, s.prompt, Decoding(**s.decoding), s.seed,
                                  s.sample_index)
            if s.key != expected:
                raise ValueError("its key does not match its content")
        except (ValueError, TypeError) as e:  # JSONDecodeError and UnicodeError are ValueErrors
            raise ValueError(f"cache {path}, line {n} is malformed ({e}); "
                             "fix or delete that line, or delete the file to start over") from None
        out[s.key] = s
    return out


def append_samples(f, samples: list[Sample]) -> None:
    """Write ``samples`` as JSONL lines to the binary file ``f`` and fsync it."""
    f.write(b"".join(json.dumps(x.to_dict()).encode() + b"\n" for x in samples))
    f.flush()
    os.fsync(f.fileno())
