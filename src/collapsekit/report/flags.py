"""Warnings printed under a section's heading, computed from the section's records.

- :func:`outlier_notes` (geometry): a layer whose top coordinate holds at least
  ``DOMINANT_SHARE`` of the variance (``top_coordinate_share`` ≥ 0.5, i.e. one coordinate
  carries as much variance as all the others together) is flagged, with the coordinate's
  index, one note per scope (model, source, strategy, ...) with a flagged layer; the note
  explains why the raw spectral curves fall there and why α-ReQ and RankMe disagree, and
  points to the ``basis=standardised`` curves. Without any flagged layer one line states
  the largest share, so every geometry section shows the check.
- :func:`nc_notes` (neural collapse): K/D in ``KD_WARN`` = [0.5, 2] warns that NC1 is
  unstable and not comparable across runs of another K/D.
"""

from __future__ import annotations

DOMINANT_SHARE = 0.5  # variance share of one coordinate that flags a layer
KD_WARN = (0.5, 2.0)  # K/D range where NC1 = Tr(Σ_W Σ_B⁺)/K is unstable
_SHOWN = 8  # flagged layers named per line


def _scope(r: dict, skip=("metric", "value", "study", "section", "layer", "layer_name",
                          "note", "ci_low", "ci_high", "closed_form")) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in r.items() if k not in skip))


def _where(scope: tuple) -> str:
    return f" ({', '.join(f'{k}={v}' for k, v in scope)})" if scope else ""


def outlier_notes(recs) -> list[str]:
    """The outlier-coordinate notes of a section's records (none without
    ``top_coordinate_share`` records)."""
    shares = [r for r in recs if r.get("metric") == "top_coordinate_share"
              and isinstance(r.get("value"), (int, float)) and r.get("layer") is not None]
    index = {(_scope(r), r["layer"]): r.get("value") for r in recs
             if r.get("metric") == "top_coordinate" and r.get("layer") is not None}
    def name(r):
        j = index.get((_scope(r), r["layer"]))
        coord = f"coordinate {int(j)}, " if isinstance(j, (int, float)) else ""
        return f"{r.get('layer_name') or r['layer']} ({coord}{100 * r['value']:.1f}%)"

    if shares and all(r["value"] < DOMINANT_SHARE for r in shares):
        top = max(shares, key=lambda r: r["value"])
        return [f"Outlier check: no layer has one coordinate holding ≥ {DOMINANT_SHARE:.0%} "
                f"of the variance; the largest share is {name(top)}{_where(_scope(top))}."]
    notes = []
    groups: dict = {}
    for r in shares:
        groups.setdefault(_scope(r), []).append(r)
    for scope, rs in groups.items():
        flagged = [r for r in rs if r["value"] >= DOMINANT_SHARE]
        if not flagged:
            continue
        listed = ", ".join(map(name, flagged[:_SHOWN])) + (
            f" and {len(flagged) - _SHOWN} more" if len(flagged) > _SHOWN else "")
        notes.append(
            f"Outlier coordinate{_where(scope)}: at {len(flagged)} of {len(rs)} layers one "
            f"coordinate holds ≥ {DOMINANT_SHARE:.0%} of the variance: {listed}. There the raw "
            "covariance spectrum is mostly that one coordinate's variance, so RankMe, "
            "matrix-entropy rank, dim_eff, participation ratio and IsoScore fall towards 1 "
            "without a loss of rank (massive activations, Sun et al. 2024; rogue dimensions, "
            "Timkey & van Schijndel 2021): read the basis=standardised curves (each "
            "coordinate z-scored, the correlation matrix) for the rank. α-ReQ can disagree "
            "with RankMe on these layers: it fits the eigenvalue decay over ranks 11–100, "
            "which the outlier (rank 1) does not enter, so α stays where it was while "
            "RankMe collapses.")
    return notes


def nc_notes(recs) -> list[str]:
    """A warning per distinct (K, D) of the section's records with K/D in ``KD_WARN``."""
    seen = dict.fromkeys((r.get("K"), r.get("D")) for r in recs
                         if isinstance(r.get("K"), int) and isinstance(r.get("D"), int)
                         and r["D"] > 0)
    lo, hi = KD_WARN
    return [f"K/D = {k}/{d} = {k / d:.2f} is in [{lo:g}, {hi:g}]: NC1 = Tr(Σ_W Σ_B⁺)/K inverts "
            f"Σ_B, whose rank K − 1 is close to D, so its smallest eigenvalues dominate and "
            "NC1 is unstable here; compare NC1 only with runs at a similar K/D (K and D are "
            "fields of every record), or use CDNV."
            for k, d in seen if lo <= k / d <= hi]


def section_notes(recs) -> list[str]:
    """Every note of a section's records (see the module docstring)."""
    return outlier_notes(recs) + nc_notes(recs)
