"""Writes the hostile-input corpus (the files beside this script) and manifest.json describing them.

Run `.venv/bin/python tests/data/hostile/make_corpus.py` from the repository root; the output is the
same on every run (no clocks, no randomness), so the committed files only change with this script.
ZIP and PDF files are written byte by byte here, not with zipfile or a PDF library, so that their
declared sizes, checksums, methods and cross-references can be whatever a hostile file would say.

Each manifest entry: `file`, `what` it is, the `outcome` ("ready" or "failed") and, for a failure,
the `stage` that refuses it ("sniff": sniff_kind at upload, "check": check_content at upload,
"parse": parse_document when indexing) and a phrase the `error` message contains.
"""

from __future__ import annotations

import bz2
import json
import lzma
import struct
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
MiB = 1024 * 1024
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14

WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "the",
    "lazy",
    "dog",
    "while",
    "servers",
    "index",
    "documents",
    "for",
    "questions",
]


def prose(chars: int) -> str:
    """Deterministic words with full stops, about `chars` characters, on one line."""
    out: list[str] = []
    size, i = 0, 0
    while size < chars:
        word = WORDS[(i * 7 + i // 13) % len(WORDS)] + ("." if i % 11 == 10 else "")
        out.append(word)
        size += len(word) + 1
        i += 1
    return " ".join(out)[:chars]


# --- ZIP ------------------------------------------------------------------------------------------------


@dataclass
class Member:
    name: str
    packed: bytes  # the data as stored in the archive
    method: int
    crc: int
    size: int  # the unpacked size the archive declares
    flags: int = 0


def stored(name: str, content: bytes) -> Member:
    return Member(name, content, STORED, zlib.crc32(content), len(content))


def deflated(name: str, content: bytes) -> Member:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return Member(
        name, packer.compress(content) + packer.flush(), DEFLATED, zlib.crc32(content), len(content)
    )


def packed_stream(method: int, head: bytes, filler: bytes, total: int) -> tuple[bytes, int]:
    """`head` then `filler` repeated up to `total` bytes, compressed by `method` a piece at a time
    (never all in memory); (packed data, CRC of all of it)."""
    if method == DEFLATED:
        packer: zlib._Compress | bz2.BZ2Compressor | lzma.LZMACompressor = zlib.compressobj(
            9, zlib.DEFLATED, -15
        )
        prefix = b""
    elif method == BZIP2:
        packer = bz2.BZ2Compressor(9)
        prefix = b""
    else:
        filters = [{"id": lzma.FILTER_LZMA1, "preset": 6}]
        packer = lzma.LZMACompressor(lzma.FORMAT_RAW, filters=filters)
        properties = lzma._encode_filter_properties(filters[0])  # type: ignore[attr-defined]
        prefix = struct.pack("<BBH", 9, 4, len(properties)) + properties  # ZIP's LZMA header
    parts = [prefix, packer.compress(head)]
    crc = zlib.crc32(head)
    left = total - len(head)
    while left > 0:
        piece = filler * max(1, min(left, 16 * MiB) // len(filler))
        piece = piece[:left]
        parts.append(packer.compress(piece))
        crc = zlib.crc32(piece, crc)
        left -= len(piece)
    parts.append(packer.flush())
    return b"".join(parts), crc


def zip_bytes(members: list[Member], *, directory: list[tuple[Member, int]] | None = None) -> bytes:
    """An archive of `members`; `directory` lists (member, local header offset) entries instead of
    one per member (several entries may share a member's data, as in overlapping-file bombs)."""
    out = bytearray()
    offsets: list[tuple[Member, int]] = []
    for member in members:
        offsets.append((member, len(out)))
        name = member.name.encode()
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", 20, member.flags, member.method, 0, 0x21,
            member.crc, len(member.packed), member.size, len(name), 0,
        )  # fmt: skip
        out += name + member.packed
    start = len(out)
    entries = directory if directory is not None else offsets
    for member, offset in entries:
        name = member.name.encode()
        out += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", 20, 20, member.flags, member.method, 0, 0x21,
            member.crc, len(member.packed), member.size, len(name), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        out += name
    out += struct.pack(
        "<4s4H2LH", b"PK\x05\x06", 0, 0, len(entries), len(entries), len(out) - start, start, 0
    )
    return bytes(out)


W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    b'<Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument'
    b'.wordprocessingml.document.main+xml"/>'
    b'<Override PartName="/word/styles.xml" ContentType="application/vnd.openxmlformats-officedocument'
    b'.wordprocessingml.styles+xml"/></Types>'
)
PACKAGE_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'officeDocument" Target="word/document.xml"/></Relationships>'
)
DOCUMENT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/'
    b'styles" Target="styles.xml"/></Relationships>'
)


