"""PDF files: opened with pypdf (password and page count checked), each page's text one block.

pypdf bounds what it inflates itself (75 MB a stream by default) and its recursion into nested
objects ends in RecursionError; anything it raises on a damaged file becomes UnsupportedFile. Its
text extraction takes about a second a megabyte of page drawing instructions, which only the
parsing process's CPU limit bounds.
"""

from __future__ import annotations

import io
import logging
import re

import pypdf

from chatstream.rag.blocks import MAX_TEXT_CHARS, Block, UnsupportedFile, too_much_text

MAX_PDF_PAGES = 2000

# pypdf warns once per object it repairs: thousands of lines into the server's log for one damaged
# upload (a way to fill the disk), and nothing a person could act on. Its errors still show.
logging.getLogger("pypdf").setLevel(logging.ERROR)

_JUNK = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def open_pdf(data: bytes, name: str) -> pypdf.PdfReader:
    """A reader for a PDF that opens, is not password-protected and has 1 to MAX_PDF_PAGES pages."""
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise UnsupportedFile(f"{name} is password-protected; upload a copy without a password")
        pages = len(reader.pages)
    except UnsupportedFile:
        raise
    except pypdf.errors.DependencyError:
        raise UnsupportedFile(f"{name} is encrypted in a way this server cannot read") from None
    except Exception:  # pypdf raises many kinds of errors on a damaged file
        raise UnsupportedFile(f"{name} is damaged or not a valid PDF and cannot be read") from None
    if pages == 0:
        raise UnsupportedFile(f"{name} has no pages")
    if pages > MAX_PDF_PAGES:
        raise UnsupportedFile(f"{name} has {pages} pages; at most {MAX_PDF_PAGES} are supported")
    return reader


def pdf_blocks(data: bytes, name: str) -> list[Block]:
    reader = open_pdf(data, name)
    blocks: list[Block] = []
    failed = 0
    total = 0
    for page in reader.pages:
        try:
            text = page.extract_text()
        except Exception:
            failed += 1  # one broken page should not cost the rest of the document
            continue
        text = _clean(text)
        total += len(text)
        if total > MAX_TEXT_CHARS:
            raise too_much_text(name)
        if text:
            blocks.append(Block("text", text))
    if not blocks:
        if failed:
            raise UnsupportedFile(f"{name} is damaged: no page could be read")
        raise UnsupportedFile(
            f"{name} has no text to extract (a scanned document? text recognition is not supported)"
        )
    return blocks


def _clean(text: str) -> str:
    """Control characters dropped and the spaces that end lines trimmed, line by line: a regex for
    spaces before a line break retries every space of a long run and takes quadratic time."""
    return "\n".join(line.rstrip(" \t") for line in _JUNK.sub("", text).split("\n")).strip()
