"""Lexical diversity of a set of generated texts (output-side collapse).

Every function takes a list of strings. Tokens are whitespace-separated words (``str.split``)
unless stated otherwise; ``tokenizer`` (``str -> list of hashable tokens``) replaces that.
Bad input raises ``ValueError`` naming the problem and the fix.
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np

from collapsekit.metrics import bleu as _bleu
from collapsekit.metrics import rouge as _rouge
from collapsekit.params import check_int

Tokenizer = Callable[[str], Sequence]


def _check_texts(texts, min_texts: int = 1) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise ValueError("texts must be a list of strings, got one string: wrap it in a list")
    try:
        texts = list(texts)
    except TypeError:
        raise ValueError(f"texts must be a list of strings, got {type(texts).__name__}") from None
    if len(texts) < min_texts:
        raise ValueError(f"need at least {min_texts} texts, got {len(texts)}: pass more texts")
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(
                f"texts[{i}] is {type(t).__name__}, not str: convert it or drop it "
                "(missing values are often float NaN)"
            )
    return texts


def _encode(texts: list[str], tokenizer: Tokenizer | None) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of all texts concatenated, and the number of tokens of each text."""
    tokenize = str.split if tokenizer is None else tokenizer
    vocab: dict = {}
    ids: list[int] = []
    lengths = np.zeros(len(texts), dtype=np.int64)
    for i, text in enumerate(texts):
        tokens = tokenize(text)
        if isinstance(tokens, str):
            raise ValueError(f"tokenizer returned a str for texts[{i}]: return a list of tokens")
        try:
            ids.extend(vocab.setdefault(tok, len(vocab)) for tok in tokens)
        except TypeError:
            raise ValueError(f"tokenizer returned unhashable tokens for texts[{i}]: "
                             "return str or int tokens") from None
        lengths[i] = len(tokens)
    return np.asarray(ids, dtype=np.int64), lengths


def _grams(flat: np.ndarray, lengths: np.ndarray, n: int, drop_last: bool = False):
    """(code, doc) of every n-gram inside a text; equal codes = equal n-grams.

    ``drop_last`` skips the last n-gram of each text (SimCTG reference counting)."""
    doc = np.repeat(np.arange(len(lengths)), lengths)
    pos = np.arange(flat.size) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    starts = np.flatnonzero(pos <= lengths[doc] - n - int(drop_last))
    code = flat[starts]
    base = int(flat.max()) + 1 if flat.size else 1
    for j in range(1, n):
        code = np.unique(code * base + flat[starts + j], return_inverse=True)[1].reshape(-1)
    return code.astype(np.int64), doc[starts]


def _no_grams(n: int) -> ValueError:
    return ValueError(f"no {n}-grams: every text has fewer than {n} tokens; use a smaller n")


def distinct_n(texts: Sequence[str], n: int, *, tokenizer: Tokenizer | None = None,
               per_token: bool = False) -> float:
    """Distinct-n (Li et al. 2016, "A Diversity-Promoting Objective Function for Neural
    Conversation Models"): |unique n-grams| / |n-grams|, pooled over all texts; n-grams do not
    cross text boundaries. ``per_token=True`` divides by the number of tokens instead, as the
    paper words it ("scaled by total number of generated tokens"); same value for n = 1."""
    texts = _check_texts(texts)
    n = check_int("n", n, 1)
    flat, lengths = _encode(texts, tokenizer)
    code, _ = _grams(flat, lengths, n)
    if code.size == 0:
        raise _no_grams(n)
    return len(np.unique(code)) / (flat.size if per_token else code.size)


def ead(texts: Sequence[str], n: int, vocab_size: int, *, tokenizer: Tokenizer | None = None,
        cap: bool = False) -> float:
    """Expectation-Adjusted Distinct (Liu et al. 2022, "Rethinking and Refining the Distinct
    Metric"): EAD = U / (V·(1 − ((V−1)/V)^T)), U unique and T total n-grams pooled over the texts,
    V = ``vocab_size``, the denominator being the expected number of distinct items in T uniform
    draws from V. The paper states it for tokens; for n > 1 pass the size of the n-gram space
    you assume. EAD can exceed 1 (more distinct than uniform draws); ``cap=True`` returns
    min(EAD, 1), which the paper does not do."""
    texts = _check_texts(texts)
    n = check_int("n", n, 1)
    v = check_int("vocab_size", vocab_size, 1)
    flat, lengths = _encode(texts, tokenizer)
    code, _ = _grams(flat, lengths, n)
    if code.size == 0:
        raise _no_grams(n)
    expected = 1.0 if v == 1 else -v * np.expm1(code.size * np.log1p(-1.0 / v))
    value = float(len(np.unique(code)) / expected)
    return min(value, 1.0) if cap else value


