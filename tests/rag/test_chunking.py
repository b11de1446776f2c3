"""Blocks -> passages: section paths, packing, overlap, code and tables kept whole, Chinese text."""

from __future__ import annotations

import itertools
import re
import time

import pytest

from chatstream.rag.chunking import Chunk, chunk, count_tokens
from chatstream.rag.extract import Block, extract


def heading(text: str, level: int) -> Block:
    return Block("heading", text, level)


def text(value: str) -> Block:
    return Block("text", value)


def english_sentences(n: int) -> list[str]:
    # 10 tokens each: "Sentence", number, and seven words, then the full stop.
    return [f"Sentence {i} talks about indexing documents for search today." for i in range(n)]


def chinese_sentences(n: int) -> list[str]:
    # 13 tokens each: eleven characters, the number, the full stop.
    return [f"第{i}句话讲的是文档的检索。" for i in range(n)]


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("", 0),
        ("Hello, world!", 4),
        ("snake_case and CamelCase", 3),
        ("3.14", 3),
        ("你好世界", 4),
        ("你好，世界！", 6),  # noqa: RUF001
        ("GPT-4是一个模型。", 9),
        ("ひらがな カタカナ 한국어", 11),
        ("  \n\t ", 0),
    ],
)
def test_count_tokens_counts_each_cjk_character_word_and_symbol(value: str, tokens: int) -> None:
    assert count_tokens(value) == tokens


def test_sections_are_heading_paths_and_a_shallower_heading_pops_deeper_ones() -> None:
    blocks = [
        text("Before any heading."),
        heading("A", 1),
        text("In A."),
        heading("B", 2),
        heading("C", 3),
        text("In C."),
        heading("D", 2),
        text("In D."),
        heading("E", 1),
        text("In E."),
    ]
    assert chunk(blocks) == [
        Chunk("Before any heading.", "", 4),
        Chunk("In A.", "A", 3),
        Chunk("In C.", "A > B > C", 3),
        Chunk("In D.", "A > D", 3),
        Chunk("In E.", "E", 3),
    ]


def test_short_blocks_of_a_section_are_packed_together_and_never_cross_sections() -> None:
    blocks = [heading("One", 1), text("First paragraph."), text("Second paragraph."), heading("Two", 1)]
    blocks += [text("Third paragraph.")]
    assert chunk(blocks) == [
        Chunk("First paragraph.\n\nSecond paragraph.", "One", 6),
        Chunk("Third paragraph.", "Two", 3),
    ]


def test_a_heading_without_text_makes_no_chunk() -> None:
    assert chunk([heading("Empty", 1), text("  "), heading("Full", 1), text("Body.")]) == [
        Chunk("Body.", "Full", 2)
    ]


def test_long_text_is_split_at_sentences_with_overlap() -> None:
    sentences = english_sentences(30)
    chunks = chunk([heading("Guide", 1), text(" ".join(sentences))], size=50, overlap=20)
    assert len(chunks) > 5
    for piece in chunks:
        assert piece.section == "Guide"
        assert piece.tokens == count_tokens(piece.text) <= 50
        assert piece.text.endswith("today.")  # cut between sentences
    for before, after in itertools.pairwise(chunks):
        # The next chunk starts with the last two sentences (20 tokens) of the one before.
        shared = before.text.split(". ")[-2:]
        assert after.text.startswith(". ".join(shared))
    assert all(any(s in c.text for c in chunks) for s in sentences)


def test_wrapped_lines_are_not_sentence_ends_but_list_items_are() -> None:
    words = " ".join(english_sentences(20)).split(" ")
    wrapped = "\n".join(" ".join(words[i : i + 7]) for i in range(0, len(words), 7))  # Markdown-style wrap
    chunks = chunk([text(wrapped)], size=50, overlap=20)
    assert len(chunks) > 3
    for piece in chunks:
        assert piece.text.startswith("Sentence") and piece.text.endswith("today.")
    items = "\n".join(f"- item {i}" for i in range(6))
    assert [c.text for c in chunk([text(items)], size=6, overlap=0)] == [
        "- item 0\n- item 1",
        "- item 2\n- item 3",
        "- item 4\n- item 5",
    ]


def test_a_long_run_without_punctuation_is_cut_at_line_breaks() -> None:
    lines = [f"line {i} of a list without any punctuation" for i in range(30)]  # 8 tokens each
    chunks = chunk([text("\n".join(lines))], size=50, overlap=0)
    assert len(chunks) == 5
    assert [line for c in chunks for line in c.text.split("\n")] == lines


def test_chinese_text_is_split_at_chinese_sentence_ends_with_overlap() -> None:
    sentences = chinese_sentences(40)
    chunks = chunk([heading("检索", 1), text("".join(sentences))], size=60, overlap=30)
    assert len(chunks) > 5
    for piece in chunks:
        assert piece.section == "检索"
        assert piece.tokens <= 60
        assert piece.text.endswith("。")
        assert " " not in piece.text  # Chinese sentences are joined without spaces
    for before, after in itertools.pairwise(chunks):
        last_two = re.findall(r"[^。]+。", before.text)[-2:]  # 26 tokens
        assert after.text.startswith("".join(last_two))
    assert all(any(s in c.text for c in chunks) for s in sentences)


def test_chinese_semicolons_and_other_marks_are_boundaries_too() -> None:
    parts = ["甲方负责开发；", "乙方负责测试！", "谁负责部署？", "运维团队。"]  # noqa: RUF001
    chunks = chunk([text("".join(parts))], size=8, overlap=0)
    assert [c.text for c in chunks] == parts


