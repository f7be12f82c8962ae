"""``collapsekit tokenizer``: non-unique encodings and phantom edits (Mukherjee, Armstrong &
Ayoobi 2026, "Say Anything but This: When Tokenizer Betrays Reasoning in LLMs").

1. Non-unique search (tokenizer only). Every word type of a corpus — a pre-token unit as
   the tokenizer sees it, leading space included — gets its exact number of token-id
   sequences that decode to it (a DP over the string, :mod:`collapsekit.metrics.
   tokenization`), the count of each artifact kind (whitespace boundary, intra-word
   resegmentation, byte fallback) and one non-canonical example with the fewest tokens,
   checked with ``tokenizer.decode``. Rates: the share of word types, and of canonical
   token occurrences in the corpus, that sit in a word with another encoding (per kind).
2. Replacement probe (model). Greedy chat answers to "replace word w with r in this
   sentence, change nothing else", on real sentences with seeded word and replacement
   choices, compared with the target text: ``correct`` (same string, canonical ids),
   ``phantom_edit`` (same string through other ids, or a difference that is only a
   tokenizer artifact), ``edit_error`` (wrong word, unchanged, extra changes).
"""

from __future__ import annotations

import math
import random
import re

from ...metrics.tokenization import ERROR_KINDS, KINDS, PHANTOM_KINDS, classify_edit
from ...models import tokenization as tk
from ...stats.bootstrap import bootstrap_mean_ci
from ..progress import progress_bar

SECTION = "tokenizer"
REPLACEMENTS = ("apple", "river", "window", "yellow", "garden", "music", "silver", "candle")
PROMPT = ('Replace the word "{word}" with "{replacement}" in the sentence below and change '
          "nothing else. Reply with the new sentence only.\n\n{sentence}")
_ABBREVIATION = re.compile(r"\b(?:Mr|Mrs|Ms|Dr|St|Jr|Sr|Gen|Lt|Col|No|Prof|[A-Z])\.$")
# 1. non-unique encodings -----------------------------------------------------------------
def corpus_units(tokenizer, texts):
    """Word types of ``texts`` with their counts (:func:`tokenization.word_units`); a clear
    error for an empty corpus."""
    texts = list(texts)
    if not texts or not any(isinstance(t, str) and t.strip() for t in texts):
        raise ValueError("no texts to search for non-unique encodings: give a corpus with "
                         "at least one non-empty text")
    return tk.word_units(tokenizer, texts)


def nonunique_search(tokenizer, units, *, progress=None) -> tuple[list[dict], dict]:
    """(rows per word type, summary) of the non-unique search (module docstring, part 1)
    over ``units`` from :func:`corpus_units`; ``progress(1)`` is called per word type.

    Word types whose canonical ids leave the vocabulary (unknown or added tokens) are
    skipped and counted in ``summary["skipped_word_types"]``."""
    kind = tk.scheme(tokenizer)
    vocab = tk.vocabulary(tokenizer)
    rows, skipped = [], 0
    for unit, count in sorted(units.items(), key=lambda kv: (-kv[1], kv[0])):
        if progress:
            progress(1)
        ids, surface = tk.unit_ids(tokenizer, unit), tk.unit_surface(unit, kind)
        try:
            counts = vocab.breakdown(surface, ids)
        except ValueError:
            skipped += 1
            continue
        alt = vocab.alternative(surface, ids)
        rows.append({
            "word": surface.decode("utf-8", "replace"), "occurrences": count,
            "canonical_ids": ids, "canonical_tokens": len(ids),
            "encodings": float(counts["encodings"]),
            "log10_encodings": math.log10(counts["encodings"]),
            **{k: float(counts[k]) for k in KINDS},
            "example_ids": alt,
            "example_pieces": None if alt is None else
            [vocab.surface[i].decode("utf-8", "backslashreplace") for i in alt],
            "example_kind": None if alt is None else vocab.kind(surface, alt, ids),
            "example_decodes": None if alt is None else
            tokenizer.decode(alt) == tokenizer.decode(ids),
        })
    if not rows:
        raise ValueError(f"none of the {len(units)} word types of the corpus can be spelled "
                         "with the tokenizer's vocabulary (all map to unknown tokens)")
    return rows, summarise(rows, skipped)


