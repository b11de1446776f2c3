"""Uploaded files -> what kind they are -> their text as blocks (headings, text, code, tables).

The content decides, not the name: a file whose content is not what its extension says is refused,
and so is anything a parser chokes on, always with UnsupportedFile and a message meant for the user
(the parsers' own exceptions never leave this module).
"""

from __future__ import annotations

import codecs
import contextlib
import io
import re
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import PurePosixPath
from typing import Literal

import docx
import pypdf
from docx.table import Table
from docx.text.paragraph import Paragraph
from markdown_it import MarkdownIt
from markdown_it.token import Token

MAX_PDF_PAGES = 2000
MAX_DOCX_XML = 50 * 1024 * 1024  # word/document.xml, unpacked
MAX_DOCX_TOTAL = 300 * 1024 * 1024  # all parts of a .docx, unpacked (python-docx loads them all)

EXTENSIONS = {
    ".md": "md",
    ".markdown": "md",
    ".txt": "txt",
    ".text": "txt",
    ".pdf": "pdf",
    ".docx": "docx",
    ".html": "html",
    ".htm": "html",
}
_SUPPORTED = "supported: .md, .txt, .pdf, .docx, .html"
_LABELS = {
    "md": "a Markdown file",
    "txt": "a text file",
    "pdf": "a PDF",
    "docx": "a Word document (.docx)",
    "html": "an HTML page",
}

BlockKind = Literal["heading", "text", "code", "table"]


@dataclass(frozen=True, slots=True)
class Block:
    kind: BlockKind
    text: str
    level: int = 0  # heading level, 1 for the top


class UnsupportedFile(ValueError):
    """A file that cannot be indexed; str(error) is a message for the user."""


def detect_kind(data: bytes, filename: str) -> str:
    """The kind ("md", "txt", "pdf", "docx" or "html") from the extension, checked against the content."""
    name = PurePosixPath(filename.replace("\\", "/")).name or "the file"
    if not data:
        raise UnsupportedFile(f"{name} is empty")
    suffix = PurePosixPath(name.lower()).suffix
    kind = EXTENSIONS.get(suffix)
    if kind is None:
        if not suffix:
            raise UnsupportedFile(f"{name} has no file extension ({_SUPPORTED})")
        raise UnsupportedFile(f"{name}: {suffix} files are not supported ({_SUPPORTED})")
    if kind == "pdf":
        if not _is_pdf(data):
            raise UnsupportedFile(f"{name} is not a PDF: its content looks like {_describe(data)}")
        _open_pdf(data, name)
    elif kind == "docx":
        if not _is_zip(data):
            what = _describe(data)
            raise UnsupportedFile(f"{name} is not a Word document (.docx): its content looks like {what}")
        _check_docx(data, name)
    else:
        if data.startswith(b"%PDF-"):
            raise UnsupportedFile(f"{name} is not {_LABELS[kind]}: its content looks like a PDF")
        if not _decode(data, kind, name).strip():
            raise UnsupportedFile(f"{name} is empty: it contains only blank space")
    return kind


def extract(data: bytes, kind: str, *, name: str = "the document") -> list[Block]:
    """The blocks of a file of the given kind, in document order; never empty."""
    if kind == "pdf":
        blocks = _pdf_blocks(data, name)
    elif kind == "docx":
        blocks = _docx_blocks(data, name)
    elif kind in ("md", "txt", "html"):
        parse = {"md": _md_blocks, "txt": _txt_blocks, "html": _html_blocks}[kind]
        blocks = parse(_decode(data, kind, name))
    else:
        raise UnsupportedFile(f"{name}: {kind!r} is not a supported kind of document")
    blocks = [b for b in blocks if b.text.strip()]
    if not any(b.kind != "heading" for b in blocks):
        raise UnsupportedFile(f"{name} contains no text to index")
    return blocks


# --- what the content is ---------------------------------------------------------------------------

_MAGIC = [
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old-format or password-protected Office file"),
    (b"{\\rtf", "an RTF document"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a program"),
    (b"ID3", "an MP3 file"),
    (b"OggS", "an Ogg media file"),
]


def _is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]  # readers accept the header anywhere in the first KB


