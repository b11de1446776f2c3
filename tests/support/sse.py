"""A small, strict SSE reader for tests: frames as (id, event, data) plus comment lines."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Frame:
    id: str | None = None
    event: str | None = None
    data: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.data)

    def json(self) -> Any:
        return json.loads(self.text)


def parse(lines: Iterable[str]) -> Iterator[Frame]:
    """Frames from decoded lines (without line endings); a blank line ends a frame."""
    frame = Frame()
    for line in lines:
        if not line:
            if frame.data or frame.comments or frame.id is not None:
                yield frame
            frame = Frame()
        elif line.startswith(":"):
            frame.comments.append(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "data":
                frame.data.append(value)
            elif name == "id":
                frame.id = value
            elif name == "event":
                frame.event = value
    if frame.data or frame.comments:
        yield frame


def parse_bytes(body: bytes) -> list[Frame]:
    return list(parse(body.decode("utf-8").replace("\r\n", "\n").split("\n")))


def answer_text(frames: Iterable[Frame]) -> str:
    """The concatenated `delta` contents, as the seed's client builds them."""
    out = []
    for f in frames:
        if f.data and f.text.startswith("{"):
            obj = f.json()
            if obj.get("type") == "delta":
                out.append(obj["content"])
    return "".join(out)
