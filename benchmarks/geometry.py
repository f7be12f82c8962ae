"""Streaming covariance spectrum (Moments, fixed-size batches) vs sklearn PCA(svd_solver="full").

Activations-like float64 data (power-law spectrum, random rotation, a few large-mean "outlier"
dimensions) are generated once; both paths read the same array. sklearn's
``explained_variance_`` uses 1/(N-1), ``spectrum`` uses 1/N: sklearn values are rescaled by
(N-1)/N before comparing. Peak memory is the tracemalloc peak *above* the data array itself.

    python benchmarks/geometry.py            # N=200_000, D=576 (needs ~4 GB RAM for sklearn)
    python benchmarks/geometry.py --n 50000 --d 256
    python benchmarks/geometry.py --attention   # attention-entropy path vs output_attentions

``--attention``: peak memory of the per-layer attention-entropy reducer (capture hooks,
each layer's B×H×T×T probabilities reduced to per-head sums inside its forward hook) vs
``output_attentions=True`` (all layers' probabilities kept), at T=1024 on a random llama
with SmolLM2-135M's attention shape (9 heads, 576 wide) and 30 layers (thin MLPs: weights
are not what is measured); same entropies from both. Peak = torch CPU allocations are not
traced by tracemalloc, so the peak RSS growth is read from /proc (ru_maxrss) in a fresh
child process per path.

On a shared or oversubscribed machine multi-threaded OpenBLAS timings swing by 10x or more;
set OPENBLAS_NUM_THREADS=1 (applies to both paths) for stable numbers.
"""

from __future__ import annotations

import argparse

import numpy as np
from sklearn.decomposition import PCA

from collapsekit.metrics.spectrum import spectrum
from collapsekit.stats.moments import Moments
from _common import traced


def make_data(n: int, d: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    mix = q * np.arange(1, d + 1) ** -0.6  # column scales: λ_r ∝ r^-1.2
    mean = rng.standard_normal(d)
    mean[:4] = [80.0, -45.0, 30.0, 20.0]  # massive-activation style outlier dims
    x = np.empty((n, d))
    for i in range(0, n, 8192):
        x[i:i + 8192] = rng.standard_normal((min(8192, n - i), d)) @ mix.T + mean
    return x


def stream(x: np.ndarray, batch: int) -> np.ndarray:
    m = Moments(x.shape[1], unit_sum=False)
    for i in range(0, len(x), batch):
        m.update(x[i:i + batch])
    return spectrum(m)


def _attention_path(which: str, t: int, layers: int) -> None:
    """Child process: run one path, print its entropy sums and peak RSS growth (bytes)."""
    import resource

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from collapsekit.metrics import attention_entropy
    from collapsekit.models.capture import attention_entropy_reducer, iter_capture

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=576, intermediate_size=64,
                      num_hidden_layers=layers, num_attention_heads=9, num_key_value_heads=3,
                      max_position_embeddings=t)
    cfg._attn_implementation = "eager"
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(3, 256, (1, t))

    class Tok:  # the capture path tokenises; feed it fixed ids
        pad_token_id, padding_side, model_max_length = 0, "right", t

        def __call__(self, texts, **_):
            return {"input_ids": [ids[0].tolist() for _ in texts]}

    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if which == "reducer":
        batch = next(iter_capture(model, Tok(), ["x"], layers=[], max_length=t,
                                  attention_reducer=attention_entropy_reducer))
        ent = [batch.attention[l]["entropy_sum"] / batch.attention[l]["rows"]
               for l in sorted(batch.attention)]
    else:
        with torch.inference_mode():
            att = model.model(input_ids=ids, output_attentions=True).attentions
        mask = np.tril(np.ones((t, t), dtype=bool))
        ent = [attention_entropy(a[0].numpy(), mask).mean for a in att]
    peak = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base) * 1024
    print(peak, float(np.sum(ent)))


def attention_benchmark(t: int, layers: int) -> None:
    import subprocess
    import sys

    out = {}
    for which in ("reducer", "output_attentions"):
        res = subprocess.run([sys.executable, __file__, "--attention-child", which, "--t",
                              str(t), "--layers", str(layers)], capture_output=True,
                             text=True, check=True)
        peak, total = res.stdout.split()[-2:]
        out[which] = (int(peak), float(total))
        print(f"{which:>18}: peak RSS growth {int(peak) / 2**20:8.1f} MiB  "
              f"(Σ mean entropies {float(total):.6f})")
    print(f"attention memory ratio output_attentions/reducer at T={t}, {layers} layers: "
          f"{out['output_attentions'][0] / out['reducer'][0]:.1f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--attention", action="store_true")
    ap.add_argument("--attention-child", choices=("reducer", "output_attentions"))
    ap.add_argument("--t", type=int, default=1024)
    ap.add_argument("--layers", type=int, default=30)
    ap.add_argument("--n", type=int, default=200_000)
    ap.add_argument("--d", type=int, default=576)
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    if a.attention_child:
        return _attention_path(a.attention_child, a.t, a.layers)
    if a.attention:
        return attention_benchmark(a.t, a.layers)
    x = make_data(a.n, a.d, a.seed)
    mb = 2 ** 20
    print(f"data: N={a.n} D={a.d} float64 ({x.nbytes / mb:.0f} MiB), batch={a.batch}")

    print("streaming path (Moments + eigh), peak memory vs N:")
    for frac in (8, 4, 2, 1):
        n = a.n // frac
        ev, t_stream, peak = traced(lambda: stream(x[:n], a.batch))
        print(f"  N={n:>9d}  {t_stream:7.2f} s  peak {peak / mb:7.1f} MiB")

    pca, t_sk, peak_sk = traced(lambda: PCA(svd_solver="full").fit(x))
    ref = pca.explained_variance_ * (a.n - 1) / a.n
    keep = ref > 1e-12 * ref[0]
    rel = np.max(np.abs(ev[keep] - ref[keep]) / ref[keep])
    print(f"sklearn PCA(svd_solver='full'): {t_sk:7.2f} s  peak {peak_sk / mb:7.1f} MiB")
    print(f"max relative eigenvalue difference ({keep.sum()} eigenvalues > 1e-12·max): {rel:.2e}")
    print(f"speed ratio sklearn/streaming: {t_sk / t_stream:.1f}x   "
          f"memory ratio: {peak_sk / peak:.1f}x")


if __name__ == "__main__":
    main()
