"""Markdown: block structure only (inline rules on headings), capped lines, long files by segments."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from chatstream.rag import markdown
from chatstream.rag.blocks import MAX_LINE_CHARS, Block
from chatstream.rag.extract import extract
from chatstream.rag.markdown import md_blocks, txt_blocks

ROOT = Path(__file__).resolve().parent.parent.parent


def test_headings_are_plain_text_even_with_a_reference_defined_further_down() -> None:
    source = "# The `chunk()` *function* and [docs][d]\n\nText.\n\n[d]: https://example.com\n"
    assert md_blocks(source)[0] == Block("heading", "The chunk() function and docs", 1)


@pytest.mark.parametrize(
    ("label", "markup"),
    [("brackets", "[" * 800_000), ("emphasis", "*_" * 400_000), ("images", "![" * 400_000)],
)
def test_inline_markup_in_paragraphs_is_not_parsed(label: str, markup: str) -> None:
    # markdown-it's inline rules took 5 s and more on each of these (800 KB), superlinearly, and a
    # passage keeps its Markdown source anyway.
    started = time.perf_counter()
    blocks = extract(f"Intro.\n\n{markup}".encode(), "md")
    assert time.perf_counter() - started < 0.5
    assert blocks[0] == Block("text", "Intro.")
    assert "".join(b.text.replace("\n", "") for b in blocks[1:]) == markup  # lines cut, nothing lost


def test_lines_are_capped_before_markdown_it_sees_them(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[str] = []
    parse = markdown._STRUCTURE.parse
    monkeypatch.setattr(markdown._STRUCTURE, "parse", lambda text, env: seen.append(text) or parse(text, env))
    blocks = md_blocks("word " * 100_000)
    assert max(len(line) for text in seen for line in text.split("\n")) <= MAX_LINE_CHARS
    assert " ".join(b.text.replace("\n", " ") for b in blocks).split() == ["word"] * 100_000


def segment_cases() -> list[str]:
    """Markdown with every construct a segment must not end inside."""
    tricky = "\n\n".join(
        [
            "# Title",
            "Para one.",
            "```python\ncode line\n\nText at column 0 inside a fence\n\n```",
            "~~~~\nmore\n\nWords inside\n~~~\n\nStill inside\n~~~~",
            "<pre>\nraw\n\nWords inside pre\n</pre>",
            "<!--\ncomment\n\nWords inside a comment\n-->",
            "- item one\n\n  continued\n\n- item two",
            "> quote\n\n> more quote",
            "| a | b |\n|---|---|\n| 1 | 2 |",
            "    indented code\n\n    more code",
            "[ref]: /url\n\nLast para with [ref].",
        ]
    )
    sources = [tricky * 3]
    sources += [path.read_text() for path in sorted((ROOT / "tests" / "data" / "rag").glob("*.md"))]
    sources += [path.read_text() for path in sorted((ROOT / "docs").glob("*.md"))]
    return sources


def test_a_document_parsed_by_segments_gives_the_blocks_of_a_whole_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for source in segment_cases():
        monkeypatch.setattr(markdown, "SEGMENT_CHARS", 10**9)
        whole = md_blocks(source)
        monkeypatch.setattr(markdown, "SEGMENT_CHARS", 1)  # a segment wherever one may end
        assert md_blocks(source) == whole


def test_long_documents_are_parsed_in_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    sizes: list[int] = []
    parse = markdown._STRUCTURE.parse
    monkeypatch.setattr(
        markdown._STRUCTURE, "parse", lambda text, env: sizes.append(len(text)) or parse(text, env)
    )
    md_blocks("A paragraph of words.\n\n" * 20_000)
    assert len(sizes) > 5 and max(sizes) < 2 * markdown.SEGMENT_CHARS


def test_text_paragraphs_end_at_lines_of_whitespace_only() -> None:
    assert txt_blocks("one\ntwo\n \t\u3000\nthree\n\n\n") == [
        Block("text", "one\ntwo"),
        Block("text", "three"),
    ]
