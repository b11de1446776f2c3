"""What kind a file is, and its text as blocks; every bad file is refused with a message for the user."""

from __future__ import annotations

import bz2
import io
import lzma
import random
import zipfile
import zlib
from pathlib import Path

import pypdf
import pytest

from chatstream.rag import kinds
from chatstream.rag import pdf as pdf_module
from chatstream.rag.extract import Block, UnsupportedFile, check_content, detect_kind, extract, sniff_kind
from chatstream.rag.kinds import SNIFF_BYTES
from tests.support.documents import make_docx, make_html, make_pdf

HOSTILE = Path(__file__).resolve().parent.parent / "data" / "hostile"

MARKDOWN = """\
---
title: front matter is not a heading
---
# Guide

Intro paragraph with **bold** text.

## Install

```bash
pip install thing

make   setup
```

| option | default |
|--------|---------|
| size   | 200     |

- first item
- second item

### Details
Setext is fine too
==================
"""


def refused(data: bytes, filename: str) -> str:
    with pytest.raises(UnsupportedFile) as caught:
        detect_kind(data, filename)
    return str(caught.value)


def refused_extract(data: bytes, kind: str) -> str:
    with pytest.raises(UnsupportedFile) as caught:
        extract(data, kind, name="doc")
    return str(caught.value)


def encrypted_pdf(user_password: str, owner_password: str) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(make_pdf(["Secret text."]))))
    writer.encrypt(user_password=user_password, owner_password=owner_password, algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def zip_of(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return out.getvalue()


# --- detect_kind ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filename", "data", "kind"),
    [
        ("notes.md", b"# Title\n\ntext", "md"),
        ("notes.markdown", b"text", "md"),
        ("notes.txt", b"plain", "txt"),
        ("NOTES.TEXT", b"plain", "txt"),
        ("page.html", b"<p>hi</p>", "html"),
        ("page.htm", b"<p>hi</p>", "html"),
        ("dir/sub/Report.PDF", make_pdf(["Hello"]), "pdf"),
        ("letter.docx", make_docx([("p", "Hello")]), "docx"),
        # Text is text: a .txt holding HTML or Markdown is still a text file.
        ("page.txt", b"<!DOCTYPE html><html><body><p>hi</p></body></html>", "txt"),
        ("readme.txt", b"# Heading\n\n- item", "txt"),
    ],
)
def test_kind_comes_from_the_extension_when_the_content_agrees(filename: str, data: bytes, kind: str) -> None:
    assert detect_kind(data, filename) == kind


def test_empty_files_are_refused() -> None:
    assert refused(b"", "notes.md") == "notes.md is empty"
    assert refused(b"", "paper.pdf") == "paper.pdf is empty"
    assert "notes.txt is empty" in refused(b" \n\t\r\n ", "notes.txt")


def test_unknown_or_missing_extension_is_refused_naming_what_is_supported() -> None:
    message = refused(b"PK\x03\x04junk", "sheet.xlsx")
    assert ".xlsx files are not supported" in message
    assert ".md, .txt, .pdf, .docx, .html" in message
    assert "no file extension" in refused(b"hello", "README")


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        (
            "paper.pdf",
            b"Just some plain words.\n",
            "paper.pdf is not a PDF: its content looks like plain text",
        ),
        (
            "paper.pdf",
            b"<!DOCTYPE html><html><body>x</body></html>",
            "is not a PDF: its content looks like HTML",
        ),
        ("paper.pdf", make_docx([("p", "x")]), "is not a PDF: its content looks like a Word document"),
        (
            "letter.docx",
            make_pdf(["x"]),
            "letter.docx is not a Word document (.docx): its content looks like a PDF",
        ),
        ("letter.docx", b"Dear Sir,\n", "is not a Word document (.docx): its content looks like plain text"),
        ("letter.docx", zip_of({"xl/workbook.xml": b"<x/>"}), "its content looks like an Excel workbook"),
        ("letter.docx", zip_of({"a.txt": b"a"}), "its content looks like a ZIP archive"),
        ("letter.docx", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600), "old-format or password-protected"),
        ("notes.txt", make_pdf(["x"]), "notes.txt is not a text file: its content looks like a PDF"),
        (
            "notes.md",
            b"\x89PNG\r\n\x1a\n" + bytes(100),
            "notes.md is not a Markdown file: its content looks like a PNG",
        ),
        (
            "page.html",
            make_docx([("p", "x")]),
            "page.html is not an HTML page: its content looks like a Word",
        ),
    ],
)
def test_content_that_is_not_what_the_extension_says_is_refused(
    filename: str, data: bytes, message: str
) -> None:
    assert message in refused(data, filename)


