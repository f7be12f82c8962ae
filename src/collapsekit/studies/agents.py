"""Anchor/peripheral agents: asymptotic semantic collapse ("Asymptotic Semantic Collapse in
Hierarchical Optimization", seed paper), with an LM and in a model-free manifold mode.

Text mode: a Dominant Anchor Node holds a fixed statement and explicit constraints (infinite
inertia: it never updates); P Peripheral Agent Nodes start from their own statements. In
each round every agent rewrites its statement with the LM, prompted with the anchor's
statement and rules, its own statement and, with ``neighbours``, its two ring neighbours'
statements of the previous round. All agents of a round are one batched ``sample()`` call
(k=1); the run is made twice, greedy and stochastic (``temperature``, seed = seed + round).
Each prompt names the agent ("agent 3"), so two agents that happen to hold the
same statement still draw independent randomness. Per round (round 0 = initial statements)
and scope (scenario, decoding) the records are the means over agents of Jaccard and
embedding cosine to the anchor and of compliance, hash collisions (count and fraction),
the fraction of verbatim anchor copies, mean pairwise Jaccard and embedding cosine,
vocabulary entropy of the pooled words and the von Neumann state entropy of the agents'
embeddings (:mod:`collapsekit.metrics.consensus`); per-agent values go to the table
``agent_texts``.

Manifold mode (:func:`manifold_dynamics`): states on the unit sphere in R^d,
x ← normalise(x + η(a − x)) (smooth: a gradient step on ½‖x − a‖² then the projection
retraction) or with added Gaussian noise σ_t ξ, σ_t = σ0 / (1 + t)^decay (noisy). Both
start from the same states; the records show the geodesic distance to the anchor and the
state entropy going to 0 for both, and ``endpoint_gap`` (mean geodesic distance between the
two runs' final states) shows path independence.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .. import metrics
from ..errors import InputFileError
from ..metrics import consensus as cs
from ..metrics.semantic import unit_rows

SECTION = "agents"
DECODINGS = ("greedy", "stochastic")
BUNDLED = "bundled"
QUICK = dict(n_scenarios=1, n_agents=4, rounds=3, max_new_tokens=40)
FULL = dict(n_scenarios=None, n_agents=None, rounds=8, max_new_tokens=64)
MANIFOLD = dict(n_agents=8, rounds=200, dim=16, eta=0.3, sigma=0.2, decay=1.0)
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


def run_chain(lm, sc: Scenario, decoding, *, rounds: int, seed: int, neighbours: bool,
              cache: Path, batch_size=None, tick=lambda n=1: None) -> list[list[str]]:
    """Agent statements per round (round 0 = ``sc.agents``), sampled round by round into
    ``cache`` (a rerun reproduces the same prompts, so cached rounds are not recomputed)."""
    from ..models.sampling import sample

    texts = [list(sc.agents)]
    for r in range(1, rounds + 1):
        prev = texts[-1]
        prompts = [(i, rewrite_prompt(sc, i, t, _ring(prev, i) if neighbours else ()))
                   for i, t in enumerate(prev)]
        out = sample(lm.model, lm.tokenizer, prompts, k=1, decoding=decoding, seed=seed + r,
                     model_key=lm.weight_hash, cache=cache, batch_size=batch_size,
                     device=lm.device)
        texts.append([s.text.strip() for s in out])
        tick()
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


def settings(*, quick=True, scenarios=None, rounds=None, n_agents=None,
             max_new_tokens=None, temperature=0.8) -> dict:
    """The text mode's validated settings (quick or full defaults, then the overrides) and
    its scenarios, cut to the first ``n_scenarios`` and ``n_agents``."""
    base = QUICK if quick else FULL
    rounds = base["rounds"] if rounds is None else rounds
    n_agents = base["n_agents"] if n_agents is None else n_agents
    max_new = base["max_new_tokens"] if max_new_tokens is None else max_new_tokens
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 1:
        raise ValueError(f"rounds={rounds!r}: give 1 or more rewrite rounds")
    if isinstance(max_new, bool) or not isinstance(max_new, int) or max_new < 1:
        raise ValueError(f"max_new_tokens={max_new!r}: give 1 or more tokens per rewrite")
    if n_agents is not None and (isinstance(n_agents, bool) or not isinstance(n_agents, int)
                                 or n_agents < 2):
        raise ValueError(f"agents={n_agents!r}: give 2 or more peripheral agents")
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) \
            or not 0 < temperature < math.inf:
        raise ValueError(f"temperature={temperature!r} must be > 0 (the stochastic run; the "
                         "greedy run is always made)")
    scs = load_scenarios(scenarios)[:base["n_scenarios"]]
    scs = [Scenario(s.name, s.anchor, s.constraints, s.agents[:n_agents]) for s in scs]
    return dict(scenarios=scs, rounds=rounds, max_new_tokens=max_new,
                temperature=float(temperature))


def stage(run, lm, *, quick=True, seed=0, console=None, scenarios=None, rounds=None,
          n_agents=None, neighbours=False, temperature=0.8, max_new_tokens=None,
          batch_size=None) -> None:
    """Run every (scenario, decoding) agent chain into ``run`` (section ``agents``); returns
    at once when the run already holds the last round of each."""
    from ..models.embedders import embed
    from ..models.sampling import Decoding
    from .progress import progress_bar

    cfg = settings(quick=quick, scenarios=scenarios, rounds=rounds, n_agents=n_agents,
                   max_new_tokens=max_new_tokens, temperature=temperature)
    scs, rounds = cfg["scenarios"], cfg["rounds"]
    if all(run.has("jaccard_to_anchor", section=SECTION, scenario=s.name, decoding=d,
                   round=rounds) for s in scs for d in DECODINGS):
        return
    decodings = {"greedy": Decoding(temperature=0.0, max_new_tokens=cfg["max_new_tokens"]),
                 "stochastic": Decoding(temperature=cfg["temperature"],
                                        max_new_tokens=cfg["max_new_tokens"])}
    table = []
    with run.timer("agents"), progress_bar("agent rounds", len(scs) * 2 * rounds,
                                           console) as tick:
        for sc in scs:
            for name, dec in decodings.items():
                chain = run_chain(lm, sc, dec, rounds=rounds, seed=seed, neighbours=neighbours,
                                  cache=run.file(f"agents/{sc.name}-{name}.jsonl"),
                                  batch_size=batch_size, tick=tick)
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
    run.meta(agents={"scenarios": [s.name for s in scs], "agents": [len(s.agents) for s in scs],
                     "rounds": rounds, "neighbours": neighbours, **{
                         k: cfg[k] for k in ("temperature", "max_new_tokens")}})
    run.write()


class Manifold(NamedTuple):
    rows: list  # {update, round, geodesic_distance_to_anchor, max_..., state_entropy, sigma}
    endpoint_gap: float  # mean geodesic distance between the smooth and noisy final states


def _geodesic(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Great-circle distance between unit rows, 2·arcsin(‖x − y‖ / 2) (exact near 0)."""
    return 2 * np.arcsin(np.clip(np.linalg.norm(x - y, axis=-1) / 2, 0, 1))


