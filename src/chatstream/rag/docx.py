"""Word documents (.docx) -> blocks in body order, read by python-docx from a checked package.

python-docx reads the package rebuilt by rag/package.py (so it unpacks nothing it was not allowed
to). Its XML parser (lxml on libxml2 2.14) refuses entity expansion, nesting deeper than 256 and
text nodes over 10 MB by itself: such a file is reported as damaged. Styles and table cells are
looked up here in one pass, where python-docx's own lookups take quadratic time.
"""

from __future__ import annotations

import re

import docx
from docx.document import Document
from docx.enum.style import WD_STYLE_TYPE
from docx.oxml.table import CT_Tc
from docx.table import Table
from docx.text.paragraph import Paragraph

from chatstream.rag.blocks import Block, UnsupportedFile, table_text
from chatstream.rag.package import rebuilt_package

_HEADING_STYLE = re.compile(r"heading\s*(\d)", re.I)


def docx_blocks(data: bytes, name: str) -> list[Block]:
    package = rebuilt_package(data, name)
    try:
        document = docx.Document(package)
        styles = _StyleNames(document)
        return [
            block for item in document.iter_inner_content() if (block := _block(item, styles)) is not None
        ]
    except Exception:  # python-docx and lxml raise many kinds of errors on damaged XML
        raise UnsupportedFile(f"{name} is damaged and cannot be read") from None


class _StyleNames:
    """Paragraph style names by style id, as python-docx's Paragraph.style finds them, but from a
    table built once: python-docx searches all styles with XPath for every paragraph."""

    def __init__(self, document: Document) -> None:
        self.first: dict[str, tuple[object, str]] = {}  # python-docx takes the first style of an id
        for style in document.styles:
            try:
                self.first.setdefault(style.style_id, (style.type, style.name or ""))
            except ValueError:
                continue  # an unknown style type: python-docx fails only when a paragraph uses it
        default = document.styles.default(WD_STYLE_TYPE.PARAGRAPH)
        self.default = (default.name or "") if default is not None else ""

    def of(self, paragraph: Paragraph) -> str:
        style_id = paragraph._p.style
        found = self.first.get(style_id) if style_id is not None else None
        return found[1] if found is not None and found[0] == WD_STYLE_TYPE.PARAGRAPH else self.default


def _block(item: Paragraph | Table, styles: _StyleNames) -> Block | None:
    if isinstance(item, Table):
        text = table_text(_rows(item))
        return Block("table", text) if text else None
    style = styles.of(item)
    if style == "Title":
        return Block("heading", item.text, 1)
    if (heading := _HEADING_STYLE.fullmatch(style)) is not None:
        return Block("heading", item.text, max(int(heading[1]), 1))
    return Block("text", f"- {item.text}" if style.startswith("List") and item.text.strip() else item.text)


def _rows(table: Table) -> list[list[str]]:
    """Each row's cells, a merged cell once, as python-docx's row.cells gives them but in one pass:
    row.cells repeats a cell for each grid column it spans (a span is a number in the file: it can
    be two billion) and finds a vertically merged cell by walking up every row above it."""
    rows: list[list[str]] = []
    above: dict[int, CT_Tc] = {}  # the cell holding each grid column's content in the row above
    for tr in table._tbl.tr_lst:
        offset = tr.grid_before
        holders: dict[int, CT_Tc] = {}
        cells: list[str] = []
        seen: set[int] = set()
        for tc in tr.tc_lst:
            holder = above.get(offset, tc) if tc.vMerge == "continue" else tc
            span = tc.grid_span
            if span >= 1 and id(holder) not in seen:  # python-docx lists no cell for a span below 1
                seen.add(id(holder))
                cells.append("\n".join(Paragraph(p, table).text for p in holder.p_lst))
            holders[offset] = holder
            offset += span
        above = holders
        rows.append(cells)
    return rows
