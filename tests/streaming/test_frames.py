"""Frames are exact bytes: ids, compact JSON, the [DONE] literal, the error event."""

from __future__ import annotations

import json

from chatstream.streaming import frames
from tests.support.sse import parse_bytes


def test_delta_frame_bytes() -> None:
    assert frames.delta(7, "hi") == b'id: 7\ndata: {"type":"delta","content":"hi"}\n\n'


def test_content_that_looks_like_sse_stays_inside_json() -> None:
    text = 'a\n\ndata: [DONE]\r\nid: 99\revent: error\n: ping "q" \\ 😀 中文\u2028end'
    raw = frames.delta(1, text)
    assert raw.count(b"\n") == 3  # id line, data line, blank line: nothing from the content
    assert b"\r" not in raw
    (frame,) = parse_bytes(raw)
    assert frame.id == "1" and frame.event is None
    assert json.loads(frame.text)["content"] == text


def test_done_error_and_ping() -> None:
    assert frames.done(3) == b"id: 3\ndata: [DONE]\n\n"
    assert frames.error(4, 5003, 'bad "x"') == (
        b'id: 4\nevent: error\ndata: {"type":"error","code":5003,"message":"bad \\"x\\""}\n\n'
    )
    assert frames.PING == b": ping\n\n"
    assert frames.data(1, {"sessionId": "s"}) == b'id: 1\ndata: {"sessionId":"s"}\n\n'
