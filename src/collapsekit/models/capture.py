"""Activation capture through forward hooks.

``iter_capture`` runs a causal LM over texts batch by batch and returns, for each batch, the
residual stream at L+2 capture points — the input of the first block (the embedding output,
HF's ``hidden_states[0]``), the output of each of the L blocks, and the final-norm output
(HF's ``hidden_states[-1]``) — plus optional logits and per-layer *reduced* attention
statistics. :func:`layout` finds the blocks in any Hugging Face decoder from its own
structure (see there); an architecture without attention (Mamba) has residual-stream
capture only. Only real (non-pad)
tokens matter downstream: ``CaptureBatch.tokens(l)`` returns them. Hooks live for one
forward call and are removed in a ``finally``, so an abandoned or failing iteration never
leaves a model hooked.
"""

from __future__ import annotations

import inspect
import warnings
import weakref
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import torch

from ..errors import NotApplicable
from .longcontext import context_length

NO_ATTENTION = "no attention in this architecture"


class UnsupportedArchitecture(NotApplicable):
    """Capture cannot find the decoder blocks of this model (a scan skips geometry)."""


@dataclass
class Layout:
    """Where a causal LM's residual stream is read: ``blocks`` (the decoder blocks, in
    order, the ``nn.ModuleList`` at ``blocks_path``), ``final`` (the module after the last
    block whose output HF reports as ``hidden_states[-1]``, the final norm; None when the
    model applies nothing there) and ``attention`` (block number 1..L → its attention
    module; empty for an architecture without attention)."""

    blocks: list
    blocks_path: str
    final: torch.nn.Module | None
    final_path: str | None
    attention: dict[int, torch.nn.Module] = field(default_factory=dict)
    attention_path: str | None = None

    def describe(self) -> dict:
        """What run metadata records: the paths found and the attention coverage."""
        return {"blocks": self.blocks_path, "n_blocks": len(self.blocks),
                "final_norm": self.final_path or "(none: the last block's output)",
                "attention": (f"{self.attention_path} in {len(self.attention)} of "
                              f"{len(self.blocks)} blocks") if self.attention else NO_ATTENTION}
@dataclass
class CaptureBatch:
    """One batch of captured activations (tensors stay on the model's device).

    ``hidden[l]`` is (B, T, D) float32 for each captured l, ``None`` for layers left out by
    ``layers=``; ``layer_names[l]`` is "embed", "block_1".."block_L" or "final_norm".
    ``attention[l]`` (l = 1..L, the attention inside ``block_l``) is the reducer's value.
    ``offset`` is the index of the batch's first text in the input sequence.
    """

    input_ids: torch.Tensor
    mask: torch.Tensor
    hidden: list[torch.Tensor | None]
    logits: torch.Tensor | None
    attention: dict[int, Any] | None
    layer_names: list[str]
    offset: int = 0

    def tokens(self, layer: int) -> torch.Tensor:
        """(n_real_tokens, D): ``hidden[layer][mask]``, rows in (text, position) order."""
        n = len(self.hidden)
        if not _is_int(layer) or not -n <= layer < n:
            raise ValueError(f"layer {layer!r} is not an index in [-{n}, {n}): use 0..{n - 1}")
        h = self.hidden[layer]
        if h is None:
            raise ValueError(f"layer {layer} ({self.layer_names[layer]}) was not captured: "
                             "include it in layers=")
        return h[self.mask]


