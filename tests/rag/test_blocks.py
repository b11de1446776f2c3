"""The caps on what extraction hands on: lines, headings, blocks, a document's text."""

from __future__ import annotations

import time

import pytest

from chatstream.rag import blocks as caps
from chatstream.rag.blocks import TABLE_RULE, Block, UnsupportedFile, bounded_blocks, cap_lines


def test_long_lines_are_cut_at_a_space_in_their_second_half_else_where_they_must(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(caps, "MAX_LINE_CHARS", 10)
    assert cap_lines("short\nlines") == "short\nlines"
    assert cap_lines("aaaa bbbbbb cc") == "aaaa bbbbb\nb cc"  # the only space is too early: a hard cut
    assert cap_lines("aaaaaaa bbbbbbb") == "aaaaaaa\nbbbbbbb"
    assert cap_lines("x" * 25) == "x" * 10 + "\n" + "x" * 10 + "\n" + "x" * 5


def test_blank_blocks_are_dropped_and_long_headings_read_as_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caps, "MAX_HEADING_CHARS", 10)
    given = [Block("heading", "Short", 1), Block("text", " \n "), Block("heading", "A styled paragraph", 2)]
    assert bounded_blocks(given, "doc") == [Block("heading", "Short", 1), Block("text", "A styled paragraph")]


def test_huge_blocks_are_split_tables_keeping_their_header_and_code_its_fences(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(caps, "MAX_BLOCK_CHARS", 40)
    table = "| k | v |\n| --- | --- |\n" + "\n".join(f"| {i} | x |" for i in range(6))
    parts = bounded_blocks([Block("table", table)], "doc")
    assert len(parts) > 1
    assert all(p.kind == "table" and p.text.startswith("| k | v |\n| --- | --- |\n| ") for p in parts)
    assert [line for p in parts for line in p.text.split("\n")[2:]] == table.split("\n")[2:]
    code = "```\n" + "\n".join(f"print({i})" for i in range(8)) + "\n```"
    parts = bounded_blocks([Block("code", code)], "doc")
    assert len(parts) > 1 and all(p.text.startswith("```\n") and p.text.endswith("\n```") for p in parts)
    parts = bounded_blocks([Block("text", "word " * 30)], "doc")  # one line: cut at spaces
    assert all(len(p.text) <= 40 for p in parts)
    assert " ".join(p.text for p in parts).split() == ["word"] * 30


def test_a_document_with_too_much_text_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caps, "MAX_TEXT_CHARS", 20)
    assert bounded_blocks([Block("text", "x" * 20)], "doc")
    with pytest.raises(UnsupportedFile, match="doc has more than 0 million characters of text"):
        bounded_blocks([Block("text", "x" * 15), Block("text", "y" * 15)], "doc")


def test_the_table_rule_is_matched_in_linear_time() -> None:
    assert TABLE_RULE.fullmatch("|---|:--:| ---: |")
    assert TABLE_RULE.fullmatch(" --- | --- ")
    assert not TABLE_RULE.fullmatch("| a | b |")
    # Its old form, with adjacent `\s*`, took 3 s for 20,000 spaces (and 4 times that for twice).
    started = time.perf_counter()
    assert not TABLE_RULE.fullmatch(" " * 100_000 + "x")
    assert not TABLE_RULE.fullmatch("| --- " * 20_000 + "x")
    assert time.perf_counter() - started < 0.5
