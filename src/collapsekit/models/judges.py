"""Meaning judges: whether two answers mean the same, for meaning classes (semantic
entropy, number of semantic sets, EigV/Deg, ambiguity interpretations).

A judge is named by a spec (``--judge``):
  ``cosine[:T]``  embedding cosine >= T (offline default; T defaults to the study's
                  ``threshold``). Each kind's known limit, shown in the report, is in
                  ``metrics.catalog.JUDGE_LIMITS``.
  ``nli:MODEL``   bidirectional entailment (Kuhn, Gal & Farquhar 2023, "Semantic
                  Uncertainty", ICLR): a and b are equivalent when an NLI classifier's top
                  label is entailment for (a ⇒ b) and for (b ⇒ a). MODEL is any Hugging
                  Face sequence-classification NLI model (a local folder or a hub id), its
                  entailment and contradiction labels read from ``config.id2label``. This
                  is the paper's rule; the released code of Kuhn et al. (and Lin et al.'s,
                  copied from it) merges unless either direction is *contradiction*, so
                  two neutral directions merge there and not here.
  ``lm:MODEL``    an LM asked "do these two answers mean the same thing?"; d(a, b) =
                  log p(Yes) − log p(No) of its reply; equivalent when d(a, b) + d(b, a) > 0.
                  MODEL is a model spec (``embedded:…``, a folder, a hub id) or an embedded
                  model's short name (``smollm2``, ``gemma3``).

Every judge returns, for n texts, the symmetric equivalence matrix (bool, diagonal True)
and a similarity W in [0, 1] for EigV/Deg (Lin et al. 2023): clip(cos, 0, 1), the mean
entailment probability of the two directions, or the mean p(Yes | Yes or No). NLI and LM
verdicts are computed for all ordered pairs in batches and cached by text pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

KINDS = ("cosine", "nli", "lm")
ALIASES = {"smollm2": "embedded:smollm2-135m-instruct", "gemma3": "embedded:gemma3-270m"}
ASK = ("Do these two answers mean the same thing?\nAnswer 1: {a}\nAnswer 2: {b}\n"
       "Reply with Yes or No.")


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed ``--judge`` value: ``kind`` and ``arg`` (threshold text or model)."""

    kind: str
    arg: str

    @property
    def name(self) -> str:
        """What records carry in their ``judge`` field, e.g. ``cosine:0.9``."""
        return f"{self.kind}:{self.arg}"


def parse_judge(text, threshold: float = 0.9) -> JudgeSpec:
    """``cosine[:T]`` | ``nli:MODEL`` | ``lm:MODEL`` as a JudgeSpec; ValueError in one line
    naming what to write. ``cosine`` alone takes ``threshold``."""
    usage = "write cosine, cosine:0.8, nli:MODEL or lm:MODEL"
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"--judge {text!r} is empty: {usage}")
    kind, _, arg = text.strip().partition(":")
    kind, arg = kind.strip().lower(), arg.strip()
    if kind not in KINDS:
        raise ValueError(f"--judge {text!r}: unknown kind {kind!r}; {usage}")
    if kind == "cosine":
        try:
            t = float(arg) if arg else float(threshold)
        except ValueError:
            raise ValueError(f"--judge {text!r}: the cosine threshold must be a number in "
                             "[-1, 1], e.g. cosine:0.8") from None
        if not (math.isfinite(t) and -1 <= t <= 1):
            raise ValueError(f"--judge {text!r}: the cosine threshold must be in [-1, 1]")
        return JudgeSpec("cosine", f"{t:g}")
    if not arg:
        raise ValueError(f"--judge {text!r} names no model: write {kind}:MODEL (a local "
                         "folder or a hub id" + (", or smollm2 / gemma3)" if kind == "lm"
                                                  else ")"))
    if arg.startswith((".", "/", "~")) and not Path(arg).expanduser().exists():
        raise ValueError(f"--judge {text!r}: no such folder {arg}; give a model folder, a hub "
                         "id org/name" + (" or smollm2 / gemma3" if kind == "lm" else ""))
    return JudgeSpec(kind, arg)


def make_judge(spec: JudgeSpec | str, *, threshold: float = 0.9, device=None,
               batch_size: int = 32):
    """The judge a spec names (models are loaded here, once per judge)."""
    spec = spec if isinstance(spec, JudgeSpec) else parse_judge(spec, threshold)
    if spec.kind == "cosine":
        return CosineJudge(spec)
    if spec.kind == "nli":
        return NliJudge(spec, device=device, batch_size=batch_size)
    return LmJudge(spec, device=device, batch_size=batch_size)


class CosineJudge:
    """Cosine of sentence embeddings >= threshold (needs the embeddings)."""

    def __init__(self, spec: JudgeSpec):
        self.spec, self.name, self.threshold = spec, spec.name, float(spec.arg)

    def __call__(self, texts, embeddings=None) -> tuple[np.ndarray, np.ndarray]:
        e = None if embeddings is None else np.asarray(embeddings, dtype=np.float64)
        if e is None or e.ndim != 2 or len(e) != len(texts):
            raise ValueError("the cosine judge needs one embedding row per text")
        scale = np.abs(e).max(axis=1, keepdims=True)  # as metrics.semantic.unit_rows
        if not (np.isfinite(e).all() and (scale > 0).all()):
            raise ValueError("an embedding is zero or not finite: it has no direction")
        u = e / scale
        u = u / np.linalg.norm(u, axis=1, keepdims=True)
        cos = u @ u.T
        eq = cos >= self.threshold
        np.fill_diagonal(eq, True)
        return eq, np.clip(cos, 0.0, 1.0)