def _normalise(x: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(x, axis=1, keepdims=True)
    if (n < 1e-12).any():
        raise ValueError("an agent landed on the origin (it started opposite the anchor with "
                         "eta=0.5): use another eta or seed")
    return x / n


def manifold_dynamics(*, n_agents=8, dim=16, rounds=200, eta=0.3, sigma=0.2, decay=1.0,
                      seed=0) -> Manifold:
    """Projection dynamics of ``n_agents`` states toward a fixed anchor on the unit sphere in
    R^dim (see the module docstring); rows for rounds 0..rounds of both update rules."""
    for name, v, lo in (("agents", n_agents, 1), ("dim", dim, 2), ("rounds", rounds, 1)):
        if isinstance(v, bool) or not isinstance(v, int) or v < lo:
            raise ValueError(f"{name}={v!r} must be an integer >= {lo}")
    for name, v, ok in (("eta", eta, 0 < eta <= 1), ("sigma", sigma, sigma >= 0),
                        ("decay", decay, decay > 0)):
        if not (isinstance(v, (int, float)) and math.isfinite(v) and ok):
            raise ValueError(f"{name}={v!r} is out of range: eta in (0, 1], sigma >= 0, "
                             "decay > 0")
    rng = np.random.default_rng(seed)
    anchor = _normalise(rng.standard_normal((1, dim)))
    start = _normalise(rng.standard_normal((n_agents, dim)))
    rows, final = [], {}
    for update in ("smooth", "noisy"):
        noise = np.random.default_rng([seed, 1])
        x = start
        for t in range(rounds + 1):
            sig = sigma / (1 + t) ** decay if update == "noisy" else 0.0
            d = _geodesic(x, anchor)
            rows.append({"update": update, "round": t,
                         "geodesic_distance_to_anchor": float(d.mean()),
                         "max_geodesic_distance_to_anchor": float(d.max()),
                         "state_entropy": cs.von_neumann_entropy(x), "sigma": sig})
            if t < rounds:
                x = _normalise(x + eta * (anchor - x) + sig * noise.standard_normal(x.shape))
        final[update] = x
    return Manifold(rows, float(_geodesic(final["smooth"], final["noisy"]).mean()))


def manifold_stage(run, *, seed=0, **params) -> None:
    """Manifold records (section ``agents manifold``, scope update and round) and
    ``endpoint_gap``; skipped when the run holds them."""
    if run.has("endpoint_gap", section=f"{SECTION} manifold"):
        return
    with run.timer("manifold"):
        res = manifold_dynamics(seed=seed, **{**MANIFOLD, **params})
        for row in res.rows:
            for metric in ("geodesic_distance_to_anchor", "max_geodesic_distance_to_anchor",
                           "state_entropy"):
                run.add(metric, row[metric], section=f"{SECTION} manifold",
                        update=row["update"], round=row["round"])
        run.add("endpoint_gap", res.endpoint_gap, section=f"{SECTION} manifold")
        run.table("manifold", res.rows)
    run.write()


def run_agents(out, *, model=None, quick=False, seed=0, device="auto", resume=False,
               force=False, console=None, scenarios=None, rounds=None, n_agents=None,
               neighbours=False, temperature=0.8, max_new_tokens=None, batch_size=None,
               manifold=False, **manifold_params) -> Path:
    """``collapsekit agents``: the text mode on ``model`` (default: the embedded model), or
    with ``manifold`` the model-free dynamics (``manifold_params``: dim, eta, sigma, decay;
    ``rounds`` and ``n_agents`` apply too). Returns the path of index.html."""
    from ..models.registry import DEFAULT_MODEL, file_sha256, load_model, resolve
    from ..report.html import render
    from ..results import Run

    if manifold:
        text_only = [k for k, v in (("scenarios", scenarios), ("neighbours", neighbours),
                                    ("max_new_tokens", max_new_tokens)) if v]
        if text_only:
            raise ValueError(f"{', '.join(text_only)} apply to the text mode only: drop them "
                             "or --manifold")
        params = {**MANIFOLD, **manifold_params, **{k: v for k, v in (
            ("rounds", rounds), ("n_agents", n_agents)) if v is not None}}
        manifold_dynamics(seed=seed, **{**params, "rounds": 1})  # validate before the folder
        run = Run(out, study="agents", config={"mode": "manifold", "seed": seed, **params},
                  resume=resume, force=force)
        run.meta(seeds=[seed])
        manifold_stage(run, seed=seed, **params)
    else:
        if manifold_params:
            raise ValueError(f"{sorted(manifold_params)} apply to the manifold mode only: "
                             "add --manifold or drop them")
        model = model or DEFAULT_MODEL
        resolve(model)
        opts = dict(quick=quick, scenarios=scenarios, rounds=rounds, n_agents=n_agents,
                    max_new_tokens=max_new_tokens, temperature=temperature)
        cfg = settings(**opts)
        config = {"mode": "text", "model": model, "seed": seed, "neighbours": neighbours,
                  **opts, "scenarios": str(scenarios or BUNDLED),
                  "scenarios_sha256": file_sha256(scenarios) if scenarios else None,
                  "resolved": {k: v for k, v in cfg.items() if k != "scenarios"}}
        run = Run(out, study="agents", config=config, resume=resume, force=force)
        with run.timer("load_model"):
            lm = load_model(model, device=device)
        run.meta(model=lm.describe(), seeds=[seed], samples_table="agent_texts")
        stage(run, lm, seed=seed, console=console, neighbours=neighbours,
              batch_size=batch_size, **opts)
    run.finish()
    return render(run.path)