def next_token_pairs(batch: CaptureBatch, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (n, D), labels (n,)) of ``batch`` at capture point ``layer``: the state at
    each position whose next position is a real token too, labelled with that next token
    (either padding side)."""
    valid = batch.mask[:, :-1] & batch.mask[:, 1:]
    return batch.hidden[layer][:, :-1][valid], batch.input_ids[:, 1:][valid]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


_LAYOUT_CACHE: weakref.WeakKeyDictionary[torch.nn.Module, Layout] = \
    weakref.WeakKeyDictionary()


def _unsupported(model, why: str) -> UnsupportedArchitecture:
    return UnsupportedArchitecture(
        f"unsupported architecture {type(model).__name__}: {why}; capture needs a causal LM "
        "whose decoder blocks are an nn.ModuleList beside its input embedding")


def _block_list(model) -> tuple[str, torch.nn.ModuleList]:
    """(path, list) of the decoder blocks: among the ``nn.ModuleList``s of one repeated class
    whose parent also holds the input embedding (the decoder, on the path to the LM head;
    not a vision tower, not experts inside a block), the one of ``num_hidden_layers`` blocks
    with the most parameters."""
    get = getattr(model, "get_input_embeddings", None)
    try:
        embed = get() if callable(get) else None
    except NotImplementedError:
        embed = None
    names = {id(m): n for n, m in model.named_modules()}
    if not isinstance(embed, torch.nn.Module) or id(embed) not in names:
        raise _unsupported(model, "it has no input embedding (get_input_embeddings)")
    embed_path = names[id(embed)]
    config = getattr(model, "config", None)
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    depth = getattr(text, "num_hidden_layers", None)
    found = []
    for name, mod in model.named_modules():
        if not isinstance(mod, torch.nn.ModuleList) or len(mod) == 0 or \
                len({type(b) for b in mod}) != 1:
            continue
        parent = name.rpartition(".")[0]
        if parent and not embed_path.startswith(parent + "."):
            continue
        found.append((len(mod) == depth, sum(p.numel() for p in mod.parameters()), name, mod))
    if not found:
        raise _unsupported(model, "no nn.ModuleList of repeated blocks beside the embedding")
    return max(found, key=lambda f: f[:2])[2:]


def _forward_kwargs(module, input_ids, mask, positions) -> dict:
    """Inputs for ``module``'s forward: ids and mask, and position ids and ``use_cache=False``
    where its signature names them (Bloom and Mamba take no position ids)."""
    params = inspect.signature(module.forward).parameters
    kw = {"input_ids": input_ids, "attention_mask": mask.long()}
    if "position_ids" in params:
        kw["position_ids"] = positions
    if "use_cache" in params:
        kw["use_cache"] = False
    return kw


def _probe(model, specs, *, eager: bool = False) -> tuple:
    """Run the decoder once on 2 tokens with ``specs`` hooked (eval mode, restored after);
    returns the input ids' shape."""
    embedding = model.get_input_embeddings()
    device = embedding.weight.device
    ids = torch.tensor([[1, 2]], device=device) % embedding.num_embeddings
    mask = torch.ones_like(ids, dtype=torch.bool)
    base = model.base_model
    was_training = model.training
    model.eval()
    try:
        with _eager_attention(model, eager), hooked(specs), torch.inference_mode():
            base(**_forward_kwargs(base, ids, mask, torch.arange(2, device=device)[None]))
    except Exception as exc:  # a forward that cannot run plain ids: say which model
        raise _unsupported(model, f"a plain forward of its decoder failed ({exc})") from exc
    finally:
        model.train(was_training)
    return tuple(ids.shape)


def _final_module(model, path: str, blocks) -> tuple[str | None, torch.nn.Module | None]:
    """The module whose output is ``hidden_states[-1]``: from one probe forward, the last
    module (outside the blocks and their ancestors) to finish after the last block — the
    final norm (OPT-350m: its project_out); None when nothing runs there. The probe also
    checks that the blocks form a chain: each runs once, in order, on the previous block's
    output (XLM's parallel lists of sublayers do not)."""
    order: list = []
    inputs: dict[int, Any] = {}
    specs = []
    number = {id(b): i for i, b in enumerate(blocks)}
    for name, mod in model.named_modules():
        inside = name.startswith(path + ".") and id(mod) not in number
        if inside or name == path or path.startswith(name + ".") or not name:
            continue

        def hook(module, args, output, name=name):
            order.append((name, module, output[0] if isinstance(output, (tuple, list))
                          else output))
        specs.append((mod, hook, False, False))
    for i, block in enumerate(blocks):
        def take(module, args, kwargs, i=i):
            inputs[i] = args[0] if args else kwargs.get("hidden_states")
        specs.append((block, take, True, True))
    shape = _probe(model, specs)
    ran = [(number[id(m)], out) for _, m, out in order if id(m) in number]
    chain = all(isinstance(out, torch.Tensor) and isinstance(inputs.get(i + 1), torch.Tensor)
                and out.shape == inputs[i + 1].shape and torch.equal(out, inputs[i + 1])
                for i, out in ran[:-1])
    if [i for i, _ in ran] != list(range(len(blocks))) or not chain:
        raise _unsupported(model, f"the blocks of {path} do not run once each, in order, "
                           "each on the previous one's output")
    last = max(k for k, (_, m, _) in enumerate(order) if id(m) in number)
    after = [(n, m) for n, m, out in order[last + 1:]
             if isinstance(out, torch.Tensor) and out.dim() == 3 and out.shape[:2] == shape]
    return after[-1] if after else (None, None)


