"""DOCX: python-docx reads only checked parts, and styles and tables are read in one pass."""

from __future__ import annotations

import io
import time
import zipfile
from pathlib import Path

import docx
import pytest
from docx.table import Table

from chatstream.rag import package
from chatstream.rag.blocks import Block, UnsupportedFile
from chatstream.rag.docx import _rows, _StyleNames, docx_blocks
from chatstream.rag.extract import extract
from chatstream.rag.package import check_listing, rebuilt_package, unpacked_parts
from tests.data.hostile import make_corpus as corpus
from tests.support.documents import make_docx

HOSTILE = Path(__file__).resolve().parent.parent / "data" / "hostile"


def test_python_docx_reads_a_stored_package_of_the_checked_parts() -> None:
    image = corpus.deflated("word/media/image1.png", b"\x89PNG" + bytes(100_000))
    data = corpus.zip_bytes([*corpus.docx_parts(corpus.document_xml(corpus.INTRO)), image])
    parts = unpacked_parts(data, "doc.docx")
    with zipfile.ZipFile(rebuilt_package(data, "doc.docx")) as rebuilt:
        members = rebuilt.infolist()
        assert {m.compress_type for m in members} == {zipfile.ZIP_STORED}
        assert {m.filename: rebuilt.read(m) for m in members} == parts
    assert parts["word/document.xml"] == corpus.document_xml(corpus.INTRO)
    assert parts["word/media/image1.png"] == b""  # not XML: python-docx only needs it to exist


def test_folders_and_nameless_entries_are_not_parts() -> None:
    members = [*corpus.docx_parts(corpus.document_xml(corpus.INTRO)), corpus.stored("word/", b"")]
    members.append(corpus.stored("", b""))
    parts = unpacked_parts(corpus.zip_bytes(members), "doc.docx")
    assert "" not in parts and "word/" not in parts and "word/document.xml" in parts


def test_an_embedded_zip_bomb_is_never_unpacked() -> None:
    data = (HOSTILE / "docx_embedded_zip_bomb.docx").read_bytes()
    assert unpacked_parts(data, "doc.docx")["word/embeddings/bomb.zip"] == b""
    assert extract(data, "docx") == [
        Block("heading", "Hostile files", 1),
        Block("text", "This document has a little text to index."),
    ]


def test_declared_sizes_are_checked_against_the_caps(monkeypatch: pytest.MonkeyPatch) -> None:
    members = zipfile.ZipFile(io.BytesIO(corpus.plain_docx())).infolist()
    check_listing(members, "doc.docx")
    monkeypatch.setattr(package, "MAX_PART_BYTES", 300)
    with pytest.raises(UnsupportedFile, match=r"doc.docx is too large once unpacked"):
        check_listing(members, "doc.docx")
    monkeypatch.setattr(package, "MAX_PART_BYTES", 10_000)
    monkeypatch.setattr(package, "MAX_UNPACKED_BYTES", 1000)
    with pytest.raises(UnsupportedFile, match=r"too large once unpacked"):
        check_listing(members, "doc.docx")


@pytest.mark.parametrize(
    "name", ["docx_billion_laughs.docx", "docx_deep_nesting.docx", "docx_huge_text_node.docx"]
)
def test_xml_that_libxml2_refuses_is_damaged(name: str) -> None:
    with pytest.raises(UnsupportedFile, match=r"is damaged and cannot be read"):
        docx_blocks((HOSTILE / name).read_bytes(), name)


def table_of(data: bytes) -> Table:
    document = docx.Document(io.BytesIO(data))
    return document.tables[0]


def python_docx_rows(table: Table) -> list[list[str]]:
    """What row.cells gives, a merged cell once: how tables were read before."""
    rows = []
    for row in table.rows:
        seen: set[int] = set()
        cells = []
        for cell in row.cells:
            if id(cell._tc) not in seen:
                seen.add(id(cell._tc))
                cells.append(cell.text)
        rows.append(cells)
    return rows


def test_table_cells_are_those_python_docx_gives_merged_cells_once() -> None:
    document = docx.Document()
    table = document.add_table(rows=4, cols=4)
    for r, row in enumerate(table.rows):
        for c, cell in enumerate(row.cells):
            cell.text = f"r{r}c{c}"
    table.cell(0, 0).merge(table.cell(0, 2))  # across
    table.cell(1, 1).merge(table.cell(3, 1))  # down
    table.cell(2, 2).merge(table.cell(3, 3))  # both
    out = io.BytesIO()
    document.save(out)
    table = table_of(out.getvalue())
    assert _rows(table) == python_docx_rows(table)
    assert _rows(table)[3][1] == "r1c1\nr2c1\nr3c1"  # the merged cell's text, in each row it spans


def test_a_cell_spanning_two_billion_columns_is_read_at_once() -> None:
    # row.cells yields a cell once per grid column it spans: two billion times, minutes.
    data = (HOSTILE / "docx_grid_span.docx").read_bytes()
    started = time.perf_counter()
    assert extract(data, "docx")[-1] == Block("table", "| wide | next |\n| --- | --- |")
    assert time.perf_counter() - started < 2


def test_a_long_vertical_merge_is_read_in_one_pass() -> None:
    # python-docx finds a merged cell's content by recursing up the rows: RecursionError past
    # ~1,000 rows ("damaged"), quadratic time before that.
    data = (HOSTILE / "docx_vertical_merge.docx").read_bytes()
    started = time.perf_counter()
    table = "\n".join(b.text for b in extract(data, "docx") if b.kind == "table")
    assert time.perf_counter() - started < 3
    assert table.startswith("| merged | row 0 |\n| --- | --- |\n| merged | row 1 |\n")
    assert table.endswith("| merged | row 2999 |")


def test_style_names_are_those_python_docx_gives() -> None:
    data = make_docx([("title", "T"), ("h1", "A"), ("h3", "B"), ("p", "text"), ("li", "x\ny")])
    document = docx.Document(io.BytesIO(data))
    styles = _StyleNames(document)
    for paragraph in document.paragraphs:
        assert styles.of(paragraph) == (paragraph.style.name if paragraph.style is not None else "")


def test_thousands_of_styles_are_looked_up_in_linear_time() -> None:
    # python-docx searches every style with XPath for each paragraph: 8,000 of each took 33 s.
    styles = [*corpus.BASE_STYLES, *((f"S{i}", f"Style {i}") for i in range(8_000))]
    body = corpus.INTRO + "".join(corpus.paragraph(f"Paragraph {i}.", "S7999") for i in range(8_000))
    data = corpus.zip_bytes(corpus.docx_parts(corpus.document_xml(body), corpus.styles_xml(styles)))
    started = time.perf_counter()
    blocks = extract(data, "docx")
    assert time.perf_counter() - started < 3
    assert len(blocks) == 8_002 and blocks[-1] == Block("text", "Paragraph 7999.")
