"""SSE frames as bytes, encoded once per event (every reader gets the same bytes).

Content travels inside JSON, so newlines, quotes, `[DONE]` or `data:` in a model's text
can never break a frame. orjson escapes control characters and emits compact UTF-8.
"""

from __future__ import annotations

from typing import Any

import orjson

PING = b": ping\n\n"


def delta(seq: int, text: str) -> bytes:
    return b"id: %d\ndata: %b\n\n" % (seq, orjson.dumps({"type": "delta", "content": text}))


def data(seq: int, payload: dict[str, Any]) -> bytes:
    return b"id: %d\ndata: %b\n\n" % (seq, orjson.dumps(payload))


def error(seq: int, code: int, message: str) -> bytes:
    body = orjson.dumps({"type": "error", "code": code, "message": message})
    return b"id: %d\nevent: error\ndata: %b\n\n" % (seq, body)


def done(seq: int) -> bytes:
    return b"id: %d\ndata: [DONE]\n\n" % seq


def text_of(blob: bytes) -> str:
    """The answer's text in concatenated frames: their delta contents, in order.

    For rebuilding an answer from a journal or a mirror, never on the per-token path. A frame
    never holds a blank line (JSON escapes newlines), so the blank lines split them.
    """
    parts: list[str] = []
    for frame in blob.split(b"\n\n"):
        _, found, body = frame.partition(b"\ndata: ")
        if found and body.startswith(b'{"type":"delta"'):
            parts.append(orjson.loads(body)["content"])
    return "".join(parts)