def test_binary_junk_is_refused() -> None:
    junk = random.Random(6).randbytes(4096)
    assert "notes.txt is not a text file: its content looks like binary data" in refused(junk, "notes.txt")
    assert "paper.pdf is not a PDF: its content looks like binary data" in refused(junk, "paper.pdf")


def test_text_in_another_encoding_is_refused_with_advice() -> None:
    message = refused("第一章 总则".encode("gbk"), "law.txt")
    assert message.startswith("law.txt is not UTF-8 text")
    assert "save it as UTF-8" in message


def test_utf8_bom_and_utf16_with_bom_are_text() -> None:
    assert detect_kind("\ufeff# 标题\n\n正文".encode(), "a.md") == "md"
    utf16 = "# 标题\r\n\r\n正文。".encode("utf-16")
    assert detect_kind(utf16, "a.md") == "md"
    assert extract(utf16, "md") == [Block("heading", "标题", 1), Block("text", "正文。")]


def test_html_may_declare_its_encoding() -> None:
    page = '<html><head><meta charset="gb2312"></head><body><p>数据库索引</p></body></html>'.encode("gbk")
    assert detect_kind(page, "page.html") == "html"
    assert extract(page, "html") == [Block("text", "数据库索引")]


def test_password_protected_pdf_is_refused_but_an_owner_password_alone_is_fine() -> None:
    assert "secret.pdf is password-protected" in refused(encrypted_pdf("user", "owner"), "secret.pdf")
    restricted = encrypted_pdf("", "owner")
    assert detect_kind(restricted, "restricted.pdf") == "pdf"
    assert extract(restricted, "pdf") == [Block("text", "Secret text.")]


def test_damaged_pdf_is_refused() -> None:
    assert "broken.pdf is damaged" in refused(b"%PDF-1.7\n" + b"garbage " * 200, "broken.pdf")


def test_pdf_with_too_many_pages_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pdf_module, "MAX_PDF_PAGES", 2)
    assert "long.pdf has 3 pages; at most 2 are supported" in refused(make_pdf(["a", "b", "c"]), "long.pdf")


