"""PDF: page text cleaned in linear time, the text of a document capped."""

from __future__ import annotations

import time

import pytest

from chatstream.rag import pdf
from chatstream.rag.blocks import Block, UnsupportedFile
from chatstream.rag.extract import extract
from chatstream.rag.pdf import _clean
from tests.data.hostile import make_corpus as corpus


def test_page_text_is_cleaned_line_by_line() -> None:
    assert _clean("  a  \t\n b\x00\x07c \n\n  ") == "a\n bc"


def test_a_long_run_of_spaces_in_a_page_is_cleaned_in_linear_time() -> None:
    # A regex for spaces before a line break retried each space of the run: quadratic, 100,000
    # spaces took 5 s.
    content = b"BT /F1 11 Tf 72 720 Td (Spaces follow:" + b" " * 300_000 + b"and end.) Tj ET"
    data = corpus.pdf_pages([corpus.content_stream(content, deflate=True)])
    started = time.perf_counter()
    (block,) = extract(data, "pdf")
    assert time.perf_counter() - started < 2
    assert block.text.startswith("Spaces follow:") and block.text.endswith("and end.")


def test_a_page_that_cannot_be_read_costs_only_itself() -> None:
    data = corpus.pdf_files()["pdf_flate_bomb_page.pdf"]()  # page 2 inflates past pypdf's limit
    assert extract(data, "pdf") == [Block("text", "The first page has text to index.")]


def test_a_document_with_too_much_text_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf, "MAX_TEXT_CHARS", 40)
    page = corpus.content_stream(corpus.text_operators("Twenty five characters."))
    with pytest.raises(UnsupportedFile, match=r"doc.pdf has more than"):
        extract(corpus.pdf_pages([page, page]), "pdf", name="doc.pdf")