def ngram_diversity(texts: Sequence[str], max_n: int = 4, *, tokenizer: Tokenizer | None = None,
                    return_per_n: bool = False) -> float | dict[int, float]:
    """N-gram diversity (Meister et al. 2023; Shaib et al. 2024, "Standardizing the Measurement of
    Text Diversity", ``diversity.ngram_diversity_score``): Σ_{n=1..max_n} |unique n-grams| /
    |n-grams| over the concatenation of all texts (n-grams cross text boundaries, as there).

    The package tokenises with ``" ".join(texts).split(" ")``; ``tokenizer=lambda t: t.split(" ")``
    reproduces it exactly (differs from the default only on runs of spaces, tabs, newlines).
    ``return_per_n=True`` returns {n: unique/total} instead of the sum."""
    texts = _check_texts(texts)
    max_n = check_int("max_n", max_n, 1)
    flat, _ = _encode(texts, tokenizer)
    if flat.size < max_n:
        raise ValueError(f"the texts have {flat.size} tokens in all, fewer than max_n={max_n}")
    one_doc = np.array([flat.size])
    per_n = {}
    for n in range(1, max_n + 1):
        code, _ = _grams(flat, one_doc, n)
        per_n[n] = len(np.unique(code)) / code.size
    return per_n if return_per_n else float(sum(per_n.values()))


def compression_ratio(texts: Sequence[str], *, sep: str = "\n", level: int = 9,
                      reference: bool = False) -> float:
    """Compression ratio (Shaib et al. 2024): UTF-8 bytes of ``sep.join(texts)`` / bytes of its
    gzip stream (one ``gzip.compress`` at ``level``, default 9, mtime 0, no file name: 18 bytes of
    header and trailer). Higher = more redundant.

    ``reference=True`` reproduces ``diversity.compression_ratio`` (PyPI diversity 0.3.1,
    gzip), which compresses twice: texts joined by " ", ``gzip.compress`` at level 9, and
    that gzip stream written again through ``GzipFile('compressed.gz')`` at level 9, whose
    header also stores the file name (11 more bytes); the package then rounds to 3
    decimals (not done here), and its inner stream carries the current time (mtime 0 here),
    which can move its compressed size by a byte. That is a ratio of the text to its doubly gzipped form; the
    plain one-pass ratio (the default) is the quantity Shaib et al. describe."""
    texts = _check_texts(texts)
    level = check_int("level", level, 0)
    if level > 9:
        raise ValueError(f"level must be in 0..9 (gzip), got {level}")
    if not any(texts):
        raise ValueError("the texts are all empty: nothing to compress")
    data = (" " if reference else sep).join(texts).encode("utf-8")
    if reference:
        twice = gzip.compress(gzip.compress(data, compresslevel=9, mtime=0), 9, mtime=0)
        return len(data) / (len(twice) + len(b"compressed\0"))
    return len(data) / len(gzip.compress(data, compresslevel=level, mtime=0))


def self_repetition(texts: Sequence[str], n: int = 4, *,
                    tokenizer: Tokenizer | None = None) -> float:
    """Self-repetition score (Salkar et al. 2022, "Self-Repetition in Abstractive Neural
    Summarizers"), as ``diversity.self_repetition_score`` computes it:
    mean_i log(1 + Σ_{g ∈ G_i} (df(g) − 1)), G_i the distinct n-grams of text i and df(g) the
    number of texts containing g (natural log; texts without n-grams contribute log 1 = 0)."""
    texts = _check_texts(texts)
    n = check_int("n", n, 1)
    flat, lengths = _encode(texts, tokenizer)
    code, doc = _grams(flat, lengths, n)
    d, g, _ = _bleu._doc_counts(code, doc)
    df = np.bincount(g)
    others = np.bincount(d, weights=df[g] - 1, minlength=len(texts))
    return float(np.mean(np.log(others + 1.0)))


