"""Regenerate every number the README and docs quote: run each ``docs/*_numbers.py`` script
(found by name, so a new page's script joins by being named so) and the scripts of EXTRA.
Each writes its ``docs/<name>.json`` or rewrites its own marked block of a page.

    make docs-numbers                              # all of them (tens of minutes on 2 cores)
    .venv/bin/python docs/regenerate.py compare    # only docs/compare_numbers.py

A quoted number carries its source right after it, ``0.201<!-- n:compare_numbers.json:
cross_model_cosine -->``; ``tests/test_docs_numbers.py`` checks every such number against
the JSON (to the digits printed). See docs/architecture.md, "Numbers in the docs".
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
EXTRA = [ROOT / "benchmarks" / "judge_accuracy.py"]  # scripts outside docs/ that write docs/*.json


def replace_block(doc: Path, name: str, text: str) -> None:
    """Write ``text`` between the lines ``<!-- numbers:NAME -->`` and
    ``<!-- /numbers:NAME -->`` of ``doc`` (exactly one such block)."""
    import re

    new, n = re.subn(rf"(<!-- numbers:{name} -->\n).*?(\n<!-- /numbers:{name} -->)",
                     lambda m: m.group(1) + text + m.group(2), doc.read_text(encoding="utf-8"),
                     flags=re.S)
    if n != 1:
        raise SystemExit(f"{doc}: expected one <!-- numbers:{name} --> block, found {n}")
    doc.write_text(new, encoding="utf-8")


def scripts(only=()) -> list[Path]:
    found = sorted(DOCS.glob("*_numbers.py")) + [p for p in EXTRA if p.is_file()]
    return [p for p in found if not only or any(p.stem.startswith(o) for o in only)]


def main(argv: list[str]) -> int:
    todo = scripts(argv)
    if not todo:
        print(f"no script matches {argv}: choose among {[p.stem for p in scripts()]}")
        return 2
    failed = []
    for path in todo:
        t0 = time.perf_counter()
        print(f"== {path.relative_to(ROOT)}", flush=True)
        rc = subprocess.call([sys.executable, str(path)], cwd=ROOT)
        print(f"== {path.relative_to(ROOT)}: exit {rc}, {time.perf_counter() - t0:.0f} s",
              flush=True)
        if rc:
            failed.append(path.name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
