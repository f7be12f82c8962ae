"""Reading user files: prompts, texts and samples, with errors that name the file and line."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from .errors import InputFileError

BUNDLED_PROMPTS = "bundled"


def _read_text(path: str | Path) -> str:
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputFileError(f"{path} does not exist or is not a file: check the path")
    try:
        return path.read_text(encoding="utf-8-sig")  # a leading BOM is not text
    except UnicodeDecodeError as exc:
        raise InputFileError(f"{path} is not UTF-8 text (byte {exc.start}): re-save it as UTF-8"
                             ) from exc
    except OSError as exc:
        raise InputFileError(f"cannot read {path}: {exc.strerror}") from exc


def read_data_or_file(path: str | Path | None, bundled: str, what: str) -> tuple[str, str]:
    """``(text, where)`` of a user file, or of the bundled ``collapsekit/data/<bundled>`` when
    ``path`` is None; ``where`` names it in errors. ``what`` says what the file holds."""
    if path is None:
        return (resources.files("collapsekit.data").joinpath(bundled).read_text("utf-8"),
                f"bundled {bundled}")
    try:
        return _read_text(path), str(path)
    except InputFileError as exc:
        raise InputFileError(f"cannot read {what} file ({exc})") from None


def lines(text: str) -> list[str]:
    """``text`` split at newlines only (``str.splitlines`` also splits at U+2028, U+2029 and
    other separators that may sit inside a prompt or a JSON string)."""
    return [ln.removesuffix("\r") for ln in text.split("\n")]


def read_jsonl(path: str | Path) -> list[dict]:
    """Objects of a JSON-lines file; blank lines are skipped."""
    rows = []
    for lineno, line in enumerate(lines(_read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(f"{path}, line {lineno}: not valid JSON ({exc.msg}): fix or "
                                 "remove that line") from exc
        if not isinstance(obj, dict):
            raise InputFileError(f"{path}, line {lineno}: expected a JSON object, got "
                                 f"{type(obj).__name__}")
        rows.append(obj)
    return rows


def read_texts(path: str | Path, *, field: str = "text") -> list[str]:
    """Texts from a ``.jsonl`` file (one object per line with ``field``, or ``"prompt"`` for
    prompt files) or a plain text file (one text per line; blank lines and lines starting
    with ``#`` are skipped). An empty result is an error."""
    path = Path(path).expanduser()
    if path.suffix == ".jsonl":
        texts = []
        for i, row in enumerate(read_jsonl(path), start=1):
            value = row.get(field, row.get("prompt", row.get("text")))
            if not isinstance(value, str):
                raise InputFileError(f"{path}, record {i}: no string field {field!r}")
            if not value.strip():
                raise InputFileError(f"{path}, record {i}: the {field!r} field is empty or "
                                     "only whitespace: give it text or remove the record")
            texts.append(value)
    else:
        texts = [ln.strip() for ln in lines(_read_text(path))
                 if ln.strip() and not ln.lstrip().startswith("#")]
    if not texts:
        raise InputFileError(f"{path} holds no texts: write one per line (or JSONL with a "
                             f"{field!r} field)")
    return texts


def read_prompts(path: str | Path = BUNDLED_PROMPTS) -> list[str]:
    """Prompts from a file, or collapsekit's bundled open-ended prompts for ``"bundled"``."""
    if str(path) == BUNDLED_PROMPTS:
        text = resources.files("collapsekit.data").joinpath("prompts.txt").read_text("utf-8")
        return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    return read_texts(path, field="prompt")


def read_samples(path: str | Path, *, by: str = "prompt_id") -> dict[str, list[str]]:
    """Model samples grouped by prompt from a JSONL file with ``text`` and ``prompt_id`` (or
    ``prompt``) fields — the format ``collapsekit scan`` writes to ``samples.jsonl``.
    ``by="prompt"`` groups by the prompt text first (ids differ between prompt files).
    Records with the same ``key`` (collapsekit's sample key) count once."""
    if by not in ("prompt_id", "prompt"):
        raise ValueError(f"by={by!r}: group by 'prompt_id' or 'prompt'")
    other = "prompt" if by == "prompt_id" else "prompt_id"
    groups: dict[str, list[str]] = {}
    kinds: dict[str, type] = {}
    seen: set = set()
    for i, row in enumerate(read_jsonl(path), start=1):
        if "key" in row:  # collapsekit's content key: a sample written twice counts once
            if row["key"] in seen:
                continue
            seen.add(row["key"])
        text = row.get("text")
        key = row.get(by, row.get(other))
        if not isinstance(text, str) or key is None:
            raise InputFileError(f"{path}, record {i}: needs a string 'text' and a 'prompt_id' "
                                 "or 'prompt' field")
        if kinds.setdefault(str(key), type(key)) is not type(key):
            raise InputFileError(f"{path}, record {i}: {by} {key!r} is also written as "
                                 f"{str(key)!r} with another type: write every id the same way")
        groups.setdefault(str(key), []).append(text)
    if not groups:
        raise InputFileError(f"{path} holds no samples")
    return groups
