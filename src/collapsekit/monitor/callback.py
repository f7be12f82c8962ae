"""Watch collapse while training: :class:`Monitor` (any loop) and :class:`CollapseCallback`
(a ``transformers.TrainerCallback``, also for TRL trainers, which subclass ``Trainer``).

``Monitor.step(step)`` measures, on a fixed probe batch and a fixed set of prompts, with the
model in eval mode under ``torch.no_grad`` and every global RNG (torch CPU and CUDA, numpy,
``random``) left as it was, and the model's ``training`` flag restored:

- representation geometry per capture point (rankme, alpha_req, participation_ratio,
  dim_eff, anisotropy, top_coordinate_share) and attention entropy per block, on the probe
  texts (:class:`~collapsekit.monitor.metrics.SpectralGeometry`, ``AttentionEntropy``);
- ``k`` answers per prompt from collapsekit's seeded sampler (the same random draws at every
  step, so differences between steps come from the model): their diversity per prompt
  (``OutputDiversity``) and the policy entropy over the generated tokens (``PolicyEntropy``).

Keys are ``collapse/<metric>/<layer>`` and ``collapse/<metric>``. With ``out`` each step's
values are records of a collapsekit results folder (study "monitor", a ``step`` in every
record, rewritten after each step), so ``collapsekit report DIR`` draws one curve per layer
over the steps. ``alerts={"rankme": 0.3}`` warns once per (metric, layer) when the value
moves in the metric's collapse direction (catalogue) by more than 30% of its first measured
value; ``stop_on`` names the metrics whose alert sets :attr:`Monitor.should_stop`.
"""

from __future__ import annotations

import math
import random
import warnings
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from transformers import TrainerCallback

from ..metrics.catalog import lookup
from ..models.capture import attention_entropy_reducer, iter_capture
from ..models.decoding import Decoding
from ..models.longcontext import context_length
from ..models.sampling import _encode, sample
from ..params import check_int, check_number
from .metrics import (AttentionEntropy, OutputDiversity, PolicyEntropy, SpectralGeometry)

__all__ = ["Monitor", "CollapseCallback", "PREFIX"]

PREFIX = "collapse/"
N_PROBE, PROBE_WORDS, N_PROMPTS = 8, 48, 4


def default_probe_texts() -> list[str]:
    """A few short human texts: the first 8 news documents bundled with collapsekit's
    corpora, each cut to its first 48 words."""
    from ..corpora import human_texts

    return [" ".join(t.split()[:PROBE_WORDS]) for t in human_texts("news", N_PROBE)]


def default_prompts() -> list[str]:
    """The first 4 of collapsekit's bundled open-ended prompts."""
    from ..io import BUNDLED_PROMPTS, read_prompts

    return read_prompts(BUNDLED_PROMPTS)[:N_PROMPTS]


class _FrozenRNG:
    """Save every global RNG state on entry and restore it on exit."""

    def __enter__(self):
        self.py, self.np, self.torch = random.getstate(), np.random.get_state(), torch.get_rng_state()
        self.cuda = (torch.cuda.get_rng_state_all()
                     if torch.cuda.is_available() and torch.cuda.is_initialized() else None)
        return self

    def __exit__(self, *exc):
        random.setstate(self.py)
        np.random.set_state(self.np)
        torch.set_rng_state(self.torch)
        if self.cuda is not None:
            torch.cuda.set_rng_state_all(self.cuda)
        return False


def _check_alerts(alerts, stop_on) -> tuple[dict, set]:
    alerts = dict(alerts or {})
    for name, frac in alerts.items():
        info = lookup(name)
        if info is None or info.collapse not in ("low", "high"):
            raise ValueError(f"alerts: {name!r} is not a catalogued metric with a collapse "
                             "direction; use e.g. rankme, policy_entropy, distinct_2")
        check_number(f"alerts[{name!r}] (the relative change that fires it, 0.3 = 30%)",
                     frac, 0)
    if isinstance(stop_on, str):
        stop_on = [stop_on]
    stop_on = set(stop_on or ())
    if not stop_on <= set(alerts):
        raise ValueError(f"stop_on names {sorted(stop_on - set(alerts))} without an alert; "
                         "add them to alerts= with a threshold")
    return alerts, stop_on


