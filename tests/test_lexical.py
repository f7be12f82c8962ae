"""Lexical diversity metrics: hand-computed values, NLTK / rouge_score equality, bad input."""

from __future__ import annotations

import gzip
import math

import numpy as np
import pytest

from collapsekit.metrics import rouge
from collapsekit.metrics.lexical import (
    Loop,
    compression_ratio,
    distinct_n,
    ead,
    homogenization,
    loop_rate,
    ngram_diversity,
    rep_n,
    repetition_loops,
    self_bleu,
    self_repetition,
    simctg_diversity,
)


def random_texts(rng, n_texts, max_len, vocab, decorate=False):
    """Seeded random texts over a small vocabulary (many repeats and partial matches)."""
    out = []
    for _ in range(n_texts):
        words = [f"w{x}" for x in rng.integers(0, vocab, int(rng.integers(0, max_len + 1)))]
        if decorate:  # capitals and punctuation that rouge_score's tokenizer strips
            words = [w.upper() + "," if k % 3 == 0 else w for k, w in enumerate(words)]
        out.append(" ".join(words))
    return out


# --- distinct-n, EAD --------------------------------------------------------------------------

def test_distinct_n_hand():
    texts = ["a b a", "b a"]
    assert distinct_n(texts, 1) == pytest.approx(2 / 5)
    assert distinct_n(texts, 2) == pytest.approx(2 / 3)  # ab, ba | ba
    assert distinct_n(texts, 2, per_token=True) == pytest.approx(2 / 5)
    assert distinct_n(["a b", "c"], 2) == 1.0  # no "b c" across the boundary
    assert distinct_n(["A-b-a-B"], 1, tokenizer=lambda t: t.lower().split("-")) == 0.5


def test_ead_closed_form():
    # U = T = 3, V = 3: expected distinct = 3 (1 - (2/3)^3) = 19/9
    assert ead(["a b c"], 1, 3) == pytest.approx(27 / 19, rel=1e-12)
    assert ead(["a b c"], 1, 3, cap=True) == 1.0
    assert ead(["a a"], 1, 1) == 1.0
    # V -> infinity: expected distinct -> T, EAD -> distinct-n (stable for huge V)
    texts = ["a b a c", "b b d"]
    assert ead(texts, 1, 10**15) == pytest.approx(distinct_n(texts, 1), rel=1e-9)


# --- n-gram diversity, compression ----------------------------------------------------------

def test_ngram_diversity_hand_and_crosses_boundaries():
    # "a b a b": 2/4 + 2/3 + 2/2 + 1/1
    assert ngram_diversity(["a b", "a b"]) == pytest.approx(0.5 + 2 / 3 + 1 + 1)
    per_n = ngram_diversity(["a b", "a b"], max_n=2, return_per_n=True)
    assert per_n == {1: pytest.approx(0.5), 2: pytest.approx(2 / 3)}


def test_ngram_diversity_matches_diversity_package_readme():
    # README of cshaib/diversity: ngram_diversity_score(data_example, 4) -> 3.315
    data = [
        "I enjoy walking with my cute dog for the rest of the day, but this time it was hard for "
        "me to figure out what to do with it. When I finally looked at this for a few moments, I "
        "immediately thought.",
        "I enjoy walking with my cute dog. The only time I felt like walking was when I was "
        "working, so it was awesome for me. I didn't want to walk for days. I am really curious "
        "how she can walk with me",
        "I enjoy walking with my cute dog (Chama-I-I-I-I-I), and I really enjoy running. I play "
        "in a little game I play with my brother in which I take pictures of our houses.",
    ]
    assert round(ngram_diversity(data, 4, tokenizer=lambda t: t.split(" ")), 3) == 3.315


def test_compression_ratio_stored_blocks_closed_form():
    texts = ["abc", "de"]  # "abc\nde": 6 bytes; level 0 = one stored block: +5, gzip +18
    assert compression_ratio(texts, level=0) == pytest.approx(6 / 29)
    assert compression_ratio(texts, sep="", level=0) == pytest.approx(5 / 28)
    assert compression_ratio(["the cat " * 200]) > 10  # repetitive text compresses well