def _attention_of(block) -> tuple[str, torch.nn.Module] | None:
    """(local path, module) of the first submodule of ``block`` whose class name ends in
    "Attention" (LlamaAttention, GPTNeoXAttention, FalconAttention, …); None without one."""
    for name, mod in block.named_modules():
        if name and type(mod).__name__.endswith("Attention"):
            return name, mod
    return None


def _attention_modules(model, blocks) -> tuple[dict[int, torch.nn.Module], str | None]:
    """(block number → attention module, its local path) for the blocks whose attention
    returns softmax probabilities (B, H, T, T) under eager attention, found by a probe
    forward; linear-attention, recurrent (RWKV, Mamba) and state-space mixers have none."""
    candidates = {i: a for i, a in enumerate(map(_attention_of, blocks), 1) if a is not None}
    found: dict[int, torch.nn.Module] = {}

    def check(i):
        def hook(module, args, output):
            probs = output[1] if isinstance(output, (tuple, list)) and len(output) > 1 else None
            if isinstance(probs, torch.Tensor) and probs.dim() == 4 and \
                    probs.shape[0] == 1 and probs.shape[-2:] == (2, 2):
                found[i] = module
        return hook

    if candidates:
        _probe(model, [(m, check(i), False, False) for i, (_, m) in candidates.items()],
               eager=True)
    return dict(sorted(found.items())), (candidates[min(found)][0] if found else None)


def layout(model: torch.nn.Module) -> Layout:
    """The :class:`Layout` of a causal LM, found from its own structure (cached per model):
    the blocks (:func:`_block_list`), the final norm (:func:`_final_module`) and the
    attention of each block that has softmax attention (:func:`_attention_modules`).
    :class:`UnsupportedArchitecture` (a ``NotApplicable``) says why when there are none."""
    if not isinstance(model, torch.nn.Module):
        raise UnsupportedArchitecture(f"unsupported architecture {type(model).__name__}: "
                                      "pass a torch causal LM")
    if model in _LAYOUT_CACHE:
        return _LAYOUT_CACHE[model]
    path, blocks = _block_list(model)
    blocks = list(blocks)
    final_path, final = _final_module(model, path, blocks)
    attention, attention_path = _attention_modules(model, blocks)
    found = Layout(blocks, path, final, final_path, attention, attention_path)
    _LAYOUT_CACHE[model] = found
    return found


def find_layers(model: torch.nn.Module) -> tuple[torch.nn.Module, list, torch.nn.Module]:
    """(input embedding, decoder blocks, final norm) of a causal LM (see :func:`layout`);
    the final norm is ``nn.Identity`` when the model applies none after the last block."""
    found = layout(model)
    return (model.get_input_embeddings(), found.blocks,
            found.final if found.final is not None else torch.nn.Identity())


def point_hooks(found: Layout, wanted, keep: Callable[[int, torch.Tensor], Any]) -> list:
    """Hook registrations ``(module, hook, with_kwargs, pre)`` that call ``keep(index,
    hidden)`` for each capture point in ``wanted``: 0 = the first block's input, l = block
    l's output, L+1 = the final module's output (block L's when there is none)."""
    n = len(found.blocks) + 2

    def first_input(module, args, kwargs):
        h = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get(
            "hidden_states")
        keep(0, h)

    def output(index):
        def hook(module, args, out):
            keep(index, out[0] if isinstance(out, (tuple, list)) else out)
        return hook

    specs = []
    for i in sorted(wanted):
        if i == 0:
            specs.append((found.blocks[0], first_input, True, True))
        elif i < n - 1 or found.final is None:
            specs.append((found.blocks[i - 1] if i < n - 1 else found.blocks[-1], output(i),
                          False, False))
        else:
            specs.append((found.final, output(i), False, False))
    return specs