def _split(key: str) -> tuple[str, str | None]:
    """'collapse/rankme/block_1' -> ('rankme', 'block_1'); 'collapse/distinct_2' -> (.., None)."""
    parts = key[len(PREFIX):].split("/", 1)
    return parts[0], parts[1] if len(parts) > 1 else None


class Monitor:
    """Collapse measurements of ``model`` during training; see the module docstring.

    ``layers``: capture-point indices as in ``iter_capture`` (0 = embeddings, -1 = final
    norm; default all). ``embedder``: None (lexical diversity only), a callable texts →
    (n, d), or a sentence-transformers spec for mean_pairwise_cosine and vendi_score.
    ``out``: results folder (``resume``/``force`` as for :class:`collapsekit.results.Run`).
    """

    def __init__(self, model, tokenizer, *, probe_texts: Sequence[str] | None = None,
                 prompts: Sequence[str] | None = None, k: int = 4, max_new_tokens: int = 16,
                 layers: Sequence[int] | None = None, out=None,
                 alerts: Mapping[str, float] | None = None, stop_on: Sequence[str] = (),
                 seed: int = 0, embedder=None, top_k: int = 100, batch_size: int = 8,
                 max_length: int = 128, temperature: float = 1.0, resume: bool = False,
                 force: bool = False):
        if tokenizer is None:
            raise ValueError("Monitor needs the model's tokenizer")
        self.model, self.tokenizer = model, tokenizer
        self.probe_texts = list(default_probe_texts() if probe_texts is None else probe_texts)
        self.prompts = list(default_prompts() if prompts is None else prompts)
        if not self.probe_texts or not all(isinstance(t, str) and t for t in self.probe_texts):
            raise ValueError("probe_texts must be a non-empty list of non-empty strings")
        if not self.prompts or not all(isinstance(t, str) and t for t in self.prompts):
            raise ValueError("prompts must be a non-empty list of non-empty strings")
        check_int("k (answers per prompt; diversity needs 2)", k, 2)
        self.k, self.seed, self.layers = k, int(seed), None if layers is None else list(layers)
        self.decoding = Decoding(temperature=temperature, max_new_tokens=max_new_tokens)
        self.embedder, self.top_k = embedder, top_k
        self.batch_size, self.max_length = batch_size, max_length
        self.alerts, self.stop_on = _check_alerts(alerts, stop_on)
        self.baseline: dict[str, float] | None = None
        self.fired: list[dict] = []
        self._fired_keys: set[str] = set()
        self.should_stop = False
        self.history: list[dict] = []
        self.run = None
        if out is not None:
            from ..results import Run

            config = {"k": k, "max_new_tokens": max_new_tokens, "layers": self.layers,
                      "seed": self.seed, "alerts": self.alerts, "stop_on": sorted(self.stop_on),
                      "top_k": top_k, "temperature": temperature,
                      "probe_texts": len(self.probe_texts), "prompts": self.prompts}
            self.run = Run(out, study="monitor", config=config, resume=resume, force=force)

    # -- measuring ---------------------------------------------------------------------------
    def _geometry(self) -> dict[str, float]:
        geo, att = SpectralGeometry(), AttentionEntropy()
        ctx = context_length(self.model)  # the probe texts are cut to the model's context
        for batch in iter_capture(self.model, self.tokenizer, self.probe_texts,
                                  batch_size=self.batch_size,
                                  max_length=min(self.max_length, ctx or self.max_length),
                                  layers=self.layers, attention_reducer=attention_entropy_reducer):
            geo.update(batch)
            att.update(batch.attention, names={i: batch.layer_names[i]
                                               for i in batch.attention})
        return {**geo.compute(), **att.compute()}

    def _generation(self) -> dict[str, float]:
        samples = sample(self.model, self.tokenizer, self.prompts, k=self.k,
                         decoding=self.decoding, seed=self.seed,
                         model_key="collapsekit.monitor")
        div = OutputDiversity(self.embedder)
        for j in range(len(self.prompts)):
            div.update([s.text for s in samples[j * self.k:(j + 1) * self.k]])
        pol = PolicyEntropy(top_k=self.top_k)
        ctx = context_length(self.model)
        rows = []
        for j, prompt in enumerate(self.prompts):
            ids = _encode(self.tokenizer, prompt, self.decoding.chat)
            if ctx:
                ids = ids[-max(ctx - self.decoding.max_new_tokens, 1):]
            for s in samples[j * self.k:(j + 1) * self.k]:
                if s.token_ids:
                    rows.append((ids, s.token_ids))
        device = self.model.get_input_embeddings().weight.device
        for a in range(0, len(rows), self.batch_size):
            chunk = rows[a:a + self.batch_size]
            width = max(len(p) + len(g) - 1 for p, g in chunk)
            pad = self.tokenizer.pad_token_id or 0
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attn = torch.zeros((len(chunk), width), dtype=torch.long)
            target = torch.zeros((len(chunk), width), dtype=torch.bool)
            for r, (p, g) in enumerate(chunk):
                seq = list(p) + list(g[:-1])
                input_ids[r, :len(seq)] = torch.tensor(seq)
                attn[r, :len(seq)] = 1
                target[r, len(p) - 1:len(p) - 1 + len(g)] = True  # positions predicting g
            out = self.model(input_ids=input_ids.to(device), attention_mask=attn.to(device),
                             use_cache=False)
            pol.update(out.logits, target.to(device))
        values = div.compute()
        if pol.count:
            values.update(pol.compute())
        return values

    def measure(self) -> dict[str, float]:
        """This step's values, ``collapse/``-prefixed, without alerts or records."""
        model = self.model
        was_training = model.training
        with _FrozenRNG():
            try:
                model.eval()
                with torch.no_grad():
                    values = {**self._geometry(), **self._generation()}
            finally:
                model.train(was_training)
        return {PREFIX + key: float(v) for key, v in values.items()}

    def step(self, step: int) -> dict[str, float]:
        """Measure at training step ``step``; check the alerts; write the records."""
        step = check_int("step", step, 0)
        values = self.measure()
        if self.baseline is None:
            self.baseline = dict(values)
        fired = self._alerts(step, values)
        self.history.append({"step": step, **values})
        if self.run is not None:
            for key, value in values.items():
                metric, layer = _split(key)
                scope = {"layer_name": layer} if layer is not None else {}
                self.run.add(metric, value, section="monitor", step=step, **scope)
            for a in fired:
                self.run.add("alert", a["value"], section="monitor alerts", step=step,
                             alert_metric=a["metric"], layer_name=a["layer"],
                             baseline=a["baseline"], threshold=a["threshold"])
            self.run.write()
        return values

    def _alerts(self, step: int, values: dict[str, float]) -> list[dict]:
        fired = []
        for key, value in values.items():
            metric, layer = _split(key)
            if metric not in self.alerts or key in self._fired_keys:
                continue
            base = self.baseline.get(key)
            if base is None or not (math.isfinite(base) and math.isfinite(value)) or base == 0:
                continue
            change = (value - base) / abs(base)
            if lookup(metric).collapse == "low":
                change = -change
            if change > self.alerts[metric]:
                self._fired_keys.add(key)
                a = {"metric": metric, "layer": layer, "step": step, "baseline": base,
                     "value": value, "threshold": self.alerts[metric]}
                fired.append(a)
                self.fired.append(a)
                where = f" at {layer}" if layer else ""
                warnings.warn(f"collapse alert: {metric}{where} moved from {base:.4g} (first "
                              f"measured step) to {value:.4g} at step {step}, more than "
                              f"{self.alerts[metric]:.0%} in its collapse direction",
                              stacklevel=3)
                if metric in self.stop_on:
                    self.should_stop = True
        return fired

    def close(self) -> None:
        """Stamp the results folder as finished (if any)."""
        if self.run is not None:
            self.run.finish()


