"""Blocks of a document -> passages of about `size` tokens, each tagged with its heading path.

Tokens are counted without a model's tokenizer, so that the count is the same for every embedding
model and cheap: each CJK character is one token (CJK text has no spaces to split on and a subword
tokenizer gives about one token per character), each run of other word characters is one, and so is
each other symbol.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from chatstream.rag.blocks import TABLE_RULE, Block
from chatstream.rag.terms import CJK_LETTERS

# CJK letters plus CJK symbols and punctuation and the full-width forms (full-width comma, colon...).
_CJK = CJK_LETTERS + "\u3000-\u303f\u31c0-\u31ef\u3200-\u33ff\ufe30-\ufe4f\uff00-\uffef"
_TOKEN = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+|[^\w\s]")

# Where a sentence ends: after ., ! or ? followed by a space; after CJK end marks (which need no space),
# with any closing quotes or brackets; at a blank line or a line break before a list item, a table row,
# a quote or a heading. Other line breaks are often only wrapping (Markdown source, PDF lines), so they
# are cut at only in a sentence too long for a chunk.
# Each run of marks is read once: the look-behind starts a match only at the first mark of a run and
# the possessive quantifiers never give marks back (a greedy `[.!?]+` retried the rest of the run
# from every mark, quadratic: 40 KB of dots took 20 s).
_CLOSERS = "\"'\u201d\u2019\u300d\u300f\uff09)\\]"  # closing quotes and brackets
_SENTENCE_END = re.compile(
    rf"(?<![.!?])[.!?]++[{_CLOSERS}]*+(?=\s)|[\u3002\uff01\uff1f\uff1b\u2026]++[{_CLOSERS}]*+"
    r"|\n(?=[ \t]*+(?:\n|(?:[-*+\u2022]|\d++[.)])[ \t]|[|>#]))"
)
_LINE_END = re.compile(r"\n")
_FENCE = re.compile(r"\s*(`{3,}|~{3,})")

# A code block or table up to this many times `size` stays whole in one passage, larger ones are cut.
ATOMIC_LIMIT = 4


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass(frozen=True, slots=True)
class Chunk:
    text: str
    section: str  # heading path, "A > B > C"; "" before the first heading
    tokens: int


@dataclass(frozen=True, slots=True)
class _Piece:
    text: str
    tokens: int
    joiner: str  # what separated it from the piece before it in the document
    sentence: bool  # a sentence may be repeated as overlap; a code block or table is not


@dataclass(slots=True)
class _Packer:
    """Packs the pieces of one section into chunks."""

    section: str
    size: int
    overlap: int
    chunks: list[Chunk]
    current: list[_Piece] = field(default_factory=list)
    used: int = 0  # tokens in `current`, kept as a sum: recounting them for each piece is quadratic

    def add(self, piece: _Piece) -> None:
        if self.used + piece.tokens > self.size:
            self.emit(room_for=piece.tokens)
        self.current.append(piece)
        self.used += piece.tokens

    def add_alone(self, pieces: Iterable[_Piece]) -> None:
        """Pieces that each go into a chunk of their own (parts of a large code block or table)."""
        self.emit()
        for piece in pieces:
            self.current.append(piece)
            self.used += piece.tokens
            self.emit()

    def emit(self, *, room_for: int | None = None) -> None:
        """Ends the current chunk; with `room_for`, the next one starts with an overlap that leaves
        room for that many tokens."""
        if not self.current:
            return
        text = self.current[0].text + "".join(p.joiner + p.text for p in self.current[1:])
        self.chunks.append(Chunk(text=text, section=self.section, tokens=count_tokens(text)))
        tail: list[_Piece] = []
        if room_for is not None:
            budget, used = min(self.overlap, self.size - room_for), 0
            for piece in reversed(self.current):
                if not piece.sentence or used + piece.tokens > budget:
                    break
                tail.insert(0, piece)
                used += piece.tokens
        # An overlap that makes up the whole chunk would only repeat it.
        self.current = tail if len(tail) < len(self.current) else []
        self.used = sum(p.tokens for p in self.current)


def chunk(blocks: Sequence[Block], *, size: int = 200, overlap: int = 40) -> list[Chunk]:
    """Passages of at most about `size` tokens that never cross a section.

    Text is packed sentence by sentence, a paragraph that fits in a passage is not cut, and
    consecutive passages of a section share about `overlap` tokens of whole sentences. Code blocks and
    tables stay whole (alone in a passage if they don't fit with the text around them) unless they are
    over ATOMIC_LIMIT * size, then they are cut at line breaks, tables repeating their header.
    """
    if size < 1 or not 0 <= overlap < size:
        raise ValueError("chunk needs size >= 1 and 0 <= overlap < size")
    chunks: list[Chunk] = []
    headings: list[tuple[int, str]] = []
    packer = _Packer("", size, overlap, chunks)
    for block in blocks:
        text = block.text.strip()
        if not text:
            continue
        if block.kind == "heading":
            packer.emit()
            while headings and headings[-1][0] >= block.level:
                headings.pop()
            headings.append((block.level, " ".join(text.split())))
            packer = _Packer(" > ".join(h for _, h in headings), size, overlap, chunks)
        elif block.kind in ("code", "table"):
            tokens = count_tokens(text)
            if tokens > ATOMIC_LIMIT * size:
                parts = _cut(text, block.kind, size)
                packer.add_alone(_Piece(part, count_tokens(part), "", False) for part in parts)
            elif tokens > size:
                packer.add_alone([_Piece(text, tokens, "", False)])
            else:
                packer.add(_Piece(text, tokens, "\n\n", False))
        else:
            pieces = [
                _Piece(part, count_tokens(part), "\n\n" if i == 0 else joiner, True)
                for i, (joiner, part) in enumerate(_text_pieces(text, size))
            ]
            total = sum(p.tokens for p in pieces)
            if total <= size and packer.used + total > size:
                # A paragraph that fits in a chunk starts a new one rather than being cut.
                packer.emit(room_for=total)
            for piece in pieces:
                packer.add(piece)
    packer.emit()
    return chunks


def _text_pieces(text: str, size: int) -> list[tuple[str, str]]:
    """(whitespace before it, sentence) pairs; sentences over `size` tokens are cut at line breaks,
    lines still over it at token boundaries."""
    out: list[tuple[str, str]] = []
    for joiner, sentence in _split(text, _SENTENCE_END):
        if count_tokens(sentence) <= size:
            out.append((joiner, sentence))
            continue
        for i, (line_joiner, line) in enumerate(_split(sentence, _LINE_END)):
            first = joiner if i == 0 else line_joiner
            if count_tokens(line) <= size:
                out.append((first, line))
            else:
                parts = _split(line, None, size)
                out.extend([(first, parts[0][1]), *parts[1:]])
    return out


def _split(text: str, ends: re.Pattern[str] | None, tokens: int = 0) -> list[tuple[str, str]]:
    """`text` cut after each match of `ends`, or every `tokens` tokens, as (whitespace before it,
    stripped part) pairs."""
    if ends is not None:
        cuts = [m.end() for m in ends.finditer(text)]
    else:
        cuts = [m.start() for m in _TOKEN.finditer(text)][tokens::tokens]
    out: list[tuple[str, str]] = []
    # The whitespace since the last part, as a list: a string grown by += may be copied each time.
    pending: list[str] = []
    for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True):
        segment = text[a:b]
        part = segment.strip()
        if not part:
            pending.append(segment)
            continue
        lead = len(segment) - len(segment.lstrip())
        out.append(("".join(pending) + segment[:lead], part))
        pending = [segment[len(segment.rstrip()) :]]
    return out


def _cut(text: str, kind: str, size: int) -> list[str]:
    """A large code block or table in parts of at most about `size` tokens, cut at line breaks."""
    lines = text.split("\n")
    head: list[str] = []
    tail: list[str] = []
    if kind == "table":
        head = lines[:2] if len(lines) > 1 and TABLE_RULE.fullmatch(lines[1]) else lines[:1]
    elif (fence := _FENCE.match(lines[0])) and len(lines) > 1 and lines[-1].strip().startswith(fence[1]):
        head, tail = lines[:1], lines[-1:]
    repeated = count_tokens("\n".join(head + tail))
    if repeated > size // 2:
        # A header (or fence) that fills most of a passage is not repeated: each part would add as
        # little as one token of rows to it, and a 1,000-column table of 44 KB made 40,000 passages.
        head, tail, repeated = [], [], 0
    body = lines[len(head) : len(lines) - len(tail)]
    limit = size - repeated
    parts: list[list[str]] = []
    used = limit
    for line in body:
        n = count_tokens(line)
        if n > limit:
            parts.extend([part] for _, part in _split(line, None, limit))
            used = limit
            continue
        if used + n > limit:
            parts.append([])
            used = 0
        parts[-1].append(line)
        used += n
    return ["\n".join(head + part + tail) for part in parts if any(line.strip() for line in part)]