def paragraph(text: str, style: str | None = None) -> str:
    properties = f'<w:pPr><w:pStyle w:val="{style}"/></w:pPr>' if style else ""
    return f"<w:p>{properties}<w:r><w:t>{text}</w:t></w:r></w:p>"


XML_DECLARATION = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def document_xml(body: str, prolog: str = "") -> bytes:
    return f"{XML_DECLARATION}{prolog}<w:document {W}><w:body>{body}</w:body></w:document>".encode()


def styles_xml(styles: Iterable[tuple[str, str]]) -> bytes:
    entries = "".join(
        f'<w:style w:type="paragraph" w:styleId="{sid}"><w:name w:val="{name}"/></w:style>'
        for sid, name in styles
    )
    return f"{XML_DECLARATION}<w:styles {W}>{entries}</w:styles>".encode()


BASE_STYLES = [("Normal", "Normal"), ("Heading1", "heading 1"), ("Title", "Title")]
INTRO = paragraph("Hostile files", "Heading1") + paragraph("This document has a little text to index.")


def docx_parts(document: bytes | Member, styles: bytes | None = None) -> list[Member]:
    main = document if isinstance(document, Member) else deflated("word/document.xml", document)
    return [
        deflated("[Content_Types].xml", CONTENT_TYPES),
        deflated("_rels/.rels", PACKAGE_RELS),
        main,
        deflated("word/_rels/document.xml.rels", DOCUMENT_RELS),
        deflated("word/styles.xml", styles if styles is not None else styles_xml(BASE_STYLES)),
    ]


def plain_docx() -> bytes:
    return zip_bytes(docx_parts(document_xml(INTRO)))


def bomb_main(method: int, total: int, *, honest: bool) -> Member:
    """word/document.xml as a bomb: a valid small document, then spaces (legal after the root
    element) up to `total` bytes. A lying one declares only the document's size and its CRC, as a
    bomb that wants to pass a size check and still read as a document does."""
    head = document_xml(INTRO)
    packed, crc = packed_stream(method, head, b" ", total)
    if honest:
        return Member("word/document.xml", packed, method, crc, total)
    return Member("word/document.xml", packed, method, zlib.crc32(head), len(head))


