"""Benchmark: hook-based capture (``iter_capture``) against HF's ``output_hidden_states``.

On the same batches of real human text (the first N lines of gensim's
``lee_background.cor``), times
  (a) a forward with ``output_hidden_states=True``, each layer reduced to its real-token rows,
  (b) ``iter_capture`` with every capture point reduced by ``batch.tokens(l)``,
  (c) a bare forward (final hidden state only), for reference.
All three include tokenisation. Each batch runs in the three modes back to back (order
rotating), after a warm-up on the first batch. Reported, as tokens/s and as the overhead
ratio b/a (target ≤ 1.10): the median over repetitions of the pass totals, and the sum over
batches of each batch's best time (robust on a shared machine).

    python benchmarks/capture.py            # embedded SmolLM2-135M-Instruct
    python benchmarks/capture.py --tiny     # a tiny random llama, no weights needed
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from pathlib import Path

import torch

from collapsekit.models.capture import iter_capture


def human_texts(n: int) -> list[str]:
    spec = importlib.util.find_spec("gensim")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("gensim is not installed: run `pip install gensim`")
    path = Path(spec.submodule_search_locations[0]) / "test" / "test_data" / "lee_background.cor"
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return lines[:n]


def tiny_model(texts: list[str]):
    """A 4-block random llama with a word-level tokenizer over the corpus's own words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import AutoModelForCausalLM, LlamaConfig, PreTrainedTokenizerFast

    words = sorted({w for t in texts for w in t.split()})
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", *words])}
    core = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>")
    cfg = LlamaConfig(vocab_size=len(vocab), hidden_size=64, intermediate_size=128,
                      num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=1024, pad_token_id=0)
    cfg._attn_implementation = "eager"
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(cfg).eval(), tok


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def chunks(texts, size):
    return [texts[i:i + size] for i in range(0, len(texts), size)]


def encode(tok, batch, max_length, device):
    enc = tok(batch, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    mask = enc["attention_mask"].to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return enc["input_ids"].to(device), mask, positions


def run_hf(model, tok, batch, max_length, device):
    ids, mask, positions = encode(tok, batch, max_length, device)
    with torch.inference_mode():
        out = model.base_model(input_ids=ids, attention_mask=mask, position_ids=positions,
                               use_cache=False, output_hidden_states=True)
        return [h.float()[mask.bool()] for h in out.hidden_states]


def run_capture(model, tok, batch, max_length, device):
    (cb,) = iter_capture(model, tok, batch, batch_size=len(batch), max_length=max_length,
                         device=device, on_truncate=lambda *a: None)
    return [cb.tokens(layer) for layer in range(len(cb.hidden))]


def run_bare(model, tok, batch, max_length, device):
    ids, mask, positions = encode(tok, batch, max_length, device)
    with torch.inference_mode():
        out = model.base_model(input_ids=ids, attention_mask=mask, position_ids=positions,
                               use_cache=False)
        return [out.last_hidden_state[mask.bool()]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny random llama instead of SmolLM2")
    ap.add_argument("--texts", type=int, default=200, help="lines of lee_background.cor")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default=None, help="cpu, cuda, ... (default: auto)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    texts = human_texts(args.texts)
    if args.tiny:
        model, tok = tiny_model(texts)
        model.to(args.device or "cpu")
        name = "tiny random llama (4 blocks, d=64)"
    else:
        from collapsekit.models.registry import load_model

        lm = load_model("embedded:smollm2-135m-instruct", device=args.device)
        model, tok, name = lm.model, lm.tokenizer, "SmolLM2-135M-Instruct (fp32)"
    device = model.get_input_embeddings().weight.device
    batches = chunks(texts, args.batch_size)
    n_tokens = sum(int(encode(tok, b, args.max_length, "cpu")[1].sum()) for b in batches)
    modes = {"a: output_hidden_states": run_hf, "b: iter_capture (hooks)": run_capture,
             "c: bare forward": run_bare}
    # times[mode][rep][batch]; the order of modes rotates from batch to batch
    times = {m: [[0.0] * len(batches) for _ in range(args.reps)] for m in modes}
    names = list(modes)
    for rep in range(-1, args.reps):  # rep -1 warms up on the first batch
        for i, batch in enumerate(batches if rep >= 0 else batches[:1]):
            for k in range(len(names)):
                mode = names[(i + k + max(rep, 0)) % len(names)]
                sync(device)
                start = time.perf_counter()
                modes[mode](model, tok, batch, args.max_length, device)
                sync(device)
                if rep >= 0:
                    times[mode][rep][i] = time.perf_counter() - start

    print(f"model: {name} on {device}, torch threads: {torch.get_num_threads()}")
    print(f"texts: {len(texts)} (lee_background.cor), batch {args.batch_size}, max_length "
          f"{args.max_length}, real tokens per pass: {n_tokens}, reps: {args.reps} (median)")
    med = {m: statistics.median(sum(r) for r in t) for m, t in times.items()}
    best = {m: sum(min(r[i] for r in t) for i in range(len(batches))) for m, t in times.items()}
    for mode in modes:
        print(f"  {mode:26s} median {med[mode]:8.3f} s = {n_tokens / med[mode]:8.0f} tokens/s   "
              f"best-per-batch {best[mode]:8.3f} s = {n_tokens / best[mode]:8.0f} tokens/s")
    a, b, c = (med[m] for m in modes)
    ba, bb, bc = (best[m] for m in modes)
    print(f"overhead iter_capture / output_hidden_states: median {b / a:.3f}, "
          f"best-per-batch {bb / ba:.3f} (target <= 1.10)")
    print(f"overhead iter_capture / bare forward:         median {b / c:.3f}, "
          f"best-per-batch {bb / bc:.3f}")


if __name__ == "__main__":
    main()
