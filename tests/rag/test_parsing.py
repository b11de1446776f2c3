"""parse_document: the one call a parsing process makes; cheap to import, plain values in and out."""

from __future__ import annotations

import importlib
import pickle
import subprocess
import sys

import pytest

from chatstream.rag import parsing
from chatstream.rag.chunking import chunk
from chatstream.rag.extract import UnsupportedFile, extract
from chatstream.rag.parsing import PARSER_MODULES, parse_document
from tests.support.documents import make_docx, make_html, make_pdf

PARSERS = ("pypdf", "docx", "markdown_it", "lxml")


@pytest.mark.parametrize(
    ("kind", "data"),
    [
        ("md", b"# Guide\n\nSome text. More text.\n"),
        ("txt", b"Plain text.\n\nSecond paragraph."),
        ("html", make_html([("h1", "Title"), ("p", "Body.")])),
        ("pdf", make_pdf(["Page text."])),
        ("docx", make_docx([("h1", "Title"), ("p", "Body.")])),
    ],
)
def test_passages_are_those_of_extract_and_chunk_and_pickle(kind: str, data: bytes) -> None:
    chunks = parse_document(data, kind, "doc", chunk_tokens=50, chunk_overlap=10)
    assert chunks == chunk(extract(data, kind, name="doc"), size=50, overlap=10)
    assert pickle.loads(pickle.dumps(chunks)) == chunks


def test_a_document_without_passages_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(UnsupportedFile, match=r"doc.md contains no text to index"):
        parse_document(b"# Only a heading\n", "md", "doc.md", chunk_tokens=50, chunk_overlap=10)
    monkeypatch.setattr(parsing, "chunk", lambda blocks, size, overlap: [])
    with pytest.raises(UnsupportedFile, match=r"doc.md has no text to index"):
        parse_document(b"Text.", "md", "doc.md", chunk_tokens=50, chunk_overlap=10)


def test_importing_it_loads_no_parser_until_one_is_needed() -> None:
    probe = (
        "import sys, chatstream.rag.parsing, chatstream.rag.extract\n"
        f"print(sorted(m for m in {PARSERS!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"


def test_parser_modules_load_the_parsers() -> None:
    for name in PARSER_MODULES:
        importlib.import_module(name)
    assert all(module in sys.modules for module in PARSERS)
