"""Momentum decoding: loop depth, resistance functions and the choice rule on hand-built
logits; the sampler option (determinism, key unchanged for old settings, validation)."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import make_model, make_tokenizer

from collapsekit.mitigate.momentum import Graph, choose, resistance
from collapsekit.models.decoding import Decoding
from collapsekit.models.sampling import sample


pytestmark = pytest.mark.usefixtures("one_thread")  # see conftest


def test_depth_is_longest_repeated_ngram_ending_in_candidate():
    g = Graph([1, 2, 3, 1, 2], max_n=5)
    assert g.depth(9) == 0          # new node
    assert g.depth(3) == 3          # (1, 2, 3) seen
    assert g.depth(1) == 1          # 1 seen, (2, 1) not
    assert g.depth(2) == 1          # (2, 2) not seen
    assert Graph([1, 2, 3, 1, 2], max_n=2).depth(3) == 2   # capped at max_n
    g.add(3)
    assert g.depth(1) == 4 and g.tokens == [1, 2, 3, 1, 2, 3]  # (1, 2, 3, 1) seen


def test_resistance_functions_by_hand():
    assert resistance(0) == 0 and resistance(3) == 3.0
    assert [resistance(d, "blocking") for d in (1, 3, 4, 5)] == [0, 0, 5.0, math.inf]
    assert resistance(5, "log") == pytest.approx(math.log(6, 6) / 0.2)  # = 5
    assert resistance(2, "exp") == pytest.approx(1.125)
    assert resistance(7, "constant") == 2.0 and resistance(0, "constant") == 0.0
    with pytest.raises(ValueError, match="unknown"):
        resistance(1, "cubic")
    with pytest.raises(ValueError, match="depth"):
        resistance(-1)


def test_choice_penalises_revisits_by_depth():
    # probs of tokens 0..3: 0.4, 0.3, 0.2, 0.1 (vocab 4)
    logits = torch.log(torch.tensor([[0.4, 0.3, 0.2, 0.1]] * 3, dtype=torch.float64))
    fresh = Graph([], max_n=5)                 # nothing visited: greedy
    once = Graph([0], max_n=5)                 # token 0 visited, depth 1: 0.4-0.15 < 0.3
    loop = Graph([1, 0, 2, 1], max_n=5)        # 0: (1,0) seen, depth 2 → 0.4-0.3 = 0.1;
    #                                   1: depth 1 → 0.15; 2: depth 1 → 0.05; 3: new → 0.1
    out = choose(logits, [fresh, once, loop], alpha=0.15, k=4)
    assert out.tolist() == [0, 1, 1]
    # alpha 0.25: 0: 0.4-0.5 < 0; 1: 0.05; 2: -0.05; 3 (new): 0.1 → the new node wins
    assert choose(logits[2:], [loop], alpha=0.25, k=4).tolist() == [3]
    # k=2 restricts the candidates to tokens 0, 1
    assert choose(logits[:1], [Graph([0, 1])], alpha=0.2, k=2).tolist() == [0]  # 0.2 vs 0.1
    # every candidate blocked (infinite resistance): the most likely one
    blocked = Graph([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], max_n=5)
    assert choose(logits[:1], [blocked], alpha=0.2, k=2,
                  resistance_fn="blocking").tolist() == [0]


def test_choose_bad_input():
    with pytest.raises(ValueError, match="one graph per row"):
        choose(torch.zeros(2, 4), [Graph()])
    with pytest.raises(ValueError, match="max_n"):
        Graph(max_n=0)


def test_decoding_key_unchanged_and_validation():
    old = ('{"chat":true,"max_new_tokens":64,"temperature":0.0,"top_k":0,"top_p":1.0}')
    assert Decoding(temperature=0).key() == old
    assert '"momentum":0.2' in Decoding(temperature=0, momentum=0.2).key()
    for bad, match in [(dict(momentum=0.2), "temperature=0"),
                       (dict(temperature=0, momentum=-1), "momentum"),
                       (dict(temperature=0, momentum=float("nan")), "momentum"),
                       (dict(temperature=0, momentum=0.2, momentum_k=0), "momentum_k"),
                       (dict(temperature=0, momentum=0.2, momentum_resistance="x"), "unknown")]:
        with pytest.raises(ValueError, match=match):
            Decoding(**bad)


def test_sampler_momentum_matches_step_by_step_rule(tmp_path):
    """Each momentum token is the rule applied to full-forward logits of the context so far;
    a rerun from the cache is identical; greedy differs once it revisits a node."""
    model, tok = make_model("llama", seed=1), make_tokenizer()
    dec = Decoding(temperature=0, momentum=0.2, max_new_tokens=12, chat=False)
    prompts = ["the cat runs", "king and queen"]
    got = sample(model, tok, prompts, k=1, decoding=dec, seed=0, model_key="t",
                 cache=tmp_path / "c.jsonl")
    again = sample(model, tok, prompts, k=1, decoding=dec, seed=0, model_key="t",
                   cache=tmp_path / "c.jsonl")
    assert [s.token_ids for s in got] == [s.token_ids for s in again]
    for s, text in zip(got, prompts):
        ids = tok(text)["input_ids"]
        g = Graph(ids, 5)
        with torch.no_grad():
            for t in s.token_ids:
                logits = model(input_ids=torch.tensor([ids])).logits[:, -1].double()
                assert choose(logits, [g], alpha=0.2, k=5).item() == t
                g.add(t)
                ids = ids + [t]
