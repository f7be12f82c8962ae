"""Reference claims made true (issue 13): α-ReQ presets against the arithmetic of the
code each one names, matrix_entropy_rank's N < D difference from the Tracing code, and the
divergence note when a basic-bootstrap interval excludes its estimate."""

from __future__ import annotations

import math

import numpy as np
import pytest

from collapsekit.metrics import alpha_req, matrix_entropy_rank
from collapsekit.metrics.spectrum import ALPHA_PRESETS
from collapsekit.studies.probes.divergence import interval_note


def stringer_fit(eigen: np.ndarray, trange: np.ndarray) -> float:
    """The weighted fit both reptrix (get_powerlaw) and the Tracing code
    (stringer_get_powerlaw) run, written out: 0-based indices ``trange``, ranks trange + 1,
    weights 1/rank cast to float32, normal equations."""
    y = np.log(np.abs(eigen))[trange][:, None]
    r = trange + 1
    x = np.concatenate((-np.log(r)[:, None], np.ones((r.size, 1))), axis=1)
    w = 1.0 / r.astype(np.float32)[:, None]
    return float(np.linalg.solve(x.T @ (x * w), (w * x).T @ y).flatten()[0])


def spectrum_with_a_bend() -> np.ndarray:
    """Not a power law: the exponent changes at rank 30, so every range gives its own α."""
    r = np.arange(1, 301, dtype=float)
    rng = np.random.default_rng(0)
    ev = np.where(r < 30, r ** -0.8, 30 ** 0.9 * r ** -1.7) * np.exp(rng.normal(0, .05, r.size))
    return np.sort(ev)[::-1]  # eigenvalues come sorted


def test_alpha_presets_reproduce_the_code_they_name():
    ev = spectrum_with_a_bend()
    got = {p: alpha_req(ev, preset=p) for p in ALPHA_PRESETS}
    assert got["reptrix"].alpha == pytest.approx(stringer_fit(ev, np.arange(10, 100)), abs=1e-6)
    assert got["tracing"].alpha == pytest.approx(stringer_fit(ev, np.arange(11, 100)), abs=1e-6)
    slope = np.polyfit(np.log(np.arange(11, 101)), np.log(ev[10:100]), 1)[0]
    assert got["paper"].alpha == pytest.approx(-slope, rel=1e-10)
    assert len({round(g.alpha, 3) for g in got.values()}) == 3  # three different numbers
    assert [g.preset for g in got.values()] == list(ALPHA_PRESETS)
    assert alpha_req(ev).preset == "paper" and alpha_req(ev).alpha == got["paper"].alpha
    assert alpha_req(ev, preset="reptrix", ranks=(6, 100)).preset == "custom"
    earlier = alpha_req(ev, ranks=(6, 100), weighted=True).alpha  # reptrix's old default
    assert earlier == pytest.approx(stringer_fit(ev, np.arange(5, 100)), abs=1e-6)


def test_alpha_preset_must_be_known():
    with pytest.raises(ValueError, match="preset must be one of paper, reptrix, tracing"):
        alpha_req(np.arange(200, 0, -1.0), preset="stringer")


def test_matrix_entropy_rank_zero_eigenvalues_add_eps_log_eps_each():
    # the Tracing code sees min(N, D) eigenvalues, spectrum() gives D: k extra zeros
    ev, k, eps = np.array([4.0, 2.0, 1.0, 0.5]), 3, 1e-7
    full = matrix_entropy_rank(np.r_[ev, np.zeros(k)], eps=eps)
    short = matrix_entropy_rank(ev, eps=eps)
    assert math.log(full) - math.log(short) == pytest.approx(k * eps * abs(math.log(eps)),
                                                             rel=1e-6)
    assert matrix_entropy_rank(np.r_[ev, np.zeros(k)]) == pytest.approx(
        matrix_entropy_rank(ev), rel=1e-15)  # eps 0: zeros add nothing


def test_interval_note_only_when_the_interval_excludes_the_estimate():
    assert interval_note(0.2, 0.1, 0.3) == {}
    assert "excludes the estimate" in interval_note(0.2, 0.05, 0.15)["note"]


def test_geometry_records_the_alpha_preset_it_fits(tiny_dir, tmp_path):
    from collapsekit.results import load_run
    from collapsekit.studies import run_study

    texts = tmp_path / "t.txt"
    texts.write_text("\n".join(["the cat sees the dog and the king loves the queen"] * 6))
    run_study("geometry", tmp_path / "g", model=str(tiny_dir), report=False,
              params={"texts": str(texts), "n": 6, "max_length": 16, "attention": False,
                      "rank_collapse": False, "alpha_preset": "tracing"})
    recs = [r for r in load_run(tmp_path / "g")["records"] if r["metric"].startswith("alpha")]
    assert recs and {r["preset"] for r in recs} == {"tracing"}
    assert all("preset" not in r for r in load_run(tmp_path / "g")["records"]
               if r["metric"] == "rankme")