def _allowed_keys(attn_mask: Any, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, T) bool: query i and key j are real tokens and the model lets i attend to j.

    Read from the 4-D mask the model passed to its attention (so causal, padding and sliding
    windows all count); a plain causal mask when the model passed none.
    """
    b, t = mask.shape
    if isinstance(attn_mask, torch.Tensor) and attn_mask.dim() == 4:
        m = attn_mask[:, 0, -t:, -t:]
        ok = m if m.dtype == torch.bool else m > torch.finfo(m.dtype).min / 2
        ok = ok.expand(b, t, t)
    else:
        ok = torch.ones(t, t, dtype=torch.bool, device=mask.device).tril().expand(b, t, t)
    return ok & mask[:, :, None] & mask[:, None, :]


def attention_entropy_reducer(layer: int, probs: torch.Tensor, mask: torch.Tensor) -> dict:
    """Per-head sums for the mean attention entropy over valid query rows of one batch.

    H_i = −Σ_{j∈K_i} a_ij log a_ij (0·log 0 = 0), K_i = keys query i may attend to. Returns
    ``entropy_sum`` Σ_i H_i (H,), ``norm_entropy_sum`` Σ_{i:|K_i|≥2} H_i / log|K_i| (H,),
    ``rows`` (#valid query rows) and ``norm_rows`` (#rows with ≥2 keys), so that the mean
    per-head entropy over a corpus is Σ entropy_sum / Σ rows (Jha & Reagen 2025,
    "Entropy-Guided Attention for Private LLMs"; Zhai et al. 2023, attention entropy
    collapse). ``probs`` is (B, H, T, T), ``mask`` the (B, T, T) allowed-key mask.
    """
    if probs.dim() != 4 or mask.dim() != 3 or probs.shape[:1] + probs.shape[2:] != mask.shape:
        raise ValueError(f"probs must be (B, H, T, T) and mask (B, T, T), got "
                         f"{tuple(probs.shape)} and {tuple(mask.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}: pass mask.bool()")
    if probs.dtype in (torch.float32, torch.float64):
        p = probs
    else:  # bfloat16/float16 rows do not sum to 1, and H could exceed log|K|: renormalise
        p = probs.double()
        p = p / torch.where(mask[:, None], p, 0).sum(-1, keepdim=True).clamp(min=1e-300)
    if not bool(torch.isfinite(p).all()):
        raise ValueError(f"attention probabilities of layer {layer} contain NaN or inf: the "
                         "model overflowed; run it in float32")
    plogp = torch.where(mask[:, None], torch.special.xlogy(p, p), 0)
    ent = -plogp.sum(-1, dtype=torch.float64)  # (B, H, T)
    n_keys = mask.sum(-1)  # (B, T)
    rows, norm_rows = n_keys > 0, n_keys > 1
    inv_log = torch.where(norm_rows, 1.0 / torch.log(n_keys.clamp(min=2).double()), 0.0)
    return {
        "entropy_sum": (ent * rows[:, None]).sum((0, 2)).cpu().numpy(),
        "norm_entropy_sum": (ent * inv_log[:, None]).sum((0, 2)).cpu().numpy(),
        "rows": int(rows.sum()),
        "norm_rows": int(norm_rows.sum()),
    }


def moments_in_torch() -> bool:
    """Whether the per-layer moments of CPU batches are reduced in torch (``resident``):
    with more than one torch thread torch's float64 update is faster than numpy's BLAS,
    which competes with torch's spinning OpenMP threads between the forward passes (31
    layers x 16 batches of 900 x 576: 2.2 s vs 3.4-5.0 s on 2 cores); on one thread numpy is
    (3.7 s vs 2.0-2.9 s). Equal to round-off either way."""
    return torch.get_num_threads() > 1


def _context_length(model, tokenizer) -> int:
    """The model's context, capped by the tokenizer's ``model_max_length`` when set."""
    ctx = context_length(model)
    tml = getattr(tokenizer, "model_max_length", None)
    if isinstance(tml, int) and 0 < tml <= 10**7:  # HF uses ~1e30 for "unknown"
        ctx = min(ctx, tml) if ctx else tml
    if not ctx:
        raise ValueError("cannot tell the model's context length from its config or tokenizer: "
                         "pass max_length=")
    return int(ctx)


def _warn_truncated(index: int, n_tokens: int, max_length: int) -> None:
    warnings.warn(f"text {index} has {n_tokens} tokens and was truncated to {max_length}; "
                  "pass a larger max_length or shorter texts", stacklevel=4)


def _encode(tokenizer, texts: list, offset: int, max_length: int, on_truncate,
            left: bool) -> tuple:
    """(input_ids, mask) padded on the left or right; truncation is reported."""
    for i, t in enumerate(texts):
        if not isinstance(t, str):
            raise ValueError(f"text {offset + i} is a {type(t).__name__}, not a str: pass strings")
    ids = tokenizer(texts, verbose=False)["input_ids"]
    long = [i for i, seq in enumerate(ids) if len(seq) > max_length]
    for i in long:
        (on_truncate or _warn_truncated)(offset + i, len(ids[i]), max_length)
    if long:
        cut = tokenizer([texts[i] for i in long], truncation=True, max_length=max_length)
        for i, seq in zip(long, cut["input_ids"]):
            ids[i] = seq
    for i, seq in enumerate(ids):
        if len(seq) == 0:
            raise ValueError(f"text {offset + i} has no tokens: drop empty texts")
    width = max(map(len, ids))
    input_ids = torch.full((len(ids), width), tokenizer.pad_token_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.bool)
    for i, seq in enumerate(ids):
        cols = slice(width - len(seq), width) if left else slice(0, len(seq))
        input_ids[i, cols] = torch.tensor(seq, dtype=torch.long)
        mask[i, cols] = True
    return input_ids, mask


@contextmanager
def _eager_attention(model, needed: bool):
    """Temporarily switch to eager attention, the only kind that returns probabilities:
    ``set_attn_implementation`` where the model supports it, else (Falcon, which reads its
    config at each forward) the config's ``_attn_implementation``."""
    impl = getattr(model.config, "_attn_implementation", None)
    if not needed or impl in (None, "eager"):
        yield
        return
    dynamic = getattr(type(model), "_can_set_attn_implementation", lambda: True)()

    def use(name):
        if dynamic:
            model.set_attn_implementation(name)
        else:
            model.config._attn_implementation = name

    use("eager")
    try:
        yield
    finally:
        use(impl)


