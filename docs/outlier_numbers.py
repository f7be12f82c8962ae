"""Regenerate docs/outlier_numbers.json: the outlier-coordinate and K/D numbers of issue 13
(§4, §5) on SmolLM2-135M-Instruct, from one geometry pass over the scan's corpus
(bundled Wikipedia, 128 texts × 128 tokens, as ``collapsekit scan`` runs geometry).

Per layer: the top coordinate and its variance / squared-norm shares, RankMe raw, on
z-scored coordinates (``basis="standardised"``) and with the top coordinate dropped,
dim_eff, matrix-entropy rank and α-ReQ raw vs standardised. At final_norm: NC1 and CDNV
at several K (the most frequent next tokens) against D, the K/D the report warns about.

    .venv/bin/python docs/outlier_numbers.py            # writes docs/outlier_numbers.json
    .venv/bin/python docs/outlier_numbers.py --print    # prints the table only
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from collapsekit import metrics
from collapsekit.corpora import human_texts
from collapsekit.metrics.neural_collapse import collapse_metrics
from collapsekit.models.registry import load_model
from collapsekit.report.flags import DOMINANT_SHARE, KD_WARN
from collapsekit.stats.moments import Moments
from collapsekit.studies import geometry
from collapsekit.studies import neural_collapse as nc_study

OUT = Path(__file__).with_name("outlier_numbers.json")
SPEC, N, MAX_LENGTH = "embedded:smollm2-135m-instruct", 128, 128
KS = (64, 288, 576, 1152)  # K/D = 0.11, 0.5, 1, 2 at D = 576


def without(acc: Moments, j: int) -> Moments:
    """The accumulator with coordinate j removed (rows and columns of the state)."""
    st, keep = acc.state_dict(), np.arange(acc.dim) != j
    return Moments.from_state_dict({"n": st["n"], "shift": st["shift"][keep],
                                    "mean_minus_shift": st["mean_minus_shift"][keep],
                                    "m2": st["m2"][np.ix_(keep, keep)]})


def measure() -> dict:
    lm = load_model(SPEC, device="cpu")
    texts = human_texts("wikipedia", N, min_words=40)[:N]
    ncs = [nc_study.Accumulators(lm, texts, max_classes=k, min_count=2, max_length=MAX_LENGTH)
           for k in KS]
    geo = geometry.accumulate(lm, texts, batch_size=8, max_length=MAX_LENGTH, extra=ncs)
    layers = []
    for layer, (name, acc) in enumerate(zip(geo.names, geo.moments)):
        raw, std = geometry.spectral_metrics(acc), geometry.spectral_metrics(acc, "standardised")
        top = metrics.top_coordinate(acc)
        layers.append({
            "layer": layer, "layer_name": name, "top_coordinate": top.index,
            "top_coordinate_share": top.share,
            "top_coordinate_norm_share": metrics.top_coordinate_share(acc, center=False),
            "rankme": raw["rankme"], "rankme_standardised": std["rankme"],
            "rankme_without_top": metrics.rankme(without(acc, top.index)),
            **{f"{k}{s}": d[k] for k in ("dim_eff", "matrix_entropy_rank", "alpha_req")
               for s, d in (("", raw), ("_standardised", std))}})
    nc = []
    for k, acc in zip(KS, ncs):
        stats = acc.accs[acc.names.index("final_norm")].finalize()
        res = collapse_metrics(stats)
        nc.append({"K": res["n_classes"], "D": res["dim"], "nc1": res["nc1"],
                   "cdnv": res["cdnv"], "warned": KD_WARN[0] <= res["n_classes"] / res["dim"]
                   <= KD_WARN[1]})
    return {"model": SPEC, "texts": f"human:wikipedia n={N}", "max_length": MAX_LENGTH,
            "tokens": geo.tokens, "dominant_share": DOMINANT_SHARE, "layers": layers,
            "neural_collapse_final_norm": nc}


def table(data: dict) -> str:
    rows = ["layer       coord share  RankMe raw/std/-top   dim_eff  α-ReQ raw/std"]
    for r in data["layers"]:
        flag = "*" if r["top_coordinate_share"] >= data["dominant_share"] else " "
        rows.append(f"{r['layer_name']:>10}{flag} {r['top_coordinate']:5d} "
                    f"{r['top_coordinate_share']:.3f}  {r['rankme']:6.1f} "
                    f"{r['rankme_standardised']:6.1f} {r['rankme_without_top']:6.1f}   "
                    f"{r['dim_eff']:3.0f}/{r['dim_eff_standardised']:3.0f}  "
                    f"{r['alpha_req']:.3f}/{r['alpha_req_standardised']:.3f}")
    rows += [f"K={r['K']:5d} D={r['D']} K/D={r['K'] / r['D']:.2f} NC1={r['nc1']:.4g} "
             f"CDNV={r['cdnv']:.4g}{' (warned)' if r['warned'] else ''}"
             for r in data["neural_collapse_final_norm"]]
    return "\n".join(rows)


if __name__ == "__main__":
    data = measure()
    print(table(data))
    if "--print" not in sys.argv:
        OUT.write_text(json.dumps(data, indent=1) + "\n")
