"""HTML: one pass over any page, the text a browser shows, the same blocks as html.parser on good pages."""

from __future__ import annotations

import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from chatstream.rag.blocks import Block
from chatstream.rag.extract import extract
from chatstream.rag.html import _HtmlText, html_blocks
from tests.support.documents import make_html

DATA = Path(__file__).resolve().parent.parent / "data"


def texts(page: str) -> list[str]:
    return [block.text for block in html_blocks(page)]


# Markup that html.parser (Python 3.11) rescans to the end of the page at each occurrence: each of
# these took it from 3 s to over 30 s (or raised), against one pass here.
PATHOLOGICAL = {
    "unclosed comments": "<!--" * 50_000,
    "unclosed tags": "<a" * 100_000,
    "unterminated attribute values": "<a href='x" * 20_000,
    "quoted attributes chained across tags": "<a" + " x='><a'" * 25_000,
    "tags in an unclosed textarea": "<textarea>" + "a<" * 100_000,
    "unclosed end tags": "</" * 200_000,
    "unclosed processing instructions": "<?" * 200_000,
    "unclosed declarations": "<!" * 800_000,
    "unknown marked sections": "<![ a" * 40_000,  # html.parser raised AssertionError
}
# Nesting costs nothing: no tree is built (these were never slow, and must stay so).
NESTED = {
    "divs": "<div>" * 100_000,
    "tables": "<table><tr><td>" * 30_000,
    "skipped elements": "<svg>" * 100_000,
}


@pytest.mark.parametrize("markup", [*PATHOLOGICAL.values(), *NESTED.values()], ids=[*PATHOLOGICAL, *NESTED])
def test_pathological_markup_is_read_in_one_pass(markup: str) -> None:
    page = "<p>Kept.</p>" + markup
    started = time.perf_counter()
    blocks = extract(page.encode(), "html")
    assert time.perf_counter() - started < 1
    assert blocks[0] == Block("text", "Kept.")


def test_constructs_left_open_run_to_the_end_of_the_page_as_in_a_browser() -> None:
    assert texts("<p>a</p><!-- <p>hidden</p>") == ["a"]
    assert texts("<p>a</p><script>if (x < y) { document.write('<p>no</p>') }") == ["a"]
    assert texts("<p>a</p><![CDATA[ x > y <p>no</p>") == ["a"]
    assert texts("<p>a</p><div class='x") == ["a"]


def test_text_and_markup_are_told_apart_as_html_parser_does() -> None:
    assert texts("<p>x < y &amp;&lt; z</p>") == ["x < y &< z"]
    assert texts("<p title='a>b'>quoted &gt; kept</p>") == ["quoted > kept"]
    assert texts('<p>one<br/>two</p><p a=b"c>three</p>') == ["one\ntwo", "three"]
    assert texts("<script>x = '</p><p>'</script><style>p { }</style><p>shown</p>") == ["shown"]
    assert texts("<p>before</ p><P>UPPER</P><!DOCTYPE x><?php echo 1 ?>after") == ["before", "UPPER", "after"]
    assert texts("<![if !supportLists]>- <![endif]>Word's list item") == ["- Word's list item"]
    assert texts('<a href="x>text</a><p>more</p>') == ["text", "more"]  # an unclosed quote
    assert texts("<p>&#0;nul &#x41; \x00end</p>") == ["\ufffdnul A end"]


class ReferenceParser(HTMLParser):
    """html.parser feeding the same block builder: what pages gave before."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out = _HtmlText()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.handle_starttag(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.out.handle_startendtag(tag)

    def handle_endtag(self, tag: str) -> None:
        self.out.handle_endtag(tag)

    def handle_data(self, data: str) -> None:
        self.out.handle_data(data)


def reference_blocks(page: str) -> list[Block]:
    parser = ReferenceParser()
    parser.feed(page)
    parser.close()
    parser.out.close()
    return parser.out.blocks


def test_well_formed_pages_give_the_blocks_html_parser_gave() -> None:
    pages = [
        (DATA / "rag" / "recycling_guide.html").read_text(),
        make_html(
            [("h1", "T"), ("p", "a & b"), ("table", "k|v\n1|2"), ("pre", "x < y"), ("li", "a\nb")]
        ).decode(),
        "<html><body><nav>menu</nav><h2 id='x' class=\"y\">Title</h2><p>One <b>two</b><br>three</p>"
        "<table><tr><td>a<table><tr><td>inner</td></tr></table></td><td>b</td></tr></table>"
        "<!-- a comment --><pre>  code\n  <i>more</i></pre><svg><text>no</text></svg><ul><li>i</li></ul>",
    ]
    for page in pages:
        assert html_blocks(page) == reference_blocks(page)
