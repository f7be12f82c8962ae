"""score_continuations with the context's KV cache shared by its candidates against one
forward pass per context + candidate (the reference path) on tiny llama, gemma3 (sliding
window 8, contexts longer than it) and gpt2; batch packing by hand; models without a cache."""

import pytest
import torch
from conftest import make_model, make_tokenizer

from collapsekit.models import scoring
from collapsekit.models.scoring import chat_context, score_continuations

pytestmark = pytest.mark.usefixtures("one_thread")

TOK = make_tokenizer()
CONTEXTS = [
    "the cat sees",
    "the cat sees",  # a repeated context: prefilled once
    chat_context(TOK, [{"role": "user", "content": "a dog runs in the city and the king "
                                                   "sees the moon"}], "the"),
    "a man walks to the river and finds a stone of gold in the water",
    "king",
]
CANDS = [[" the dog", " a bird runs .", " sun"], [" king"],
         [" dog", " red fire", " old woman loves", " star"],
         [" a", " the small green tree"], [" queen"]]


def logprobs(scored):
    return [[s.logprob for s in row] for row in scored]


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 16])
def test_shared_context_equals_one_pass_per_row(tiny_arch, batch_size):
    model = make_model(tiny_arch)
    assert max(len(TOK(c)["input_ids"]) for c in CONTEXTS[:4] if isinstance(c, str)) > 8
    ref = score_continuations(model, TOK, CONTEXTS, CANDS, batch_size=batch_size,
                              share_context=False)
    got = score_continuations(model, TOK, CONTEXTS, CANDS, batch_size=batch_size)
    assert [[s.n_tokens for s in r] for r in got] == [[s.n_tokens for s in r] for r in ref]
    assert [[len(TOK(c, add_special_tokens=False)["input_ids"]) for c in cs]
            for cs in CANDS] == [[s.n_tokens for s in r] for r in got]
    for a, b in zip(logprobs(got), logprobs(ref)):
        assert a == pytest.approx(b, abs=1e-5)


def test_progress_counts_rows_per_batch():
    calls = []
    score_continuations(make_model("llama"), TOK, CONTEXTS, CANDS, batch_size=3,
                        progress=calls.append)
    # contexts by length: king (1 row); the cat sees (3 + 1 rows: more than a batch, split
    # 3 | 1); the man (2 rows, join that 1); the chat (4 rows, split 3 | 1)
    assert calls == [1, 3, 3, 3, 1]


def test_pack_keeps_a_context_whole_when_it_fits():
    rows = [(0, 0, [1, 2], [5]), (0, 1, [1, 2], [6]), (1, 0, [3], [5]),
            (2, 0, [1, 2], [7]), (3, 0, [4, 4, 4], [5]), (3, 1, [4, 4, 4], [6]),
            (3, 2, [4, 4, 4], [7])]
    got = [[(i, j) for i, j, *_ in b] for b in scoring._pack(rows, 3)]
    # [3] first (shortest); [1, 2] has 3 rows (contexts 0 and 2): a batch of its own
    assert got == [[(1, 0)], [(0, 0), (0, 1), (2, 0)], [(3, 0), (3, 1), (3, 2)]]
    got = [[(i, j) for i, j, *_ in b] for b in scoring._pack(rows, 2)]
    assert got == [[(1, 0)], [(0, 0), (0, 1)], [(2, 0)], [(3, 0), (3, 1)], [(3, 2)]]
    assert len(scoring._pack(rows, 16)) == 1


class NoCacheLM(torch.nn.Module):
    """A causal LM whose forward names no KV cache and keeps all logits."""

    def __init__(self, lm):
        super().__init__()
        self.lm, self.config = lm, lm.config

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None):
        return self.lm(input_ids=input_ids, attention_mask=attention_mask,
                       position_ids=position_ids, use_cache=False)


class DropsCacheLM(NoCacheLM):
    """A causal LM that takes a cache argument but returns none."""

    def forward(self, input_ids, attention_mask=None, position_ids=None, use_cache=None,
                past_key_values=None):
        return super().forward(input_ids, attention_mask, position_ids)


@pytest.mark.parametrize("wrap", [NoCacheLM, DropsCacheLM])
def test_models_without_a_cache_get_one_pass_per_row(wrap):
    model = make_model("gemma3")
    ref = logprobs(score_continuations(model, TOK, CONTEXTS, CANDS, share_context=False))
    calls = []
    got = score_continuations(wrap(model), TOK, CONTEXTS, CANDS, batch_size=4,
                              progress=calls.append)
    for a, b in zip(logprobs(got), ref):
        assert a == pytest.approx(b, abs=1e-5)
    assert sum(calls) == sum(map(len, CANDS))
