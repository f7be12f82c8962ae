"""Meaning judges (``--judge``): the class algorithm with a hand-written judge, the judge
field on every class record, spec parsing and its one-line CLI errors, length-normalised
likelihood semantic entropy (hand case), NLI plumbing on a tiny random NLI model saved
with a real id2label (label reading, batching, caching), and the LM judge (tiny model;
the embedded SmolLM2 in a slow test)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import make_model, make_tokenizer, run_cli

from collapsekit.errors import CollapsekitError
from collapsekit.metrics import num_semantic_sets, semantic_classes
from collapsekit.models import judges
from collapsekit.results import Run, load_run
from collapsekit.studies import diversity as dv

pytestmark = pytest.mark.usefixtures("one_thread")


class FirstWord:
    """A deterministic hand-written judge: same meaning iff same first word; W = 1 or 0.2."""

    name = "hand:first-word"

    def __call__(self, texts, embeddings=None):
        first = [t.split()[0] for t in texts]
        eq = np.array([[a == b for b in first] for a in first])
        return eq, np.where(eq, 1.0, 0.2)


def S(pid, text, lps):
    return SimpleNamespace(prompt_id=pid, text=text, token_logprobs=lps)


def _records(run, metric, **scope):
    return [r for r in load_run(run.path)["records"] if r["metric"] == metric
            and all(r.get(k) == v for k, v in scope.items())]


def test_classes_from_a_hand_written_judge_and_the_judge_field(tmp_path):
    # prompt 0: {yes, yes} {no}; prompt 1: one class. Every token at -0.5.
    samples = {("A", None): [S(0, "yes it is", [-0.5] * 3), S(0, "yes sure", [-0.5] * 2),
                             S(0, "no it is not", [-0.5] * 4),
                             S(1, "maybe so", [-0.5] * 2), S(1, "maybe not", [-0.5] * 2)]}
    run = Run(tmp_path / "r", study="diversity", config={})
    emb = lambda t: np.random.default_rng(0).standard_normal((len(t), 4))  # noqa: E731
    dv.multi_stage(run, samples, embedder=emb, judge=FirstWord())
    [se0] = _records(run, "semantic_entropy", prompt_id=0)
    assert se0["value"] == pytest.approx(-(2 / 3) * math.log(2 / 3) - (1 / 3) * math.log(1 / 3))
    assert se0["judge"] == "hand:first-word"
    assert _records(run, "num_semantic_sets", prompt_id=1)[0]["value"] == 1
    # W of prompt 0 = [[1, 1, .2], [1, 1, .2], [.2, .2, 1]]: ΣW = 5.8, DegMat = (9 − ΣW)/9
    assert _records(run, "degmat", prompt_id=0)[0]["value"] == pytest.approx((9 - 5.8) / 9)
    for metric in dv.CLASS_METRICS:
        assert {r.get("judge") for r in _records(run, metric)} == {"hand:first-word"}, metric
        assert {r.get("judge") for r in _records(run, f"mean_{metric}")} == {"hand:first-word"}
    assert all("judge" not in r for r in _records(run, "distinct_1"))


def test_likelihood_semantic_entropy_is_length_normalised_by_default(tmp_path):
    # two classes: a 2-token and a 10-token answer, every token at -0.5 (issue 13's case)
    samples = {("A", None): [S(0, "yes it is", [-0.5] * 2), S(0, "no it is not", [-0.5] * 10)]}
    emb = lambda t: np.random.default_rng(0).standard_normal((len(t), 3))  # noqa: E731
    got = {}
    for how in ("mean", "sum"):
        run = Run(tmp_path / how, study="diversity", config={})
        dv.multi_stage(run, samples, embedder=emb, judge=FirstWord(), seq_logprob_by=how)
        [rec] = _records(run, "semantic_entropy_likelihood")
        assert rec["seq_logprob"] == how
        got[how] = rec["value"]
    assert got["mean"] == pytest.approx(math.log(2), abs=1e-12)
    p = 1 / (1 + math.exp(-4.0))  # sums -1 and -5: p = e^-1 / (e^-1 + e^-5)
    assert got["sum"] == pytest.approx(-p * math.log(p) - (1 - p) * math.log(1 - p))
    assert got["sum"] == pytest.approx(0.0901, abs=5e-5)
    with pytest.raises(ValueError, match="seq_logprob must be one of mean, sum"):
        dv.seq_logprob([-0.5], "median")


def test_semantic_classes_take_a_callable_judge_first_member_rule():
    # i ~ j iff |i − j| <= 1 (not transitive): 0 opens, 1 joins 0, 2 vs first member 0: no
    near = lambda i, j: abs(i - j) <= 1  # noqa: E731
    assert semantic_classes(4, near).tolist() == [0, 0, 1, 1]
    a = np.array([[abs(i - j) <= 1 for j in range(4)] for i in range(4)])
    assert num_semantic_sets(a, method="greedy") == 2
    assert num_semantic_sets(a, method="components") == 1


def test_lin_chained_assignment_hand_cases():
    chain = np.array([[1, 1, 0], [1, 1, 1], [0, 1, 1]], dtype=bool)  # A~B, B~C, A≁C
    assert num_semantic_sets(chain, method="lin") == 1
    assert num_semantic_sets(chain, method="greedy") == 2
    star = np.array([[1, 0, 1], [0, 1, 1], [1, 1, 1]], dtype=bool)  # A~C, B~C, A≁B
    # Lin's loop: i=0 sets id[C]=id[A]; i=1 overwrites id[C]=id[B] → {A}, {B, C}
    assert num_semantic_sets(star, method="lin") == 2
    assert num_semantic_sets(star, method="components") == 1
    assert num_semantic_sets(np.eye(3, dtype=bool), method="lin") == 3
    with pytest.raises(ValueError, match="'components', 'lin' or 'greedy'"):
        num_semantic_sets(chain, method="chain")


@pytest.mark.parametrize("text, name", [
    ("cosine", "cosine:0.9"), ("cosine:0.75", "cosine:0.75"), (" COSINE : 1 ", "cosine:1"),
    ("nli:org/model", "nli:org/model"), ("lm:smollm2", "lm:smollm2")])
def test_parse_judge(text, name):
    assert judges.parse_judge(text, 0.9).name == name


@pytest.mark.parametrize("text, message", [
    ("nli:", "names no model"), ("lm", "names no model"), ("bert:x", "unknown kind 'bert'"),
    ("cosine:high", "must be a number"), ("cosine:1.5", "must be in [-1, 1]"), ("", "empty"),
    ("nli:./no/such/folder", "no such folder")])
def test_bad_judge_specs(text, message):
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        judges.parse_judge(text)


@pytest.mark.parametrize("args, message", [
    (["diversity", "--judge", "nli:"], "names no model"),
    (["ambiguity", "--judge", "telepathy:x"], "unknown kind 'telepathy'"),
    (["scan", "--param", "judge=cosine:2"], "must be in [-1, 1]")])
def test_bad_judge_is_a_one_line_usage_error(monkeypatch, capsys, tmp_path, args, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(monkeypatch, capsys, *args)
    assert code == 2 and message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not list(tmp_path.iterdir())


def _tiny_nli(path, id2label, favour: str | None = None):
    """A tiny random BERT NLI classifier saved as safetensors with a real tokenizer;
    ``favour`` adds a large bias to that label's logit."""
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tok = make_tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                     pad_token_id=0, num_labels=3, id2label=id2label,
                     label2id={v: k for k, v in id2label.items()})
    model = BertForSequenceClassification(cfg).eval()
    if favour:
        with torch.no_grad():
            model.classifier.bias[[k for k, v in id2label.items() if v == favour][0]] += 50
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return model, tok