def docx_files() -> dict[str, Callable[[], bytes]]:
    def stored_lying() -> bytes:
        content = document_xml(INTRO + paragraph(prose(20_000)))
        head = document_xml(INTRO)
        member = Member("word/document.xml", content, STORED, zlib.crc32(head), len(head))
        return zip_bytes(docx_parts(member))

    def bad_crc() -> bytes:
        member = deflated("word/document.xml", document_xml(INTRO))
        member.crc ^= 0xFFFF
        return zip_bytes(docx_parts(member))

    def encrypted() -> bytes:
        member = deflated("word/document.xml", document_xml(INTRO))
        member.flags |= 1
        return zip_bytes(docx_parts(member))

    def many_parts() -> bytes:
        extra = [stored(f"x/{i}.xml", b"<x/>") for i in range(2000)]
        return zip_bytes(docx_parts(document_xml(INTRO)) + extra)

    def too_many_parts() -> bytes:
        members = [*docx_parts(document_xml(INTRO)), stored("x", b"")]
        offsets = _local_offsets(zip_bytes(members))
        directory = [(m, offsets[m.name]) for m in members]
        # 10,001 more entries, all sharing the empty member's data: a long directory, a small file.
        directory += [(Member(_short_name(i), b"", STORED, 0, 0), offsets["x"]) for i in range(10_001)]
        return zip_bytes(members, directory=directory)

    def overlapping() -> bytes:
        kernel_packed, kernel_crc = packed_stream(DEFLATED, b"", b"a", 10 * MiB)
        kernel = Member("word/k.xml", kernel_packed, DEFLATED, kernel_crc, 10 * MiB)
        members = [*docx_parts(document_xml(INTRO)), kernel]
        archive = zip_bytes(members)
        offsets = _local_offsets(archive)
        directory = [(m, offsets[m.name]) for m in members]
        directory += [
            (Member(f"word/k{i}.xml", kernel_packed, DEFLATED, kernel_crc, 10 * MiB), offsets["word/k.xml"])
            for i in range(200)
        ]
        return zip_bytes(members, directory=directory)

    def nested_zip() -> bytes:
        return zip_bytes([stored("inner.docx", plain_docx())])

    def embedded_bomb() -> bytes:
        packed, crc = packed_stream(DEFLATED, b"", b"\0", 20 * MiB)
        bomb = zip_bytes([Member("bomb.bin", packed, DEFLATED, crc, 20 * MiB)])
        return zip_bytes([*docx_parts(document_xml(INTRO)), stored("word/embeddings/bomb.zip", bomb)])

    def billion_laughs() -> bytes:
        entities = '<!ENTITY lol "lol">' + "".join(
            f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
        )
        prolog = f"<!DOCTYPE w:document [{entities}]>"
        return zip_bytes(docx_parts(document_xml(INTRO + paragraph("&lol9;"), prolog)))

    def deep_nesting() -> bytes:
        return zip_bytes(docx_parts(document_xml(INTRO + "<w:p>" * 100_000 + "</w:p>" * 100_000)))

    def huge_text_node() -> bytes:
        return zip_bytes(docx_parts(document_xml(INTRO + paragraph("a" * (11 * MiB)))))

    def grid_span() -> bytes:
        wide = f'<w:tc><w:tcPr><w:gridSpan w:val="2147483647"/></w:tcPr>{paragraph("wide")}</w:tc>'
        table = f"<w:tbl><w:tr>{wide}<w:tc>{paragraph('next')}</w:tc></w:tr></w:tbl>"
        return zip_bytes(docx_parts(document_xml(INTRO + table)))

    def vertical_merge() -> bytes:
        merged = f'<w:tc><w:tcPr><w:vMerge w:val="restart"/></w:tcPr>{paragraph("merged")}</w:tc>'
        rows = [f"<w:tr>{merged}<w:tc>{paragraph('row 0')}</w:tc></w:tr>"]
        continued = "<w:tc><w:tcPr><w:vMerge/></w:tcPr><w:p/></w:tc>"
        rows += [f"<w:tr>{continued}<w:tc>{paragraph(f'row {i}')}</w:tc></w:tr>" for i in range(1, 3000)]
        return zip_bytes(docx_parts(document_xml(INTRO + "<w:tbl>" + "".join(rows) + "</w:tbl>")))

    def many_styles() -> bytes:
        styles = BASE_STYLES + [(f"S{i}", f"Style {i}") for i in range(5_000)]
        body = INTRO + "".join(paragraph(f"Paragraph {i}.", "S4999") for i in range(5_000))
        return zip_bytes(docx_parts(document_xml(body), styles_xml(styles)))

    def truncated() -> bytes:
        whole = zip_bytes(docx_parts(document_xml(INTRO + paragraph(prose(5000)))))
        return whole[: len(whole) // 2]

    return {
        "docx_deflate_bomb_lying.docx": lambda: zip_bytes(
            docx_parts(bomb_main(DEFLATED, 100 * MiB, honest=False))
        ),
        "docx_deflate_bomb_declared.docx": lambda: zip_bytes(
            docx_parts(bomb_main(DEFLATED, 64 * MiB, honest=True))
        ),
        "docx_bzip2_bomb.docx": lambda: zip_bytes(docx_parts(bomb_main(BZIP2, 2048 * MiB, honest=False))),
        "docx_lzma_bomb.docx": lambda: zip_bytes(docx_parts(bomb_main(LZMA, 128 * MiB, honest=False))),
        "docx_stored_lying_size.docx": stored_lying,
        "docx_bad_crc.docx": bad_crc,
        "docx_encrypted_part.docx": encrypted,
        "docx_many_parts.docx": many_parts,
        "docx_too_many_parts.docx": too_many_parts,
        "docx_overlapping_bomb.docx": overlapping,
        "docx_nested_zip.docx": nested_zip,
        "docx_embedded_zip_bomb.docx": embedded_bomb,
        "docx_billion_laughs.docx": billion_laughs,
        "docx_deep_nesting.docx": deep_nesting,
        "docx_huge_text_node.docx": huge_text_node,
        "docx_grid_span.docx": grid_span,
        "docx_vertical_merge.docx": vertical_merge,
        "docx_many_styles.docx": many_styles,
        "docx_truncated.docx": truncated,
    }


def _local_offsets(archive: bytes) -> dict[str, int]:
    """Each member's local header offset, read back from the archive's own directory."""
    end = archive.rindex(b"PK\x05\x06")
    count, _, start = struct.unpack_from("<H2L", archive, end + 10)
    offsets: dict[str, int] = {}
    position = start
    for _ in range(count):
        name_length, extra_length, comment_length = struct.unpack_from("<3H", archive, position + 28)
        (offset,) = struct.unpack_from("<L", archive, position + 42)
        offsets[archive[position + 46 : position + 46 + name_length].decode()] = offset
        position += 46 + name_length + extra_length + comment_length
    return offsets


def _short_name(i: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    return digits[i // 1296 % 36] + digits[i // 36 % 36] + digits[i % 36]


# --- PDF ------------------------------------------------------------------------------------------------


def pdf_bytes(objects: list[bytes], *, size: int | None = None) -> bytes:
    """A PDF of numbered `objects` (the first is the catalog) with a correct cross-reference table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (size or len(objects) + 1, xref)
    return bytes(out)


def content_stream(content: bytes, *, deflate: bool = False) -> bytes:
    if deflate:
        content = zlib.compress(content, 9)
        return b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(content), content)
    return b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)


def text_operators(text: str) -> bytes:
    return b"BT /F1 11 Tf 72 720 Td (%s) Tj ET" % text.encode("latin-1")


FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def pdf_pages(contents: list[bytes], *, page_extra: bytes = b"", count: int | None = None) -> bytes:
    """One page per content stream (objects: catalog, pages, font, then page and stream pairs)."""
    kids = b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(contents)))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, count if count is not None else len(contents)),
        FONT,
    ]
    for i, content in enumerate(contents):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents %d 0 R"
            b" /Resources << /Font << /F1 3 0 R >> >> %s>>" % (5 + 2 * i, page_extra)
        )
        objects.append(content)
    return pdf_bytes(objects)


def pdf_files() -> dict[str, Callable[[], bytes]]:
    page_one = content_stream(text_operators("The first page has text to index."))
    page_two = content_stream(text_operators("The second page has more text."))

    def truncated() -> bytes:
        whole = pdf_pages([page_one, page_two])
        return whole[: int(len(whole) * 0.6)]

    def garbage_xref() -> bytes:
        whole = pdf_pages([page_one, page_two])
        xref = whole.rindex(b"xref\n")
        return (
            whole[:xref]
            + b"xref\n0 9\nthis is not a cross-reference table\x00\xff\n"
            + whole[whole.index(b"trailer") :]
        )

    def self_reference() -> bytes:
        return pdf_bytes(
            [
                b"<< /Type /Catalog /Pages 2 0 R >>",
                b"<< /Type /Pages /Kids [4 0 R 2 0 R] /Count 2 >>",  # the page tree holds itself
                FONT,
                b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 5 0 R"
                b" /Resources << /Font << /F1 3 0 R >> /XObject 6 0 R >> >>",
                page_one,
                b"6 0 R",  # an object that is a reference to itself
            ]
        )

    def nested(opening: bytes, closing: bytes) -> Callable[[], bytes]:
        return lambda: pdf_pages([page_one], page_extra=b"/Deep " + opening * 3_000 + closing * 3_000 + b" ")

    def flate_bomb() -> bytes:
        bomb = zlib.compress(b" " * (100 * MiB), 9)
        stream = b"<< /Length %d /Filter /FlateDecode >>\nstream\n%s\nendstream" % (len(bomb), bomb)
        return pdf_pages([page_one, stream])

    def spaces() -> bytes:
        content = b"BT /F1 11 Tf 72 720 Td (Spaces follow:" + b" " * 100_000 + b"and end here.) Tj ET"
        return pdf_pages([content_stream(content, deflate=True)])

    return {
        "pdf_truncated.pdf": truncated,
        "pdf_garbage_xref.pdf": garbage_xref,
        "pdf_self_reference.pdf": self_reference,
        "pdf_huge_page_count.pdf": lambda: pdf_pages([page_one], count=2_147_483_647),
        "pdf_nested_arrays.pdf": nested(b"[", b"]"),
        "pdf_nested_dictionaries.pdf": nested(b"<< /A ", b">> "),
        "pdf_flate_bomb_page.pdf": flate_bomb,
        "pdf_long_run_of_spaces.pdf": spaces,
        "pdf_header_then_garbage.pdf": lambda: b"%PDF-1.7\n" + bytes(range(256)) * 64,
    }


# --- text, Markdown, HTML ---------------------------------------------------------------------------------


def text_files() -> dict[str, Callable[[], bytes]]:
    closers = "\"'\u201d\u2019\u300d\u300f\uff09)]"
    return {
        "dots.md": lambda: b"Intro line.\n\n" + b"." * 48_000,
        "dots.txt": lambda: b"." * 48_000,
        "bang_question.txt": lambda: b"!?" * 24_000,
        "cjk_end_marks.md": lambda: (
            "\u6bb5\u843d\u3002" + "\u3002\uff01\uff1f\uff1b\u2026" * 3_000
        ).encode(),
        "closing_quotes.txt": lambda: ("." + closers * 2_000 + "x").encode(),
        "megabyte_line_of_spaces.txt": lambda: b"start " + b" " * MiB + b" end",
        "tabs.md": lambda: b"Tabbed\t" * 2_000 + b"\t" * 20_000 + b"words",
        "mixed_whitespace.txt": lambda: b"words\n \t" * 3_000 + b"\n\t \n \r\n" * 3_000 + b"last words",
        "carriage_returns_only.txt": lambda: b"line one\rline two\r" * 500 + b"\r" * 20_000 + b"end",
        "blank_whitespace.md": lambda: b" \n\t\r\n\xe3\x80\x80" * 9_000,
        "megabyte_line.md": lambda: prose(MiB).encode(),
        "long_word.txt": lambda: b"a" * 30_000,
        "nul_bytes.txt": lambda: b"text\x00with\x00NUL bytes" * 100,
        "nul_late.md": lambda: prose(66_000).encode() + b"\x00",
        "utf16_with_bom.txt": lambda: ("\u6807\u9898\n\n\u6b63\u6587\u3002Text.\n" * 200).encode("utf-16"),
        "latin1.txt": lambda: ("caf\u00e9 na\u00efve " * 100).encode("latin-1"),
        "front_matter_unclosed.md": lambda: b"---\ntitle: never closed\n" + prose(20_000).encode(),
        "md_brackets.md": lambda: b"Intro.\n\n" + b"[" * 40_000,
        "md_emphasis.md": lambda: b"Intro.\n\n" + b"*_" * 20_000,
        "md_nested_quotes.md": lambda: b">" * 20_000 + b" quoted words",
        "md_nested_lists.md": lambda: b"- " * 10_000 + b"item",
        "md_wide_table.md": lambda: (
            b"|h" * 1_000 + b"|\n" + b"|-" * 1_000 + b"|\n" + (b"|c" * 1_000 + b"|\n") * 20
        ),
        "md_link_references.md": lambda: (
            b"# [Title][r1]\n\nText.\n\n" + b"".join(b"[r%d]: /u%d\n" % (i, i) for i in range(2_000))
        ),
        "md_unclosed_html_comment.md": lambda: b"Intro paragraph.\n\n<!--\n" + b"hidden line\n\n" * 1_500,
    }


def html_files() -> dict[str, Callable[[], bytes]]:
    intro = b"<!DOCTYPE html><html><body><p>Intro text of a hostile page.</p>"
    return {
        "html_nested_divs.html": lambda: intro + b"<div>" * 100_000 + b"deep text",
        "html_nested_svgs.html": lambda: (
            intro + b"<svg>" * 4_000 + b"hidden" + b"</svg>" * 4_000 + b"<p>After.</p>"
        ),
        "html_unclosed_comment.html": lambda: intro + b"<!--" + prose(20_000).encode(),
        "html_many_comment_openers.html": lambda: intro + b"<!--" * 10_000,
        "html_unclosed_cdata.html": lambda: intro + b"<![CDATA[" + prose(20_000).encode(),
        "html_marked_sections.html": lambda: intro + b"<![ a" * 8_000,
        "html_unclosed_tags.html": lambda: intro + b"<a" * 20_000,
        "html_unclosed_end_tags.html": lambda: intro + b"</" * 20_000,
        "html_unclosed_processing.html": lambda: intro + b"<?" * 20_000,
        "html_unterminated_attributes.html": lambda: intro + b"<a href='x" * 4_000,
        "html_quoted_attribute_chain.html": lambda: intro + b"<a" + b" x='><a'" * 5_000,
        "html_unclosed_textarea.html": lambda: intro + b"<textarea>" + b"a<" * 20_000,
        "html_unclosed_script.html": lambda: intro + b"<script>" + b"if (a</b) {" * 2_000,
        "html_entities.html": lambda: intro + (b"&" + b"a" * 31 + b" &#") * 1_000,
        "html_megabyte_line.html": lambda: b"<html><body><p>" + prose(MiB).encode() + b"</p></body></html>",
        "html_gb2312.html": lambda: (
            '<html><head><meta charset="gb2312"></head>'
            "<body><p>\u6570\u636e\u5e93\u7d22\u5f15\u3002</p></body></html>"
        ).encode("gbk"),
        "html_gbk_after_ascii_head.html": lambda: (
            b'<html><head><meta charset="gbk"><style>'
            + b"p { color: red }\n" * 4_000
            + "</style></head><body><p>\u4e2d\u6587\u6bb5\u843d\u3002</p></body></html>".encode("gbk")
        ),
        "html_zlib_charset.html": lambda: (
            b'<html><head><meta charset="zlib"></head><body>'
            + zlib.compress(b"<p>inflated</p>" * 10_000)
            + b"</body></html>"
        ),
    }


# file: (what it is, outcome, stage that refuses it, a phrase of the error)
EXPECTED: dict[str, tuple[str, str, str | None, str | None]] = {
    "docx_deflate_bomb_lying.docx": (
        "word/document.xml deflated from 100 MiB, declaring the 332 bytes (and CRC) of the valid "
        "document it starts with",
        "failed",
        "check",
        "does not unpack to the 332 bytes it declares",
    ),
    "docx_deflate_bomb_declared.docx": (
        "word/document.xml of 64 MiB, declared honestly",
        "failed",
        "sniff",
        "too large once unpacked",
    ),
    "docx_bzip2_bomb.docx": (
        "word/document.xml bzip2 from 2 GiB, declaring 332 bytes",
        "failed",
        "sniff",
        "bzip2 compression",
    ),
    "docx_lzma_bomb.docx": (
        "word/document.xml LZMA from 128 MiB, declaring 332 bytes",
        "failed",
        "sniff",
        "LZMA compression",
    ),
    "docx_stored_lying_size.docx": (
        "word/document.xml stored, 20 KB of data declaring 332 bytes",
        "failed",
        "check",
        "does not unpack to the 332 bytes",
    ),
    "docx_bad_crc.docx": ("word/document.xml with a wrong CRC-32", "failed", "check", "fails its checksum"),
    "docx_encrypted_part.docx": (
        "word/document.xml flagged as ZIP-encrypted",
        "failed",
        "sniff",
        "password-protected",
    ),
    "docx_many_parts.docx": ("a valid document plus 2,000 small XML parts", "ready", None, None),
    "docx_too_many_parts.docx": (
        "10,006 directory entries (10,001 sharing one empty member)",
        "failed",
        "sniff",
        "too many parts",
    ),
    "docx_overlapping_bomb.docx": (
        "200 entries sharing one 10 MiB deflated member (overlapping-file bomb)",
        "failed",
        "sniff",
        "too large once unpacked",
    ),
    "docx_nested_zip.docx": ("a ZIP holding only another .docx", "failed", "sniff", "not a Word document"),
    "docx_embedded_zip_bomb.docx": (
        "a valid document with a zip bomb as an embedded file (never unpacked)",
        "ready",
        None,
        None,
    ),
    "docx_billion_laughs.docx": (
        "word/document.xml with nested entity definitions (billion laughs)",
        "failed",
        "parse",
        "damaged",
    ),
    "docx_deep_nesting.docx": (
        "word/document.xml nested 100,000 elements deep",
        "failed",
        "parse",
        "damaged",
    ),
    "docx_huge_text_node.docx": ("word/document.xml with an 11 MiB text node", "failed", "parse", "damaged"),
    "docx_grid_span.docx": ("a table cell spanning 2,147,483,647 grid columns", "ready", None, None),
    "docx_vertical_merge.docx": (
        "a table of 3,000 rows merged vertically in its first column",
        "ready",
        None,
        None,
    ),
    "docx_many_styles.docx": ("5,000 styles and 5,000 paragraphs using the last one", "ready", None, None),
    "docx_truncated.docx": ("the first half of a .docx", "failed", "sniff", "damaged"),
    "pdf_truncated.pdf": ("the first 60 % of a two-page PDF", "failed", "check", "damaged"),
    "pdf_garbage_xref.pdf": (
        "a PDF whose cross-reference table is garbage (pypdf rebuilds it)",
        "ready",
        None,
        None,
    ),
    "pdf_self_reference.pdf": (
        "a page tree that lists itself, an object that is a reference to itself",
        "failed",
        "check",
        "damaged",
    ),
    "pdf_huge_page_count.pdf": ("one page, a page tree declaring 2,147,483,647", "ready", None, None),
    "pdf_nested_arrays.pdf": (
        "a page dictionary holding arrays nested 3,000 deep",
        "failed",
        "check",
        "damaged",
    ),
    "pdf_nested_dictionaries.pdf": (
        "a page dictionary holding dictionaries nested 3,000 deep",
        "ready",
        None,
        None,
    ),
    "pdf_flate_bomb_page.pdf": (
        "a text page, then a page whose content inflates to 100 MiB",
        "ready",
        None,
        None,
    ),
    "pdf_long_run_of_spaces.pdf": ("a page whose text has a run of 100,000 spaces", "ready", None, None),
    "pdf_header_then_garbage.pdf": ("%PDF- then binary garbage", "failed", "check", "damaged"),
    "dots.md": ("a line of text, then 48,000 dots", "ready", None, None),
    "dots.txt": ("48,000 dots", "ready", None, None),
    "bang_question.txt": ("24,000 repetitions of !?", "ready", None, None),
    "cjk_end_marks.md": ("runs of Chinese end marks", "ready", None, None),
    "closing_quotes.txt": ("a full stop then 18,000 closing quotes and brackets", "ready", None, None),
    "megabyte_line_of_spaces.txt": (
        "a megabyte of spaces on one line, a word at each end",
        "ready",
        None,
        None,
    ),
    "tabs.md": ("words and 20,000 tabs on one line", "ready", None, None),
    "mixed_whitespace.txt": ("words, then newlines, spaces, tabs and CRLFs mixed", "ready", None, None),
    "carriage_returns_only.txt": ("lines ended by a bare \\r only, then 20,000 of them", "ready", None, None),
    "blank_whitespace.md": (
        "72 KB of spaces, tabs, line breaks and ideographic spaces",
        "failed",
        "check",
        "only blank space",
    ),
    "megabyte_line.md": ("a megabyte of prose on one line", "ready", None, None),
    "long_word.txt": ("one word of 30,000 letters", "ready", None, None),
    "nul_bytes.txt": ("text with NUL bytes at its start", "failed", "sniff", "binary data"),
    "nul_late.md": ("66 KB of text, then a NUL byte", "failed", "check", "NUL bytes"),
    "utf16_with_bom.txt": ("UTF-16 with a byte-order mark", "ready", None, None),
    "latin1.txt": ("Latin-1 text", "failed", "sniff", "not UTF-8"),
    "front_matter_unclosed.md": ("YAML front matter that is never closed", "ready", None, None),
    "md_brackets.md": ("40,000 [ in a paragraph", "ready", None, None),
    "md_emphasis.md": ("20,000 *_ pairs in a paragraph", "ready", None, None),
    "md_nested_quotes.md": ("a quote nested 20,000 deep", "ready", None, None),
    "md_nested_lists.md": ("a list nested 10,000 deep", "ready", None, None),
    "md_wide_table.md": ("a table of 1,000 columns and 20 rows", "ready", None, None),
    "md_link_references.md": (
        "2,000 link reference definitions after a heading that uses one",
        "ready",
        None,
        None,
    ),
    "md_unclosed_html_comment.md": ("a paragraph, then an HTML comment never closed", "ready", None, None),
    "html_nested_divs.html": ("100,000 nested <div>", "ready", None, None),
    "html_nested_svgs.html": ("4,000 nested <svg>, closed", "ready", None, None),
    "html_unclosed_comment.html": ("a paragraph, then <!-- never closed", "ready", None, None),
    "html_many_comment_openers.html": ("10,000 <!-- and no -->", "ready", None, None),
    "html_unclosed_cdata.html": ("<![CDATA[ never closed", "ready", None, None),
    "html_marked_sections.html": (
        "8,000 unknown marked sections <![ a (html.parser raised on them)",
        "ready",
        None,
        None,
    ),
    "html_unclosed_tags.html": ("20,000 <a and no >", "ready", None, None),
    "html_unclosed_end_tags.html": ("20,000 </ and no >", "ready", None, None),
    "html_unclosed_processing.html": ("20,000 <? and no >", "ready", None, None),
    "html_unterminated_attributes.html": ("4,000 <a href='x with no closing quote or >", "ready", None, None),
    "html_quoted_attribute_chain.html": (
        "a tag whose quoted attributes each hold >< a, never ended",
        "ready",
        None,
        None,
    ),
    "html_unclosed_textarea.html": ("<textarea> then 20,000 a<", "ready", None, None),
    "html_unclosed_script.html": ("<script> never closed", "ready", None, None),
    "html_entities.html": ("1,000 & followed by 31 letters, and &#", "ready", None, None),
    "html_megabyte_line.html": ("a megabyte paragraph on one line", "ready", None, None),
    "html_gb2312.html": ("GBK bytes in a page declaring gb2312", "ready", None, None),
    "html_gbk_after_ascii_head.html": (
        "a page declaring gbk whose first 64 KB are ASCII",
        "ready",
        None,
        None,
    ),
    "html_zlib_charset.html": (
        "a page declaring the charset zlib, then zlib data",
        "failed",
        "sniff",
        "binary data",
    ),
}


def manifest() -> list[dict[str, str]]:
    entries = []
    for name, (what, outcome, stage, error) in EXPECTED.items():
        entry = {"file": name, "what": what, "outcome": outcome}
        if outcome == "failed":
            entry |= {"stage": stage or "", "error": error or ""}
        entries.append(entry)
    return entries


def build() -> dict[str, bytes]:
    makers = {**docx_files(), **pdf_files(), **text_files(), **html_files()}
    if makers.keys() != EXPECTED.keys():
        raise SystemExit(f"files without expectations, or the reverse: {makers.keys() ^ EXPECTED.keys()}")
    return {name: make() for name, make in makers.items()}


def main() -> None:
    files = build()
    for name, data in files.items():
        (HERE / name).write_bytes(data)
    about = __doc__.split("\n\n")[-1].replace("\n", " ").strip()
    text = json.dumps({"about": about, "files": manifest()}, indent=1)
    (HERE / "manifest.json").write_text(text + "\n")
    print(f"{len(files)} files, {sum(map(len, files.values())):,} bytes")


if __name__ == "__main__":
    main()
