"""Tokenizer consistency: exact DP counts of non-unique encodings (closed form, brute force,
a constructed BPE tokenizer, the real SmolLM2 tokenizer), the phantom-edit classifier on
hand-made cases, and the ``collapsekit tokenizer`` command on a tiny model."""

import json
import random

import pytest

from collapsekit.metrics.tokenization import KINDS, Vocabulary, classify_edit, junctions
from collapsekit.models import tokenization as tk
from collapsekit.models.sample_cache import Sample
from collapsekit.studies.probes import tokenizer as study
from conftest import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")


def byte_level_bpe():
    """A real byte-level BPE tokenizer whose vocabulary holds a, b, ab, Ġ, Ġa, Ġab."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"a": 0, "b": 1, "ab": 2, "Ġ": 3, "Ġa": 4, "Ġab": 5}
    core = Tokenizer(models.BPE(vocab=vocab, merges=[("a", "b"), ("Ġ", "ab"), ("Ġ", "a")]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core)


def brute_force(text: bytes, vocab: Vocabulary) -> list[list[int]]:
    """Every id sequence whose surfaces concatenate to ``text`` (exponential; tiny inputs)."""
    if not text:
        return [[]]
    out = []
    for piece, ids in vocab.pieces.items():
        if text.startswith(piece):
            out += [[i, *rest] for i in ids for rest in brute_force(text[len(piece):], vocab)]
    return out


# DP counts ---------------------------------------------------------------------------------
def test_constructed_bpe_ab_has_two_encodings_and_the_example_decodes():
    tok = byte_level_bpe()
    assert tk.scheme(tok) == "byte_level"
    vocab = tk.vocabulary(tok)
    assert tk.encode(tok, "ab") == [2]
    assert vocab.count("ab") == 2
    example = vocab.alternative("ab", [2])
    assert example == [0, 1] and tok.decode(example) == "ab"
    assert vocab.kind("ab", example, [2]) == "intra_word"
    # " ab": [Ġab], [Ġ, ab], [Ġ, a, b], [Ġa, b]; the first is canonical
    assert tk.unit_ids(tok, "Ġab") == [5]
    assert vocab.breakdown(" ab", [5]) == {"encodings": 4, "whitespace_boundary": 2,
                                           "intra_word": 1, "byte_fallback": 0}
    assert vocab.alternative(" ab", [5]) == [3, 2]  # " " + "ab": fewest tokens, earliest
    assert tok.decode([3, 2]) == " ab"


def test_closed_form_fibonacci():
    # pieces "a" and "aa": segmentations of a^n are compositions into 1s and 2s = F(n+1)
    vocab = Vocabulary({0: "a", 1: "aa"})
    fib = [1, 1]
    for _ in range(60):
        fib.append(fib[-1] + fib[-2])
    for n in (1, 2, 3, 4, 10, 60):
        assert vocab.count("a" * n) == fib[n]
    assert vocab.count("a" * 60) == 2504730781961  # exact integers, no enumeration


def test_dp_and_breakdown_equal_brute_force_enumeration():
    surfaces = {0: "a", 1: "b", 2: "ab", 3: "ba", 4: "aba", 5: " ", 6: " a", 7: " ab",
                8: "b", 9: b"\xc3", 10: b"\xa9", 11: "é", 12: "a "}
    vocab = Vocabulary(surfaces, byte_ids=[8])  # id 8 duplicates "b" as a byte-fallback token
    rng = random.Random(0)
    alphabet = ["a", "b", " ", "é"]
    for _ in range(60):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7))).encode()
        every = brute_force(text, vocab)
        assert vocab.count(text) == len(every)
        if not every:
            continue
        canonical = min(every, key=lambda e: (len(e), e))
        got = vocab.breakdown(text, canonical)
        want = {k: 0 for k in KINDS}
        for e in every:
            if e != canonical:
                want[vocab.kind(text, e, canonical)] += 1
        assert got == {"encodings": len(every), **want}
        alt = vocab.alternative(text, canonical)
        others = [e for e in every if e != canonical]
        assert (alt is None) == (not others)
        if alt is not None:
            assert alt in others and len(alt) == min(map(len, others))


def test_byte_pieces_are_byte_fallback():
    vocab = Vocabulary({0: "é", 1: b"\xc3", 2: b"\xa9", 3: "x", 4: b"x"}, byte_ids=[4])
    assert vocab.breakdown("é", [0]) == {"encodings": 2, "whitespace_boundary": 0,
                                         "intra_word": 0, "byte_fallback": 1}
    assert vocab.kind("é", [1, 2], [0]) == "byte_fallback"
    assert vocab.kind("x", [4], [3]) == "byte_fallback"
    assert vocab.kind("x", [3], [3]) is None
    assert junctions(" ab c") == {1, 3, 4}


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="empty"):
        Vocabulary({})
    vocab = Vocabulary({0: "a", 1: "b"})
    with pytest.raises(ValueError, match="empty"):
        vocab.count("")
    with pytest.raises(ValueError, match="do not spell"):
        vocab.breakdown("ab", [0])
    with pytest.raises(ValueError, match="not in the vocabulary"):
        vocab.alternative("ab", [0, 7])
    with pytest.raises(ValueError, match="str or bytes"):
        vocab.count(3.0)
    with pytest.raises(ValueError, match="string"):
        classify_edit(None, "a b", "a c")
    with pytest.raises(ValueError, match="non-empty"):
        classify_edit("x", "", "a")


# phantom-edit classifier -------------------------------------------------------------------
SOURCE = "The old dog sat by the river."
TARGET = "The old cat sat by the river."


@pytest.mark.parametrize("output, expected", [
    (TARGET, ("match", None)),
    ("The old cat  sat by the river.", ("phantom_edit", "whitespace_boundary")),
    ("The old cat sat by the river .", ("phantom_edit", "whitespace_boundary")),
    ("The old cat sat by the river.\n", ("phantom_edit", "whitespace_boundary")),
    ("The old ｃat sat by the river.", ("phantom_edit", "normalisation")),
    (SOURCE, ("edit_error", "unchanged")),
    ("The old cow sat by the river.", ("edit_error", "wrong_word")),
    ("The cat sat by the river.", ("edit_error", "extra_changes")),
    ("", ("edit_error", "extra_changes")),
])
def test_classify_edit_hand_made_cases(output, expected):
    assert classify_edit(output, TARGET, SOURCE) == expected


def test_classify_edit_quotes_and_byte_fallback():
    assert classify_edit("He said \u201chi\u201d.", 'He said "hi".', 'He said "yo".') == \
        ("phantom_edit", "normalisation")
    assert classify_edit("The caf\ufffd is open.", "The café is open.", "The bar is open.") == \
        ("phantom_edit", "byte_fallback")
    assert classify_edit("The caf\ufffd is open.", "The cafe is open.", "The bar is open.") \
        == ("edit_error", "wrong_word")


def _sample(text, ids, finish="eos"):
    return Sample(key="k", prompt_id=0, prompt="p", sample_index=0, text=text,
                  token_ids=ids, token_logprobs=[0.0] * len(ids),
                  sampling_logprobs=[0.0] * len(ids), finish_reason=finish, decoding={},
                  seed=0, model_key="m")


def test_same_string_through_other_ids_is_a_phantom_edit():
    tok = byte_level_bpe()
    vocab = tk.vocabulary(tok)
    case = {"case_id": 0, "sentence": "a a", "word": "a", "replacement": "ab",
            "target": "a ab"}
    canonical = tk.encode(tok, "a ab")
    assert canonical == [0, 5]
    stop = 99  # the stop token is dropped before comparing ids
    rows = {name: study.classify_case(tok, vocab, case, _sample("a ab", ids + [stop]))
            for name, ids in (("canon", [0, 5]), ("space", [0, 3, 2]), ("split", [0, 4, 1]))}
    assert (rows["canon"]["label"], rows["canon"]["kind"]) == ("correct", None)
    assert (rows["space"]["label"], rows["space"]["kind"]) == \
        ("phantom_edit", "whitespace_boundary")
    assert (rows["split"]["label"], rows["split"]["kind"]) == ("phantom_edit", "intra_word")
    assert rows["split"]["output_ids"] == [0, 4, 1]
    odd = study.classify_case(tok, vocab, case, _sample("a ab", [0, 5, 7], finish="length"))
    assert (odd["label"], odd["kind"]) == ("phantom_edit", "added_token")


# search and probe cases --------------------------------------------------------------------
def test_search_on_a_word_level_tokenizer(tiny_tokenizer):
    assert tk.scheme(tiny_tokenizer) == "word"
    units = study.corpus_units(tiny_tokenizer, ["the cat sees the dog .", "the zebra runs"])
    assert units["the"] == 3 and units["zebra"] == 1
    rows, summary = study.nonunique_search(tiny_tokenizer, units)
    assert summary["skipped_word_types"] == 1  # "zebra" is <unk>
    assert summary["word_types"] == 6 and summary["type_rate/any"] == 0.0
    assert all(r["encodings"] == 1 and r["example_ids"] is None for r in rows)


def test_search_rates_on_the_constructed_bpe():
    tok = byte_level_bpe()
    rows, summary = study.nonunique_search(tok, study.corpus_units(tok, ["ab ab b", "b"]))
    by_word = {r["word"]: r for r in rows}
    assert by_word[" ab"]["encodings"] == 4 and by_word[" ab"]["occurrences"] == 1
    assert by_word["b"]["encodings"] == 1 and by_word["b"]["occurrences"] == 1
    assert by_word[" ab"]["example_decodes"] is True
    # types "ab", " ab", " b", "b": " b" → [Ġ, b] only; weights = occurrences x tokens
    assert summary["type_rate/any"] == pytest.approx(2 / 4)
    assert summary["token_rate/any"] == pytest.approx(2 / (1 + 1 + 2 + 1))
    assert summary["type_rate/whitespace_boundary"] == pytest.approx(1 / 4)


def test_empty_corpus_is_a_clear_error(tiny_tokenizer):
    for texts in ([], ["", "   "]):
        with pytest.raises(ValueError, match="no texts to search"):
            study.corpus_units(tiny_tokenizer, texts)
    with pytest.raises(ValueError, match="no usable sentence"):
        study.probe_cases(["too short."], 4)


def test_probe_cases_are_seeded_and_replace_one_word():
    texts = ["The small dog walked along the quiet road today. Then a bird sang loudly "
             "over the green field! Nobody heard the bird because the wind was strong."]
    a = study.probe_cases(texts, 3, seed=1)
    assert a == study.probe_cases(texts, 3, seed=1)
    assert len(a) == 3
    for c in a:
        assert c["sentence"].count(c["word"]) == 1
        assert c["target"] == c["sentence"].replace(c["word"], c["replacement"])
        assert c["replacement"] in study.REPLACEMENTS and c["replacement"] != c["word"]
    draws = {tuple((c["sentence"], c["word"], c["replacement"])
                   for c in study.probe_cases(texts, 3, seed=seed)) for seed in range(6)}
    assert len(draws) > 1  # the seed matters


# command line ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from conftest import make_model, make_tokenizer

    path = tmp_path_factory.mktemp("tiny-llama")
    make_model("llama").save_pretrained(path, safe_serialization=True)
    make_tokenizer().save_pretrained(path)
    return path


def test_cli_tokenizer_on_a_tiny_model(monkeypatch, capsys, tmp_path, tiny_dir):
    texts = tmp_path / "texts.txt"
    texts.write_text("the old king sees the small bird in the tree .\n"
                     "a woman walks with the dog to the river .\n")
    out = tmp_path / "run"
    args = ["tokenizer", "--model", str(tiny_dir), "--texts", str(texts), "--quick",
            "--n-probes", "2", "--max-new-tokens", "6", "--out", str(out), "--json"]
    code, stdout, err = run_cli(monkeypatch, capsys, *args)
    assert code == 0, err
    data = json.loads(stdout)
    got = {(r["metric"], r.get("kind")): r["value"] for r in data["records"]}
    assert got[("probe_cases", None)] == 2
    assert got[("nonunique_word_type_rate", "any")] == 0.0  # a word-level vocabulary
    assert sum(got[("edit_error_rate", k)] for k in ("unchanged", "wrong_word",
                                                     "extra_changes")) == \
        pytest.approx(got[("edit_error_rate", "any")])
    assert all(r["section"] == "tokenizer" for r in data["records"])
    for name in ("index.html", "tables/tokenizer_probe.parquet",
                 "tables/tokenizer_word_types.csv", "samples/tokenizer_probe.jsonl"):
        assert (out / name).is_file()
    assert data["done"] == ["tokenizer"] and data["config"]["probe"] is True
    assert (data["config"]["n_texts"], data["config"]["n_probes"],
            data["config"]["max_new_tokens"], data["config"]["max_words"]) == (2, 2, 6, 16)
    assert data["model"]["spec"] == str(tiny_dir)
    import collapsekit.models.registry as registry

    def no_load(*a, **k):
        raise AssertionError("the model's weights were loaded")

    monkeypatch.setattr(registry, "load_model", no_load)
    code, stdout, err = run_cli(monkeypatch, capsys, *args, "--resume")  # nothing recomputed
    assert code == 0, err
    assert json.loads(stdout)["records"] == data["records"]

    # --no-probe: the search alone, on the tokenizer (load_model still refuses to run)
    code, stdout, err = run_cli(monkeypatch, capsys, "tokenizer", "--model", str(tiny_dir),
                                "--texts", str(texts), "--no-probe", "--json",
                                "--out", str(tmp_path / "search"))
    assert code == 0, err
    data = json.loads(stdout)
    assert data["model"]["tokenizer_only"] is True and data["config"]["probe"] is False
    assert data["model"]["spec"] == str(tiny_dir) and data["done"] == ["tokenizer"]
    assert not any(r["metric"] == "probe_cases" for r in data["records"])
    assert got[("nonunique_word_type_rate", "any")] == next(
        r["value"] for r in data["records"] if r["metric"] == "nonunique_word_type_rate"
        and r.get("kind") == "any")


def test_settings_quick_full_and_the_search_alone():
    from collapsekit.studies import STUDIES

    study = STUDIES["tokenizer"]
    full, quick = study.settings(), study.settings(quick=True)
    assert (full.n_texts, full.n_probes, full.max_new_tokens, full.max_words, full.probe) \
        == (None, 128, 96, 24, True)
    assert (quick.n_texts, quick.n_probes, quick.max_new_tokens, quick.max_words) == \
        (200, 16, 48, 16)
    assert full.human == "news" and full.texts is None
    assert study.uses_model(full) and not study.uses_model(study.settings({"probe": "false"}))
    for kw, message in (({"n_probes": 0}, "n_probes=0"), ({"human": "poems"}, "choose one"),
                        ({"probe": "maybe"}, "true or false")):
        with pytest.raises(ValueError, match=message):
            study.settings(kw)


def test_cli_errors_are_one_line(monkeypatch, capsys, tmp_path, tiny_dir):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nothing\n")
    code, _, err = run_cli(monkeypatch, capsys, "tokenizer", "--model", str(tiny_dir),
                           "--texts", str(empty), "--out", str(tmp_path / "r"))
    assert code == 2 and "holds no texts" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()
    code, _, err = run_cli(monkeypatch, capsys, "tokenizer", "--model", str(tiny_dir),
                           "--n-probes", "0", "--out", str(tmp_path / "r"))
    assert code == 2 and "n_probes=0" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


# the real tokenizer ------------------------------------------------------------------------
@pytest.mark.slow
def test_smollm2_tokenizer_has_non_unique_encodings_for_common_words():
    tok = tk.load_tokenizer("embedded:smollm2-135m-instruct")
    assert tk.scheme(tok) == "byte_level"
    vocab = tk.vocabulary(tok)
    for unit, surface in (("Ġthe", " the"), ("Ġand", " and")):
        ids = tk.unit_ids(tok, unit)
        assert len(ids) == 1 and tk.encode(tok, surface) == ids
        counts = vocab.breakdown(surface, ids)
        assert counts["encodings"] > 1 and counts["whitespace_boundary"] > 0
        example = vocab.alternative(surface, ids)
        assert example != ids and tok.decode(example) == surface
    # a multi-byte character splits into byte pieces that still decode exactly
    ids = tk.unit_ids(tok, "ĠcafÃ©")
    assert vocab.breakdown(" café", ids)["byte_fallback"] > 0
    assert tok.decode(tk.encode(tok, " caf") + [vocab.pieces[b"\xc3"][0],
                                                vocab.pieces[b"\xa9"][0]]) == " café"