NLI_LABELS = {0: "ENTAILMENT", 1: "neutral", 2: "Contradiction"}  # not the usual order
TEXTS = ["the cat sees the dog", "a dog sees the cat", "the king loves gold", "the cat sees the dog"]


def test_nli_judge_reads_labels_batches_and_caches(tmp_path):
    model, tok = _tiny_nli(tmp_path / "nli", NLI_LABELS)
    j = judges.make_judge(f"nli:{tmp_path / 'nli'}", batch_size=2, device="cpu")
    assert (j.entail, j.contra) == (0, 2) and j.name == f"nli:{tmp_path / 'nli'}"
    eq, w = j(TEXTS)
    assert j.scored == 6  # 3 distinct texts → 6 ordered pairs, the duplicate costs nothing
    with torch.no_grad():  # the same verdicts from the saved model, one pair at a time
        for a in range(3):
            for b in range(a + 1, 3):
                p = [torch.softmax(model(**tok(x, y, return_tensors="pt")).logits[0], -1)
                     for x, y in ((TEXTS[a], TEXTS[b]), (TEXTS[b], TEXTS[a]))]
                assert eq[a, b] == eq[b, a] == all(q.argmax() == 0 for q in p)
                assert w[a, b] == pytest.approx(float(p[0][0] + p[1][0]) / 2, abs=1e-5)
    assert eq[0, 3] and w[0, 3] == 1.0 and eq.diagonal().all()
    again = judges.make_judge(f"nli:{tmp_path / 'nli'}", batch_size=64, device="cpu")
    np.testing.assert_allclose(again(TEXTS)[1], w, atol=1e-5)  # padding does not matter
    j(TEXTS[:3])
    assert j.scored == 6  # cached pair verdicts


