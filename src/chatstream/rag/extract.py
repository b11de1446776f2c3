"""Uploaded files -> what kind they are -> their text as blocks (headings, text, code, tables).

The content decides, not the name, in two steps. sniff_kind runs in the serving process at upload
and reads bounded parts of a file only (magic bytes, a text prefix, a ZIP's directory); it never
decompresses or parses. check_content is the deep check (the PDF opens, the DOCX's parts unpack
within the caps, the whole text decodes), for the process that parses. extract checks again all it
relies on, since it also reads documents stored before these checks existed. Any file that fails
is refused with UnsupportedFile and a message for the user: the parsers' own exceptions never leave
rag/. The parsers (pypdf, python-docx, markdown-it) are imported on first use, so that importing
this module is cheap for the serving process.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from chatstream.rag.archive import list_members
from chatstream.rag.blocks import Block, BlockKind, UnsupportedFile, bounded_blocks
from chatstream.rag.kinds import (
    EXTENSIONS,
    LABELS,
    SNIFF_BYTES,
    SUPPORTED,
    decode_text,
    describe,
    is_pdf,
    is_zip,
    sniff_text,
)
from chatstream.rag.package import MAIN_PART, check_listing, unpacked_parts

__all__ = [
    "EXTENSIONS",
    "Block",
    "BlockKind",
    "UnsupportedFile",
    "check_content",
    "detect_kind",
    "display_name",
    "extract",
    "sniff_kind",
]

_TEXT_KINDS = ("md", "txt", "html")


def display_name(filename: str) -> str:
    """The file's own name, without folders: what messages call it."""
    return PurePosixPath(filename.replace("\\", "/")).name or "the file"


def sniff_kind(data: bytes, filename: str) -> str:
    """The kind ("md", "txt", "pdf", "docx" or "html") from the extension, checked against what a
    bounded read of the content shows. Cheap for any upload: nothing is decompressed or parsed."""
    name = display_name(filename)
    if not data:
        raise UnsupportedFile(f"{name} is empty")
    suffix = PurePosixPath(name.lower()).suffix
    kind = EXTENSIONS.get(suffix)
    if kind is None:
        if not suffix:
            raise UnsupportedFile(f"{name} has no file extension ({SUPPORTED})")
        raise UnsupportedFile(f"{name}: {suffix} files are not supported ({SUPPORTED})")
    if kind == "pdf":
        if not is_pdf(data):
            raise _looks_like(data, kind, name)
    elif kind == "docx":
        if not is_zip(data):
            raise _looks_like(data, kind, name)
        members = list_members(data, name)
        if MAIN_PART not in {member.filename for member in members}:
            raise _looks_like(data, kind, name)
        check_listing(members, name)
    else:
        if data.startswith(b"%PDF-"):
            raise _looks_like(data, kind, name)
        if not sniff_text(data, kind, name).strip() and len(data) <= SNIFF_BYTES:
            raise UnsupportedFile(f"{name} is empty: it contains only blank space")
    return kind


def check_content(data: bytes, kind: str, name: str) -> None:
    """The deep check of a sniffed file: a PDF opens, is not password-protected and has a page count
    within the limit; a DOCX's XML parts unpack to their declared sizes within the caps; a text file
    decodes whole, within the size limit, and is not blank."""
    if kind == "pdf":
        from chatstream.rag.pdf import open_pdf

        open_pdf(data, name)
    elif kind == "docx":
        unpacked_parts(data, name)
    elif kind in _TEXT_KINDS:
        if not decode_text(data, kind, name).strip():
            raise UnsupportedFile(f"{name} is empty: it contains only blank space")
    else:
        raise _unknown_kind(kind, name)


def detect_kind(data: bytes, filename: str) -> str:
    """sniff_kind then check_content: the kind of a file that passes both."""
    kind = sniff_kind(data, filename)
    check_content(data, kind, display_name(filename))
    return kind


def extract(data: bytes, kind: str, *, name: str = "the document") -> list[Block]:
    """The blocks of a file of the given kind in document order, within the caps of rag/blocks.py;
    never empty."""
    if kind == "pdf":
        from chatstream.rag.pdf import pdf_blocks

        blocks = pdf_blocks(data, name)
    elif kind == "docx":
        from chatstream.rag.docx import docx_blocks

        blocks = docx_blocks(data, name)
    elif kind in _TEXT_KINDS:
        from chatstream.rag.html import html_blocks
        from chatstream.rag.markdown import md_blocks, txt_blocks

        parse = {"md": md_blocks, "txt": txt_blocks, "html": html_blocks}[kind]
        blocks = parse(decode_text(data, kind, name))
    else:
        raise _unknown_kind(kind, name)
    blocks = bounded_blocks(blocks, name)
    if not any(b.kind != "heading" for b in blocks):
        raise UnsupportedFile(f"{name} contains no text to index")
    return blocks


def _looks_like(data: bytes, kind: str, name: str) -> UnsupportedFile:
    return UnsupportedFile(f"{name} is not {LABELS[kind]}: its content looks like {describe(data)}")


def _unknown_kind(kind: str, name: str) -> UnsupportedFile:
    return UnsupportedFile(f"{name}: {kind!r} is not a supported kind of document")