def _rep(texts, n, tokenizer, reference) -> tuple[int, int] | float:
    flat, lengths = _encode(texts, tokenizer)
    code, doc = _grams(flat, lengths, n, drop_last=reference)
    if code.size == 0:
        raise (ValueError(f"no {n}-grams counted: SimCTG counting needs a text of more than {n} "
                          "tokens") if reference else _no_grams(n))
    d, _, _ = _bleu._doc_counts(code, doc)
    unique = np.bincount(d, minlength=len(texts))
    total = np.bincount(doc, minlength=len(texts))
    if reference:
        return int(unique.sum()), int(total.sum())
    has = total > 0
    return float(np.mean(1.0 - unique[has] / total[has]))


def rep_n(texts: Sequence[str], n: int, *, tokenizer: Tokenizer | None = None,
          reference: bool = False) -> float:
    """rep-n (Su et al. 2022, "A Contrastive Framework for Neural Text Generation"), as a fraction:
    1 − |unique n-grams(x)| / |n-grams(x)| per text x, averaged over the texts that have n-grams
    (the paper writes it per text ×100 and does not state the average; this is the mean).

    ``reference=True`` counts as SimCTG's ``measure_repetition_and_diversity``: the last n-gram
    of each text is skipped (``while end_idx < len``), unique and total counts are summed over
    texts, then 1 − Σunique/Σtotal (the code reports round(100·that, 2))."""
    texts = _check_texts(texts)
    n = check_int("n", n, 1)
    value = _rep(texts, n, tokenizer, reference)
    if reference:
        unique, total = value
        return 1.0 - unique / total
    return value


def simctg_diversity(texts: Sequence[str], *, tokenizer: Tokenizer | None = None,
                     reference: bool = False) -> float:
    """SimCTG diversity (Su et al. 2022): Π_{n=2..4} (1 − rep-n), rep-n from :func:`rep_n`.

    ``reference=True`` equals the reference code's ``pred_div`` exactly: its counting, with each
    rep-n first rounded to two decimals in percent."""
    texts = _check_texts(texts)
    out = 1.0
    for n in (2, 3, 4):
        if reference:
            unique, total = _rep(texts, n, tokenizer, True)
            out *= 1 - round((1 - unique / total) * 100, 2) / 100
        else:
            out *= 1.0 - _rep(texts, n, tokenizer, False)
    return out


def self_bleu(texts: Sequence[str], max_n: int = 4, *, tokenizer: Tokenizer | None = None,
              per_text: bool = False):
    """Self-BLEU (Zhu et al. 2018, Texygen): mean over i of sentence BLEU of text i against all
    other texts as references, weights 1/max_n, NLTK ``SmoothingFunction().method1``; equals
    averaging ``nltk.translate.bleu_score.sentence_bleu`` (see ``collapsekit.metrics.bleu``).
    Runs in O(total n-grams): clipping uses the top two counts of each n-gram over all texts,
    the closest reference length comes from the sorted lengths. ``per_text=True`` returns the
    per-text BLEU array instead of its mean."""
    texts = _check_texts(texts, min_texts=2)
    max_n = check_int("max_n", max_n, 1)
    flat, lengths = _encode(texts, tokenizer)
    grams = [_grams(flat, lengths, n) for n in range(1, max_n + 1)]
    scores = _bleu.self_bleu_scores(grams, lengths)
    return scores if per_text else float(np.mean(scores))


def _embedding_row_sums(embeddings, n_texts: int | None) -> np.ndarray:
    x = np.asarray(embeddings, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"embeddings must be a 2-D array with >= 2 rows, got shape {x.shape}")
    if n_texts is not None and x.shape[0] != n_texts:
        raise ValueError(f"embeddings have {x.shape[0]} rows but there are {n_texts} texts")
    if not np.isfinite(x).all():
        raise ValueError("embeddings contain NaN or inf: fix or drop those rows")
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("embeddings contain all-zero rows: cosine is undefined, drop them")
    u = x / norms
    return u @ u.sum(axis=0) - np.einsum("ij,ij->i", u, u)


