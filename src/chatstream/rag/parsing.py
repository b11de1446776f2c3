"""One call for a sandboxed child process: a stored document's bytes to its passages.

`index_passages` also computes each passage's full-text terms there: for a large document that is
seconds of CPU the server's event loop would otherwise spend.

Arguments and results are plain values and frozen dataclasses, so they pickle. Importing this
module is cheap (the parsers load on first use); a process that will parse, such as a fork server
that starts the children, imports PARSER_MODULES ahead to have them loaded once.
"""

from __future__ import annotations

from dataclasses import dataclass

from chatstream.rag.chunking import Chunk, chunk
from chatstream.rag.extract import UnsupportedFile, extract
from chatstream.rag.terms import terms_text

PARSER_MODULES = ("chatstream.rag.pdf", "chatstream.rag.docx", "chatstream.rag.markdown")


def parse_document(
    data: bytes, kind: str, name: str, *, chunk_tokens: int, chunk_overlap: int
) -> list[Chunk]:
    """The passages of a document; UnsupportedFile (with a message for the user) when there are none."""
    chunks = chunk(extract(data, kind, name=name), size=chunk_tokens, overlap=chunk_overlap)
    if not chunks:
        raise UnsupportedFile(f"{name} has no text to index")
    return chunks


@dataclass(frozen=True, slots=True)
class Passage:
    """A passage as the index takes it: the chunk and its search terms (rag.terms)."""

    chunk: Chunk
    terms: str


def embedding_text(section: str, text: str) -> str:
    """What a passage's vector (and its terms) are made from: its section path gives it context."""
    return f"{section}\n{text}" if section else text


def index_passages(
    data: bytes, kind: str, name: str, *, chunk_tokens: int, chunk_overlap: int
) -> list[Passage]:
    """parse_document, with each passage's terms."""
    chunks = parse_document(data, kind, name, chunk_tokens=chunk_tokens, chunk_overlap=chunk_overlap)
    return [Passage(c, terms_text(embedding_text(c.section, c.text))) for c in chunks]