def test_compression_ratio_reference_equals_diversity_package_procedure(tmp_path):
    # diversity 0.3.1: GzipFile('compressed.gz').write(gzip.compress(' '.join(data).encode()))
    texts = ["the cat sat on the mat", "the dog sat on the log", "ünïcode ✓"] * 5
    data = " ".join(texts).encode("utf-8")
    (tmp_path / "original.txt").write_bytes(data)
    with gzip.GzipFile(str(tmp_path / "compressed.gz"), "w+") as f:
        f.write(gzip.compress(data, mtime=0))
    expected = (tmp_path / "original.txt").stat().st_size / (tmp_path / "compressed.gz").stat(
    ).st_size
    assert compression_ratio(texts, reference=True) == pytest.approx(expected, rel=1e-15)
    once = len(data) / len(gzip.compress(data, 9, mtime=0))
    assert compression_ratio(texts, sep=" ") == pytest.approx(once, rel=1e-15)
    assert compression_ratio(texts, reference=True) < once  # the second pass only adds bytes


# --- self-repetition, rep-n, SimCTG diversity ------------------------------------------------

def test_self_repetition_hand():
    texts = ["a b c d", "a b c d", "x y z w"]
    assert self_repetition(texts) == pytest.approx(2 * math.log(2) / 3)
    # n-grams counted once per text: each text has {ab, ba}, each in one other text
    assert self_repetition(["a b a b a b", "a b a"], n=2) == pytest.approx(math.log(3))
    assert self_repetition(["a b", "c"]) == 0.0  # no 4-grams: log(1) each


def test_rep_n_paper_and_reference():
    texts = ["a b a b a", "c d e f", "z"]
    # paper: per text 1 - 2/4 and 1 - 3/3, mean over texts with bigrams ("z" has none)
    assert rep_n(texts, 2) == pytest.approx(0.25)
    # reference: last bigram skipped (ab ba ab | cd de), pooled: 1 - 4/5
    assert rep_n(texts, 2, reference=True) == pytest.approx(0.2)


def test_simctg_diversity_hand():
    text = ["a b a b a b"]
    # paper: rep-2 = 1-2/5, rep-3 = 1-2/4, rep-4 = 1-2/3
    assert simctg_diversity(text) == pytest.approx(0.4 * 0.5 * (2 / 3))
    # reference: 2/4, 2/3, 2/2 unique; rep-3 = 33.33% after rounding
    assert simctg_diversity(text, reference=True) == pytest.approx(0.5 * (1 - 0.3333) * 1.0,
                                                                   abs=1e-15)


# --- self-BLEU -------------------------------------------------------------------------------

def test_self_bleu_hand():
    assert self_bleu(["a b", "a b"], max_n=2) == pytest.approx(1.0)
    assert self_bleu(["a b c", "a b d"], max_n=2) == pytest.approx(math.sqrt(2 / 3 * 1 / 2))
    assert self_bleu(["a b", "b a"], max_n=2) == pytest.approx(math.sqrt(0.1))  # method1: 0.1/1
    assert self_bleu(["a b", "c d"]) == 0.0  # no unigram match
    # brevity: "a" vs "a b c" -> exp(1-3); "a b c" vs "a" -> p1 = 1/3, BP = 1
    assert self_bleu(["a", "a b c"], max_n=1) == pytest.approx((math.exp(-2) + 1 / 3) / 2)


def test_self_bleu_closest_length_tie_and_leave_one_out_max():
    # lengths 3 | 2, 4 tie -> shorter (2), BP = 1; 2 | 3, 4 -> 3; 4 | 3, 2 -> 3
    value = self_bleu(["a b c", "a b", "a b c d"], max_n=1)
    assert value == pytest.approx((1 + math.exp(1 - 3 / 2) + 3 / 4) / 3)
    # "a a a": others' max count of a is 2; "a" : closest of (3, 2) is 2
    value = self_bleu(["a a a", "a a", "a"], max_n=1)
    assert value == pytest.approx((2 / 3 + 1 + math.exp(-1)) / 3)