def homogenization(texts: Sequence[str] | None, measure: str = "rougel", *, embeddings=None,
                   tokenizer: Tokenizer | None = None, per_text: bool = False):
    """Homogenization (Padmakumar & He 2024, "Does Writing with Language Models Reduce Content
    Diversity?"): mean over ordered pairs i ≠ j of sim(i, j); ``per_text=True`` returns, per text
    i, the mean over j ≠ i. All-dissimilar texts give 0 (``diversity.homogenization_score`` returns
    1.0 there, and rounds; this does neither).

    measure "rougel": ROUGE-L F1 as ``rouge_score.RougeScorer(["rougeL"]).score(target=i,
    prediction=j).fmeasure``, with its tokenisation (lowercase, [a-z0-9] runs) unless
    ``tokenizer`` is given; bit-parallel LCS, each unordered pair once.
    "bleu": NLTK sentence BLEU-4 of j (hypothesis) against i (single reference), method1,
    whitespace tokens by default. "embedding": cosine between rows of ``embeddings`` (closed form,
    O(N·D); ``texts`` may be None)."""
    if measure == "embedding":
        if embeddings is None:
            raise ValueError('measure="embedding" needs embeddings=<array of shape (N, D)>')
        n_texts = None if texts is None else len(_check_texts(texts, min_texts=2))
        sums = _embedding_row_sums(embeddings, n_texts)
    elif measure in ("rougel", "bleu"):
        texts = _check_texts(texts, min_texts=2)
        if measure == "rougel":
            flat, lengths = _encode(texts, tokenizer or _rouge.rouge_tokenize)
            seqs = np.split(flat, np.cumsum(lengths)[:-1])
            sums = _rouge.rougel_f1_row_sums(seqs)
        else:
            flat, lengths = _encode(texts, tokenizer)
            grams = [_grams(flat, lengths, n) for n in range(1, 5)]
            sums = _bleu.pairwise_bleu_row_sums(grams, lengths)
    else:
        raise ValueError(f'measure must be "rougel", "bleu" or "embedding", got {measure!r}')
    n = len(sums)
    return sums / (n - 1) if per_text else float(sums.sum() / (n * (n - 1)))


class Loop(NamedTuple):
    """A loop at the end of a token sequence: ``period`` tokens repeated ``repeats`` whole times,
    the periodic suffix starting at token ``start``. Not found: (False, 0, -1, 0)."""

    found: bool
    period: int
    start: int
    repeats: int


def repetition_loops(text_or_tokens, *, min_repeats: int = 3,
                     tokenizer: Tokenizer | None = None) -> Loop:
    """Degeneration loop at the END of a text (Holtzman et al. 2020; Xu et al. 2022): the
    smallest period p such that the longest suffix with t[k] = t[k+p] spans ≥ ``min_repeats``·p
    tokens. Only loops that reach the end count (a loop in the middle is not reported).
    Accepts a string (tokenised by ``tokenizer`` or whitespace) or a token sequence (str or ids)."""
    min_repeats = check_int("min_repeats", min_repeats, 2)
    if isinstance(text_or_tokens, str):
        flat, _ = _encode([text_or_tokens], tokenizer)
    else:
        try:
            tokens = list(text_or_tokens)
        except TypeError:
            raise ValueError("pass a string or a sequence of tokens, got "
                             f"{type(text_or_tokens).__name__}") from None
        flat, _ = _encode([""], lambda _: tokens)
    length = flat.size
    for p in range(1, length // min_repeats + 1):
        mismatch = np.flatnonzero(flat[:-p] != flat[p:])
        span = length if mismatch.size == 0 else length - 1 - int(mismatch[-1])
        if span // p >= min_repeats:
            return Loop(True, p, length - span, span // p)
    return Loop(False, 0, -1, 0)


def loop_rate(texts: Sequence[str], *, min_repeats: int = 3,
              tokenizer: Tokenizer | None = None) -> float:
    """Fraction of texts that end in a repetition loop (see :func:`repetition_loops`)."""
    texts = _check_texts(texts)
    return float(np.mean([repetition_loops(t, min_repeats=min_repeats, tokenizer=tokenizer).found
                          for t in texts]))