def test_damaged_docx_is_refused() -> None:
    whole = make_docx([("p", "Hello there")])
    assert "letter.docx is damaged" in refused(whole[: len(whole) // 2], "letter.docx")


def test_docx_with_bad_xml_is_refused_by_extract() -> None:
    archive = io.BytesIO(make_docx([("p", "Hello")]))
    with zipfile.ZipFile(archive) as source:
        files = {info.filename: source.read(info) for info in source.infolist()}
    files["word/document.xml"] = b"<w:document><unclosed>"
    broken = zip_of(files)
    assert detect_kind(broken, "letter.docx") == "docx"
    assert refused_extract(broken, "docx") == "doc is damaged and cannot be read"


def test_docx_zip_bomb_is_refused_before_unpacking() -> None:
    bomb = zip_of({"[Content_Types].xml": b"<x/>", "word/document.xml": b" " * (51 * 1024 * 1024)})
    assert len(bomb) < 200_000
    assert "bomb.docx is too large once unpacked" in refused(bomb, "bomb.docx")
    assert "too large once unpacked" in refused_extract(bomb, "docx")


def test_corrupted_files_raise_only_unsupported_file() -> None:
    rng = random.Random(6)
    samples = {
        "a.pdf": make_pdf(["First page. " * 20, "Second page."]),
        "a.docx": make_docx([("h1", "Title"), ("p", "Body " * 50), ("table", "a|b\nc|d")]),
    }
    for filename, whole in samples.items():
        for _ in range(15):
            data = bytearray(whole)
            if rng.random() < 0.5:
                del data[rng.randrange(10, len(data)) :]
            else:
                for _ in range(20):
                    data[rng.randrange(len(data))] = rng.randrange(256)
            try:
                kind = detect_kind(bytes(data), filename)
                blocks = extract(bytes(data), kind)
            except UnsupportedFile as error:
                assert str(error)
            else:
                assert blocks


# --- sniff_kind (bounded, at upload) and check_content (deep) ----------------------------------------


def test_sniffing_text_decodes_a_bounded_prefix_and_checking_decodes_it_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    decoded: list[int] = []
    as_text = kinds._as_text
    monkeypatch.setattr(
        kinds,
        "_as_text",
        lambda data, charset, *, final: decoded.append(len(data)) or as_text(data, charset, final=final),
    )
    data = "\u00e9t\u00e9 text\n".encode() * 400_000 + b"\xff"  # 5 MB, undecodable at the very end
    assert sniff_kind(data, "big.txt") == "txt"
    assert max(decoded) <= SNIFF_BYTES
    with pytest.raises(UnsupportedFile, match=f"undecodable bytes at offset {len(data) - 1}"):
        check_content(data, "txt", "big.txt")


@pytest.mark.parametrize("shift", range(4))
def test_a_character_cut_by_the_end_of_the_prefix_is_not_an_error(shift: int) -> None:
    data = b"a" * (SNIFF_BYTES - shift) + "\u4e2d\U0001d11e".encode() * 100
    assert sniff_kind(data, "a.md") == "md"
    utf16 = ("a" * shift + "\U0001d11e" * 40_000).encode("utf-16")  # 4-byte surrogate pairs
    assert sniff_kind(utf16, "b.md") == "md"


def test_sniffing_a_docx_reads_its_directory_and_decompresses_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("sniffing decompressed something")

    bomb = (HOSTILE / "docx_deflate_bomb_lying.docx").read_bytes()
    letter = make_docx([("p", "Hello")])
    refused_ones = ["docx_bzip2_bomb.docx", "docx_too_many_parts.docx", "docx_overlapping_bomb.docx"]
    for module, name in (
        (zlib, "decompressobj"),
        (zlib, "decompress"),
        (bz2, "BZ2Decompressor"),
        (lzma, "LZMADecompressor"),
    ):
        monkeypatch.setattr(module, name, refuse)
    assert sniff_kind(bomb, "bomb.docx") == "docx"  # its directory lies: only unpacking tells
    assert sniff_kind(letter, "letter.docx") == "docx"
    for name in refused_ones:
        with pytest.raises(UnsupportedFile):
            sniff_kind((HOSTILE / name).read_bytes(), name)
    monkeypatch.undo()
    with pytest.raises(UnsupportedFile, match=r"does not unpack to the 332 bytes it declares"):
        check_content(bomb, "docx", "bomb.docx")


def test_blank_text_is_refused_by_sniffing_when_short_else_by_checking() -> None:
    assert "a.md is empty: it contains only blank space" in refused(b" \n" * 100, "a.md")
    blank = b" \n\t" * SNIFF_BYTES
    assert sniff_kind(blank, "a.md") == "md"
    with pytest.raises(UnsupportedFile, match=r"a.md is empty: it contains only blank space"):
        check_content(blank, "md", "a.md")


def test_a_nul_past_the_first_bytes_is_named() -> None:
    data = b"text\n" * 20_000 + b"\x00"
    assert sniff_kind(data, "a.txt") == "txt"
    with pytest.raises(UnsupportedFile, match=r"a.txt is not a text file: it contains NUL bytes"):
        check_content(data, "txt", "a.txt")


def test_a_page_declaring_gbk_after_a_long_ascii_head_is_read() -> None:
    page = (HOSTILE / "html_gbk_after_ascii_head.html").read_bytes()
    assert detect_kind(page, "page.html") == "html"
    assert extract(page, "html") == [Block("text", "\u4e2d\u6587\u6bb5\u843d\u3002")]


@pytest.mark.parametrize("charset", ["zlib", "bz2", "punycode", "rot13", "unicode_escape", "nonsense"])
def test_only_the_webs_encodings_are_used_for_a_declared_charset(charset: str) -> None:
    page = f'<html><meta charset="{charset}"><p>caf'.encode() + b"\xe9</p>"
    assert "is not UTF-8 text" in refused(page, "page.html")


def test_text_beyond_the_limit_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kinds, "MAX_TEXT_CHARS", 1000)
    assert detect_kind(b"x" * 1000, "a.txt") == "txt"
    with pytest.raises(UnsupportedFile, match=r"a.txt has more than .* million characters of text; split it"):
        check_content(b"x" * 1001, "txt", "a.txt")


# --- extract -------------------------------------------------------------------------------------------


def test_markdown_blocks_keep_heading_levels_and_code_and_tables_verbatim() -> None:
    blocks = extract(MARKDOWN.encode(), "md")
    assert blocks == [
        Block("heading", "Guide", 1),
        Block("text", "Intro paragraph with **bold** text."),
        Block("heading", "Install", 2),
        Block("code", "```bash\npip install thing\n\nmake   setup\n```"),
        Block("table", "| option | default |\n|--------|---------|\n| size   | 200     |"),
        Block("text", "- first item\n- second item"),
        Block("heading", "Details", 3),
        Block("heading", "Setext is fine too", 1),
    ]


def test_markdown_heading_text_is_plain_and_raw_html_is_read() -> None:
    source = "## The `chunk()` *function*\n\n<div><h3>From HTML</h3><script>x()</script><p>kept</p></div>\n"
    assert extract(source.encode(), "md") == [
        Block("heading", "The chunk() function", 2),
        Block("heading", "From HTML", 3),
        Block("text", "kept"),
    ]


def test_text_is_split_into_paragraphs_on_blank_lines() -> None:
    assert extract(b"First line\r\nsame paragraph\r\n\r\n  \r\nSecond.\n", "txt") == [
        Block("text", "First line\nsame paragraph"),
        Block("text", "Second."),
    ]


def test_html_keeps_structure_and_drops_scripts_styles_and_navigation() -> None:
    page = make_html(
        [
            ("raw", "<nav><a href='/'>Home</a> <a href='/x'>Menu entry</a></nav>"),
            ("raw", "<style>p { color: red }</style><script>alert('no')</script>"),
            ("h1", "Manual"),
            ("p", "Fish & chips < 5 EUR."),
            ("raw", "<div>Line one<br>Line   two\n   wrapped</div>"),
            ("h2", "Setup"),
            ("pre", "def f():\n    return 1"),
            ("table", "key|value\nsize|200"),
            ("li", "alpha\nbeta"),
        ]
    )
    assert extract(page, "html") == [
        Block("heading", "Manual", 1),
        Block("text", "Fish & chips < 5 EUR."),
        Block("text", "Line one\nLine two wrapped"),
        Block("heading", "Setup", 2),
        Block("code", "def f():\n    return 1"),
        Block("table", "| key | value |\n| --- | --- |\n| size | 200 |"),
        Block("text", "- alpha\n- beta"),
    ]


def test_html_cells_are_flattened_and_pipes_escaped() -> None:
    page = b"<table><tr><th>a|b</th><th>c</th></tr><tr><td><p>x</p><p>y</p></td><td>1</td></tr></table>"
    assert extract(page, "html") == [Block("table", "| a\\|b | c |\n| --- | --- |\n| x y | 1 |")]


def test_docx_blocks_follow_the_body_order_with_heading_levels() -> None:
    data = make_docx(
        [
            ("title", "Annual Report"),
            ("p", "Summary text."),
            ("h1", "Results"),
            ("table", "quarter|revenue\nQ1|10"),
            ("h2", "Details"),
            ("p", "More text."),
            ("li", "one\ntwo"),
        ]
    )
    assert extract(data, "docx") == [
        Block("heading", "Annual Report", 1),
        Block("text", "Summary text."),
        Block("heading", "Results", 1),
        Block("table", "| quarter | revenue |\n| --- | --- |\n| Q1 | 10 |"),
        Block("heading", "Details", 2),
        Block("text", "More text."),
        Block("text", "- one"),
        Block("text", "- two"),
    ]


def test_pdf_pages_become_text_blocks() -> None:
    data = make_pdf(["The first page talks about indexing.", "", "The third page talks about search."])
    assert extract(data, "pdf") == [
        Block("text", "The first page talks about indexing."),
        Block("text", "The third page talks about search."),
    ]


def test_pdf_without_text_is_refused_as_probably_scanned() -> None:
    blank = make_pdf(["", ""])
    assert detect_kind(blank, "scan.pdf") == "pdf"
    assert "doc has no text to extract (a scanned document?" in refused_extract(blank, "pdf")


@pytest.mark.parametrize(
    ("data", "kind"),
    [
        (b"<html><head><title>t</title><script>x()</script></head><body><nav>x</nav></body></html>", "html"),
        (b"# Only a heading\n\n---\n", "md"),
        (make_docx([("h1", "Only a heading")]), "docx"),
    ],
)
def test_files_without_text_are_refused(data: bytes, kind: str) -> None:
    assert refused_extract(data, kind) == "doc contains no text to index"


def test_extract_refuses_unknown_kinds() -> None:
    assert "not a supported kind" in refused_extract(b"x", "xlsx")
