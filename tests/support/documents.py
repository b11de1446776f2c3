"""Builds the files that uploads and extraction tests use: PDF (fpdf2), DOCX (python-docx), HTML.

Parts are (kind, text) pairs, the same for DOCX and HTML: ("h1".."h6", heading), ("p", paragraph),
("table", "a|b\\nc|d" with the first row as the header), ("pre", code), ("li", "one\\ntwo") for a list;
DOCX also takes ("title", text), HTML also ("raw", markup written as is).
"""

from __future__ import annotations

import html
import io

import docx
from fpdf import FPDF


def make_pdf(pages: list[str]) -> bytes:
    """One page per string; the core font is latin-1 only, so keep the text ASCII. "" is a blank page."""
    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    for text in pages:
        pdf.add_page()
        if text:
            pdf.multi_cell(0, 6, text)
    return bytes(pdf.output())


def make_docx(parts: list[tuple[str, str]]) -> bytes:
    document = docx.Document()
    for kind, text in parts:
        if kind == "title":
            document.add_heading(text, level=0)
        elif kind[0] == "h" and kind[1:].isdigit():
            document.add_heading(text, level=int(kind[1:]))
        elif kind == "table":
            rows = [line.split("|") for line in text.split("\n")]
            table = document.add_table(rows=len(rows), cols=max(len(r) for r in rows))
            for row, cells in zip(table.rows, rows, strict=True):
                for cell, value in zip(row.cells, cells, strict=False):
                    cell.text = value.strip()
        elif kind == "li":
            for item in text.split("\n"):
                document.add_paragraph(item, style="List Bullet")
        else:
            document.add_paragraph(text)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_html(parts: list[tuple[str, str]], *, title: str = "Document") -> bytes:
    body: list[str] = []
    for kind, text in parts:
        if kind == "raw":
            body.append(text)
        elif kind == "table":
            rows = [line.split("|") for line in text.split("\n")]
            cells = [
                "".join(f"<{tag}>{html.escape(c.strip())}</{tag}>" for c in row)
                for tag, row in zip(["th"] + ["td"] * len(rows), rows, strict=False)
            ]
            body.append("<table>" + "".join(f"<tr>{c}</tr>" for c in cells) + "</table>")
        elif kind == "pre":
            body.append(f"<pre><code>{html.escape(text)}</code></pre>")
        elif kind == "li":
            body.append("<ul>" + "".join(f"<li>{html.escape(i)}</li>" for i in text.split("\n")) + "</ul>")
        else:
            body.append(f"<{kind}>{html.escape(text)}</{kind}>")
    page = (
        f'<!DOCTYPE html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>\n'
        "<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    return page.encode()
