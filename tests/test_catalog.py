"""The metric catalogue (collapsekit.metrics.CATALOG) covers every recorded metric name."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from collapsekit.metrics import CATALOG
from collapsekit.metrics.catalog import MetricInfo, lookup

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "collapsekit"
STUDIES = SRC / "studies"


def resolve(dotted: str):
    """The object a dotted name points to: submodules of packages first, then attributes
    (so ``collapsekit.metrics.neural_collapse.nc1`` is the module's function, not an
    attribute of the function ``collapsekit.metrics.neural_collapse``)."""
    parts = dotted.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], start=2):
        name = ".".join(parts[:i])
        if hasattr(obj, "__path__"):  # a package: a submodule of that name wins
            try:
                obj = importlib.import_module(name)
                continue
            except ModuleNotFoundError as e:
                if e.name != name:  # a real module whose own import failed
                    raise
        obj = getattr(obj, part)
    return obj


def _uncatalogued(names) -> list[str]:
    return sorted({n for n in names if lookup(n) is None})


# (a) the golden records of a full tiny scan -------------------------------------------------
def test_every_golden_scan_metric_is_catalogued():
    recs = json.loads((ROOT / "tests" / "golden" / "scan_tiny_records.json").read_text())
    names = {r["metric"] for r in recs}
    assert len(names) > 80
    assert _uncatalogued(names) == []


# (b) literal names recorded in src/collapsekit/studies ------------------------------------
def _sink(call: ast.Call):
    """(argument expression holding the metric name, prefix the callee adds) of a recording
    call, or None: ``x.add(name, ...)``, ``_mean_ci(run, name)``, ``_summary(run, name)``
    (records ``mean_<name>``)."""
    f = call.func
    if isinstance(f, ast.Attribute) and f.attr == "add" and call.args:
        return call.args[0], ""
    if isinstance(f, ast.Name) and f.id in ("_mean_ci", "_summary") and len(call.args) >= 2:
        return call.args[1], "mean_" if f.id == "_summary" else ""
    return None


def _str(node) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def recorded_literals(source: str) -> list[str]:
    """Metric names that appear as literals in recording calls of ``source``: the name
    argument itself, ``dict(metric="...")`` records, and the values of a ``for`` loop over a
    literal tuple whose variable is passed as the name (or, when called ``metric``, stored
    as a key, ``values[metric] = ``, of a dict whose items are recorded)."""
    tree = ast.parse(source)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            sink = _sink(node)
            if sink and _str(sink[0]) is not None:
                names.append(sink[1] + _str(sink[0]))
            if isinstance(node.func, ast.Name) and node.func.id == "dict":
                names += [_str(k.value) for k in node.keywords
                          if k.arg == "metric" and _str(k.value) is not None]
        if isinstance(node, ast.For) and isinstance(node.iter, (ast.Tuple, ast.List)):
            unpack = isinstance(node.target, ast.Tuple)
            targets = node.target.elts if unpack else [node.target]
            sinks = [s for s in map(_sink, (n for n in ast.walk(node)
                                            if isinstance(n, ast.Call))) if s]
            sinks += [(t.slice, "") for n in ast.walk(node) if isinstance(n, ast.Assign)
                      for t in n.targets if isinstance(t, ast.Subscript)
                      and isinstance(t.slice, ast.Name) and t.slice.id == "metric"]
            for sink in sinks:
                if not isinstance(sink[0], ast.Name):
                    continue
                for i, t in enumerate(targets):
                    if isinstance(t, ast.Name) and t.id == sink[0].id:
                        for item in node.iter.elts:
                            value = _str(item.elts[i] if unpack and isinstance(
                                item, (ast.Tuple, ast.List)) else item)
                            if value is not None:
                                names.append(sink[1] + value)
    return names


def _studies_names() -> dict[str, list[str]]:
    return {str(p.relative_to(SRC)): recorded_literals(p.read_text(encoding="utf-8"))
            for p in sorted(STUDIES.rglob("*.py"))}


def test_scanner_finds_literal_loop_and_dict_records():
    found = {n for names in _studies_names().values() for n in names}
    # one of each form: x.add literal, for-loop tuple, pair tuple, _summary, dict(metric=)
    for name in ("probe_skipped", "attention_entropy_normalised",
                 "rank_collapse_residual_l1linf", "mean_input_conflict_rate",
                 "mean_num_interpretations", "drift_collapse", "intention_entropy",
                 "word_types", "geodesic_distance_to_anchor"):
        assert name in found, name
    assert len(found) > 40


def test_scanner_flags_an_uncatalogued_name():
    src = ("def stage(run):\n"
           "    run.add('rankme', 1.0)\n"
           "    run.add('not_a_metric_xyz', 1.0)\n"
           "    for m in ('anisotropy', 'also_not_a_metric'):\n"
           "        run.add(m, 0.0)\n"
           "    _summary(run, 'candidate_entropy', [1.0], seed=0)\n")
    names = recorded_literals(src)
    assert sorted(names) == ["also_not_a_metric", "anisotropy", "mean_candidate_entropy",
                             "not_a_metric_xyz", "rankme"]
    assert _uncatalogued(names) == ["also_not_a_metric", "not_a_metric_xyz"]


def test_every_literal_name_recorded_in_studies_is_catalogued():
    missing = {f: _uncatalogued(n) for f, n in _studies_names().items() if _uncatalogued(n)}
    missing.pop("studies/registry.py", None)  # its docstring example is not parsed anyway
    assert missing == {}


# names built from dict keys ----------------------------------------------------------------
def _dict_keys(fn: ast.FunctionDef) -> set[str]:
    """String keys of dict literals, ``out["k"] = ...`` assignments and ``.update(k=...)``
    keywords inside ``fn``."""
    keys = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Dict):
            keys |= {_str(k) for k in node.keys if _str(k) is not None}
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                for s in (t.elts if isinstance(t, ast.Tuple) else [t]):
                    if isinstance(s, ast.Subscript) and _str(s.slice) is not None:
                        keys.add(_str(s.slice))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr == "update"):
            keys |= {k.arg for k in node.keywords if k.arg}
    return keys


def _functions(path: Path, names) -> list[ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name in names]


def test_recursion_curve_names_are_catalogued():
    """Every learner's evaluate/initial/summaries key and the engine's pool curves."""
    keys = set()
    for path in sorted((STUDIES / "recursion" / "learners").glob("*.py")):
        for fn in _functions(path, ("evaluate", "initial", "summaries", "closed_forms",
                                    "summary_closed_forms")):
            keys |= _dict_keys(fn)
    for fn in _functions(STUDIES / "recursion" / "engine.py", ("run_lanes",)):
        keys |= {k for k in _dict_keys(fn) if k in ("real_fraction", "mean_age")}
    assert {"test_error", "nll_real", "gini_simpson", "tail_mass", "fixation_generation",
            "cross_entropy", "js_unigram_real", "real_fraction", "mean_age"} <= keys
    assert _uncatalogued(keys) == []


def test_neural_collapse_names_are_catalogued():
    from collapsekit.metrics import neural_collapse
    from collapsekit.studies.neural_collapse import FIELDS

    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((60, 4)), np.repeat(np.arange(6), 10)
    res = neural_collapse(x, y, classifier=rng.standard_normal((6, 4)))
    recorded = set(res) - set(FIELDS)  # what the study records (the rest are record fields)
    assert {"nc1", "cdnv", "duality_error", "n_samples", "cdnv_undefined_pairs"} <= recorded
    nc4 = set().union(*(_dict_keys(f) for f in _functions(STUDIES / "neural_collapse.py",
                                                          ("_nc4",))))
    assert "nc4_agreement" in nc4
    assert _uncatalogued(recorded | nc4) == []


def test_geometry_diversity_agents_and_length_names_are_catalogued():
    from collapsekit.stats.moments import Moments
    from collapsekit.studies import agents, diversity, geometry

    rng = np.random.default_rng(0)
    acc = Moments(6)
    acc.update(rng.standard_normal((40, 6)))
    layer = geometry.layer_metrics(acc)
    names = set(layer) | set(geometry.summary([layer, layer]))
    texts = ["the cat sat on the mat today", "a dog ran in the park again",
             "the cat sat on the mat today", "go go go go go go go go go"]
    emb = rng.standard_normal((4, 5))
    names |= set(diversity.group_metrics(texts, emb))
    names |= set(diversity.pooled_metrics(texts, emb))
    eq, w = np.eye(4, dtype=bool), np.eye(4)
    names |= set(diversity.uncertainty_metrics(eq, w, [-1.0, -2.0, -1.5, -3.0]))
    names |= set(diversity.degeneration_metrics(texts))
    sc = agents.Scenario("s", "the river is clean", ({"kind": "must_mention", "term": "river"},),
                         ("a", "b", "c", "d"))
    means, _ = agents.round_metrics(texts, sc, emb, rng.standard_normal(5))
    names |= set(means)
    fns = _functions(STUDIES / "length_collapse.py", ("bucket_metrics",))
    names |= set().union(*(_dict_keys(f) for f in fns))
    assert {"rankme", "isoscore", "min_rankme_layer", "semantic_entropy_likelihood",
            "seq_rep_4", "compliance", "centroid_distance", "pooled_distinct_3"} <= names
    assert _uncatalogued(names) == []


# (c) function names resolve; (d) field values --------------------------------------------
@pytest.mark.parametrize("name", sorted(CATALOG))
def test_function_resolves_to_a_callable(name):
    obj = resolve(CATALOG[name].function)
    assert callable(obj), CATALOG[name].function


def test_resolve_fails_on_a_wrong_name():
    with pytest.raises(AttributeError):
        resolve("collapsekit.metrics.no_such_metric_function")


def test_fields():
    bad = []
    for name, info in CATALOG.items():
        assert isinstance(info, MetricInfo)
        if info.collapse not in ("low", "high", None) or info.scale not in (None, "log"):
            bad.append((name, "collapse/scale"))
        if not (info.label and info.doc and info.reference and isinstance(info.unit, str)):
            bad.append((name, "empty field"))
        if "\n" in info.doc or not info.function.startswith("collapsekit."):
            bad.append((name, "doc/function"))
        if not re.match(r"^[a-z][a-z0-9_]*$", name):
            bad.append((name, "key"))
    assert bad == []
    with pytest.raises(dataclasses.FrozenInstanceError):
        CATALOG["rankme"].label = "x"


def test_lookup_resolves_summary_prefixes_only_for_catalogued_metrics():
    assert lookup("rankme") is CATALOG["rankme"]
    assert lookup("mean_self_bleu") is CATALOG["self_bleu"]
    assert lookup("pooled_distinct_3") is CATALOG["distinct_3"]
    assert lookup("max_geodesic_distance_to_anchor") is CATALOG["geodesic_distance_to_anchor"]
    assert lookup("min_rankme_layer") is CATALOG["min_rankme_layer"]
    assert lookup("mean_age") is CATALOG["mean_age"]  # its own entry, not a prefix of "age"
    assert lookup("rankme_layer") is None and lookup("mean_not_a_metric") is None


def test_catalog_module_imports_nothing_from_collapsekit():
    tree = ast.parse((SRC / "metrics" / "catalog.py").read_text(encoding="utf-8"))
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "." for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert imported <= {"__future__", "dataclasses"}


# (e) the README's metric table ------------------------------------------------------------
def readme_metric_names(text: str) -> list[str]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines)
                 if line.replace(" ", "").startswith("|part|metric|"))
    names = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = line.split("|")
        names += re.findall(r"`([^`]+)`", cells[2])
    return names


def test_readme_metric_table_names_catalogued_metrics():
    names = readme_metric_names((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(names) > 20 and "rankme" in names
    assert _uncatalogued(names) == []


def test_readme_parser_sees_a_wrong_name():
    text = ("| part | metric | definition (source) | collapse looks like |\n|---|---|---|---|\n"
            "| x | `rankme`, `…_normalised` | d | low |\n\nafter\n")
    assert readme_metric_names(text) == ["rankme", "…_normalised"]
    assert _uncatalogued(readme_metric_names(text)) == ["…_normalised"]


def test_metrics_command_prints_the_catalogue(monkeypatch, capsys):
    from conftest import run_cli

    code, out, _ = run_cli(monkeypatch, capsys, "metrics")
    assert code == 0
    listed = [line.split(":")[0] for line in out.splitlines()]
    assert listed == list(CATALOG)
    code, out, _ = run_cli(monkeypatch, capsys, "metrics", "mean_rankme", "anisotropy")
    assert out.splitlines()[0].startswith("mean_rankme: RankMe [dimensions; lower = more")
    assert "higher = more collapsed" in out.splitlines()[1]
    code, _, err = run_cli(monkeypatch, capsys, "metrics", "no_such_metric")
    assert code == 2 and "no metric 'no_such_metric'" in err
