"""Anchor/peripheral agents: asymptotic semantic collapse ("Asymptotic Semantic Collapse in
Hierarchical Optimization", seed paper), with an LM.

Text mode: a Dominant Anchor Node holds a fixed statement and explicit constraints (infinite
inertia: it never updates); P Peripheral Agent Nodes start from their own statements. In
each round every agent rewrites its statement with the LM, prompted with the anchor's
statement and rules, its own statement and, with ``neighbours``, its two ring neighbours'
statements of the previous round. The run is made twice, greedy and stochastic
(``temperature``, seed = seed + round), the two chains in lockstep: all agents of a round of
both chains are one batched ``sample_jobs()`` call (k=1).
Each prompt names the agent ("agent 3"), so two agents that happen to hold the
same statement still draw independent randomness. Per round (round 0 = initial statements)
and scope (scenario, decoding) the records are the means over agents of Jaccard and
embedding cosine to the anchor and of compliance, hash collisions (count and fraction),
the fraction of verbatim anchor copies, mean pairwise Jaccard and embedding cosine,
vocabulary entropy of the pooled words and the von Neumann state entropy of the agents'
embeddings (:mod:`collapsekit.metrics.consensus`); per-agent values go to the table
``agent_texts``.
The model-free variant of these dynamics is the ``manifold`` study (:mod:`.manifold`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources

import numpy as np

from .. import metrics
from ..errors import InputFileError
from ..metrics import consensus as cs
from ..metrics.semantic import unit_rows

SECTION = "agents"
DECODINGS = ("greedy", "stochastic")
BUNDLED = "bundled"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class Scenario:
    name: str
    anchor: str
    constraints: tuple
    agents: tuple


def _scenario(obj, where: str) -> Scenario:
    if not isinstance(obj, dict):
        raise InputFileError(f"{where}: expected a JSON object with name, anchor and agents")
    name = obj.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputFileError(f"{where}: 'name' {name!r} must be a plain name (letters, digits, "
                             "'_', '-', '.')")
    anchor = obj.get("anchor")
    if not isinstance(anchor, dict) or not isinstance(anchor.get("statement"), str) \
            or not anchor["statement"].strip():
        raise InputFileError(f"{where} ({name}): no anchor: give \"anchor\": {{\"statement\": "
                             "\"...\", \"constraints\": [...]}")
    try:
        constraints = cs.check_constraints(anchor.get("constraints", []))
    except ValueError as e:
        raise InputFileError(f"{where} ({name}): anchor {e}") from None
    agents = obj.get("agents")
    if not isinstance(agents, list) or not all(isinstance(a, str) and a.strip() for a in agents):
        raise InputFileError(f"{where} ({name}): 'agents' must be a list of non-empty "
                             "statements, one per peripheral agent")
    if len(agents) < 2:
        raise InputFileError(f"{where} ({name}): {len(agents)} agent(s); give at least 2 "
                             "initial statements (pairwise similarity needs two agents)")
    return Scenario(name, anchor["statement"].strip(), tuple(constraints),
                    tuple(a.strip() for a in agents))


def load_scenarios(path=None) -> list[Scenario]:
    """Scenarios from a JSONL file (one object a line: ``name``, ``anchor`` {statement,
    constraints}, ``agents`` [initial statements]), or the bundled ones for None."""
    from ..io import read_jsonl

    if path is None or str(path) == BUNDLED:
        text = resources.files("collapsekit.data").joinpath("agent_scenarios.jsonl")
        rows, where = [json.loads(x) for x in text.read_text("utf-8").splitlines() if x], "bundled"
    else:
        rows, where = read_jsonl(path), str(path)
    out = [_scenario(r, f"{where}, scenario {i + 1}") for i, r in enumerate(rows)]
    if not out:
        raise InputFileError(f"{where} holds no scenarios: add one JSON object per line")
    names = [s.name for s in out]
    if len(set(names)) != len(names):
        raise InputFileError(f"{where}: scenario names repeat ({names}); give each its own")
    return out


def _rule(c: dict) -> str:
    return {"must_mention": 'mention "{term}"', "must_not_mention": 'do not mention "{term}"',
            "max_words": "use at most {value} words",
            "min_words": "use at least {value} words"}[c["kind"]].format(**c)


def rewrite_prompt(sc: Scenario, agent: int, own: str, neighbours=()) -> str:
    """The prompt of peripheral agent ``agent`` (0-based) holding statement ``own``."""
    lines = [f"You are agent {agent + 1} in a group discussion.", f"Your current view: {own}",
             f"The group leader's view: {sc.anchor}"]
    if sc.constraints:
        lines.append("The leader's rules: " + "; ".join(map(_rule, sc.constraints)) + ".")
    if neighbours:
        lines.append("Views of your neighbours: " + " | ".join(neighbours))
    lines.append("Write your view again in one or two sentences.")
    return "\n".join(lines)


def _ring(texts: list[str], i: int) -> list[str]:
    n = len(texts)
    return [texts[j] for j in dict.fromkeys(((i - 1) % n, (i + 1) % n)) if j != i]


def run_chains(lm, sc: Scenario, decodings: dict, *, rounds: int, seed: int,
               neighbours: bool, caches: dict, batch_size=None,
               tick=lambda n=1: None) -> dict[str, list[list[str]]]:
    """Agent statements per round (round 0 = ``sc.agents``) of one chain per decoding
    (name → ``Decoding``), the chains sampled in lockstep: round r of every chain in the same
    forward passes (``sample_jobs``), into each chain's cache (name → path; a rerun
    reproduces the same prompts, so cached rounds are not recomputed)."""
    from ..models.sampling import Job, sample_jobs

    texts = {name: [list(sc.agents)] for name in decodings}
    for r in range(1, rounds + 1):
        jobs = []
        for name, dec in decodings.items():
            prev = texts[name][-1]
            prompts = [(i, rewrite_prompt(sc, i, t, _ring(prev, i) if neighbours else ()))
                       for i, t in enumerate(prev)]
            jobs.append(Job(prompts, 1, dec, seed + r, caches[name]))
        outs = sample_jobs(lm.model, lm.tokenizer, jobs, model_key=lm.weight_hash,
                           batch_size=batch_size, device=lm.device)
        for name, out in zip(decodings, outs):
            texts[name].append([s.text.strip() for s in out])
        tick(len(decodings))
    return texts


def round_metrics(texts: list[str], sc: Scenario, emb: np.ndarray,
                  anchor_emb: np.ndarray) -> tuple[dict, list[dict]]:
    """(means over agents, per-agent rows) of one round's statements with embeddings."""
    cos = unit_rows(emb) @ unit_rows(anchor_emb[None])[0]
    counts = Counter(map(cs.text_hash, texts))
    anchor_hash = cs.text_hash(sc.anchor)
    per = [{"agent": i, "text": t, "words": len(cs.words(t)),
            "jaccard_to_anchor": cs.jaccard(t, sc.anchor), "cosine_to_anchor": float(c),
            "compliance": cs.compliance(t, sc.constraints) if sc.constraints else None,
            "collides": counts[cs.text_hash(t)] > 1,
            "copies_anchor": cs.text_hash(t) == anchor_hash}
           for i, (t, c) in enumerate(zip(texts, cos))]
    n_coll = cs.hash_collisions(texts)
    means = {
        "jaccard_to_anchor": float(np.mean([p["jaccard_to_anchor"] for p in per])),
        "cosine_to_anchor": float(cos.mean()),
        "compliance": (float(np.mean([p["compliance"] for p in per])) if sc.constraints
                       else None),
        "hash_collisions": n_coll, "hash_collision_fraction": n_coll / len(texts),
        "anchor_copy_fraction": float(np.mean([p["copies_anchor"] for p in per])),
        "mean_pairwise_jaccard": cs.mean_pairwise_jaccard(texts),
        "mean_pairwise_cosine": metrics.mean_pairwise_cosine(emb),
        "vocabulary_entropy": (cs.vocabulary_entropy(texts) if any(map(cs.words, texts))
                               else None),
        "state_entropy": cs.von_neumann_entropy(emb),
    }
    return {k: v for k, v in means.items() if v is not None}, per


