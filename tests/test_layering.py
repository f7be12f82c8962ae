"""The package's layering, checked on the source (AST, no imports): inputs → models/ →
stats/ → metrics/ → studies/ → report/.

(a) only models/ (and the folders of ``MODEL_CODE``) import torch, transformers, safetensors
    or sentence-transformers;
(b) metrics/ and stats/ import nothing of models/, studies/ or report/;
(c) models/ imports nothing of metrics/, studies/ or report/.

Every import counts, at module level or inside a function; relative imports are resolved
against the importing file's package."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "collapsekit"

MODEL_CODE = ("collapsekit/models/", "collapsekit/monitor/")  # may import the libraries below
HEAVY = ("torch", "transformers", "safetensors", "sentence_transformers")
RULES = {  # importing layer → layers of collapsekit it must not import
    "metrics": ("models", "studies", "report"),
    "stats": ("models", "studies", "report"),
    "models": ("metrics", "studies", "report"),
}
# Crossings not removed yet, as (file under src/, imported module). Each needs a reason and
# should disappear; a listed crossing that no longer exists fails the test too.
KNOWN: set = set()  # (file, import) crossings known and not yet removed: none


def _module_name(path: Path, root: Path) -> list[str]:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(path: Path, root: Path = PACKAGE) -> set[str]:
    """Absolute dotted names of every module ``path`` imports (``from a import b`` gives
    ``a`` and ``a.b``: b may be a submodule)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path, root)
    if path.name != "__init__.py":
        package = package[:-1]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.level > len(package):
                    raise AssertionError(f"{path}: relative import beyond the top package")
                base = package[:len(package) - (node.level - 1)]
                base = ".".join(base + ([node.module] if node.module else []))
            else:
                base = node.module
            out.add(base)
            out.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return out


def crossings(root: Path = PACKAGE) -> set[tuple[str, str]]:
    """(file relative to src/, offending import) for every rule broken under ``root``."""
    found = set()
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        parts = _module_name(path, root)
        layer = parts[1] if len(parts) > 1 else None
        for mod in imported_modules(path, root):
            top = mod.split(".")
            if top[0] in HEAVY and not rel.startswith(MODEL_CODE):
                found.add((rel, top[0]))
            if top[0] == "collapsekit" and len(top) > 1 and top[1] in RULES.get(layer, ()):
                found.add((rel, f"collapsekit.{top[1]}"))
    return found


def test_relative_imports_resolve_against_the_package(tmp_path):
    pkg = tmp_path / "collapsekit"
    (pkg / "metrics").mkdir(parents=True)
    (pkg / "studies" / "probes").mkdir(parents=True)
    (pkg / "metrics" / "x.py").write_text(
        "from ..models import capture\nfrom . import bleu\n"
        "def f():\n    from ..studies.scan import scan\n")
    (pkg / "studies" / "probes" / "y.py").write_text(
        "from ...models.registry import load_model\nfrom ..scan import scan\n"
        "import torch.nn\n")
    (pkg / "metrics" / "__init__.py").write_text("from .x import f\nfrom ..report import html\n")
    assert imported_modules(pkg / "studies" / "probes" / "y.py", pkg) >= {
        "collapsekit.models.registry", "collapsekit.studies.scan", "torch.nn"}
    assert crossings(pkg) == {
        ("collapsekit/metrics/x.py", "collapsekit.models"),
        ("collapsekit/metrics/x.py", "collapsekit.studies"),
        ("collapsekit/metrics/__init__.py", "collapsekit.report"),
        ("collapsekit/studies/probes/y.py", "torch"),
    }


def test_no_layer_crossings():
    found = crossings()
    new = sorted(found - KNOWN)
    assert not new, ("layer crossings (see the module docstring): "
                     + "; ".join(f"{f} imports {m}" for f, m in new))
    gone = sorted(KNOWN - found)
    assert not gone, f"fixed crossings still listed in KNOWN, remove them: {gone}"


@pytest.mark.parametrize("layer", ["models", "metrics", "stats", "studies"])
def test_layers_exist(layer):
    assert (PACKAGE / layer).is_dir()  # a renamed folder must not silently pass the scan