def test_a_paragraph_that_fits_starts_a_new_chunk_instead_of_being_cut() -> None:
    first = " ".join(english_sentences(3))  # 30 tokens
    second = " ".join(english_sentences(3)).replace("Sentence", "Line")  # 30 tokens
    chunks = chunk([text(first), text(second)], size=50, overlap=10)
    assert [c.text for c in chunks] == [first, english_sentences(3)[2] + "\n\n" + second]


def test_a_sentence_longer_than_size_is_cut_at_word_boundaries() -> None:
    words = " ".join(f"word{i}" for i in range(130))
    chunks = chunk([text(words)], size=50, overlap=0)
    assert [c.tokens for c in chunks] == [50, 50, 30]
    assert " ".join(c.text for c in chunks) == words


def test_code_and_tables_are_never_cut_and_stand_alone_when_they_do_not_fit() -> None:
    code = "```python\n" + "\n".join(f"value_{i} = compute({i}) + offset" for i in range(12)) + "\n```"
    table = "| name | value |\n|---|---|\n" + "\n".join(f"| row{i} | {i} |" for i in range(15))
    assert 50 < count_tokens(code) <= 200 and 50 < count_tokens(table) <= 200
    blocks = [heading("Ref", 1), text("Intro sentence."), Block("code", code), Block("table", table)]
    blocks += [text("Closing words.")]
    chunks = chunk(blocks, size=50, overlap=10)
    assert [c.text for c in chunks] == ["Intro sentence.", code, table, "Closing words."]
    assert {c.section for c in chunks} == {"Ref"}


def test_a_small_code_block_is_packed_with_the_text_around_it() -> None:
    blocks = [text("Run this:"), Block("code", "```\nmake test\n```"), text("Then relax.")]
    assert [c.text for c in chunk(blocks)] == ["Run this:\n\n```\nmake test\n```\n\nThen relax."]


def test_a_huge_table_is_cut_at_rows_and_every_part_repeats_the_header() -> None:
    header = "| name | value |\n|---|---|"
    rows = [f"| row{i} | {i} |" for i in range(100)]
    chunks = chunk([heading("Data", 2), Block("table", header + "\n" + "\n".join(rows))], size=40, overlap=10)
    assert len(chunks) > 4
    seen = []
    for piece in chunks:
        assert piece.section == "Data"
        assert piece.text.startswith(header + "\n")
        assert piece.tokens <= 40
        seen += piece.text.split("\n")[2:]
    assert seen == rows


def test_a_huge_code_block_is_cut_at_lines_and_every_part_is_fenced() -> None:
    lines = [f"print({i})" for i in range(100)]
    chunks = chunk([Block("code", "```python\n" + "\n".join(lines) + "\n```")], size=40, overlap=10)
    assert len(chunks) > 4
    seen = []
    for piece in chunks:
        assert piece.text.startswith("```python\n") and piece.text.endswith("\n```")
        assert piece.tokens <= 40
        seen += piece.text.split("\n")[1:-1]
    assert seen == lines


def test_markdown_document_end_to_end() -> None:
    source = "# Guide\n\n## Install\n\nRun the installer.\n\n```sh\n./install\n```\n\n## Use\n\nOpen it.\n"
    assert chunk(extract(source.encode(), "md")) == [
        Chunk("Run the installer.\n\n```sh\n./install\n```", "Guide > Install", 14),
        Chunk("Open it.", "Guide > Use", 3),
    ]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (10, 10), (10, -1)])
def test_bad_sizes_are_refused(size: int, overlap: int) -> None:
    with pytest.raises(ValueError, match="size"):
        chunk([text("x")], size=size, overlap=overlap)


@pytest.mark.parametrize("run", ["." * 65_536, "!?" * 32_768, "?!." * 20_000 + "\u201d" * 5_000])
def test_a_run_of_sentence_marks_is_read_once(run: str) -> None:
    # A greedy `[.!?]+` retried the rest of the run from each mark: 40 KB of dots froze the
    # server for 20 s, 64 KB took over a minute.
    started = time.perf_counter()
    chunks = chunk([text("Before the run. " + run + " after it.")])
    assert time.perf_counter() - started < 1
    assert "".join(c.text for c in chunks).replace("\n", "").count(".") >= run.count(".")


def test_sentence_marks_end_sentences_as_before() -> None:
    parts = ["One...", "Two?!", 'Three."', "Four!)", "Five\u2026\u300d", "Six."]
    assert [c.text for c in chunk([text(" ".join(parts))], size=4, overlap=0)] == parts


def test_a_table_whose_header_fills_a_passage_is_cut_without_repeating_it() -> None:
    # The header went into every part, leaving room for a token or two of rows: a 1,000-column
    # table of 44 KB made 40,000 passages; one with no rows under its header made none at all.
    header = "| " + " | ".join(f"h{i}" for i in range(1000)) + " |\n|" + " --- |" * 1000
    rows = "\n".join("| " + " | ".join(f"r{r}c{i}" for i in range(1000)) + " |" for r in range(20))
    started = time.perf_counter()
    chunks = chunk([Block("table", header + "\n" + rows)], size=200, overlap=40)
    assert time.perf_counter() - started < 2
    total = count_tokens(header + "\n" + rows)
    assert len(chunks) <= total // 200 + 25  # a part per passage, plus at most one per line
    assert sum(len(c.text) for c in chunks) <= len(header) + len(rows) + 25 * 2
    only_header = chunk([Block("table", header)], size=200, overlap=40)
    assert " ".join(c.text for c in only_header).split() == header.split()


def test_a_small_table_header_is_still_repeated() -> None:
    header = "| name | value |\n|---|---|"
    rows = [f"| row{i} | {i} |" for i in range(100)]
    chunks = chunk([Block("table", header + "\n" + "\n".join(rows))], size=40, overlap=0)
    assert all(c.text.startswith(header + "\n") for c in chunks)
