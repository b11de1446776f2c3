"""What a file's bytes are: the kinds of document by extension, magic numbers, text encodings, and a
description of any content for messages ("its content looks like a PNG image").

Everything here but decode_text reads a bounded prefix (or a ZIP's bounded central directory), so
it is cheap enough for the serving process whatever the upload holds.
"""

from __future__ import annotations

import codecs
import re

from chatstream.rag.archive import member_names
from chatstream.rag.blocks import MAX_TEXT_CHARS, UnsupportedFile, too_much_text

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
SUPPORTED = "supported: .md, .txt, .pdf, .docx, .html"
LABELS = {
    "md": "a Markdown file",
    "txt": "a text file",
    "pdf": "a PDF",
    "docx": "a Word document (.docx)",
    "html": "an HTML page",
}
# How much of a text file the serving process decodes to tell that it is text.
SNIFF_BYTES = 64 * 1024

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
# `[^<>]` rather than `[^>]`: a tag ends at the next `<` at the latest, so each `<` of the prefix
# is scanned to the next one only.
_HTML_MARKUP = re.compile(
    r"<!doctype\s+html|<(html|head|body|p|div|h[1-6]|table|span|a|ul|br)\b[^<>]*+>", re.I
)
_META_CHARSET = re.compile(rb"""<meta[^<>]+?charset\s*+=\s*+["']?([\w.:-]++)""", re.I)
_CONTROL = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")


def is_pdf(data: bytes) -> bool:
    return b"%PDF-" in data[:1024]  # readers accept the header anywhere in the first KB


def is_zip(data: bytes) -> bool:
    return data.startswith(b"PK\x03\x04")


def describe(data: bytes) -> str:
    """What the content looks like, for messages: "a PDF", "plain text", "binary data"..."""
    if is_pdf(data):
        return "a PDF"
    if is_zip(data):
        names = member_names(data)
        if "word/document.xml" in names:
            return "a Word document (.docx)"
        if any(n.startswith("xl/") for n in names):
            return "an Excel workbook"
        if any(n.startswith("ppt/") for n in names):
            return "a PowerPoint presentation"
        return "an OpenDocument file" if "mimetype" in names else "a ZIP archive"
    if (text := _as_text(data[:SNIFF_BYTES], None, final=len(data) <= SNIFF_BYTES)) is not None:
        return "HTML" if _HTML_MARKUP.search(text[:4096]) else "plain text"
    if (what := _magic(data)) is not None:
        return what
    return "binary data" if _looks_binary(data) else "text that is not UTF-8"


def sniff_text(data: bytes, kind: str, name: str) -> str:
    """The decoded start of a text file (SNIFF_BYTES at most), or UnsupportedFile saying what the
    content is instead."""
    final = len(data) <= SNIFF_BYTES
    if (text := _decode(data[:SNIFF_BYTES], kind, final=final)) is None:
        raise _not_text(data[:SNIFF_BYTES], kind, name, final=final)
    return text


def decode_text(data: bytes, kind: str, name: str) -> str:
    """The whole text of a text file, line breaks made "\\n"; UnsupportedFile if it is not text, or
    more text than MAX_TEXT_CHARS."""
    if (text := _decode(data, kind, final=True)) is None:
        raise _not_text(data, kind, name, final=True)
    if len(text) > MAX_TEXT_CHARS:
        raise too_much_text(name)
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _magic(data: bytes) -> str | None:
    if is_zip(data):
        return "a ZIP archive"
    if data[4:8] == b"ftyp":
        return "a video or audio file"
    if data.startswith(b"RIFF") and data[8:12] in (b"WEBP", b"WAVE", b"AVI "):
        return "a media file"
    return next((what for magic, what in _MAGIC if data.startswith(magic)), None)


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    return b"\x00" in head or len(_CONTROL.findall(head)) > len(head) // 20


# The encodings a page may declare: the web's (the WHATWG Encoding Standard's), all decoded in linear
# time by C codecs. Python also has codecs named like encodings that decompress (zlib, bz2) or take
# quadratic time (punycode): a <meta charset> must not reach those.
_WEB_CHARSET = re.compile(
    r"utf-8|utf-16(-[bl]e)?|ascii|latin-1|iso8859-\d+|cp\d+|koi8-[ru]|mac-[a-z]+|gb2312|gbk|gb18030|big5(hkscs)?"
    r"|euc_(jp|kr|jis_2004|jisx0213)|shift_jis(_2004|x0213)?|iso2022_\w+|hz|johab|tis-620"
)


def _decode(data: bytes, kind: str, *, final: bool) -> str | None:
    text = _as_text(data, None, final=final)
    if text is None and kind == "html" and (charset := _declared_charset(data)) is not None:
        text = _as_text(data, charset, final=final)
    return text


def _declared_charset(data: bytes) -> str | None:
    """The encoding an HTML page declares in a <meta> near its start, if it is one of the web's."""
    if (declared := _META_CHARSET.search(data[:2048])) is None:
        return None
    try:
        charset = codecs.lookup(declared[1].decode("ascii")).name
    except LookupError:
        return None
    # Pages labelled GB2312 or GBK routinely use characters only GB18030 (their superset) has.
    charset = "gb18030" if charset in ("gb2312", "gbk") else charset
    return charset if _WEB_CHARSET.fullmatch(charset) else None


def _as_text(data: bytes, charset: str | None, *, final: bool) -> str | None:
    """UTF-8, with or without a BOM, or UTF-16 with a BOM, or else `charset`; None if it is not
    that or has NULs. Not `final`: `data` is a prefix, and may end inside a character."""
    if charset is not None:
        encoding = charset
    else:
        encoding = "utf-16" if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    try:
        text = codecs.getincrementaldecoder(encoding)().decode(data, final=final)
    except UnicodeDecodeError:
        return None
    return None if "\x00" in text else text


def _not_text(data: bytes, kind: str, name: str, *, final: bool) -> UnsupportedFile:
    """Why `data` (a prefix unless `final`) is not text, for the user."""
    label = LABELS.get(kind, "a text file")
    if _looks_binary(data) or _magic(data):
        return UnsupportedFile(f"{name} is not {label}: its content looks like {describe(data)}")
    if b"\x00" in data:
        return UnsupportedFile(f"{name} is not {label}: it contains NUL bytes, as binary files do")
    try:
        codecs.getincrementaldecoder("utf-8-sig")().decode(data, final=final)
        offset = 0
    except UnicodeDecodeError as error:
        offset = error.start
    return UnsupportedFile(
        f"{name} is not UTF-8 text (undecodable bytes at offset {offset}); save it as UTF-8"
    )