def _handler_in_stack():
    """The transformers ``CallbackHandler`` dispatching the current event (found on the call
    stack: ``call_event``'s ``self``), or None."""
    import sys

    from transformers.trainer_callback import CallbackHandler

    frame = sys._getframe(1)
    while frame is not None:
        obj = frame.f_locals.get("self")
        if isinstance(obj, CallbackHandler):
            return obj
        frame = frame.f_back
    return None


class CollapseCallback(TrainerCallback):
    """Run a :class:`Monitor` inside a ``transformers.Trainer`` (or a TRL trainer).

    Measures at step 0 (``on_train_begin``) and whenever ``state.global_step %
    every_n_steps == 0`` (``on_step_end``). The values join the Trainer's logs, so
    TensorBoard / W&B / MLflow see them: a measuring step sets ``control.should_log`` and
    ``on_log`` merges the pending values into ``logs`` (and into the matching
    ``state.log_history`` entry, or a new one). Step 0's values go into ``log_history``
    at once (step 0) and reach the reporters at the first log call.

    Order: reporters read ``logs`` in the same ``on_log`` dispatch, and callbacks run in
    list order with user callbacks last, so at its first event the callback moves itself to
    the front of the Trainer's callback list (found on the call stack; the running dispatch
    is unaffected). With ``stop_on=`` an alert sets ``control.should_training_stop``.
    ``**monitor_kwargs`` go to :class:`Monitor`; the model comes from the Trainer.
    """

    def __init__(self, tokenizer, every_n_steps: int = 50, out=None, **monitor_kwargs):
        check_int("every_n_steps", every_n_steps, 1)
        _check_alerts(monitor_kwargs.get("alerts"), monitor_kwargs.get("stop_on"))
        self.tokenizer, self.every_n_steps, self.out = tokenizer, every_n_steps, out
        self.monitor_kwargs = monitor_kwargs
        self.monitor: Monitor | None = None
        self.pending: dict[str, float] = {}
        self.measured_steps: list[int] = []
        self._ordered = False

    def _to_front(self) -> None:
        if self._ordered:
            return
        self._ordered = True
        handler = _handler_in_stack()
        if handler is None:
            warnings.warn("CollapseCallback could not find the Trainer's callback list; "
                          "reporters listed before it will not see the collapse/ metrics",
                          stacklevel=3)
            return
        # a new list: the dispatch running now keeps iterating over the old one
        handler.callbacks = [self] + [c for c in handler.callbacks if c is not self]

    def _measure(self, step: int, model) -> dict[str, float]:
        if self.monitor is None:
            self.monitor = Monitor(model, self.tokenizer, out=self.out, **self.monitor_kwargs)
        self.monitor.model = model
        values = self.monitor.step(step)
        self.measured_steps.append(step)
        return values

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        self._to_front()
        if not state.is_world_process_zero:
            return control
        values = self._measure(state.global_step, model)
        state.log_history.append({**values, "step": state.global_step})
        self.pending = dict(values)
        return self._maybe_stop(control)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        self._to_front()
        if not state.is_world_process_zero:
            return control
        if state.global_step % self.every_n_steps == 0 and (
                state.global_step not in self.measured_steps):
            self.pending.update(self._measure(state.global_step, model))
            self._pending_step = state.global_step
        if self.pending:
            control.should_log = True
        return self._maybe_stop(control)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not self.pending or logs is None:
            return control
        logs.update(self.pending)
        measured_now = self.measured_steps and self.measured_steps[-1] == state.global_step
        if measured_now and state.log_history and state.log_history[-1].get(
                "step") == state.global_step:
            state.log_history[-1].update(self.pending)
        elif measured_now:
            state.log_history.append({**self.pending, "step": state.global_step})
        self.pending = {}
        return control

    def on_train_end(self, args, state, control, **kwargs):
        if self.monitor is not None:
            self.monitor.close()
        return control

    def _maybe_stop(self, control):
        if self.monitor is not None and self.monitor.should_stop:
            control.should_training_stop = True
        return control
