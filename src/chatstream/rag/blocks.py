"""What extraction produces (blocks of a document), how it refuses a file, and the caps on text size.

Every step after extraction takes linear time, and the caps bound what a file can make it hold:
no heading or block longer than a fixed number of characters, no document with more text than
MAX_TEXT_CHARS. Lines are capped where a parser works line by line (Markdown).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

# Prose wraps far sooner: a paragraph written on one line is rarely over 3,000 characters. Longer
# lines are generated content (minified code, base64, one-line exports), and cutting them bounds
# the work of markdown-it's per-line rules (table rows, HTML blocks, link references).
MAX_LINE_CHARS = 10_000
# A block is a paragraph, a code block, a table or a PDF page: a few thousand characters, the
# largest tables and word lists a few hundred thousand. Past a million (500 pages as one paragraph)
# a block is split at line breaks, a line at spaces, so no string after extraction is longer.
MAX_BLOCK_CHARS = 1_000_000
# Headings are a line; a longer "heading" is a paragraph with a heading style, and as part of every
# passage's heading path it would be stored (and embedded) once per passage of its section.
MAX_HEADING_CHARS = 500
# The default upload limit in bytes (20 MiB): any text file that may be uploaded fits, since UTF-8
# takes a byte a character at least, and a PDF or DOCX, whose text is compressed, may not give more
# than a text file could. 20 MB of ordinary Markdown is parsed and chunked in ~7 s of CPU (150 MB).
MAX_TEXT_CHARS = 20 * 1024 * 1024

BlockKind = Literal["heading", "text", "code", "table"]


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    text: str
    level: int = 0  # heading level, 1 for the top


class UnsupportedFile(ValueError):
    """A file that cannot be indexed; str(error) is a message for the user."""


def too_much_text(name: str) -> UnsupportedFile:
    millions = MAX_TEXT_CHARS / 1_000_000
    return UnsupportedFile(
        f"{name} has more than {millions:.0f} million characters of text; split it into smaller files"
    )


def cap_lines(text: str) -> str:
    """`text` with every line over MAX_LINE_CHARS cut into lines of at most that, at a space if
    there is one in the second half of the limit (so words stay whole), else wherever it falls."""
    lines = text.split("\n")
    if all(len(line) <= MAX_LINE_CHARS for line in lines):
        return text
    return "\n".join(part for line in lines for part in _cut_line(line, MAX_LINE_CHARS))


def _cut_line(line: str, limit: int) -> Iterator[str]:
    start = 0
    while len(line) - start > limit:
        end = start + limit
        space = line.rfind(" ", start + limit // 2, end)
        if space > start:
            yield line[start:space]
            start = space + 1  # the space becomes the line break
        else:
            yield line[start:end]
            start = end
    yield line[start:]


# The rule under a Markdown table's header row ("| --- | :-: |"); possessive, so a long line of
# dashes and spaces that is not one fails in one pass.
TABLE_RULE = re.compile(r"\s*+\|?+\s*+:?+-++:?+\s*+(?:\|\s*+:?+-++:?+\s*+)*+\|?+\s*+")


def bounded_blocks(blocks: Iterable[Block], name: str) -> list[Block]:
    """The blank blocks dropped and the others capped: over-long headings read as text, blocks over
    MAX_BLOCK_CHARS split (tables repeating their header, code its fences). Raises UnsupportedFile
    when the text adds up to more than MAX_TEXT_CHARS."""
    out: list[Block] = []
    total = 0
    for block in blocks:
        if not block.text.strip():
            continue
        total += len(block.text)
        if total > MAX_TEXT_CHARS:
            raise too_much_text(name)
        if block.kind == "heading" and len(block.text) > MAX_HEADING_CHARS:
            block = Block("text", block.text)
        if len(block.text) <= MAX_BLOCK_CHARS:
            out.append(block)
        else:
            out.extend(Block(block.kind, part, block.level) for part in _split_block(block.text, block.kind))
    return out


def _split_block(text: str, kind: BlockKind) -> Iterator[str]:
    lines = text.split("\n")
    head: list[str] = []
    tail: list[str] = []
    if kind == "table":
        head = lines[:2] if len(lines) > 1 and TABLE_RULE.fullmatch(lines[1]) else lines[:1]
    elif (
        kind == "code"
        and (fence := lines[0].strip()[:3]) in ("```", "~~~")
        and lines[-1].strip().startswith(fence)
    ):
        head, tail = lines[:1], lines[-1:]  # each part stays a fenced block
    room = MAX_BLOCK_CHARS - sum(len(line) + 1 for line in head + tail)
    part: list[str] = []
    size = 0
    body = lines[len(head) : len(lines) - len(tail)]
    for line in (piece for whole in body for piece in _cut_line(whole, room)):
        if part and size + len(line) + 1 > room:
            yield "\n".join(head + part + tail)
            part, size = [], 0
        part.append(line)
        size += len(line) + 1
    if part:
        yield "\n".join(head + part + tail)


def table_text(rows: list[list[str]]) -> str:
    """Rows as a Markdown table, the first row taken as the header."""
    rows = [[" ".join(c.split()).replace("|", "\\|") for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + " --- |" * max(len(row) for row in rows))
    return "\n".join(lines)