class _PairJudge:
    """A judge scoring ordered pairs (a, b) with a model; scores cached by text pair."""

    def __init__(self, spec: JudgeSpec, *, batch_size: int):
        from ..params import check_int

        self.spec, self.name = spec, spec.name
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.cache: dict[tuple[str, str], np.ndarray] = {}
        self.scored = 0  # ordered pairs sent to the model (cache misses)

    def __call__(self, texts, embeddings=None) -> tuple[np.ndarray, np.ndarray]:
        texts = [str(t) for t in texts]
        n = len(texts)
        pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
        eq, w = np.ones((n, n), dtype=bool), np.ones((n, n))
        for (i, j), (e, s) in zip(pairs, self.pairs([(texts[i], texts[j]) for i, j in pairs])):
            eq[i, j] = eq[j, i] = e
            w[i, j] = w[j, i] = s
        return eq, w

    def pairs(self, pairs) -> list[tuple[bool, float]]:
        """(equivalent, similarity) of each (a, b); both directions scored in batches of the
        pairs not yet cached; identical texts are equivalent without a model call."""
        todo = list(dict.fromkeys(p for a, b in pairs for p in ((a, b), (b, a))
                                  if a != b and p not in self.cache))
        for start in range(0, len(todo), self.batch_size):
            chunk = todo[start:start + self.batch_size]
            self.cache.update(zip(chunk, self._score(chunk)))
            self.scored += len(chunk)
        return [(True, 1.0) if a == b else self._pair(self.cache[a, b], self.cache[b, a])
                for a, b in pairs]


class NliJudge(_PairJudge):
    """Bidirectional entailment with a sequence-classification NLI model."""

    def __init__(self, spec: JudgeSpec, *, device=None, batch_size: int = 32):
        super().__init__(spec, batch_size=batch_size)
        self.model, self.tokenizer = load_nli(spec.arg, device)
        self.entail, self.contra = nli_labels(self.model.config, spec.arg)

    def _score(self, pairs) -> list[np.ndarray]:
        """Class probabilities (float64) of each (premise, hypothesis)."""
        import torch

        enc = self.tokenizer([a for a, _ in pairs], [b for _, b in pairs], padding=True,
                             truncation=True, return_tensors="pt")
        dev = next(self.model.parameters()).device
        with torch.inference_mode():
            logits = self.model(**{k: v.to(dev) for k, v in enc.items()}).logits
        return list(torch.softmax(logits.float(), -1).double().cpu().numpy())

    def _pair(self, ab: np.ndarray, ba: np.ndarray) -> tuple[bool, float]:
        both = ab.argmax() == self.entail and ba.argmax() == self.entail
        return bool(both), float((ab[self.entail] + ba[self.entail]) / 2)


def nli_labels(config, where: str = "the NLI model") -> tuple[int, int]:
    """(entailment id, contradiction id) from ``config.id2label`` (case-insensitive prefix)."""
    from ..errors import CollapsekitError

    labels = {int(i): str(v).lower() for i, v in (getattr(config, "id2label", None)
                                                   or {}).items()}
    found = {}
    for key in ("entail", "contradict"):
        ids = [i for i, v in labels.items() if v.startswith(key)]
        if len(ids) != 1:
            raise CollapsekitError(
                f"{where}: config.id2label {dict(sorted(labels.items()))} has no single "
                f"{key}* label: use an NLI model (labels entailment, neutral, contradiction)")
        found[key] = ids[0]
    return found["entail"], found["contradict"]


def load_nli(spec: str, device=None):
    """(model, tokenizer) of a sequence-classification model from a folder or hub id."""
    from ..errors import CollapsekitError
    from .registry import pick_device, quiet_hf

    quiet_hf()
    path = Path(spec).expanduser()
    if spec.startswith((".", "/", "~")) and not path.is_dir():
        raise CollapsekitError(f"nli:{spec}: no such folder: give a folder with config.json "
                               "and *.safetensors, or a hub id org/name")
    try:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(spec)
        model = AutoModelForSequenceClassification.from_pretrained(spec, use_safetensors=True)
    except (OSError, ValueError) as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CollapsekitError(f"could not load the NLI model {spec!r} ({first}): give a local "
                               "folder or a reachable hub id with safetensors weights") from exc
    return model.to(pick_device(device)).eval(), tok


class LmJudge(_PairJudge):
    """An LM asked whether two answers mean the same; Yes/No scored by log-prob."""

    ask, yes, no = ASK, "Yes", "No"  # the question and the two reply words

    def __init__(self, spec: JudgeSpec, *, device=None, batch_size: int = 32, lm=None):
        super().__init__(spec, batch_size=batch_size)
        if lm is None:
            from .registry import load_model

            lm = load_model(ALIASES.get(spec.arg.lower(), spec.arg), device=device)
        self.lm = lm

    def _score(self, pairs) -> list[float]:
        """log p(Yes) − log p(No) of the reply to ``ask`` for each (a, b)."""
        from .scoring import chat_context, score_continuations

        ctx = [chat_context(self.lm.tokenizer, [{"role": "user",
                                                 "content": self.ask.format(a=a, b=b)}])
               for a, b in pairs]
        scored = score_continuations(self.lm.model, self.lm.tokenizer, ctx,
                                     [[self.yes, self.no]] * len(pairs),
                                     batch_size=2 * self.batch_size)
        return [yes.logprob - no.logprob for yes, no in scored]

    @staticmethod
    def _pair(ab: float, ba: float) -> tuple[bool, float]:
        p_yes = (math.tanh(ab / 2) + math.tanh(ba / 2)) / 4 + 0.5  # mean sigmoid
        return bool(ab + ba > 0), p_yes
