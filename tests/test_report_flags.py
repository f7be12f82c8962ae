"""Section warnings (report/flags.py): outlier-coordinate layers in geometry and K/D near 1
in neural collapse, the raw / standardised series labels, and the warnings in the HTML."""

from collapsekit.report.flags import DOMINANT_SHARE, nc_notes, outlier_notes
from collapsekit.report.html import render
from collapsekit.report.layout import plan
from collapsekit.results import Run


def geometry(shares, coords, **scope):
    recs = []
    for layer, (share, j) in enumerate(zip(shares, coords)):
        name = f"block_{layer}"
        recs += [{"metric": "top_coordinate_share", "value": share, "layer": layer,
                  "layer_name": name, "section": "geometry", **scope},
                 {"metric": "top_coordinate", "value": j, "layer": layer, "layer_name": name,
                  "section": "geometry", **scope},
                 {"metric": "rankme", "value": 30.0 if share >= 0.5 else 300.0, "layer": layer,
                  "layer_name": name, "section": "geometry", **scope},
                 {"metric": "rankme", "value": 400.0, "layer": layer, "layer_name": name,
                  "section": "geometry", "basis": "standardised", **scope}]
    return recs


def test_layers_where_one_coordinate_dominates_are_flagged_with_their_coordinate():
    recs = geometry([0.1, DOMINANT_SHARE, 0.983, 0.4999], [3, 507, 507, 507], source="wiki")
    (note,) = outlier_notes(recs)
    assert "at 2 of 4 layers" in note and "(source=wiki)" in note
    assert "block_1 (coordinate 507, 50.0%), block_2 (coordinate 507, 98.3%)." in note
    assert "block_3" not in note and "block_0" not in note
    assert "α-ReQ" in note and "RankMe" in note and "basis=standardised" in note


def test_no_dominant_coordinate_still_states_the_check():
    (note,) = outlier_notes(geometry([0.1, 0.137, 0.09], [3, 5, 3]))
    assert note.startswith("Outlier check: no layer") and "block_1 (coordinate 5, 13.7%)." in note
    (one,) = outlier_notes(geometry([0.1], [3], model="a") + geometry([0.2], [4], model="b"))
    assert "block_0 (coordinate 4, 20.0%) (model=b)." in one  # one line for all scopes
    assert outlier_notes([{"metric": "rankme", "value": 1.0, "layer": 0}]) == []


def test_one_note_per_scope_and_many_layers_shortened():
    recs = geometry([0.9] * 12, [7] * 12, model="a") + geometry([0.1] * 3, [1] * 3, model="b")
    (a,) = outlier_notes(recs)  # only scopes with a flagged layer get a note then
    assert "(model=a)" in a and "and 4 more" in a and "at 12 of 12 layers" in a
    recs += geometry([0.7], [2], model="c")
    assert [n.split(":")[0] for n in outlier_notes(recs)] == [
        "Outlier coordinate (model=a)", "Outlier coordinate (model=c)"]


def test_k_over_d_near_one_warns():
    def nc(k, d):
        return {"metric": "nc1", "value": 1.0, "layer": 30, "K": k, "D": d}

    (w,) = nc_notes([nc(596, 576), nc(596, 576)])  # one warning per distinct (K, D)
    assert w.startswith("K/D = 596/576 = 1.03 is in [0.5, 2]")
    assert len(nc_notes([nc(288, 576), nc(1152, 576)])) == 2  # both bounds included
    assert nc_notes([nc(287, 576), nc(1153, 576), nc(11778, 576)]) == []
    assert nc_notes([{"metric": "nc1", "value": 1.0}, nc(5, 0), nc("596", 576)]) == []


def test_plan_labels_raw_and_standardised_lines_and_carries_the_notes(tmp_path):
    recs = geometry([0.2, 0.98], [1, 507])
    (section,) = plan(recs)
    rankme = next(p for p in section.plots if p.metric == "rankme")
    assert set(rankme.series) == {"raw", "standardised"}
    assert rankme.series["raw"]["y"] == [300.0, 30.0]
    assert len(section.notes) == 1 and "block_1 (coordinate 507, 98.0%)" in section.notes[0]
    run = Run(tmp_path, study="geometry", config={})
    run.add_many(recs)
    run.write()
    html = render(tmp_path).read_text()
    assert "<p class='warn'>Outlier coordinate: at 1 of 2 layers" in html


def test_the_scans_geometry_section_carries_the_outlier_check():
    import json
    from pathlib import Path

    golden = Path(__file__).parent / "golden" / "scan_tiny_records.json"
    (geo,) = [s for s in plan(json.loads(golden.read_text())) if s.name == "geometry"]
    assert len(geo.notes) == 1 and geo.notes[0].startswith("Outlier check: no layer")
    assert geo.notes[0].endswith("(source=wikipedia).")
    rankme = next(p for p in geo.plots if p.metric == "rankme")
    assert set(rankme.series) == {"raw", "standardised"}
