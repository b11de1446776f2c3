"""HTML pages -> blocks: a one-pass tokenizer and the structure kept from it (headings, text, code, tables).

The standard library's html.parser (Python 3.11) takes quadratic time on broken markup: each `<!--`,
`<a`, `</` or quoted attribute value left open makes it scan to the end of the page again, and a
chain of quoted attributes that each hold a `<a` does so even when every tag is closed (60 KB took
30 s). This tokenizer reads a page once, as a browser does: a comment, script or tag left open runs
to the end of the page, a quoted value to its quote, and each search for the end of a construct
remembers its answer, so no stretch of the page is searched twice for the same thing. Nesting costs
nothing: no tree is built, the only stack is one entry for each skipped element still open.
"""

from __future__ import annotations

import html
import re

from chatstream.rag.blocks import Block, table_text

_NAME = r"[a-zA-Z][^\t\n\f\r />\x00]*+"  # html.parser's tag name
# A start tag to its `>`: a quote opens a value only after `=` (`x"y` is a name), and a value left
# unclosed is read as a lone quote character rather than swallowing the page. Possessive, so the
# match never backtracks: one pass over the tag.
_START_TAG = re.compile(rf"<({_NAME})(?:[^>\"'=]++|=\s*+\"[^\"]*+\"|=\s*+'[^']*+'|[=\"'])*+>")
_TAG_NAME = re.compile(_NAME)
_END_TAG_NAME = re.compile(rf"</\s*+({_NAME})")
_COMMENT_END = re.compile(r"--\s*+>")
_RAW_TEXT_END = {tag: re.compile(rf"</\s*+{tag}\s*+>", re.I) for tag in ("script", "style")}


def html_blocks(text: str) -> list[Block]:
    builder = _HtmlText()
    _Tokenizer(text, builder).run()
    builder.close()
    return builder.blocks


class _Search:
    """pattern.search(text, start), remembering its last answer: a match found from an earlier start
    that lies at or after this start is the answer again, and so is no match at all. Searches only
    resume past the last match, so together they read the text once."""

    def __init__(self, text: str, pattern: re.Pattern[str]) -> None:
        self.text, self.pattern = text, pattern
        self.start = len(text) + 1  # no search yet
        self.found: re.Match[str] | None = None

    def __call__(self, start: int) -> re.Match[str] | None:
        if not (self.start <= start and (self.found is None or self.found.start() >= start)):
            self.start, self.found = start, self.pattern.search(self.text, start)
        return self.found


class _Tokenizer:
    """Reads a page from start to end, handing start tags, end tags and text (entities decoded) to
    `out`; comments, declarations and processing instructions are skipped."""

    def __init__(self, text: str, out: _HtmlText) -> None:
        self.text, self.out = text, out
        self.gt = _Search(text, re.compile(">"))
        self.comment_end = _Search(text, _COMMENT_END)
        self.cdata_end = _Search(text, re.compile(r"\]\]>"))
        self.raw_text_end = {tag: _Search(text, pattern) for tag, pattern in _RAW_TEXT_END.items()}
        # Once a start tag read with its quoted values reaches the end of the page without a `>`
        # (its quotes enclose every `>` left), later tags end at their first `>`: reading quotes
        # again could rescan the rest of the page for each of them.
        self.quotes = True

    def run(self) -> None:
        text, n, pos = self.text, len(self.text), 0
        while pos < n:
            lt = text.find("<", pos)
            if lt < 0:
                self.data(text[pos:])
                return
            if lt > pos:
                self.data(text[pos:lt])
            pos = self.markup(lt)

    def data(self, raw: str) -> None:
        self.out.handle_data(html.unescape(raw).replace("\x00", ""))

    def markup(self, i: int) -> int:
        """Handles the construct that starts with the `<` at `i`; where the text resumes."""
        text, n = self.text, len(self.text)
        if text.startswith("<!--", i):
            return end if (end := self.end_of(self.comment_end, i + 4)) is not None else n
        if text.startswith("<![CDATA[", i):
            return end if (end := self.end_of(self.cdata_end, i + 9)) is not None else n
        if text.startswith(("<!", "<?"), i):
            return self.after_gt(i + 2)  # a declaration, a processing instruction: skipped
        if text.startswith("</", i):
            if (name := _END_TAG_NAME.match(text, i)) is None:
                return i + 3 if text.startswith("</>", i) else self.after_gt(i + 2)
            if (gt := self.gt(name.end())) is None:
                return n  # the page ends inside the tag
            self.out.handle_endtag(name[1].lower())
            return gt.end()
        if (name := _TAG_NAME.match(text, i + 1)) is None:
            self.out.handle_data("<")  # "a < b": not markup
            return i + 1
        if (end := self.start_tag_end(i, name.end())) is None:
            return n  # the page ends inside the tag
        tag = name[0].lower()
        if text[end - 2] == "/":  # <br/>, XHTML's empty element: no content follows
            self.out.handle_startendtag(tag)
            return end
        self.out.handle_starttag(tag)
        return self.skip_raw_text(tag, end)

    def start_tag_end(self, i: int, after_name: int) -> int | None:
        if self.quotes:
            if (tag := _START_TAG.match(self.text, i)) is not None:
                return tag.end()
            self.quotes = False
        return self.end_of(self.gt, after_name)

    def skip_raw_text(self, tag: str, pos: int) -> int:
        """After <script> or <style>: their text is not markup, and ends at their end tag."""
        if (search := self.raw_text_end.get(tag)) is None:
            return pos
        if (end := search(pos)) is None:
            return len(self.text)
        self.out.handle_data(self.text[pos : end.start()])
        self.out.handle_endtag(tag)
        return end.end()

    def end_of(self, search: _Search, start: int) -> int | None:
        found = search(start)
        return found.end() if found is not None else None

    def after_gt(self, start: int) -> int:
        return end if (end := self.end_of(self.gt, start)) is not None else len(self.text)


# An explicit line break (<br>, <li>) among the whitespace that HTML collapses; data has no NUL.
_BREAK = "\x00"


class _HtmlText:
    """Blocks from the tokens of a page: scripts, styles and navigation skipped, whitespace
    collapsed, <pre> kept as code, the outermost tables as rows."""

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
        self.blocks: list[Block] = []
        self.buffer: list[str] = []
        self.skipping: list[str] = []
        self.heading = 0
        self.pre = 0
        self.tables = 0  # depth: only the outermost table makes rows, inner ones are cell text
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str) -> None:
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

    def handle_startendtag(self, tag: str) -> None:
        if tag not in self.SKIP:  # <svg/> and the like are empty: nothing to skip
            self.handle_starttag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skipping:
            if tag == self.skipping[-1]:
                self.skipping.pop()
        elif self.tables:
            if tag == "table":
                self.tables -= 1
                if not self.tables:
                    self.end_cell()
                    if table := table_text(self.rows):
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
        self.end_cell()
        if self.tables and (table := table_text(self.rows)):
            self.blocks.append(Block("table", table))  # a table left open at the end of the page
        self.flush(code=self.pre > 0)
