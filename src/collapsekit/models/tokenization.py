"""What a tokenizer object knows about surfaces: token id → the bytes it decodes to, the
word units its pre-tokenizer makes, their canonical encodings, and loading a tokenizer
without the weights.

Schemes, read from the fast tokenizer's decoder:

- ``byte_level`` (GPT-2 style, e.g. SmolLM2): each vocabulary character stands for one
  byte through GPT-2's byte ↔ printable-character table;
- ``metaspace`` (sentencepiece style, e.g. Gemma, Llama 2): ``▁`` is a space and, with byte
  fallback, ``<0xNN>`` is the byte NN;
- ``wordpiece`` and ``word`` (no decoder; decoding joins tokens with spaces): a token is
  " " + itself, a ``##`` continuation is itself without the prefix.

Special and added tokens are left out (the tokenizer matches them before its model).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from functools import lru_cache

from ..errors import CollapsekitError
from ..vocabulary import Vocabulary

_BYTE_TOKEN = re.compile(r"<0x([0-9A-Fa-f]{2})>")


@lru_cache(maxsize=1)
def byte_decoder() -> dict[str, int]:
    """GPT-2's table from printable characters back to bytes: the printable bytes
    ``!``–``~``, ``¡``–``¬``, ``®``–``ÿ`` stand for themselves; the other 68 bytes, in order,
    are shifted to the characters 256, 257, …"""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table, shift = {chr(b): b for b in keep}, 0
    for b in range(256):
        if b not in keep:
            table[chr(256 + shift)] = b
            shift += 1
    return table


def _backend(tokenizer):
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        raise CollapsekitError(
            f"{type(tokenizer).__name__} is a slow tokenizer: the tokenizer study needs a fast "
            "(Rust) tokenizer with a tokenizer.json; load it with use_fast=True")
    return backend


def _decoder_parts(tokenizer) -> list[dict]:
    dec = _backend(tokenizer).decoder
    if dec is None:
        return []
    dec = json.loads(dec.__getstate__())
    return dec.get("decoders", [dec]) if dec.get("type") == "Sequence" else [dec]


def scheme(tokenizer) -> str:
    """``byte_level``, ``metaspace``, ``wordpiece`` or ``word`` (see the module docstring)."""
    parts = _decoder_parts(tokenizer)
    types = {p.get("type") for p in parts}
    if "ByteLevel" in types:
        return "byte_level"
    if "Metaspace" in types or any(p.get("type") == "Replace"
                                   and p.get("pattern", {}).get("String") == "▁" for p in parts):
        return "metaspace"
    if types <= {"WordPiece"}:
        return "wordpiece" if types else "word"
    raise CollapsekitError(
        f"tokenizer decoder {sorted(types)} is not supported: the tokenizer study knows "
        "byte-level BPE, sentencepiece-style (Metaspace, byte fallback), WordPiece and "
        "word-level tokenizers")


def _wordpiece_prefix(tokenizer) -> str:
    return next((p.get("prefix", "##") for p in _decoder_parts(tokenizer)
                 if p.get("type") == "WordPiece"), "##")


def unit_surface(unit: str, kind: str) -> bytes:
    """The bytes a pre-token ``unit`` (in the model's alphabet) stands for in decoded text
    under scheme ``kind``."""
    if kind == "byte_level":
        table = byte_decoder()
        return bytes(table[c] for c in unit)
    if kind == "metaspace":
        return unit.replace("▁", " ").encode("utf-8")
    return (" " + unit).encode("utf-8")


def token_surface(token: str, kind: str, prefix: str = "##") -> bytes:
    """The bytes one vocabulary token decodes to under scheme ``kind``."""
    if kind == "byte_level":
        table = byte_decoder()
        if all(c in table for c in token):
            return bytes(table[c] for c in token)
        return token.encode("utf-8")
    if kind == "metaspace":
        m = _BYTE_TOKEN.fullmatch(token)
        return bytes([int(m.group(1), 16)]) if m else token.replace("▁", " ").encode("utf-8")
    if kind == "wordpiece" and token.startswith(prefix):
        return token[len(prefix):].encode("utf-8")
    return (" " + token).encode("utf-8")


def vocabulary(tokenizer) -> Vocabulary:
    """The tokenizer's vocabulary as a :class:`Vocabulary` of surfaces (special and added
    tokens left out; ``<0xNN>`` tokens marked as byte-fallback pieces)."""
    kind = scheme(tokenizer)
    backend = _backend(tokenizer)
    added = set(backend.get_added_tokens_decoder()) | set(tokenizer.all_special_ids)
    prefix = _wordpiece_prefix(tokenizer)
    surfaces, byte_ids = {}, []
    for token, tid in backend.get_vocab(with_added_tokens=False).items():
        if tid in added:
            continue
        surfaces[tid] = token_surface(token, kind, prefix)
        if kind == "metaspace" and _BYTE_TOKEN.fullmatch(token):
            byte_ids.append(tid)
    return Vocabulary(surfaces, byte_ids=byte_ids)


def word_units(tokenizer, texts) -> Counter:
    """Pre-token units of ``texts`` with their counts, in the model's alphabet: the
    tokenizer's normalizer and pre-tokenizer, then (metaspace) a split before each ``▁``
    run, so that a unit is one word with its leading whitespace."""
    backend = _backend(tokenizer)
    kind = scheme(tokenizer)
    counts: Counter = Counter()
    for text in texts:
        norm = backend.normalizer.normalize_str(text) if backend.normalizer else text
        pre = (backend.pre_tokenizer.pre_tokenize_str(norm) if backend.pre_tokenizer
               else [(norm, (0, len(norm)))])
        for unit, _ in pre:
            if kind == "metaspace":
                counts.update(re.findall(r"▁*[^▁]+|▁+", unit))
            elif unit:
                counts[unit] += 1
    return counts


def unit_ids(tokenizer, unit: str) -> list[int]:
    """The canonical encoding of one pre-token unit (the tokenizer's own model)."""
    return [t.id for t in _backend(tokenizer).model.tokenize(unit)]


def encode(tokenizer, text: str) -> list[int]:
    """The canonical encoding of ``text`` without special tokens."""
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def load_tokenizer(spec: str):
    """The tokenizer of a model spec, without loading the weights (embedded models: from
    collapsekit's cache when the model was loaded once, else from the GGUF file)."""
    from transformers import AutoTokenizer

    from .registry import cache_dir, file_sha256, parse_spec, quiet_hf

    quiet_hf()
    parsed = parse_spec(spec)
    while parsed.kind == "adapter" and not (parsed.where / "tokenizer_config.json").is_file():
        parsed = parsed.base  # an adapter saved without its tokenizer uses the base's
    where = parsed.where
    try:
        if parsed.kind == "gguf":
            cached = cache_dir() / "models" / file_sha256(where)[:20]
            if (cached / "collapsekit.json").is_file():
                return AutoTokenizer.from_pretrained(cached)
            return AutoTokenizer.from_pretrained(where.parent, gguf_file=where.name)
        return AutoTokenizer.from_pretrained(
            where, **({"revision": parsed.revision} if parsed.revision else {}))
    except OSError as exc:
        raise CollapsekitError(f"could not load the tokenizer of {spec!r} ({exc}); check "
                               "the folder's tokenizer files or that the hub is reachable"
                               ) from exc
