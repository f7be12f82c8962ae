"""Agents study: consensus metrics on hand-made texts, manifold dynamics (both update rules
reach the anchor, entropy → 0), scenario errors, the study on a tiny model (every round and
both decodings, resume) and the CLI command."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from conftest import make_model, make_tokenizer, run_cli

from collapsekit.errors import InputFileError
from collapsekit.metrics import consensus as cs
from collapsekit.results import Run, load_run, read_table
from collapsekit.studies import STUDIES, run_study
from collapsekit.studies import agents as ag
from collapsekit.studies import manifold as mf

pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest

RULES = [{"kind": "must_mention", "term": "water"}, {"kind": "must_not_mention", "term": "car"},
         {"kind": "max_words", "value": 5}, {"kind": "min_words", "value": 2}]


# metrics -----------------------------------------------------------------------------
def test_words_and_jaccard_by_hand():
    assert cs.normalise("  Hello,   WORLD!\n It's e-mail. ") == "hello world its email"
    assert cs.words("The cat, the hat.") == ["the", "cat", "the", "hat"]
    # {the, cat, sat} vs {the, dog, sat, down}: 2 shared of 5
    assert cs.jaccard("The cat sat.", "the dog sat down") == pytest.approx(2 / 5)
    assert cs.jaccard("a b", "B, A!") == 1.0
    assert cs.jaccard("a", "b") == 0.0
    assert cs.jaccard("", "...") == 1.0  # no words on either side: identical
    # pairs: (ab, bc) 1/3, (ab, cd) 0, (bc, cd) 1/3
    assert cs.mean_pairwise_jaccard(["a b", "b c", "c d"]) == pytest.approx(2 / 9)


def test_compliance_by_hand():
    assert cs.satisfied("Clean water for all.", RULES) == [True, True, True, True]
    # mentions "cars" (not the word "car"), 6 words, no "water"
    assert cs.satisfied("Cars need more road space here", RULES) == [False, True, False, True]
    assert cs.compliance("Water, car.", RULES) == pytest.approx(3 / 4)
    assert cs.compliance("water", RULES) == pytest.approx(3 / 4)  # one word < min 2
    phrase = [{"kind": "must_mention", "term": "Four-day week"}]
    assert cs.compliance("a fourday week trial", phrase) == 1.0
    assert cs.compliance("four days a week", phrase) == 0.0  # whole consecutive words only
    assert cs.compliance("a week of four", phrase) == 0.0


def test_hash_collisions_and_entropies_by_hand():
    assert cs.hash_collisions(["The cat.", "the  CAT", "a dog"]) == 2
    assert cs.hash_collisions(["x", "x", "x", "y"]) == 3
    assert cs.hash_collisions(["a", "b"]) == 0
    assert cs.text_hash("A b!") == cs.text_hash("a   b")
    # counts a:2, b:1, c:1 -> p = (1/2, 1/4, 1/4) -> 1.5 bits
    assert cs.vocabulary_entropy(["a b", "a c"]) == pytest.approx(1.5)
    assert cs.vocabulary_entropy(["same same", "same"]) == 0.0
    assert cs.von_neumann_entropy(np.eye(2)) == pytest.approx(1.0)  # ρ = I/2
    assert cs.von_neumann_entropy(np.eye(4)[:, :3].T) == pytest.approx(math.log2(3))
    assert cs.von_neumann_entropy([[1.0, 2.0], [2.0, 4.0], [0.5, 1.0]]) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("call, message", [
    (lambda: cs.jaccard(None, "a"), "not a str"),
    (lambda: cs.mean_pairwise_jaccard(["a"]), "at least 2 texts"),
    (lambda: cs.mean_pairwise_jaccard("a b"), "list of strings"),
    (lambda: cs.hash_collisions([]), "at least 1 texts"),
    (lambda: cs.hash_collisions(["a", float("nan")]), r"texts\[1\] is a float"),
    (lambda: cs.vocabulary_entropy(["...", " "]), "no words"),
    (lambda: cs.compliance("a", []), "at least one constraint"),
    (lambda: cs.compliance("a", [{"kind": "must_rhyme", "term": "a"}]), "must_rhyme"),
    (lambda: cs.compliance("a", [{"kind": "max_words", "value": -1}]), "value=-1 must be an integer"),
    (lambda: cs.compliance("a", [{"kind": "must_mention", "term": "!"}]), "at least one word"),
    (lambda: cs.compliance("a", [{"kind": "must_mention", "term": "a", "x": 1}]), "unknown"),
    (lambda: cs.compliance("a", {"kind": "max_words"}), "must be a list"),
    (lambda: cs.von_neumann_entropy(np.zeros((0, 3))), "at least 1"),
    (lambda: cs.von_neumann_entropy([[1.0, np.nan]]), "NaN"),
    (lambda: cs.von_neumann_entropy([1.0, 2.0]), "2-D"),
    (lambda: cs.von_neumann_entropy([[0.0, 0.0]]), "zero vector"),
])
def test_metric_bad_input(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# manifold ----------------------------------------------------------------------------
def test_manifold_both_updates_reach_the_anchor():
    res = mf.manifold_dynamics(n_agents=6, dim=8, rounds=400, eta=0.3, sigma=0.2, decay=2.0)
    last = {r["update"]: r for r in res.rows if r["round"] == 400}
    first = {r["update"]: r for r in res.rows if r["round"] == 0}
    assert first["smooth"] == {**first["noisy"], "update": "smooth", "sigma": 0.0}  # same start
    assert first["smooth"]["geodesic_distance_to_anchor"] > 0.5
    assert first["smooth"]["state_entropy"] > 1.5
    for u in ("smooth", "noisy"):
        assert last[u]["max_geodesic_distance_to_anchor"] < 1e-3
        assert last[u]["state_entropy"] < 1e-4
    assert res.endpoint_gap < 1e-3  # path independence
    # the classic σ0/(1+t) schedule gets there too, more slowly (error ~ 1/t)
    slow = mf.manifold_dynamics(n_agents=4, dim=8, rounds=3000, decay=1.0)
    assert slow.rows[-1]["max_geodesic_distance_to_anchor"] < 1e-3
    same = mf.manifold_dynamics(n_agents=4, dim=8, rounds=5, seed=3)
    assert same == mf.manifold_dynamics(n_agents=4, dim=8, rounds=5, seed=3)


@pytest.mark.parametrize("kw, message", [
    (dict(rounds=0), "rounds=0"), (dict(n_agents=0), "agents=0"), (dict(dim=1), "dim=1"),
    (dict(eta=0.0), "eta=0.0"), (dict(sigma=-1.0), "sigma=-1.0"),
    (dict(decay=float("nan")), "decay=nan"),
])
def test_manifold_bad_input(kw, message):
    with pytest.raises(ValueError, match=message):
        mf.manifold_dynamics(**kw)


# scenarios ---------------------------------------------------------------------------
def test_bundled_scenarios():
    scs = ag.load_scenarios()
    assert len(scs) >= 4 and all(len(s.agents) >= 4 and s.constraints for s in scs)
    for s in scs:  # the anchor meets its own rules
        assert cs.compliance(s.anchor, s.constraints) == 1.0
    s = STUDIES["agents"].settings(quick=True)
    scs = ag._scenarios(s)
    assert len(scs) == 1 and len(scs[0].agents) == 4
    assert s.rounds == 3 and s.max_new_tokens == 40
    assert ag.check(s) == {"scenarios": "bundled", "scenarios_sha256": None,
                           "agents_per_scenario": [4]}
    full = ag._scenarios(STUDIES["agents"].settings())  # full: every scenario and agent
    assert [len(x.agents) for x in full] == [len(x.agents) for x in ag.load_scenarios()]


GOOD = {"name": "s", "anchor": {"statement": "Use water.", "constraints": RULES[:1]},
        "agents": ["a b", "c d"]}


@pytest.mark.parametrize("row, message", [
    ({**GOOD, "anchor": None}, "no anchor"),
    ({**GOOD, "anchor": {"statement": "  "}}, "no anchor"),
    ({**GOOD, "agents": []}, "0 agent"),
    ({**GOOD, "agents": ["only one"]}, "1 agent"),
    ({**GOOD, "agents": ["a", ""]}, "non-empty statements"),
    ({**GOOD, "anchor": {"statement": "x", "constraints": [{"kind": "rhymes"}]}}, "'rhymes'"),
    ({**GOOD, "name": "a b/c"}, "plain name"),
])
def test_scenario_errors(tmp_path, row, message):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(row) + "\n")
    with pytest.raises(InputFileError, match=message):
        ag.load_scenarios(path)


def test_settings_errors(tmp_path):
    study = STUDIES["agents"]
    with pytest.raises(ValueError, match="rounds=0"):
        study.settings({"rounds": 0})
    with pytest.raises(ValueError, match="agents=1"):
        study.settings({"n_agents": 1})
    with pytest.raises(ValueError, match="temperature=0 for study 'agents': must be above 0"):
        study.settings({"temperature": 0})
    with pytest.raises(ValueError, match="max_new_tokens=0"):
        study.settings({"max_new_tokens": 0})
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + json.dumps(GOOD) + "\n")
    with pytest.raises(InputFileError, match="names repeat"):
        ag.load_scenarios(path)


def test_prompt_names_agent_rules_and_neighbours():
    sc = ag.load_scenarios()[0]
    p = ag.rewrite_prompt(sc, 2, "mine", ag._ring(["x", "y", "z", "w"], 2))
    assert "agent 3 " in p and sc.anchor in p and "view: mine" in p
    assert 'mention "park"' in p and 'do not mention "parking"' in p and "at most 40" in p
    assert "neighbours: y | w" in p
    assert ag._ring(["x", "y"], 0) == ["y"]


# the study on a tiny model -------------------------------------------------------------
class TinyLM:
    def __init__(self, model=True):
        self.model, self.tokenizer = (make_model("llama"), make_tokenizer()) if model else (
            None, None)
        self.weight_hash, self.device, self.spec = "tiny-llama", "cpu", "tiny"


def test_stage_records_every_round_and_decoding_and_resumes(tmp_path):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({**GOOD, "agents": ["the cat runs", "a dog sings",
                                                   "the old king", "the moon"]}) + "\n")
    run = Run(tmp_path / "run", study="agents", config={})
    s = STUDIES["agents"].settings({"scenarios": str(path), "rounds": 2, "max_new_tokens": 6,
                                    "neighbours": True}, seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # prompts longer than the tiny context are cut
        ag.study_stage(run, TinyLM(), s)
    recs = [r for r in run.records if r["section"] == "agents"]
    metrics = {"jaccard_to_anchor", "cosine_to_anchor", "compliance", "hash_collisions",
               "hash_collision_fraction", "anchor_copy_fraction", "mean_pairwise_jaccard",
               "mean_pairwise_cosine", "vocabulary_entropy", "state_entropy"}
    for d in ("greedy", "stochastic"):
        for r in range(3):
            got = {x["metric"] for x in recs if x["decoding"] == d and x["round"] == r}
            assert metrics - {"vocabulary_entropy"} <= got, (d, r)
    r0 = {x["metric"]: x["value"] for x in recs if x["round"] == 0 and x["decoding"] == "greedy"}
    # initial statements: {use, water} vs {the, cat, runs} ... -> 0; none says "water"
    assert r0["jaccard_to_anchor"] == 0.0 and r0["compliance"] == 0.0
    assert r0["hash_collisions"] == 0
    assert r0["mean_pairwise_jaccard"] == pytest.approx((1 / 5 + 1 / 4 + 1 / 4) / 6)
    table = read_table(run.path, "agent_texts")
    assert len(table["text"]) == 2 * 3 * 4
    texts = {(d, r): [t for t, dd, rr in zip(table["text"], table["decoding"], table["round"])
                      if (dd, rr) == (d, r)] for d in ("greedy", "stochastic") for r in (1, 2)}
    assert texts[("greedy", 2)] != texts[("stochastic", 2)]
    caches = sorted(p.name for p in (run.path / "agents").iterdir())
    assert caches == ["s-greedy.jsonl", "s-stochastic.jsonl"]
    before = {p: p.read_bytes() for p in (run.path / "agents").iterdir()}
    again = Run(tmp_path / "run2", study="agents", config={})
    (again.path / "agents").mkdir()
    for p, data in before.items():  # a rerun reads every round from the caches
        (again.path / "agents" / p.name).write_bytes(data)
    ag.study_stage(again, TinyLM(model=False), s)  # no model: every round from the caches
    assert {p.name: p.read_bytes() for p in (again.path / "agents").iterdir()} == \
        {p.name: b for p, b in before.items()}
    assert [(r["metric"], r["value"]) for r in again.records] == \
        [(r["metric"], r["value"]) for r in run.records]
    # a finished study is skipped on --resume by the runner (not the stage): see
    # test_cli_quick_on_a_saved_tiny_model


# command line ------------------------------------------------------------------------


def test_cli_manifold_and_errors(monkeypatch, capsys, tmp_path):
    out = tmp_path / "m"
    code, stdout, _ = run_cli(monkeypatch, capsys, "manifold", "--rounds", "30",
                              "--out", str(out), "--json")
    assert code == 0 and (out / "index.html").is_file()
    data = json.loads(stdout)
    assert data["done"] == ["manifold"] and "model" not in data["config"]
    assert {k: data["config"][k] for k in ("n_agents", "rounds", "dim", "eta", "sigma",
                                           "decay")} == dict(n_agents=8, rounds=30, dim=16,
                                                             eta=0.3, sigma=0.2, decay=1.0)
    gap = [r for r in data["records"] if r["metric"] == "endpoint_gap"]
    assert len(gap) == 1 and gap[0]["value"] < 0.2
    assert {r["round"] for r in data["records"] if r["metric"] == "state_entropy"} == \
        set(range(31))
    code, _, err = run_cli(monkeypatch, capsys, "agents", "--rounds", "0",
                           "--out", str(tmp_path / "z"))
    assert code == 2 and "rounds=0" in err and not (tmp_path / "z").exists()
    code, _, err = run_cli(monkeypatch, capsys, "manifold", "--rounds", "0",
                           "--out", str(tmp_path / "z"))
    assert code == 2 and "rounds=0" in err and not (tmp_path / "z").exists()
    # the text mode's options are not the manifold's, and the reverse: click refuses them
    code, _, err = run_cli(monkeypatch, capsys, "manifold", "--neighbours",
                           "--out", str(tmp_path / "z"))
    assert code == 2 and "No such option '--neighbours'" in err
    code, _, err = run_cli(monkeypatch, capsys, "manifold", "--model", "embedded:x",
                           "--out", str(tmp_path / "z"))
    assert code == 2 and "No such option '--model'" in err
    code, _, err = run_cli(monkeypatch, capsys, "agents", "--dim", "8",
                           "--out", str(tmp_path / "z"))
    assert code == 2 and "No such option '--dim'" in err and not (tmp_path / "z").exists()
    code, _, err = run_cli(monkeypatch, capsys, "agents", "--manifold",
                           "--out", str(tmp_path / "z"))
    assert code == 2 and "No such option '--manifold'" in err and not (tmp_path / "z").exists()
    with pytest.raises(ValueError, match="runs on no model"):
        run_study("manifold", tmp_path / "z", model="embedded:smollm2-135m-instruct")
    assert not (tmp_path / "z").exists()
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**GOOD, "agents": []}) + "\n")
    code, _, err = run_cli(monkeypatch, capsys, "agents", "--scenarios", str(bad),
                           "--out", str(tmp_path / "b"))
    assert code == 2 and "0 agent(s)" in err and err.count("\n") == 1


@pytest.mark.filterwarnings("ignore:.*longer than the model's context")
def test_cli_quick_on_a_saved_tiny_model(monkeypatch, capsys, tmp_path):
    folder = tmp_path / "tiny"
    make_model("llama").save_pretrained(folder, safe_serialization=True)
    make_tokenizer().save_pretrained(folder)
    out = tmp_path / "run"
    args = ("agents", "--model", str(folder), "--quick", "--max-new-tokens", "5",
            "--rounds", "1", "--out", str(out))
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    data = load_run(out)
    assert data["config"]["model"] == str(folder) and data["model"]["spec"] == str(folder)
    assert data["config"]["agents_per_scenario"] == [4] and data["config"]["rounds"] == 1
    assert data["config"]["max_new_tokens"] == 5 and data["done"] == ["agents"]
    rounds = {(r["decoding"], r["round"]) for r in data["records"]
              if r["metric"] == "jaccard_to_anchor"}
    assert rounds == {(d, r) for d in ("greedy", "stochastic") for r in (0, 1)}
    assert "agent_texts" in (out / "index.html").read_text()
    # --resume of a finished run: the runner skips the study without loading the model
    import collapsekit.models.registry as registry

    def no_load(*a, **k):
        raise AssertionError("the model was loaded for a finished study")

    monkeypatch.setattr(registry, "load_model", no_load)
    code, _, err = run_cli(monkeypatch, capsys, *args, "--resume")
    assert code == 0, err
    again = load_run(out)
    assert [(r["metric"], r["value"]) for r in again["records"]] == \
        [(r["metric"], r["value"]) for r in data["records"]]
    assert again["done"] == ["agents"]


@pytest.mark.slow
def test_quick_run_on_the_embedded_model(tmp_path):
    index = run_study("agents", tmp_path / "run", quick=True,
                      params={"rounds": 1, "max_new_tokens": 24})
    data = load_run(index.parent)
    table = read_table(index.parent, "agent_texts")
    assert len(table["text"]) == 2 * 2 * 4 and all(t.strip() for t in table["text"])
    values = {(r["metric"], r["decoding"], r["round"]): r["value"] for r in data["records"]}
    for d in ("greedy", "stochastic"):
        for r in (0, 1):
            assert 0 <= values[("jaccard_to_anchor", d, r)] <= 1
            assert 0 <= values[("compliance", d, r)] <= 1
            assert values[("state_entropy", d, r)] <= 2 + 1e-9  # log2(4 agents)
    assert data["model"]["spec"] == "embedded:smollm2-135m-instruct"
