"""Reading back the journal of a dead instance: each session's newest answer and its text.

The format is streaming/journal.py's. Reading stops at the first batch that is cut off or fails
its crc: a crash can only tear the last one, and none of its frames had been published.
"""

from __future__ import annotations

import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

from chatstream.streaming.frames import text_of
from chatstream.streaming.journal import END, FRAMES, OPEN, RECORD, ROW, ROW_ID
from chatstream.streaming.journal_writer import BATCH, MAGIC

log = logging.getLogger("chatstream.journal")


@dataclass(slots=True)
class JournaledAnswer:
    """The newest answer of a session in a journal, as far as its last whole batch."""

    session_id: str
    context: bytes  # what new_log() was given
    message_id: int | None = None  # its row, if saved
    ended: bool = False
    bodies: list[bytes] = field(default_factory=list)

    @property
    def text(self) -> str:
        return text_of(b"".join(self.bodies))


def replay(path: Path) -> list[JournaledAnswer]:
    """The newest answer of each session in a journal, up to its last whole batch."""
    data = path.read_bytes()
    if not data.startswith(MAGIC):
        log.warning("%s is not an answer journal this version can read; ignored", path)
        return []
    by_number: dict[int, JournaledAnswer] = {}
    by_session: dict[str, JournaledAnswer] = {}
    at = len(MAGIC)
    while at + BATCH.size <= len(data):
        length, crc = BATCH.unpack_from(data, at)
        start = at + BATCH.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break  # cut off by the crash: none of it had been published
        _read_records(payload, by_number, by_session)
        at = start + length
    return list(by_session.values())


def _read_records(
    payload: bytes, by_number: dict[int, JournaledAnswer], by_session: dict[str, JournaledAnswer]
) -> None:
    at = 0
    while at + RECORD.size <= len(payload):
        kind, number, size = RECORD.unpack_from(payload, at)
        body = payload[at + RECORD.size : at + RECORD.size + size]
        at += RECORD.size + size
        if kind == OPEN:  # a later answer in the same session replaces the earlier one
            session_id, _, context = body.partition(b"\n")
            opened = JournaledAnswer(session_id.decode(), context)
            by_number[number] = by_session[opened.session_id] = opened
            continue
        answer = by_number.get(number)
        if answer is None:
            continue
        if kind == FRAMES:
            answer.bodies.append(body)
        elif kind == ROW:
            (answer.message_id,) = ROW_ID.unpack(body)
        elif kind == END:
            answer.ended = True