def _is_zip(data: bytes) -> bool:
    return data.startswith(b"PK\x03\x04")


def _magic(data: bytes) -> str | None:
    if _is_zip(data):
        return "a ZIP archive"
    if data[4:8] == b"ftyp":
        return "a video or audio file"
    if data.startswith(b"RIFF") and data[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "a media file"
    return next((what for magic, what in _MAGIC if data.startswith(magic)), None)


def _zip_names(data: bytes) -> set[str]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return set(archive.namelist())
    except Exception:
        return set()


def _describe(data: bytes) -> str:
    """What the content looks like, for messages: "a PDF", "plain text", "binary data"..."""
    if _is_pdf(data):
        return "a PDF"
    if _is_zip(data):
        names = _zip_names(data)
        if "word/document.xml" in names:
            return "a Word document (.docx)"
        if any(n.startswith("xl/") for n in names):
            return "an Excel workbook"
        if any(n.startswith("ppt/") for n in names):
            return "a PowerPoint presentation"
        return "an OpenDocument file" if "mimetype" in names else "a ZIP archive"
    if (text := _as_text(data)) is not None:
        return "HTML" if _HTML_MARKUP.search(text[:4096]) else "plain text"
    if (what := _magic(data)) is not None:
        return what
    return "binary data" if _looks_binary(data) else "text that is not UTF-8"


_HTML_MARKUP = re.compile(r"<!doctype\s+html|<(html|head|body|p|div|h[1-6]|table|span|a|ul|br)\b[^>]*>", re.I)
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?([\w.:-]+)""", re.I)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def _as_text(data: bytes) -> str | None:
    """UTF-8, with or without a BOM, or UTF-16 with a BOM; None if it is not that or has NULs."""
    encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    return b"\x00" in head or len(_CONTROL.findall(head)) > len(head) // 20


def _decode(data: bytes, kind: str, name: str) -> str:
    text = _as_text(data)
    if text is None and kind == "html" and (declared := _META_CHARSET.search(data[:2048])):
        charset = declared[1].decode("ascii").lower()
        # Pages labelled GB2312 or GBK routinely use characters only GB18030 (their superset) has.
        charset = "gb18030" if charset in ("gb2312", "gbk") else charset
        with contextlib.suppress(LookupError, UnicodeDecodeError):
            text = data.decode(charset)
    if text is None:
        label = _LABELS.get(kind, "a text file")
        if _looks_binary(data) or _magic(data):
            raise UnsupportedFile(f"{name} is not {label}: its content looks like {_describe(data)}")
        try:
            data.decode("utf-8-sig")
            offset = 0
        except UnicodeDecodeError as error:
            offset = error.start
        raise UnsupportedFile(
            f"{name} is not UTF-8 text (undecodable bytes at offset {offset}); save it as UTF-8"
        )
    return text.replace("\r\n", "\n").replace("\r", "\n")


# --- PDF ---------------------------------------------------------------------------------------------


def _open_pdf(data: bytes, name: str) -> pypdf.PdfReader:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
        if reader.is_encrypted and reader.decrypt("") == pypdf.PasswordType.NOT_DECRYPTED:
            raise UnsupportedFile(f"{name} is password-protected; upload a copy without a password")
        pages = len(reader.pages)
    except UnsupportedFile:
        raise
    except pypdf.errors.DependencyError:
        raise UnsupportedFile(f"{name} is encrypted in a way this server cannot read") from None
    except Exception:
        raise UnsupportedFile(f"{name} is damaged or not a valid PDF and cannot be read") from None
    if pages == 0:
        raise UnsupportedFile(f"{name} has no pages")
    if pages > MAX_PDF_PAGES:
        raise UnsupportedFile(f"{name} has {pages} pages; at most {MAX_PDF_PAGES} are supported")
    return reader


_PDF_JUNK = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _pdf_blocks(data: bytes, name: str) -> list[Block]:
    reader = _open_pdf(data, name)
    blocks: list[Block] = []
    failed = 0
    for page in reader.pages:
        try:
            text = page.extract_text()
        except Exception:
            failed += 1  # one broken page should not cost the rest of the document
            continue
        text = re.sub(r"[ \t]+\n", "\n", _PDF_JUNK.sub("", text)).strip()
        if text:
            blocks.append(Block("text", text))
    if not blocks:
        if failed:
            raise UnsupportedFile(f"{name} is damaged: no page could be read")
        raise UnsupportedFile(
            f"{name} has no text to extract (a scanned document? text recognition is not supported)"
        )
    return blocks


# --- DOCX --------------------------------------------------------------------------------------------


def _check_docx(data: bytes, name: str) -> None:
    """Refuses damaged files and zip bombs before python-docx unpacks everything into memory."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            main = archive.getinfo("word/document.xml")
            if main.file_size > MAX_DOCX_XML or sum(i.file_size for i in archive.infolist()) > MAX_DOCX_TOTAL:
                raise UnsupportedFile(f"{name} is too large once unpacked")
            # Reading checks the CRC; zipfile never inflates past the declared size, which is checked above.
            archive.read(main)
    except UnsupportedFile:
        raise
    except KeyError:
        what = _describe(data)
        raise UnsupportedFile(
            f"{name} is not a Word document (.docx): its content looks like {what}"
        ) from None
    except Exception:
        raise UnsupportedFile(f"{name} is damaged and cannot be read") from None


_HEADING_STYLE = re.compile(r"heading\s*(\d)", re.I)


def _docx_blocks(data: bytes, name: str) -> list[Block]:
    _check_docx(data, name)
    try:
        document = docx.Document(io.BytesIO(data))
        return [block for item in document.iter_inner_content() if (block := _docx_block(item)) is not None]
    except Exception:
        raise UnsupportedFile(f"{name} is damaged and cannot be read") from None


def _docx_block(item: Paragraph | Table) -> Block | None:
    if isinstance(item, Table):
        rows = []
        for row in item.rows:
            cells: list[str] = []
            seen: set[int] = set()
            for cell in row.cells:
                if id(cell._tc) not in seen:  # a merged cell is listed once per grid column it spans
                    seen.add(id(cell._tc))
                    cells.append(cell.text)
            rows.append(cells)
        text = _table_text(rows)
        return Block("table", text) if text else None
    style = (item.style.name if item.style is not None else None) or ""
    if style == "Title":
        return Block("heading", item.text, 1)
    if (heading := _HEADING_STYLE.fullmatch(style)) is not None:
        return Block("heading", item.text, max(int(heading[1]), 1))
    return Block("text", f"- {item.text}" if style.startswith("List") and item.text.strip() else item.text)


def _table_text(rows: list[list[str]]) -> str:
    """Rows as a Markdown table, the first row taken as the header."""
    rows = [[" ".join(c.split()).replace("|", "\\|") for c in row] for row in rows]
    rows = [row for row in rows if any(row)]
    if not rows:
        return ""
    lines = ["| " + " | ".join(row) + " |" for row in rows]
    lines.insert(1, "|" + " --- |" * max(len(row) for row in rows))
    return "\n".join(lines)


# --- Markdown, text ----------------------------------------------------------------------------------

# YAML front matter ("---", "key: value" lines, "---"); CommonMark would read it as a rule and a heading.
_FRONT_MATTER = re.compile(r"---\n[\w-]+[ \t]*:.*?\n(---|\.\.\.)\n", re.S)


def _md_blocks(text: str) -> list[Block]:
    if front_matter := _FRONT_MATTER.match(text):
        text = text[front_matter.end() :]
    lines = text.split("\n")
    tokens = MarkdownIt("commonmark").enable("table").parse(text)
    blocks: list[Block] = []
    for i, token in enumerate(tokens):
        if token.level != 0 or token.nesting == -1 or token.map is None:
            continue
        source = "\n".join(lines[token.map[0] : token.map[1]]).strip("\n")
        if token.type == "heading_open":
            blocks.append(Block("heading", _inline_text(tokens[i + 1]), int(token.tag[1:])))
        elif token.type in ("fence", "code_block"):
            blocks.append(Block("code", source))
        elif token.type == "table_open":
            blocks.append(Block("table", source))
        elif token.type == "html_block":
            blocks.extend(_html_blocks(source))
        elif token.type != "hr":
            blocks.append(Block("text", source))
    return blocks


def _inline_text(token: Token) -> str:
    parts = []
    for child in token.children or []:
        if child.type in ("text", "code_inline", "html_inline"):
            parts.append(child.content)
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return "".join(parts).strip()


def _txt_blocks(text: str) -> list[Block]:
    return [Block("text", part.strip()) for part in re.split(r"\n\s*\n", text) if part.strip()]


# --- HTML --------------------------------------------------------------------------------------------


def _html_blocks(text: str) -> list[Block]:
    parser = _HtmlText()
    try:
        parser.feed(text)
        parser.close()
    except Exception:
        raise UnsupportedFile("the HTML page cannot be parsed") from None
    return parser.blocks


# An explicit line break (<br>, <li>) among the whitespace that HTML collapses; decoded text has no NUL.
_BREAK = "\x00"


class _HtmlText(HTMLParser):
    SKIP = frozenset({"script", "style", "nav", "noscript", "template", "svg", "title", "iframe", "object"})
    BLOCKS = frozenset(
        {
            "p", "div", "section", "article", "main", "header", "footer", "aside", "blockquote", "ul",
            "ol", "dl", "dd", "dt", "figure", "figcaption", "form", "fieldset", "address", "details",
            "summary", "hr", "body",
        }
    )  # fmt: skip
    HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.skipping: list[str] = []
        self.heading = 0
        self.pre = 0
        self.tables = 0  # depth: only the outermost table makes rows, inner ones are cell text
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skipping or tag in self.SKIP:
            if tag in self.SKIP:
                self.skipping.append(tag)
        elif self.tables:
            self.table_tag(tag)
        elif self.pre:
            self.pre += tag == "pre"
            if tag == "br":
                self.buffer.append("\n")
        elif tag == "table":
            self.flush()
            self.tables, self.rows, self.cell = 1, [], None
        elif tag in self.HEADINGS:
            self.flush()
            self.heading = int(tag[1])
        elif tag == "pre":
            self.flush()
            self.pre = 1
        elif tag == "br":
            self.buffer.append(_BREAK)
        elif tag == "li":
            self.buffer.append(_BREAK + "- ")
        elif tag in self.BLOCKS:
            self.flush()

    def table_tag(self, tag: str) -> None:
        if tag == "table":
            self.tables += 1
        elif self.tables == 1 and tag == "tr":
            self.end_cell()
            self.rows.append([])
        elif self.tables == 1 and tag in ("td", "th"):
            self.end_cell()
            self.cell = []
        elif self.cell is not None and tag in ("br", "p", "div", "li", "td", "th"):
            self.cell.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in self.SKIP:  # <svg/> and the like are empty: nothing to skip
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
        elif self.tables:
            if tag == "table":
                self.tables -= 1
                if not self.tables:
                    self.end_cell()
                    if table := _table_text(self.rows):
                        self.blocks.append(Block("table", table))
                    self.rows = []
            elif self.tables == 1 and tag in ("td", "th"):
                self.end_cell()
        elif self.pre:
            if tag == "pre":
                self.pre -= 1
                if not self.pre:
                    self.flush(code=True)
        elif tag in self.HEADINGS and self.heading:
            self.flush()
            self.heading = 0
        elif tag in self.BLOCKS:
            self.flush()

    def handle_data(self, data: str) -> None:
        if self.skipping:
            return
        if self.tables:
            if self.cell is not None:
                self.cell.append(data)
        else:
            self.buffer.append(data)

    def end_cell(self) -> None:
        if self.cell is not None:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append("".join(self.cell))
            self.cell = None

    def flush(self, *, code: bool = False) -> None:
        raw = "".join(self.buffer)
        self.buffer = []
        if code:
            if raw.strip():
                self.blocks.append(Block("code", raw.strip("\n")))
            return
        lines = (" ".join(line.split()) for line in raw.split(_BREAK))
        text = "\n".join(line for line in lines if line)
        if text and self.heading:
            self.blocks.append(Block("heading", text.replace("\n", " "), self.heading))
        elif text:
            self.blocks.append(Block("text", text))

    def close(self) -> None:
        super().close()
        self.end_cell()
        if self.tables and (table := _table_text(self.rows)):
            self.blocks.append(Block("table", table))  # a table left open at the end of the page
        self.flush(code=self.pre > 0)
