"""Non-unique tokenization and phantom edits: pure functions on strings, bytes and id lists.

Source: Mukherjee, Armstrong & Ayoobi (2026), "Say Anything but This: When Tokenizer Betrays
Reasoning in LLMs" — subword tokenizers are not injective: several token-id sequences decode
to the same surface string, and a model asked to replace one word can return the right
string through the wrong ids (a *phantom edit*).

A :class:`Vocabulary` (defined in :mod:`collapsekit.vocabulary`, re-exported here) maps each
token id to its surface and counts the token-id sequences that decode to a string exactly,
by dynamic programming.

Artifact kinds of an encoding e ≠ c of s, where c is the canonical (tokenizer) encoding
(this study's taxonomy; the paper's eight kinds are not spelled out in its abstract):

1. ``byte_fallback``: e uses a byte piece — a byte-fallback token (``<0xNN>``) or a piece
   whose bytes are not valid UTF-8 on their own (part of a multi-byte character);
2. ``whitespace_boundary``: otherwise, e's token boundaries at whitespace junctions (byte
   positions between a whitespace and a non-whitespace byte) differ from c's (" the" vs
   " " + "the");
3. ``intra_word``: otherwise — the same whitespace attachment, another split of the word
   ("the" vs "th" + "e").

:meth:`Vocabulary.breakdown` counts each kind exactly with constrained runs of the same DP.
"""

from __future__ import annotations

import re
import unicodedata

from ..vocabulary import Vocabulary, junctions  # noqa: F401  (re-exported)

KINDS = ("whitespace_boundary", "intra_word", "byte_fallback")
PHANTOM_KINDS = (*KINDS, "normalisation", "added_token")
ERROR_KINDS = ("unchanged", "wrong_word", "extra_changes")
# Typographic variants folded with NFKC in the normalisation check.
_FOLD = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
                       "\u2013": "-", "\u2014": "-", "\u2212": "-"})


def _normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).translate(_FOLD)


def _squeeze(text: str) -> str:
    return "".join(text.split())


def _byte_fallback_match(output: str, target: str) -> bool:
    """Whether ``output`` equals ``target`` except where it shows U+FFFD (bytes that did not
    decode), each run of which stands for one or more non-ASCII characters."""
    if "\ufffd" not in output:
        return False
    parts = [re.escape(p) for p in re.split("\ufffd+", output)]
    return re.fullmatch("[^\\x00-\\x7f]+".join(parts), target) is not None


def classify_edit(output: str, target: str, source: str) -> tuple[str, str | None]:
    """Classify a replacement-probe answer against the ``target`` text (``source`` with the
    designated word replaced): ``("match", None)`` for the same string (whether the ids match
    is checked separately), ``("phantom_edit", kind)`` when the strings differ only by a
    tokenizer artifact, else ``("edit_error", kind)``.

    Phantom kinds, in order: ``whitespace_boundary`` (equal after removing all whitespace),
    ``normalisation`` (equal after NFKC and folding typographic quotes/dashes, whitespace
    removed), ``byte_fallback`` (U+FFFD where the target has non-ASCII characters). Error
    kinds: ``unchanged`` (the source returned, up to whitespace), ``wrong_word`` (same word
    count, a single word differs from the target), ``extra_changes`` (anything else).
    """
    for name, value in (("output", output), ("target", target), ("source", source)):
        if not isinstance(value, str):
            raise ValueError(f"{name} must be a string, got {type(value).__name__}")
    if not target or not source:
        raise ValueError("target and source must be non-empty strings")
    if output == target:
        return "match", None
    if _squeeze(output) == _squeeze(target):
        return "phantom_edit", "whitespace_boundary"
    if _squeeze(_normalise(output)) == _squeeze(_normalise(target)):
        return "phantom_edit", "normalisation"
    if _byte_fallback_match(output, target):
        return "phantom_edit", "byte_fallback"
    if _squeeze(output) == _squeeze(source):
        return "edit_error", "unchanged"
    got, want = output.split(), target.split()
    if len(got) == len(want) and sum(a != b for a, b in zip(got, want)) == 1:
        return "edit_error", "wrong_word"
    return "edit_error", "extra_changes"