def summarise(rows: list[dict], skipped: int = 0) -> dict:
    """Rates per word type and per canonical token occurrence, overall and per kind."""
    weights = [r["occurrences"] * r["canonical_tokens"] for r in rows]
    out = {"word_types": len(rows), "skipped_word_types": skipped,
           "mean_log10_encodings": sum(r["log10_encodings"] for r in rows) / len(rows),
           "decode_mismatches": sum(r["example_decodes"] is False for r in rows)}
    for kind in ("any", *KINDS):
        hit = [(r["encodings"] > 1) if kind == "any" else (r[kind] > 0) for r in rows]
        out[f"type_rate/{kind}"] = sum(hit) / len(rows)
        out[f"token_rate/{kind}"] = sum(w for w, h in zip(weights, hit) if h) / sum(weights)
    return out


# 2. replacement probe --------------------------------------------------------------------
def sentences(texts, *, min_words: int = 6, max_words: int = 24) -> list[str]:
    """Sentences of ``texts`` (cut after . ! ? before a capital or a quote, but not after an
    abbreviation such as "Mr.") with ``min_words``..``max_words`` words, ending in . ! or
    ?, in order of appearance."""
    out = []
    for text in texts:
        text = " ".join(text.split())
        cuts = [m for m in re.finditer(r"(?<=[.!?]) (?=[\"'A-Z])", text)
                if not _ABBREVIATION.search(text, 0, m.start())]
        for s in [text[a:b] for a, b in zip([0, *(m.end() for m in cuts)],
                                              [*(m.start() for m in cuts), len(text)])]:
            if min_words <= len(s.split()) <= max_words and s[-1] in ".!?":
                out.append(s)
    return out


def probe_cases(texts, n: int, *, seed: int = 0, max_words: int = 24) -> list[dict]:
    """``n`` replacement cases from real sentences: a seeded shuffle of the sentences; in
    each, a seeded choice among the words of 3+ letters that occur once and are not the
    first word, and a seeded replacement from REPLACEMENTS."""
    if n < 1:
        raise ValueError(f"n_probes={n}: ask for at least one probe case")
    pool = list(dict.fromkeys(sentences(texts, max_words=max_words)))
    rng = random.Random(seed)
    rng.shuffle(pool)
    cases = []
    for sentence in pool:
        spans = [m for m in re.finditer(r"(?<![\w'-])[A-Za-z]{3,}(?![\w'-])", sentence)
                 if m.start() > 0]
        once = [m for m in spans if len(re.findall(rf"\b{m.group()}\b", sentence)) == 1]
        if not once:
            continue
        m = rng.choice(once)
        repl = rng.choice([r for r in REPLACEMENTS if r != m.group().lower()])
        cases.append({"case_id": len(cases), "sentence": sentence, "word": m.group(),
                      "replacement": repl,
                      "target": sentence[:m.start()] + repl + sentence[m.end():]})
        if len(cases) == n:
            break
    if not cases:
        raise ValueError("the texts hold no usable sentence for the replacement probe "
                         f"(6-{max_words} words ending in . ! or ?, with a word of 3+ letters)")
    return cases


def token_artifact(vocab, output_ids: list[int], canonical: list[int]) -> str:
    """Kind of a phantom edit whose string equals the target through other ids."""
    try:
        text = b"".join(vocab.surface[i] for i in canonical)
        return vocab.kind(text, output_ids, canonical)
    except (KeyError, ValueError):
        pass
    if any(i not in vocab.surface for i in [*output_ids, *canonical]):
        return "added_token"
    a = b"".join(vocab.surface[i] for i in output_ids)  # equal only after the decoder
    b = b"".join(vocab.surface[i] for i in canonical)
    return "whitespace_boundary" if a.split() == b.split() else "normalisation"


def classify_case(tokenizer, vocab, case: dict, sample) -> dict:
    """One probe row: the case, the answer and its label/kind (module docstring, part 2)."""
    out_ids = sample.token_ids[:-1] if sample.finish_reason == "eos" else sample.token_ids
    canonical = tk.encode(tokenizer, case["target"])
    label, kind = classify_edit(sample.text, case["target"], case["sentence"])
    if label == "match":
        if list(out_ids) == canonical:
            label = "correct"
        else:
            label, kind = "phantom_edit", token_artifact(vocab, list(out_ids), canonical)
    return {**case, "output": sample.text, "label": label, "kind": kind,
            "finish_reason": sample.finish_reason, "output_ids": list(out_ids),
            "canonical_ids": canonical}


