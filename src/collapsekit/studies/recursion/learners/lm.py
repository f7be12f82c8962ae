"""Causal-LM fine-tune loop (Shumailov et al. 2024; Gerstgrasser et al. 2024, §3).

Real data: human texts cut to ``max_tokens`` tokens. Each generation starts from the
base weights (``reset=true``: generations differ only through their data; false continues
from the previous generation's weights) and takes ``steps`` AdamW steps on batches of
``batch_size`` texts drawn from its training set. Synthetic texts continue the first
``prompt_tokens`` tokens of the seed's real training texts with ancestral sampling
(temperature / top-k / top-p from the strategy), up to ``max_tokens`` tokens in all.
Metrics: held-out real cross-entropy (token-weighted mean NLL, nats/token) and distinct-1/2
of the samples; generation 0 is the base model. Sized for a CPU: a few steps, short texts.
"""

from __future__ import annotations

import numpy as np

from .base import Learner, Param
from .ngram import split_corpus

_SOURCES = ("wikipedia", "news", "kjv")


def _seed(g: np.random.Generator) -> int:
    return int(g.integers(2 ** 62))


class LMLearner(Learner):
    name = "lm"
    doc = "causal LM fine-tuned a few steps per generation (any collapsekit model spec)"
    PARAMS = {
        "model": Param(str, "embedded:smollm2-135m-instruct", "collapsekit model spec"),
        "source": Param(str, "wikipedia", "human text: wikipedia, news or kjv",
                        choices=_SOURCES),
        "n_train": Param(int, 32, "texts per generation", low=1),
        "n_test": Param(int, 32, "held-out real texts", low=1),
        "max_tokens": Param(int, 32, "tokens per text", low=2),
        "prompt_tokens": Param(int, 4, "real prefix tokens each sample continues", low=1),
        "steps": Param(int, 4, "optimizer steps per generation", low=0),
        "batch_size": Param(int, 8, "texts per step", low=1),
        "lr": Param(float, 1e-4, "AdamW learning rate", low=0.0),
        "reset": Param(bool, True, "start each generation from the base weights"),
        "device": Param(str, "auto", "auto, cpu, cuda, mps"),
        "dtype": Param(str, "float32", "compute dtype of the loaded model",
                       choices=("float32", "bfloat16", "float16")),
        "eval_batch": Param(int, 16, "texts per forward pass when sampling/evaluating",
                            low=1),
    }
    batched = False
    needs_samples = True
    sampling = frozenset({"temperature", "top_k", "top_p"})

    def __init__(self, params=None, *, model=None, tokenizer=None, texts=None):
        self._model, self._tok, self._texts, self._lm = model, tokenizer, texts, None
        super().__init__(params)

    def check(self) -> None:
        if self.p["prompt_tokens"] >= self.p["max_tokens"]:
            raise ValueError(f"lm learner: prompt_tokens={self.p['prompt_tokens']} leaves no "
                             f"room to generate within max_tokens={self.p['max_tokens']}")
        if (self._model is None) != (self._tok is None):
            raise ValueError("lm learner: pass both model and tokenizer, or neither")
        if self._model is None:
            from collapsekit.models.registry import resolve

            resolve(self.p["model"])  # a clear error now, before any work

    @property
    def n(self) -> int:
        return self.p["n_train"]

    # loading -------------------------------------------------------------------------
    def _load(self):
        if self._lm is None:
            from collapsekit.models import finetune

            if self._model is None:
                from collapsekit.models.registry import load_model

                lm = load_model(self.p["model"], device=self.p["device"],
                                dtype=self.p["dtype"])
                self._model, self._tok = lm.model, lm.tokenizer
                self._info = lm.describe()
            else:
                self._info = {"spec": "given", "architecture": type(self._model).__name__}
            if self._tok.pad_token is None:
                self._tok.pad_token = self._tok.eos_token
            self._base = finetune.snapshot(self._model)
            self._device = finetune.device_of(self._model)
            self._lm = finetune  # the torch side: seeding, training, generating
        return self._model, self._tok

    def describe(self) -> dict:
        self._load()
        return {"model": self._info, "corpus_texts": len(self.corpus)}

    def close(self) -> None:
        self._model = self._tok = self._base = self._lm = None

    @property
    def corpus(self) -> list[str]:
        """Real texts cut to max_tokens tokens (decoded back to text), shuffled once."""
        if not hasattr(self, "_corpus"):
            from collapsekit.corpora import human_texts

            _, tok = self._load()
            raw = self._texts if self._texts is not None else human_texts(self.p["source"])
            out = []
            for t in raw:
                ids = tok(t, add_special_tokens=False)["input_ids"][:self.p["max_tokens"]]
                if len(ids) > self.p["prompt_tokens"]:
                    out.append(tok.decode(ids))
            self._corpus = [out[i] for i in np.random.default_rng(0).permutation(len(out))]
        return self._corpus

    def real_available(self) -> int:
        return len(self.corpus) - self.p["n_test"]

    # the simulation ------------------------------------------------------------------
    def world(self, rngs):
        test, pool = split_corpus(self.corpus, self.p["n_test"], rngs)
        return {"test": test, "train": pool}

    def real(self, world, n, rngs, start=0):
        return np.array([p[start:start + n] for p in world["train"]], dtype=object)

    def _batch(self, texts, side="right"):
        _, tok = self._load()
        return self._lm.encode_batch(tok, texts, max_length=self.p["max_tokens"],
                                     device=self._device, side=side)

    def fit(self, world, data, rngs):
        model, _ = self._load()
        ft, (g,) = self._lm, rngs
        ft.manual_seed(_seed(g))
        if self.p["reset"]:
            ft.restore(model, self._base)
        texts = [t for t in data[0] if t.strip()]
        if not texts or not self.p["steps"]:
            return model
        size = min(self.p["batch_size"], len(texts))
        # drawn lazily, one batch per step (one-token batches are skipped by train_step)
        batches = (self._batch([texts[i] for i in g.choice(len(texts), size=size,
                                                             replace=False)])
                   for _ in range(self.p["steps"]))
        ft.fine_tune(model, batches, lr=self.p["lr"])
        return model

    def sample(self, world, model, n, rngs, settings):
        _, tok = self._load()
        ft, (g,) = self._lm, rngs
        ft.manual_seed(_seed(g))
        real = world["train"][0][:self.n]
        prompts = [real[i] for i in g.integers(0, len(real), size=n)]
        out = []
        for s in range(0, n, self.p["eval_batch"]):
            ids = [tok(t, add_special_tokens=False)["input_ids"][:self.p["prompt_tokens"]]
                   for t in prompts[s:s + self.p["eval_batch"]]]
            out += ft.continue_ids(
                model, tok, ids, max_new_tokens=self.p["max_tokens"] - max(map(len, ids)),
                temperature=settings.get("temperature", 1.0),
                top_k=settings.get("top_k", 0), top_p=settings.get("top_p", 1.0))
        return np.array([out], dtype=object)

    def cross_entropy(self, model, texts) -> float:
        """Token-weighted mean NLL (nats/token) of ``texts`` under ``model``: each text's
        first token is context only (:func:`collapsekit.models.perplexity.batch_nll`)."""
        from collapsekit.models.perplexity import batch_nll

        total, count = 0.0, 0
        for s in range(0, len(texts), self.p["eval_batch"]):
            nll, n = batch_nll(model, self._batch(texts[s:s + self.p["eval_batch"]]))
            total += nll
            count += n
        return total / count

    def evaluate(self, world, model, samples):
        from collapsekit.metrics import distinct_n

        out = {"cross_entropy": self.cross_entropy(model, world["test"])}
        texts = list(samples[0])
        for k in (1, 2):
            try:
                out[f"distinct_{k}"] = distinct_n(texts, k)
            except ValueError:  # every sample shorter than k words
                out[f"distinct_{k}"] = np.nan
        return {k: np.array([v], dtype=np.float64) for k, v in out.items()}

    def initial(self, world):
        model, _ = self._load()
        self._lm.restore(model, self._base)
        model.eval()
        return {"cross_entropy": np.array([self.cross_entropy(model, world["test"])])}