def test_self_bleu_equals_nltk_on_random_cases():
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    method1 = SmoothingFunction().method1
    rng = np.random.default_rng(0)
    for case in range(40):
        texts = random_texts(rng, int(rng.integers(2, 7)), 14, int(rng.integers(2, 9)))
        tokens = [t.split() for t in texts]
        for max_n in (1, 2, 4, 5):
            weights = (1.0 / max_n,) * max_n
            expected = [sentence_bleu(tokens[:i] + tokens[i + 1:], tokens[i], weights,
                                      smoothing_function=method1) for i in range(len(texts))]
            got = self_bleu(texts, max_n, per_text=True)
            np.testing.assert_allclose(got, expected, rtol=0, atol=1e-9, err_msg=str(texts))


# --- homogenization ----------------------------------------------------------------------------

def test_homogenization_rougel_hand():
    # LCS("a b c d", "a c") = 2: P = 1, R = 1/2, F1 = 2/3
    assert homogenization(["a b c d", "a c"]) == pytest.approx(2 / 3)
    assert homogenization(["a b", "c d", "e"]) == 0.0  # all dissimilar: 0 (package says 1.0)
    assert homogenization(["The CAT, sat!", "the cat sat"]) == 1.0  # rouge_score tokenisation
    assert homogenization(["!!!", "a"]) == 0.0  # empty after tokenisation


def test_lcs_multiword_closed_form():
    # F1 = 2 LCS / (|a| + |b|); lengths cross the 64-bit word boundaries
    a = np.array([0] * 130 + [1] * 70)
    b = np.array([1] * 70 + [0] * 130)
    c = np.arange(150)
    d = np.arange(0, 150, 2)
    sums = rouge.rougel_f1_row_sums([a, b])
    assert sums[0] * (len(a) + len(b)) / 2 == pytest.approx(130)
    sums = rouge.rougel_f1_row_sums([c, d])
    assert sums[1] * (len(c) + len(d)) / 2 == pytest.approx(75)


def test_homogenization_rougel_equals_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=False)
    rng = np.random.default_rng(1)
    for case in range(6):
        texts = random_texts(rng, int(rng.integers(2, 7)), 200, int(rng.integers(2, 15)), True)
        n = len(texts)
        pair = np.array([[scorer.score(texts[i], texts[j])["rougeL"].fmeasure if i != j else 0.0
                          for j in range(n)] for i in range(n)])
        np.testing.assert_allclose(homogenization(texts, per_text=True), pair.sum(1) / (n - 1),
                                   rtol=0, atol=1e-9)
        assert homogenization(texts) == pytest.approx(pair.sum() / (n * (n - 1)), abs=1e-9)


def test_homogenization_bleu_equals_nltk():
    from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu

    method1 = SmoothingFunction().method1
    assert homogenization(["a b", "a b"], "bleu") == pytest.approx(math.sqrt(0.1))  # p3=p4=0.1
    rng = np.random.default_rng(2)
    for case in range(15):
        texts = random_texts(rng, int(rng.integers(2, 7)), 14, int(rng.integers(2, 8)))
        tok = [t.split() for t in texts]
        n = len(texts)
        per = [np.mean([sentence_bleu([tok[i]], tok[j], smoothing_function=method1)
                        for j in range(n) if j != i]) for i in range(n)]
        np.testing.assert_allclose(homogenization(texts, "bleu", per_text=True), per, atol=1e-9)


def test_homogenization_embedding_closed_form():
    x = np.array([[1.0, 0.0], [0.0, 3.0], [2.0, 2.0]])  # cosines 0, 1/√2, 1/√2
    assert homogenization(None, "embedding", embeddings=x) == pytest.approx(math.sqrt(2) / 3)
    per = homogenization(["a", "b", "c"], "embedding", embeddings=x, per_text=True)
    np.testing.assert_allclose(per, [0.5 / math.sqrt(2), 0.5 / math.sqrt(2), 1 / math.sqrt(2)])


