"""Every number the README and docs mark with its source, ``0.201<!-- n:FILE.json:KEY -->``,
equals that JSON's value (written by a script of ``make docs-numbers``, docs/regenerate.py)
to the digits printed. KEY is a dotted path; list items by index (``cross_model_ci.0``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
MARK = re.compile(r"<!--\s*n:([\w.-]+\.json):([\w.-]+)\s*-->")
NUMBER = re.compile(r"(-?\d[\d,]*(?:\.\d+)?)\s*(?:%|s|×)?\s*$")


def marks():
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for m in MARK.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            yield pytest.param(page, text[max(0, m.start() - 40):m.start()], m.group(1),
                               m.group(2), id=f"{page.name}:{line}:{m.group(2)}")


def lookup(data, key: str):
    for part in key.split("."):
        data = data[int(part)] if isinstance(data, list) else data[part]
    return data


def matches(printed: str, value: float) -> bool:
    """``printed`` is ``value`` rounded to the decimals printed (percent: value × 100)."""
    decimals = len(printed.split(".")[1]) if "." in printed else 0
    return round(float(value), decimals) == float(printed.replace(",", ""))


@pytest.mark.parametrize("page, before, file, key", list(marks()))
def test_quoted_number_equals_its_source(page, before, file, key):
    source = ROOT / "docs" / file
    assert source.is_file(), f"{page.name} quotes {file}, which does not exist: make docs-numbers"
    value = lookup(json.loads(source.read_text(encoding="utf-8")), key)
    found = NUMBER.search(before)
    assert found, f"{page.name}: no number right before the mark for {file}:{key}"
    printed = found.group(1)
    percent = before.rstrip().endswith("%")
    assert matches(printed, value * 100 if percent else value), (
        f"{page.name} prints {printed} for {file}:{key}, the JSON holds {value}: "
        "copy the regenerated value (make docs-numbers)")


def test_the_marks_are_found_and_the_checker_can_fail():
    assert any(True for _ in marks()), "no marked number in README.md or docs/*.md"
    assert matches("0.201", 0.2011) and matches("63", 63.2) and matches("1,234", 1234)
    assert not matches("0.198", 0.2011) and not matches("0.20", 0.2051)
    assert lookup({"a": [1, {"b": 2}]}, "a.1.b") == 2