def test_nli_verdicts_follow_the_entailment_label_by_name(tmp_path):
    _tiny_nli(tmp_path / "e", NLI_LABELS, favour="ENTAILMENT")
    _tiny_nli(tmp_path / "c", NLI_LABELS, favour="Contradiction")
    texts = TEXTS[:3]
    assert judges.make_judge(f"nli:{tmp_path / 'e'}", device="cpu")(texts)[0].all()
    eq = judges.make_judge(f"nli:{tmp_path / 'c'}", device="cpu")(texts)[0]
    assert (eq == np.eye(3, dtype=bool)).all()
    assert semantic_classes(3, eq).tolist() == [0, 1, 2]


def test_nli_model_without_nli_labels_is_refused(tmp_path):
    _tiny_nli(tmp_path / "x", {0: "positive", 1: "neutral", 2: "negative"})
    with pytest.raises(CollapsekitError, match="no single entail"):
        judges.make_judge(f"nli:{tmp_path / 'x'}", device="cpu")


def test_lm_judge_scores_yes_minus_no_on_a_tiny_model():
    lm = SimpleNamespace(model=make_model("llama"), tokenizer=make_tokenizer(padding_side="left"))
    j = judges.LmJudge(judges.parse_judge("lm:tiny"), lm=lm, batch_size=3)
    j.ask, j.yes, j.no = "{a} or {b} ?", "the", "a"  # words of the tiny vocabulary
    texts = ["the cat runs", "a dog walks", "the cat runs"]
    eq, w = j(texts)
    d = {k: v for k, v in j.cache.items()}
    assert set(d) == {(texts[0], texts[1]), (texts[1], texts[0])} and j.scored == 2
    assert eq[0, 1] == (d[texts[0], texts[1]] + d[texts[1], texts[0]] > 0)
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    assert w[0, 1] == pytest.approx((sig(d[texts[0], texts[1]]) + sig(d[texts[1], texts[0]])) / 2)
    assert eq[0, 2] and (eq == eq.T).all()


@pytest.mark.slow
def test_lm_judge_on_the_embedded_model_matches_a_direct_forward_pass():
    from collapsekit.models.scoring import chat_context

    j = judges.make_judge("lm:smollm2", device="cpu")
    a, b = "Paris is the capital of France.", "The capital of France is Paris."
    eq, _ = j([a, b])
    ids = chat_context(j.lm.tokenizer, [{"role": "user", "content": judges.ASK.format(a=a, b=b)}])
    with torch.no_grad():
        logp = torch.log_softmax(j.lm.model(torch.tensor([ids])).logits[0, -1].float(), -1)
    yes, no = (j.lm.tokenizer(w, add_special_tokens=False)["input_ids"] for w in ("Yes", "No"))
    assert len(yes) == len(no) == 1
    assert j.cache[a, b] == pytest.approx(float(logp[yes[0]] - logp[no[0]]), abs=1e-4)
    assert eq[0, 1] == (j.cache[a, b] + j.cache[b, a] > 0)


def test_the_report_states_the_judge_and_its_known_limit():
    from collapsekit.report.layout import plan

    recs = [{"metric": "semantic_entropy", "value": v, "section": "diversity", "prompt_id": p,
             "model": "m", "judge": "cosine:0.9"} for p, v in ((0, 0.1), (1, 0.5))]
    recs.append({"metric": "mean_interpretation_entropy", "value": 1.0, "section": "ambiguity",
                 "decoding": "sampling", "judge": "nli:org/x"})
    diversity, ambiguity = plan(recs)
    caption = diversity.plots[0].caption
    assert "Meaning classes by the cosine:0.9 judge; known limit: embedding cosine" in caption
    assert ambiguity.table.rows[0].note.startswith("Meaning classes by the nli:org/x judge")