# --- degeneration loops ----------------------------------------------------------------------

def test_repetition_loops_hand():
    assert repetition_loops("x a b a b a b") == Loop(True, 2, 1, 3)
    assert repetition_loops("x y y y") == Loop(True, 1, 1, 3)
    assert repetition_loops([5, 1, 2, 1, 2, 1, 2, 1]) == Loop(True, 2, 1, 3)  # partial unit
    assert repetition_loops("x a b a b a b", min_repeats=4) == Loop(False, 0, -1, 0)
    assert repetition_loops("a b a b a b c d e").found is False  # loop must reach the end
    assert repetition_loops("").found is False
    assert loop_rate(["a a a", "a b c", "x y x y x y", ""]) == 0.5


# --- bad input -----------------------------------------------------------------------------------

ALL = [
    lambda t: distinct_n(t, 1), lambda t: ead(t, 1, 10), lambda t: ngram_diversity(t),
    lambda t: compression_ratio(t), lambda t: self_repetition(t), lambda t: rep_n(t, 2),
    lambda t: simctg_diversity(t), lambda t: self_bleu(t), lambda t: homogenization(t),
    lambda t: homogenization(t, "bleu"), lambda t: loop_rate(t),
]


@pytest.mark.parametrize("fn", ALL)
@pytest.mark.parametrize("bad, match", [
    ([], "at least"), ("a b c", "one string"), (["a b", 3], r"texts\[1\] is int"),
    ([float("nan"), "a"], "NaN"), (None, "list of strings"),
])
def test_bad_texts(fn, bad, match):
    with pytest.raises(ValueError, match=match):
        fn(bad)


@pytest.mark.parametrize("call, match", [
    (lambda: self_bleu(["only one"]), "at least 2"),
    (lambda: homogenization(["only one"]), "at least 2"),
    (lambda: distinct_n(["a", ""], 2), "no 2-grams"),
    (lambda: distinct_n(["a b"], 0), "n=.* must be an integer >= 1"),
    (lambda: distinct_n(["a b"], 1.5), "n=.* must be an integer >= 1"),
    (lambda: distinct_n(["a b"], True), "n=.* must be an integer >= 1"),
    (lambda: ead(["a b"], 1, 0), "vocab_size"),
    (lambda: ngram_diversity(["a b"], 3), "fewer than max_n"),
    (lambda: compression_ratio(["", ""]), "empty"),
    (lambda: compression_ratio(["a"], level=10), "level"),
    (lambda: rep_n(["a b", "c"], 3), "no 3-grams"),
    (lambda: rep_n(["a b"], 2, reference=True), "more than 2"),
    (lambda: simctg_diversity(["a b c"]), "no 4-grams"),
    (lambda: distinct_n(["a b"], 1, tokenizer=lambda t: t), "returned a str"),
    (lambda: homogenization(["a", "b"], "cosine"), "measure must be"),
    (lambda: homogenization(["a", "b"], "embedding"), "needs embeddings"),
    (lambda: homogenization(None, "embedding", embeddings=np.ones(3)), "2-D"),
    (lambda: homogenization(None, "embedding", embeddings=np.ones((1, 3))), ">= 2 rows"),
    (lambda: homogenization(["a", "b"], "embedding", embeddings=np.ones((3, 2))), "3 rows"),
    (lambda: homogenization(None, "embedding", embeddings=[[1, np.nan], [1, 0]]), "NaN"),
    (lambda: homogenization(None, "embedding", embeddings=[[0, 0], [1, 0]]), "all-zero"),
    (lambda: repetition_loops("a a a", min_repeats=1), "min_repeats"),
    (lambda: repetition_loops(3), "sequence of tokens"),
])
def test_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_empty_strings_have_defined_values():
    assert self_bleu(["", "a b"]) == 0.0  # empty hypothesis and empty reference: BLEU 0 (NLTK)
    assert homogenization(["", "a b"]) == 0.0  # rouge_score: empty side -> 0
    assert distinct_n(["", "a b"], 1) == 1.0  # empty texts add no n-grams
