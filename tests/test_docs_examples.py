"""Every code block of README.md and docs/*.md runs as written, shrunk by the documented
mapping below (a new page is picked up by its name; nothing is skipped silently).

Blocks: ```python blocks are executed; every line of a ```bash / ```sh block (continuation
lines joined, comments cut) is a command. ``collapsekit ...`` commands run through the real
command line, one page after another in one folder (so two commands that would meet in one
default --out folder fail here as they would for a reader), with
  - MODELS: every model spec (embedded:NAME, ./folder) -> a link, named as the spec, to the
    tiny saved llama of conftest (on the RICH pages its byte-level, 10-block, 1024-position
    sibling); ``--device cuda`` -> ``--device cpu``; in python blocks
    the quoted specs and the default model (``registry.DEFAULT_MODEL``) are the tiny model;
  - SHRINK: per command, flags appended to make it small (a later flag wins in click);
  - FILES: the input files the examples name (my_corpus.txt, mine.jsonl, sweep.toml, ...)
    are written first, small, on the tiny vocabulary where a non-RICH page reads them
    (PAGE_FILES: a page's own version);
    LINKS: copies of the tiny model under the folder names those files give.
Commands and blocks in NOT_RUN are not run, each with its reason; an entry that matches
nothing fails (stale). The README's commands and python blocks run in the default suite;
the docs pages' commands are ``slow`` (about a minute in all on the tiny model).
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from conftest import (make_model, make_rich_model, make_rich_tokenizer, make_tokenizer,
                      run_cli)

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHELL = ("bash", "sh", "shell", "console")

# Commands not run, by prefix, with the reason.
NOT_RUN = {
    "make ": "the set-up itself (make demo / make test run this suite)",
    ".venv/bin/python benchmarks/": "timed benchmarks (minutes on real models); run by hand",
    "python benchmarks/": "timed benchmarks (minutes on real models); run by hand",
    "ray start": "starts a Ray cluster",
    "collapsekit sweep sweep.toml --device cuda --ray-address": "needs a Ray cluster",
    "collapsekit trajectory EleutherAI/": "downloads checkpoints from the hub",
    "collapsekit geometry --model ./big --texts corpus": "--shards needs Ray workers",
    "collapsekit trajectory ./out/my-run": "needs a training run's checkpoint-N folders "
                                            "(tests/test_scale.py builds some)",
}
# python blocks not run, by their first line, with the reason.
NOT_RUN_PY = {
    "from collapsekit.monitor import CollapseCallback, Monitor":
        "needs a training set-up (trainer, loader, optimizer) the snippet leaves to the "
        "reader; tests/test_monitor*.py run the same calls",
    "@dataclass": "the Study declaration, shown for reading (tests/test_study_registry.py)",
    'Rule("my collapse", "my_metric", "my section", "first", axis="step", margin=0.2)':
        "one line to paste into report/summary.py's RULES, not a program",
    "monitor = DriftMonitor(reference_lm, texts)          # reference NLLs computed once":
        "a loop over the reader's own edits (my_edits, apply); tests/test_drift.py runs "
        "DriftMonitor",
}
# Flags appended per command: small settings on the tiny model.
SHRINK = {
    "scan": ["--param", "geometry.n=4", "--param", "geometry.max_length=16",
             "--param", "diversity.k=2", "--param", "diversity.max_new_tokens=4",
             "--param", "diversity.n_prompts=2", "--no-report"],
    "geometry": ["--n", "4", "--max-length", "16", "--no-report"],
    "diversity": ["--k", "2", "--max-new-tokens", "4", "--param", "n_prompts=2",
                  "--no-report"],
    "simulate": ["--generations", "2", "--seeds", "2"],
    "trajectory": ["--quick", "--no-report", "--param", "geometry.n=4",
                   "--param", "geometry.max_length=16"],
    # numbers and finetune on the 10-block rich model: fewer probe folds and label
    # shuffles, one ablated block; 2 generations of 2 steps (these win over a page's own
    # --generations 8 --steps 32, as later flags do)
    "numbers": ["--quick", "--no-report", "--folds", "2", "--permutations", "2",
                "--ablation-layers", "1"],
    "finetune": ["--quick", "--no-report", "--generations", "2", "--steps", "2",
                 "--n-samples", "4", "--max-new-tokens", "8", "--n-real", "4",
                 "--n-heldout", "4", "--n-probe", "4", "--batch-size", "4"],
    "compare": [],
    "report": [],
    "metrics": [],
}
QUICK = ["--quick", "--no-report"]  # every other study command
FILES = {
    "my_corpus.txt": "the cat sees the dog .\nthe king loves the queen .\n" * 4,
    "corpus.txt": "the cat sees the dog .\nthe king loves the queen .\n" * 4,
    "prompts.txt": "the cat\na dog\n",
    "norms.csv": "category,item,typicality\n" + "".join(  # words of the tiny vocabulary
        f"{c},{w},{t}\n" for c, ws in (("animal", "cat dog bird fish"),
                                       ("nature", "tree river sun moon star water fire"),
                                       ("person", "king queen man woman child"),
                                       ("colour", "red blue green gold"),
                                       ("verb", "runs walks sings sees finds makes takes"))
        for t, w in enumerate(ws.split(), 1)),
    "samples.jsonl": "".join(json.dumps({"prompt_id": p, "text": t}) + "\n" for p, t in [
        ("a", "the cat runs"), ("a", "the dog walks"), ("b", "a king sings"),
        ("b", "a queen sings")]),
    "mine.jsonl": json.dumps({  # an agents scenario (docs/agents.md, Scenario files)
        "name": "cat-dog", "anchor": {"statement": "the cat sees the dog .", "constraints": [
            {"kind": "must_mention", "term": "cat"}, {"kind": "max_words", "value": 8}]},
        "agents": ["the king loves the queen .", "a dog walks ."]}) + "\n",
    "my_items.jsonl": "".join(json.dumps(d) + "\n" for d in [  # docs/ambiguity.md, Items
        {"id": "pet", "category": "lexical", "turn1": "the cat sees the dog .",
         "candidates": ["the cat .", "the dog ."], "turn2": "the dog runs .", "intended": 1},
        {"id": "king", "category": "referential", "turn1": "the king loves the queen .",
         "candidates": ["the king .", "the queen ."], "turn2": "the king sings .",
         "intended": 0}]),
    "my.jsonl": "".join(json.dumps(d) + "\n" for d in [  # docs/intention.md, Problems
        {"id": "q1", "question": "Tom has 3 apples and buys 4 more. How many apples does he "
         "have?", "answer": 7},
        {"id": "q2", "question": "A box holds 6 eggs. How many eggs are in 2 boxes?",
         "answer": 12},
        {"id": "q3", "question": "Ann had 9 pens and gave away 5. How many are left?",
         "answer": 4}]),
    "checkpoints.txt": "./ckpt-a 100\n./ckpt-b 200   # one spec per line, then its step\n",
    "sweep.toml": ('studies = ["geometry", "diversity"]\nmodels = ["./base"]\nseeds = [0]\n'
                   'quick = true\n[params]\n"geometry.n" = 4\n"geometry.max_length" = 16\n'
                   '"diversity.n_prompts" = 2\n"diversity.k" = 2\n'
                   '"diversity.max_new_tokens" = 4\n[grid]\ntemperature = [0.7, 1.0]\n'),
}
# A page's own version of a file another page also names (docs/simulate.md, Sweep file).
PAGE_FILES = {"simulate.md": {"sweep.toml": 'learner = "gaussian"\nstrategies = ["replace", '
                                            '"accumulate"]\ngenerations = 3\nseeds = 4\n'
                                            '[params]\nd = 2\nm = 50\n'}}
LINKS = ("ckpt-a", "ckpt-b", "base")  # model folders the files above name, in the page's folder
MODEL_FLAGS = ("--model",)
# Pages whose commands run on the rich tiny model (conftest.make_rich_model: byte-level BPE
# that spells any text, 1024 positions, 10 blocks): their studies read the bundled
# documents, problems and category items, reason for up to 256 tokens, or name block 4 / 9.
RICH = ("concepts.md", "drift.md", "finetune.md", "intention.md", "numbers.md")


def blocks(page: Path):
    for m in FENCE.finditer(page.read_text(encoding="utf-8")):
        yield m.group(1), m.group(2)


def commands(body: str) -> list[str]:
    text = re.sub(r"\\\n\s*", " ", body)
    out = []
    for line in text.splitlines():
        line = re.split(r"\s#\s|\s+#\s", " " + line, maxsplit=1)[0].strip()
        if line and not line.startswith("#"):
            out.append(line)
    return out


def not_run(cmd: str) -> str | None:
    return next((why for prefix, why in NOT_RUN.items() if cmd.startswith(prefix)), None)


def shrink(cmd: str, tiny: Path) -> list[str]:
    """The argv of a documented collapsekit command on the tiny model: each model spec
    becomes its own link to the tiny model (named as the spec, so runs keep their folders
    apart as the reader's would), and the reader's default --out is given explicitly, so the
    appended --quick does not move it."""
    from collapsekit.cli import default_out

    args = shlex.split(cmd)[1:]
    name, out, specs, i = args[0], [], [], 0
    while i < len(args):
        a = args[i]
        if a in MODEL_FLAGS and i + 1 < len(args):
            specs.append(args[i + 1])
            out += [a, str(_link(tiny, args[i + 1]))]
            i += 2
            continue
        if a == "--device" and i + 1 < len(args) and args[i + 1].startswith("cuda"):
            out += [a, "cpu"]
            i += 2
            continue
        out.append(a)
        i += 1
    extra = list(SHRINK.get(name, QUICK))
    if name == "simulate" and "lm" in args:  # the causal-LM learner on the tiny model
        extra += ["--param", f"model={tiny}", "--param", "n_train=8", "--param", "n_test=8",
                  "--param", "max_tokens=8"]
    takes_model = name not in ("simulate", "compare", "report", "metrics", "manifold",
                               "trajectory")
    if takes_model and not specs and not (name == "diversity" and "--samples" in out):
        extra += ["--model", str(tiny)]
    if "--out" not in out and name not in ("compare", "report", "metrics"):
        parts = ([args[args.index("--learner") + 1]] if name == "simulate" else
                 [*specs, "quick" if "--quick" in args else None])
        extra += ["--out", str(default_out(name, *parts))]
    return out + extra


def _link(tiny: Path, spec: str) -> Path:
    """A link to the tiny model named after ``spec``'s last path component."""
    from collapsekit.cli import default_out

    link = tiny.parent / default_out("x", spec).name[2:]
    if not link.exists():
        link.symlink_to(tiny, target_is_directory=True)
    return link


@pytest.fixture
def tiny_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "tiny-llama"
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return path


@pytest.fixture
def rich_model_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("rich") / "rich-llama"
    make_rich_model().save_pretrained(path, safe_serialization=True)
    make_rich_tokenizer().save_pretrained(path)
    return path


def page_commands(page: Path) -> list[str]:
    return [c for lang, body in blocks(page) if lang in SHELL for c in commands(body)]


def run_page(page, tiny, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name, text in {**FILES, **PAGE_FILES.get(page.name, {})}.items():
        (tmp_path / name).write_text(text)
    for name in LINKS:
        shutil.copytree(tiny, tmp_path / name)  # a copy: a checkpoint is named by its folder
    failures = []
    for cmd in page_commands(page):
        if not_run(cmd):
            continue
        assert cmd.startswith("collapsekit "), (
            f"{page.name}: {cmd!r} is neither a collapsekit command nor in NOT_RUN")
        argv = shrink(cmd, tiny)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            code, out, err = run_cli(monkeypatch, capsys, *argv)
        if code not in (0, None):
            failures.append(f"{cmd}\n    ran as: collapsekit {' '.join(argv)}\n    "
                            f"{err.strip()[-300:]}")
    assert not failures, f"{page.name}: commands that fail:\n" + "\n".join(failures)


def test_readme_commands_run(tiny_model_dir, tmp_path, monkeypatch, capsys, one_thread):
    run_page(ROOT / "README.md", tiny_model_dir, tmp_path, monkeypatch, capsys)


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES[1:], ids=lambda p: p.name)
def test_docs_commands_run(page, request, tmp_path, monkeypatch, capsys, one_thread):
    model = request.getfixturevalue("rich_model_dir" if page.name in RICH else "tiny_model_dir")
    run_page(page, model, tmp_path, monkeypatch, capsys)


def python_blocks():
    for page in PAGES:
        for lang, body in blocks(page):
            if lang == "python":
                first = body.strip().splitlines()[0]
                yield pytest.param(page, body, id=f"{page.name}:{first[:40]}")


@pytest.mark.parametrize("page, body", list(python_blocks()))
def test_python_block_runs(page, body, tiny_model_dir, tmp_path, monkeypatch, one_thread):
    first = body.strip().splitlines()[0]
    if first in NOT_RUN_PY:
        pytest.skip(NOT_RUN_PY[first])
    monkeypatch.chdir(tmp_path)
    code = body
    for spec in re.findall(r"\"(embedded:[\w.-]+|\./[\w./-]+)\"", body):
        code = code.replace(f'"{spec}"', repr(str(tiny_model_dir)))
    from collapsekit.models import registry
    monkeypatch.setattr(registry, "DEFAULT_MODEL", str(tiny_model_dir))  # run_study(model=None)
    if "collapse-report" in code:    # a results folder to read: a small run of the tiny model
        from collapsekit.studies import run_study
        run_study("geometry", tmp_path / "collapse-report", model=str(tiny_model_dir),
                  params={"n": 4, "max_length": 16}, report=False)
    import matplotlib
    matplotlib.use("Agg")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        exec(compile(code, f"{page.name} python block", "exec"), {"__name__": "__docs__"})


def test_rich_tokenizer_spells_any_text():
    """The RICH pages' tokenizer: RICH_VOCAB tokens, the same vocabulary on every build,
    no <unk> for the bundled category items, any text decoded back as it was."""
    from collapsekit.studies.concepts import read_concepts
    from conftest import RICH_VOCAB

    tok = make_rich_tokenizer()
    assert len(tok) == RICH_VOCAB
    assert tok.backend_tokenizer.to_str() == make_rich_tokenizer().backend_tokenizer.to_str()
    items = [" " + it for it in read_concepts().items]
    assert all(tok.unk_token_id not in ids
               for ids in tok(items, add_special_tokens=False)["input_ids"])
    text = "Zoë's café, 3½ km from 東京 — [[wiki]] <b>x</b>\tend\n"
    assert tok.decode(tok(text)["input_ids"]) == text


def test_every_not_run_entry_matches_something():
    cmds = [c for page in PAGES for c in page_commands(page)]
    firsts = [body.strip().splitlines()[0] for page in PAGES for lang, body in blocks(page)
              if lang == "python"]
    for prefix in NOT_RUN:
        assert any(c.startswith(prefix) for c in cmds), f"stale NOT_RUN entry {prefix!r}"
    for first in NOT_RUN_PY:
        assert first in firsts, f"stale NOT_RUN_PY entry {first!r}"
    assert sys.version_info >= (3, 10)