@contextmanager
def hooked(registrations):
    """Register ``(module, hook, with_kwargs, pre)`` forward (pre-)hooks for the block."""
    handles = []
    try:
        for module, fn, with_kwargs, pre in registrations:
            register = module.register_forward_pre_hook if pre else module.register_forward_hook
            handles.append(register(fn, with_kwargs=with_kwargs))
        yield
    finally:
        for h in handles:
            h.remove()


def _layer_set(layers, n: int) -> set[int]:
    if layers is None:
        return set(range(n))
    if isinstance(layers, (int, str)) or not isinstance(layers, Iterable):
        raise ValueError(f"layers must be a list of indices, got {layers!r}: e.g. layers=[0, -1]")
    out = set()
    for l in layers:
        if not _is_int(l) or not -n <= l < n:
            raise ValueError(f"layers: {l!r} is not an index in [-{n}, {n}) (embed, "
                             f"{n - 2} blocks, final_norm): fix the list")
        out.add(int(l) % n)
    return out


def _positive_int(value, name: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _hook_specs(found: Layout, wanted, reducer, mask, hidden, attention) -> list:
    """Hook registrations (see :func:`point_hooks`) that fill ``hidden`` and ``attention``
    in place."""

    def keep(index, h):
        hidden[index] = h.to(torch.float32)

    def reduce(number):
        def hook(module, args, kwargs, output):
            probs = output[1] if isinstance(output, (tuple, list)) and len(output) > 1 else None
            if not isinstance(probs, torch.Tensor):
                raise ValueError(f"block {number}'s attention returned no probabilities: load "
                                 "the model with attn_implementation='eager'")
            allowed = _allowed_keys(kwargs.get("attention_mask"), mask)
            attention[number] = reducer(number, probs, allowed)
        return hook

    specs = point_hooks(found, wanted, keep)
    if reducer is None:
        return specs
    return specs + [(m, reduce(i), True, False) for i, m in found.attention.items()]


def iter_capture(model, tokenizer, texts: Iterable[str], *, batch_size: int = 8,
                 max_length: int | None = None, layers: Iterable[int] | None = None,
                 logits: bool = False, attention_reducer: Callable | None = None,
                 device=None, progress: Callable[[int], Any] | None = None,
                 on_truncate: Callable[[int, int, int], Any] | None = None,
                 ) -> Iterator[CaptureBatch]:
    """Yield a ``CaptureBatch`` per ``batch_size`` texts (any iterable, consumed lazily).

    ``max_length``: truncation length (default: the model's context, capped by a sane
    ``tokenizer.model_max_length``); each truncated text is reported through
    ``on_truncate(index, n_tokens, max_length)`` or a warning. ``layers``: indices into the
    L+2 capture points to keep (default all). ``attention_reducer(l, probs, mask)`` runs
    inside block l's attention hook with probs (B, H, T, T) and the (B, T, T) bool mask of
    keys each real query may attend to; eager attention is switched on for the call (an
    architecture without attention yields ``attention == {}``: see ``layout(model)``).
    ``device``: where inputs go (default: the input embedding's device). ``progress(n)`` is
    called with the number of texts after each batch. Position ids count real tokens only,
    so a text's activations do not depend on the padding around it; texts are padded on
    ``tokenizer.padding_side``, but on the right for a model whose forward takes no
    position ids.
    """
    found = layout(model)
    n = len(found.blocks) + 2
    names = ["embed", *(f"block_{i}" for i in range(1, n - 1)), "final_norm"]
    wanted = _layer_set(layers, n)
    batch_size = _positive_int(batch_size, "batch_size")
    if max_length is None:
        max_length = _context_length(model, tokenizer)
    max_length = _positive_int(max_length, "max_length")
    ctx = context_length(model)
    if ctx and max_length > ctx:  # past its positions a model is out of distribution
        warnings.warn(f"max_length={max_length} exceeds the model's {ctx}-token context: "
                      f"texts are cut to {ctx} tokens", stacklevel=2)
        max_length = ctx
    if isinstance(texts, (str, bytes)) or not isinstance(texts, Iterable):
        raise ValueError("texts must be an iterable of strings (a list, not a single str)")
    if model.training:
        raise ValueError("the model is in training mode (dropout on): call model.eval() first")
    if tokenizer.pad_token_id is None:
        raise ValueError("the tokenizer has no pad token: "
                         "set tokenizer.pad_token = tokenizer.eos_token")
    if device is None:
        device = model.get_input_embeddings().weight.device
    forward = model if logits else model.base_model
    eager = attention_reducer is not None and bool(found.attention)
    # left padding only where real-token positions can be passed: a model that takes no
    # position ids (Bloom, Mamba, RWKV) is padded on the right, after its real tokens
    left = tokenizer.padding_side == "left" and "position_ids" in inspect.signature(
        forward.forward).parameters
    source, offset = iter(texts), 0
    while chunk := list(islice(source, batch_size)):
        input_ids, mask = _encode(tokenizer, chunk, offset, max_length, on_truncate, left)
        input_ids, mask = input_ids.to(device), mask.to(device)
        hidden: list[torch.Tensor | None] = [None] * n
        attention = {} if attention_reducer is not None else None
        specs = _hook_specs(found, wanted, attention_reducer, mask, hidden, attention)
        positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
        with _eager_attention(model, eager), hooked(specs), torch.inference_mode():
            out = forward(**_forward_kwargs(forward, input_ids, mask, positions))
        out_logits = out.logits.to(torch.float32) if logits else None
        yield CaptureBatch(input_ids, mask, hidden, out_logits, attention, names, offset)
        offset += len(chunk)
        if progress is not None:
            progress(len(chunk))
    if offset == 0:
        raise ValueError("texts is empty: pass at least one string")


def stream(model, tokenizer, texts: Iterable[str],
           consumers: list[Callable[[CaptureBatch], Any]], **kw) -> int:
    """Feed every ``iter_capture`` batch to each consumer in turn; returns the number of texts.

    Consumers (e.g. per-layer accumulators updated with ``batch.tokens(l)``) see each batch
    once, so a corpus of any size streams through in bounded memory.
    """
    if callable(consumers) or not consumers or not all(callable(c) for c in consumers):
        raise ValueError("consumers must be a non-empty list of callables taking a CaptureBatch")
    total = 0
    for batch in iter_capture(model, tokenizer, texts, **kw):
        for consume in consumers:
            consume(batch)
        total += batch.input_ids.shape[0]
    return total
