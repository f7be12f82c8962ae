"""Input files decode the way a user means them, and a hand-edited results folder cannot
plant a script link in the report."""

import json

import pytest

from collapsekit.errors import InputFileError
from collapsekit.io import read_jsonl, read_prompts, read_samples, read_texts
from collapsekit.report.html import _href


def test_a_bom_does_not_stick_to_the_first_prompt(tmp_path):
    path = tmp_path / "p.txt"
    path.write_bytes("\ufeff# a comment\nfirst prompt\n".encode("utf-8"))
    assert read_prompts(path) == ["first prompt"]


def test_only_newlines_split_lines(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("one\u2028line\r\nsecond\n", encoding="utf-8")
    assert read_texts(txt) == ["one\u2028line", "second"]
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"prompt": "a\u2028b"}\n', encoding="utf-8")  # raw U+2028 inside a string
    assert read_jsonl(jl) == [{"prompt": "a\u2028b"}] and read_prompts(jl) == ["a\u2028b"]


def test_whitespace_only_jsonl_prompts_are_refused(tmp_path):
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"prompt": "fine"}\n{"prompt": "   "}\n')
    with pytest.raises(InputFileError, match="record 2: the 'prompt' field is empty"):
        read_prompts(jl)


def test_prompt_ids_of_two_types_are_not_merged(tmp_path):
    jl = tmp_path / "s.jsonl"
    jl.write_text("".join(json.dumps(r) + "\n" for r in (
        {"prompt_id": 0, "text": "a"}, {"prompt_id": 0, "text": "b"},
        {"prompt_id": "0", "text": "c"})))
    with pytest.raises(InputFileError, match="record 3: prompt_id '0' is also written as"):
        read_samples(jl)
    jl.write_text("".join(json.dumps({"prompt_id": p, "text": t}) + "\n"
                          for p, t in ((0, "a"), (1, "b"), (0, "c"))))
    assert read_samples(jl) == {"0": ["a", "c"], "1": ["b"]}


def test_a_sample_written_twice_counts_once(tmp_path):
    jl = tmp_path / "s.jsonl"
    rows = [{"prompt_id": 0, "text": "a", "key": "k1"}, {"prompt_id": 0, "text": "b",
                                                          "key": "k2"}]
    jl.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[:1]))
    assert read_samples(jl) == {"0": ["a", "b"]}


@pytest.mark.parametrize("url, shown", [
    ("tables/x.csv", "tables/x.csv"), ("https://example.org/a", "https://example.org/a"),
    ("javascript:alert(1)", "#"), ("data:text/html,x", "#"), ("/etc/passwd", "#"),
    ("../outside.csv", "#"), (None, "#")])
def test_report_links_are_relative_or_http(url, shown):
    assert _href(url) == shown


def test_a_planted_link_does_not_reach_the_page(tmp_path):
    from collapsekit.report.html import render
    from collapsekit.results import Run

    run = Run(tmp_path / "r", study="x", config={})
    run.add("rankme", 3.0, section="geometry", layer=0)
    run.table("t", [{"a": 1}])
    run.finish()
    data = json.loads((tmp_path / "r" / "metrics.json").read_text())
    data["tables"]["t"]["csv"] = "javascript:alert(1)"
    (tmp_path / "r" / "metrics.json").write_text(json.dumps(data))
    page = render(tmp_path / "r").read_text()
    assert "javascript:" not in page and "href='#'" in page
