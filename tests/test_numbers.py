"""The numbers study: closed forms of the decomposition, shares, distortion, probe, phase
rule; the ablation hook on a tiny model; the command end to end on a tiny model whose
tokenizer spells digits."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from conftest import SPECIAL, WORDS, make_model, run_cli

from collapsekit.metrics.catalog import lookup
from collapsekit.metrics.numbers import (
    component_shares,
    decompose,
    distortion,
    gram_schmidt,
    probe_accuracy,
    project_out,
    random_basis,
    task_accuracy,
    three_phases,
)

pytestmark = pytest.mark.usefixtures("one_thread")
EXTRA = [*"0123456789", "odd", "even", "yes", "no", ":", "->", "number", "prime", "Is",
         "Copy", "My", "teacher", "says", '"', "always", "everyone", "in", "my", "class"]


def planted(a=3.0, b=2.0, t=(-3.0, -1.0, 1.0, 3.0)):
    """x = a e1 (shared offset) + (2y − 1) b e2 (class-specific) + t e3 (the same spread in
    each class), in 5 dimensions."""
    rows, ys = [], []
    for y in (0, 1):
        for ti in t:
            rows.append([a, (2 * y - 1) * b, ti, 0.0, 0.0])
            ys.append(y)
    return np.array(rows), np.array(ys)


def test_gram_schmidt_orthonormalises_in_order_and_drops_dependent_vectors():
    q = gram_schmidt([[2.0, 0, 0], [1.0, 1.0, 0], [3.0, 5.0, 0], [0, 0, 0]])
    np.testing.assert_allclose(q, [[1, 0], [0, 1], [0, 0]], atol=1e-12)
    assert gram_schmidt(np.zeros((2, 4))).shape == (4, 0)


def test_planted_shared_and_divergent_parts_are_recovered_in_closed_form():
    a, b = 3.0, 2.0
    x, y = planted(a, b)
    dec = decompose(x, y)
    np.testing.assert_allclose(np.abs(dec.shared[:, 0]), [1, 0, 0, 0, 0], atol=1e-12)
    np.testing.assert_allclose(np.abs(dec.divergence[:, 0]), [0, 1, 0, 0, 0], atol=1e-12)
    sh = component_shares(x, dec)
    total = a * a + b * b + 5.0  # mean of t² over (-3, -1, 1, 3) is 5
    assert sh["shared_share"] == pytest.approx(a * a / total)
    assert sh["divergence_share"] == pytest.approx(b * b / total)
    assert sh["divergence_variance"] == pytest.approx(b * b / (b * b + 5.0))
    # one within-class principal direction joins the shared part: e3
    sh1 = component_shares(x, decompose(x, y, shared_rank=1))
    assert sh1["shared_share"] == pytest.approx((a * a + 5.0) / total)
    assert sh1["divergence_share"] == pytest.approx(b * b / total)


def test_divergence_is_orthogonal_to_shared_and_has_rank_k_minus_1():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((30, 8)) + 4.0
    y = np.repeat([0, 1, 2], 10)
    dec = decompose(x, y, shared_rank=2)
    q = np.hstack([dec.shared, dec.divergence])
    assert dec.shared.shape[1] == 3 and dec.divergence.shape[1] == 2
    np.testing.assert_allclose(q.T @ q, np.eye(5), atol=1e-10)
    means = np.stack([x[y == k].mean(0) for k in range(3)])
    diff = means[1:] - means[0]  # class-mean differences lie in span(S, Δ)
    np.testing.assert_allclose(project_out(diff, q), 0, atol=1e-10)


def test_decomposition_refuses_bad_input():
    x, y = planted()
    with pytest.raises(ValueError, match="one class"):
        decompose(x, np.zeros(len(y)))
    with pytest.raises(ValueError, match="labels must be"):
        decompose(x, y[:-1])
    with pytest.raises(ValueError, match="NaN"):
        decompose(np.full((4, 3), np.nan), [0, 1, 0, 1])
    with pytest.raises(ValueError, match="D=5"):
        component_shares(np.ones((4, 3)), decompose(x, y))


def test_distortion_is_zero_for_a_similarity_and_closed_form_for_a_stretch():
    rng = np.random.default_rng(1)
    ref = rng.standard_normal((12, 4))
    rot = np.linalg.qr(rng.standard_normal((4, 4)))[0]
    assert distortion(2.5 * ref @ rot + 7.0, ref) == pytest.approx(0, abs=1e-12)
    # points 0, 1, 3 on a line mapped to 0, 2, 3: ratios 2, 1, 1/2
    got = distortion([[0.0], [2.0], [3.0]], [[0.0], [1.0], [3.0]])
    assert got == pytest.approx(math.log(2) * math.sqrt(2 / 3))
    with pytest.raises(ValueError, match="coincide"):
        distortion([[0.0], [1.0], [2.0]], [[0.0], [0.0], [1.0]])
    with pytest.raises(ValueError, match="same items"):
        distortion(ref[:5], ref)


def test_probe_accuracy_and_its_cross_fitted_ablation():
    x, y = planted(t=(0.0,) * 8)  # 16 items that differ only along e2, by class
    assert probe_accuracy(x, y, folds=4)["accuracy"] == 1.0
    erased = probe_accuracy(x, y, folds=4, erase=lambda a, b: decompose(a, b).divergence)
    assert erased["accuracy"] == 0.5  # every item identical: one answer for all
    kept = probe_accuracy(x, y, folds=4, erase=lambda a, b: random_basis(5, 0))
    assert kept["accuracy"] == 1.0
    with pytest.raises(ValueError, match="at least 2 per class"):
        probe_accuracy(x[:9], [1] + [0] * 8)


def test_divergence_null_is_the_chance_level_of_a_planted_split():
    from collapsekit.studies.numbers import divergence_null
    from collapsekit.studies.registry import Settings

    x, y = planted(b=6.0)  # the class split holds 36/41 of the spread
    s = Settings(permutations=30, seed=0, shared_rank=0)
    null = divergence_null(x, y, s)
    assert 0 < null < component_shares(x, decompose(x, y))["divergence_variance"]
    assert divergence_null(x, y, s) == null  # seeded
    assert divergence_null(x, y, Settings(permutations=0, seed=0, shared_rank=0)) is None


def test_task_accuracy_is_balanced():
    assert task_accuracy([1.0, -1.0, 1.0, 1.0], [1, 0, 0, 1]) == 0.75
    assert task_accuracy([1.0] * 5, [1, 0, 0, 0, 0]) == 0.5  # always one answer
    with pytest.raises(ValueError, match="both classes"):
        task_accuracy([1.0, 2.0], [1, 1])


def test_three_phase_rule():
    assert three_phases([0, 1, 2, 3, 1]) == {"found": True, "peak": 3, "onset": 2}
    assert three_phases([0, 1, 2, 3])["found"] is False  # no fall
    assert three_phases([3, 2, 2.9, 1])["found"] is False  # peak first
    assert three_phases([1, 1, 1])["found"] is False
    with pytest.raises(ValueError, match="at least 3"):
        three_phases([0, 1])


def test_random_basis_is_seeded_and_orthonormal():
    q = random_basis(7, 3, seed=4)
    np.testing.assert_allclose(q.T @ q, np.eye(3), atol=1e-12)
    np.testing.assert_array_equal(q, random_basis(7, 3, seed=4))
    with pytest.raises(ValueError):
        random_basis(3, 4)


# the hook --------------------------------------------------------------------------------
def digit_tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(dict.fromkeys(SPECIAL + WORDS + EXTRA))}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Whitespace(), pre_tokenizers.Digits(individual_digits=True)])
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>",
                                  bos_token="<s>", eos_token="</s>")
    tok.model_max_length = 64
    return tok


def test_hook_removes_exactly_the_subspace_and_rank_zero_is_identity():
    from collapsekit.models.ablation import ablated, read_numbers, token_index

    tok = digit_tokenizer()
    model = make_model("llama", vocab_size=len(tok.get_vocab()))
    texts = [f"Is the number odd or even ? 1014 : even {k} :" for k in (3, 14, 27)]
    pos = [token_index(tok, t, t[:-2]) for t in texts]
    ans = (tok.convert_tokens_to_ids("odd"), tok.convert_tokens_to_ids("even"))
    clean, m0 = read_numbers(model, tok, texts, pos, points=[1, 2, 3, 4], answers=ans)
    q = random_basis(32, 2, seed=0)
    with ablated(model, 2, q):
        cut, m1 = read_numbers(model, tok, texts, pos, points=[1, 2, 3, 4], answers=ans)
    np.testing.assert_allclose(cut[0], clean[0], atol=1e-6)  # before the hook: unchanged
    np.testing.assert_allclose(cut[1], project_out(clean[1], q), atol=1e-5)
    np.testing.assert_allclose(cut[1] @ q, 0, atol=1e-5)
    assert not np.allclose(cut[2], clean[2], atol=1e-5) and not np.allclose(m1, m0)
    with ablated(model, 2, np.zeros((32, 0))):
        same, m2 = read_numbers(model, tok, texts, pos, points=[1, 2, 3, 4], answers=ans)
    np.testing.assert_array_equal(same, clean)
    np.testing.assert_array_equal(m2, m0)
    with pytest.raises(ValueError, match="orthonormal"):
        with ablated(model, 2, np.ones((32, 1))):
            pass
    for bad in (0, 5):  # the embedding output is not the residual stream everywhere
        with pytest.raises(ValueError, match="use 1..4"):
            with ablated(model, bad, q):
                pass
    assert not any(m._forward_hooks for m in model.modules())


# the command -----------------------------------------------------------------------------
@pytest.fixture
def digit_dir(tmp_path):
    """A saved tiny llama whose tokenizer spells digits and the answer words."""
    path = tmp_path / "tiny-digits"
    tok = digit_tokenizer()
    make_model("llama", vocab_size=len(tok.get_vocab())).save_pretrained(
        path, safe_serialization=True)
    tok.save_pretrained(path)
    return path


def test_command_end_to_end_on_a_tiny_model(monkeypatch, capsys, tmp_path, digit_dir):
    out = tmp_path / "num"
    code, stdout, err = run_cli(
        monkeypatch, capsys, "numbers", "--model", str(digit_dir), "--out", str(out),
        "--n", "14", "--contexts", "plain,parity,primality,parity_pressure",
        "--ablation-layers", "1", "--folds", "2", "--no-report", "--json")
    assert code == 0, err
    data = json.loads(stdout)
    recs = [r for r in data["records"] if r.get("section") == "numbers"]
    names = {r["metric"] for r in recs}
    assert {"numbers_shared_share", "numbers_divergence_share", "numbers_probe_accuracy",
            "numbers_divergence_variance_null",
            "numbers_distortion", "numbers_three_phases", "numbers_task_accuracy",
            "numbers_ablation_task_accuracy", "numbers_ablation_probe_accuracy"} <= names
    assert all(lookup(n) is not None for n in names)
    probes = [r for r in recs if r["metric"] == "numbers_probe_accuracy"]
    assert len(probes) == (2 + 1 + 1 + 1) * 4  # (plain: both tasks, 3 task contexts) x 4 points
    assert all(0 <= r["value"] <= 1 for r in probes)
    kinds = {r["ablation"] for r in recs if r["metric"] == "numbers_ablation_task_accuracy"}
    assert kinds == {"none", "divergence", "random"}
    assert not (out / "index.html").exists()
    # the summary judges the pressure ratio (peak divergence with / without pressure)
    from collapsekit.report.summary import summarize

    (ratio,) = [r for r in recs if r["metric"] == "numbers_pressure_divergence_ratio"]
    peak = {c: max(r["value"] for r in recs if r["metric"] == "numbers_divergence_variance"
                   and r["context"] == c) for c in ("parity", "parity_pressure")}
    assert ratio["value"] == pytest.approx(peak["parity_pressure"] / peak["parity"])
    (finding,) = [f for f in summarize(data["records"]) if f.section == "numbers"]
    assert finding.value == pytest.approx(ratio["value"])


@pytest.mark.parametrize("args, message", [
    (("--n", "5"), "n=5 for study 'numbers': must be at least 12"),
    (("--contexts", "plain,bogus"), "bogus"),
    (("--contexts", "parity"), "must include plain"),
])
def test_command_refuses_bad_settings_in_one_line(monkeypatch, capsys, tmp_path, args,
                                                  message):
    code, _, err = run_cli(monkeypatch, capsys, "numbers", "--out", str(tmp_path / "x"),
                           *args)
    assert code == 2 and message in err and err.strip().count("\n") == 0
    assert not (tmp_path / "x").exists()


def test_a_tokenizer_without_the_answer_words_is_refused(monkeypatch, capsys, tmp_path,
                                                         tiny_dir):
    code, _, err = run_cli(monkeypatch, capsys, "numbers", "--model", str(tiny_dir),
                           "--out", str(tmp_path / "x"), "--n", "12", "--contexts",
                           "plain,parity", "--no-report")
    assert code == 2 and "same first token" in err


def test_sign_of_the_margin_matches_the_label():
    from collapsekit.studies.numbers import ANSWERS, labels, prompt, task_of

    assert labels("parity", [0, 1, 7]).tolist() == [0, 1, 1]
    assert labels("primality", [0, 1, 2, 9, 11]).tolist() == [0, 0, 1, 0, 1]
    assert ANSWERS["parity"][0] == " odd" and ANSWERS["primality"][0] == " yes"
    text, upto = prompt("parity_pressure", 37)
    assert text.startswith("My teacher") and upto.endswith("\n37") and text == upto + ":"
    assert task_of("plain_pressure") is None and task_of("primality_pressure") == "primality"


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["embedded:smollm2-135m-instruct", "embedded:gemma3-270m"])
def test_templates_mark_the_number_on_the_embedded_tokenizers(spec):
    """Every item 0..999 in every context: the number's last token is found (no token
    straddles its end) and is a digit; the answer words are distinct single tokens."""
    from collapsekit.models.ablation import answer_ids, token_index
    from collapsekit.models.tokenization import load_tokenizer
    from collapsekit.studies.numbers import ANSWERS, CONTEXTS, prompt

    tok = load_tokenizer(spec)
    for ctx in CONTEXTS:
        for k in range(1000):
            text, upto = prompt(ctx, k)
            i = token_index(tok, text, upto)
            assert tok.decode(tok(text)["input_ids"][i]).strip() == str(k)[-1]
    for task in ANSWERS:
        a, b = answer_ids(tok, ANSWERS[task])
        assert tok.decode(a).strip() != tok.decode(b).strip()
