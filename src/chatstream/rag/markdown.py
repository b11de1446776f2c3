"""Markdown and plain text -> blocks: Markdown by markdown-it's block structure, text by blank lines.

Only the block structure of Markdown is parsed (paragraphs, headings, code, tables, raw HTML): a
passage keeps its Markdown source, so inline markup (emphasis, links) matters only in headings.
markdown-it's inline rules are its slowest and least linear part (runs of brackets or emphasis
delimiters took seconds for 100 KB), and this runs them on headings only. Lines are capped first
(rag/blocks.py), and a long document is parsed a segment at a time (see _segments).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from markdown_it import MarkdownIt
from markdown_it.token import Token

from chatstream.rag.blocks import Block, cap_lines
from chatstream.rag.html import html_blocks

_STRUCTURE = MarkdownIt("commonmark").enable("table").disable("inline")
_INLINE = MarkdownIt("commonmark")

# YAML front matter ("---", "key: value" lines, "---"); CommonMark would read it as a rule and a
# heading. Matched at the start only, and its lazy run stops at the first closing line.
_FRONT_MATTER = re.compile(r"---\n[\w-]++[ \t]*+:.*?\n(?:---|\.\.\.)\n", re.S)

# markdown-it keeps a token object for every few characters of some documents (a list of one-word
# items: 450 MB for 1 MB of Markdown), all of them until the parse ends, so a long document is
# parsed a segment of about this many characters at a time.
SEGMENT_CHARS = 64 * 1024
# A segment ends before a blank line's next line when that line starts with a letter: a paragraph
# at the top level, since a list item or a quote continues after a blank line only indented or
# marked. Fenced code and the raw HTML blocks that blank lines do not end (<pre>, <script>, <style>,
# <textarea>, comments, <?...?>, <!...>, CDATA) are followed so as not to end one inside them.
_PARAGRAPH_START = re.compile(r"[^\W\d_]")
_FENCE_OPEN = re.compile(r" {0,3}+(?:(`{3,}+)[^`]*+$|(~{3,}+))")
_RAW_HTML_OPEN = re.compile(
    r" {0,3}+<(?:(script|pre|style|textarea)(?![^\s>])|!--|\?|![A-Za-z]|!\[CDATA\[)", re.I
)
_RAW_HTML_END = {"!--": "-->", "?": "?>", "![cdata[": "]]>"}


def md_blocks(text: str) -> list[Block]:
    if front_matter := _FRONT_MATTER.match(text):
        text = text[front_matter.end() :]
    lines = cap_lines(text).split("\n")
    env: dict[str, Any] = {}  # link reference definitions, which headings may use
    blocks: list[Block] = []
    headings: list[tuple[int, str]] = []  # (index in blocks, Markdown source) of each heading
    for first, end in _segments(lines):
        tokens = _STRUCTURE.parse("\n".join(lines[first:end]), env)
        for i, token in enumerate(tokens):
            if token.level != 0 or token.nesting == -1 or token.map is None:
                continue
            source = "\n".join(lines[first + token.map[0] : first + token.map[1]]).strip("\n")
            if token.type == "heading_open":
                headings.append((len(blocks), tokens[i + 1].content))
                blocks.append(Block("heading", "", int(token.tag[1:])))
            elif token.type in ("fence", "code_block"):
                blocks.append(Block("code", source))
            elif token.type == "table_open":
                blocks.append(Block("table", source))
            elif token.type == "html_block":
                blocks.extend(html_blocks(source))
            elif token.type != "hr":
                blocks.append(Block("text", source))
    # Headings are read last: a link in one may use a reference defined further down.
    for index, source in headings:
        blocks[index] = Block("heading", _heading_text(source, env), blocks[index].level)
    return blocks


def _segments(lines: list[str]) -> Iterator[tuple[int, int]]:
    """(first line, end line) of consecutive segments of about SEGMENT_CHARS that parse to the
    same top-level blocks on their own as within the whole document."""
    start, size = 0, 0
    fence: str | None = None  # the closing fence of the fenced code block we are in
    raw_end: str | None = None  # what ends the raw HTML block we are in
    after_blank = False
    for i, line in enumerate(lines):
        if (
            size >= SEGMENT_CHARS
            and after_blank
            and fence is None
            and raw_end is None
            and _PARAGRAPH_START.match(line)
        ):
            yield start, i
            start, size = i, 0
        size += len(line) + 1
        after_blank = not line.strip(" \t")  # CommonMark: only spaces and tabs are blank
        if fence is not None:
            if _closes_fence(line, fence):
                fence = None
        elif raw_end is not None:
            if raw_end in line.lower():
                raw_end = None
        elif opened := _FENCE_OPEN.match(line):
            fence = opened[1] or opened[2]
        elif opened := _RAW_HTML_OPEN.match(line):
            marker = opened[0].strip()[1:].lower()
            end = f"</{opened[1].lower()}>" if opened[1] else _RAW_HTML_END.get(marker, ">")
            raw_end = None if end in line[opened.end() :].lower() else end
    yield start, len(lines)


def _closes_fence(line: str, fence: str) -> bool:
    """Whether `line` closes a code block opened by `fence`: the same character, as many or more,
    indented by three spaces at most, and nothing else."""
    body = line.rstrip(" \t")
    stripped = body.lstrip(" ")
    return (
        len(body) - len(stripped) <= 3
        and len(stripped) >= len(fence)
        and stripped == fence[0] * len(stripped)
    )


def _heading_text(source: str, env: dict[str, Any]) -> str:
    parts: list[str] = []
    for line in _INLINE.parseInline(source, env):
        parts.extend(_inline_text(child) for child in line.children or [])
    return "".join(parts).strip()


def _inline_text(token: Token) -> str:
    if token.type in ("text", "code_inline", "html_inline"):
        return token.content
    return " " if token.type in ("softbreak", "hardbreak") else ""


def txt_blocks(text: str) -> list[Block]:
    """Paragraphs: runs of lines between blank lines (a line of only whitespace is blank)."""
    blocks: list[Block] = []
    paragraph: list[str] = []
    for line in text.split("\n"):
        if line.strip():
            paragraph.append(line)
        elif paragraph:
            blocks.append(Block("text", "\n".join(paragraph).strip()))
            paragraph = []
    if paragraph:
        blocks.append(Block("text", "\n".join(paragraph).strip()))
    return blocks