def _scenarios(s) -> list[Scenario]:
    """The scenarios of the settings, cut to the first ``n_scenarios`` and ``n_agents``."""
    scs = load_scenarios(s.scenarios)[:s.n_scenarios]
    return [Scenario(x.name, x.anchor, x.constraints, x.agents[:s.n_agents]) for x in scs]


def check(s) -> dict:
    """Read the scenario file before the run is made."""
    from ..models.registry import file_sha256

    scs = _scenarios(s)
    return {"scenarios": s.scenarios or BUNDLED,
            "scenarios_sha256": file_sha256(s.scenarios) if s.scenarios else None,
            "agents_per_scenario": [len(x.agents) for x in scs]}


def study_stage(run, lm, s) -> None:
    """Run every (scenario, decoding) agent chain into ``run`` (section ``agents``); rounds
    cached in ``agents/<scenario>-<decoding>.jsonl`` are not sampled again."""
    from ..models.decoding import Decoding
    from ..models.embedders import embed
    from .progress import progress_bar

    scs, rounds = _scenarios(s), s.rounds
    decodings = {"greedy": Decoding(temperature=0.0, max_new_tokens=s.max_new_tokens),
                 "stochastic": Decoding(temperature=s.temperature,
                                        max_new_tokens=s.max_new_tokens)}
    table = []
    with progress_bar("agent rounds", len(scs) * 2 * rounds) as tick:
        for sc in scs:
            chains = run_chains(lm, sc, decodings, rounds=rounds, seed=s.seed,
                                neighbours=s.neighbours, batch_size=s.batch_size, tick=tick,
                                caches={name: run.file(f"agents/{sc.name}-{name}.jsonl")
                                        for name in decodings})
            for name, chain in chains.items():
                emb = np.asarray(embed([sc.anchor] + [t for ts in chain for t in ts]),
                                 dtype=np.float64)
                p = len(sc.agents)
                for r, texts in enumerate(chain):
                    means, per = round_metrics(texts, sc, emb[1 + r * p:1 + (r + 1) * p], emb[0])
                    for metric, value in means.items():
                        run.add(metric, value, section=SECTION, scenario=sc.name,
                                decoding=name, round=r)
                    table += [{"scenario": sc.name, "decoding": name, "round": r,
                               "prompt_id": f"{sc.name} {name} round {r}", **row}
                              for row in per]
                run.write()
    run.table("agent_texts", table)
    run.meta(samples_table="agent_texts",
             agents={"scenarios": [x.name for x in scs], "agents": [len(x.agents) for x in scs],
                     "rounds": rounds, "neighbours": s.neighbours,
                     "temperature": s.temperature, "max_new_tokens": s.max_new_tokens})
    run.write()