def run_probe(run, lm, cases: list[dict], *, seed: int, max_new_tokens: int) -> list[dict]:
    """Greedy chat answers for ``cases`` (cached in the run folder) classified per case."""
    from ...models.decoding import Decoding
    from ...models.sampling import sample

    prompts = [(c["case_id"], PROMPT.format(**c)) for c in cases]
    with progress_bar("tokenizer: replacement probe", len(prompts)) as tick:
        samples = sample(lm.model, lm.tokenizer, prompts, k=1, seed=seed, model_key=lm.spec,
                         decoding=Decoding(temperature=0, max_new_tokens=max_new_tokens),
                         cache=run.file("samples/tokenizer_probe.jsonl"), progress=tick,
                         batch_size=16)
    vocab = tk.vocabulary(lm.tokenizer)
    return [classify_case(lm.tokenizer, vocab, c, s) for c, s in zip(cases, samples)]


# stages ----------------------------------------------------------------------------------
def search_stage(run, tokenizer, texts) -> None:
    """Non-unique search records and the table ``tokenizer_word_types``."""
    with run.timer("tokenizer_search"):
        units = corpus_units(tokenizer, texts)
        with progress_bar("tokenizer: non-unique encodings", len(units)) as tick:
            rows, summary = nonunique_search(tokenizer, units, progress=tick)
        run.table("tokenizer_word_types", rows)
        run.meta(tokenizer={"scheme": tk.scheme(tokenizer), "vocab_size": len(tokenizer)})
        for key in ("word_types", "skipped_word_types", "mean_log10_encodings",
                    "decode_mismatches"):
            run.add(key, summary[key], section=SECTION)
        for kind in ("any", *KINDS):
            run.add("nonunique_word_type_rate", summary[f"type_rate/{kind}"], section=SECTION,
                    kind=kind)
            run.add("nonunique_token_rate", summary[f"token_rate/{kind}"], section=SECTION,
                    kind=kind)
    run.write()


def probe_stage(run, lm, texts, *, n_probes: int, max_new_tokens: int, max_words: int = 24,
                seed: int = 0) -> None:
    """Replacement-probe records and the table ``tokenizer_probe``."""
    with run.timer("tokenizer_probe"):
        cases = probe_cases(texts, n_probes, seed=seed, max_words=max_words)
        rows = run_probe(run, lm, cases, seed=seed, max_new_tokens=max_new_tokens)
        run.table("tokenizer_probe", rows)
        run.add("probe_cases", len(rows), section=SECTION)
        labels = [r["label"] for r in rows]
        for metric, label, kinds in (("probe_correct_rate", "correct", ()),
                                     ("phantom_edit_rate", "phantom_edit", PHANTOM_KINDS),
                                     ("edit_error_rate", "edit_error", ERROR_KINDS)):
            mean, low, high = bootstrap_mean_ci([x == label for x in labels], seed=seed)
            scope = {"kind": "any"} if kinds else {}
            run.add(metric, mean, section=SECTION, ci_low=low, ci_high=high, **scope)
            for kind in kinds:
                run.add(metric, sum(r["label"] == label and r["kind"] == kind for r in rows)
                        / len(rows), section=SECTION, kind=kind)
    run.write()


def _corpus(s) -> list[str]:
    from ...corpora import human_texts
    from ...io import read_texts

    return (read_texts(s.texts) if s.texts else human_texts(s.human))[:s.n_texts]


def check(s) -> dict:
    """Read the corpus before the run is made."""
    return {"texts": str(s.texts) if s.texts else f"human:{s.human}",
            "n_texts": len(_corpus(s))}


def study_stage(run, lm, s) -> None:
    """The non-unique search, and unless ``probe`` is off the replacement probe (with
    ``probe`` off ``lm`` is None: only the tokenizer is loaded)."""
    corpus = _corpus(s)
    if not s.probe:
        tokenizer = tk.load_tokenizer(s.model)
        run.meta(model={"spec": s.model, "tokenizer_only": True})
        search_stage(run, tokenizer, corpus)
        return
    search_stage(run, lm.tokenizer, corpus)
    probe_stage(run, lm, corpus, n_probes=s.n_probes, seed=s.seed,
                max_new_tokens=s.max_new_tokens, max_words=s.max_words)
