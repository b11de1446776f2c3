"""One call for a sandboxed child process: a stored document's bytes to its passages."""

from __future__ import annotations

from chatstream.rag.chunking import Chunk, chunk
from chatstream.rag.extract import UnsupportedFile, extract


def parse_document(
    data: bytes, kind: str, name: str, *, chunk_tokens: int, chunk_overlap: int
) -> list[Chunk]:
    """The passages of a document; UnsupportedFile (with a message for the user) when there are none."""
    chunks = chunk(extract(data, kind, name=name), size=chunk_tokens, overlap=chunk_overlap)
    if not chunks:
        raise UnsupportedFile(f"{name} has no text to index")
    return chunks
