"""The answer journal: an answer's frames reach a file of this instance before any reader.

A crash of the process (kill -9, the OOM killer) keeps what was written into the page cache, so
at the next start the journal gives back every frame a client could have been sent, and the
answers cut off get their text up to there (services/recovery.py). There is no fsync: a power
cut may lose the tail, as it loses the page cache; the checkpoints in the database cover that.

Writes are batched. `AnswerLog.append` keeps a frame and marks its log pending; once per
event-loop iteration `flush()` writes the new frames of every pending log in one `os.write`
(O_APPEND), then makes them visible (`AnswerLog.publish`); the readers the appends woke run
after it. The per-token cost is a flag; the per-iteration cost, one write for all answers.

The file: `CSJ1`, then batches: `<u32 length><u32 crc32>` and `length` bytes of records. A batch
cut off by the crash (or failing its crc) ends the replay: none of its frames had been
published. A record is `<u8 kind><u32 answer number><u32 size>` and `size` bytes:
OPEN (an answer starts: its session id, a newline, and what the service needs to save its
row should the crash come first), ROW (its row's id, once saved), FRAMES (its frames since the
last record, as concatenated SSE frames) or END (it ended; its final text is in the database).
Reading it back: streaming/journal_replay.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from chatstream.config import Settings
from chatstream.streaming.log import AnswerLog

log = logging.getLogger("chatstream.journal")

MAGIC = b"CSJ1"
SUFFIX = ".journal"
BATCH = struct.Struct("<II")  # payload length, crc32 of the payload
RECORD = struct.Struct("<BII")  # kind, answer number, body length
ROW_ID = struct.Struct("<q")
OPEN, ROW, FRAMES, END = 1, 2, 3, 4
RETRY_S = 1.0  # a failed write or compaction is tried again after this long
REWRITE_BATCH_BYTES = 1 << 20  # a compaction writes batches of about this size


def journal_dir(data_dir: Path) -> Path:
    return data_dir / "journal"


def journal_files(directory: Path) -> dict[str, Path]:
    """The journals in a directory, by the id of the instance that wrote each."""
    return {path.name.removesuffix(SUFFIX): path for path in directory.glob("*" + SUFFIX)}


def discard(path: Path) -> None:
    """Deletes a journal that is no longer needed (and a compaction it left half done)."""
    path.unlink(missing_ok=True)
    path.with_name(path.name + ".tmp").unlink(missing_ok=True)


def open_journal(settings: Settings, instance_id: str) -> Journal | None:
    """This instance's journal; None when it is off or can't be created (which is logged)."""
    if not settings.journal:
        return None
    directory = journal_dir(settings.data_dir)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        return Journal(directory / (instance_id + SUFFIX), max_bytes=settings.journal_max_bytes)
    except OSError as exc:
        log.error(
            "the answer journal can't be created in %s (%s): a crash will lose up to CHECKPOINT_S "
            "of the answers being written",
            directory,
            exc,
        )
        return None


@dataclass(slots=True)
class _Open:
    """An answer being journaled: its number in the file, and the records a compaction repeats."""

    number: int
    opening: bytes
    row: bytes = b""


class Journal:
    """This instance's journal file: the frames of all answers, written once per loop iteration."""

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._fd, self._size = _create(path)
        self._compact_at = max_bytes
        self._retry_at = 0.0
        self._broken = False  # a write failed: frames go out unjournaled until a rewrite succeeds
        self._answers: dict[AnswerLog, _Open] = {}
        self._last_number = 0
        self._notes: list[bytes] = []  # OPEN and ROW records not written yet
        self._pending: list[AnswerLog] = []
        self._scheduled = False

    @property
    def open_answers(self) -> int:
        return len(self._answers)

    def new_log(self, session_id: str, context: bytes = b"") -> AnswerLog:
        """The log of an answer starting in this session, journaled.

        `context` is kept for the replay: what it takes to save the answer's row if the crash
        comes before the row is saved (the row is written while the first frames go out).
        """
        answer_log = AnswerLog(self)
        self._last_number += 1
        body = session_id.encode() + b"\n" + context
        opening = RECORD.pack(OPEN, self._last_number, len(body)) + body
        self._answers[answer_log] = _Open(self._last_number, opening)
        self._notes.append(opening)
        return answer_log

    def row_saved(self, answer_log: AnswerLog, message_id: int) -> None:
        """The answer's row is in the database: the replay restores its text there."""
        entry = self._answers.get(answer_log)
        if entry is None:
            return
        entry.row = RECORD.pack(ROW, entry.number, ROW_ID.size) + ROW_ID.pack(message_id)
        self._notes.append(entry.row)
        self._schedule()

    def enqueue(self, answer_log: AnswerLog) -> None:
        """FrameJournal: the log has new frames or its end; written and published this iteration."""
        self._pending.append(answer_log)
        self._schedule()

    def _schedule(self) -> None:
        # One write per loop iteration, however many frames of however many answers it brings.
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        """Writes what the pending logs have new in one batch, then lets their readers have it."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        try:
            records = self._records(pending)
            if self._fd >= 0 and not self._broken:
                self._append(records)
        finally:
            for answer_log in pending:  # even when the write failed: answers go on regardless
                answer_log.publish()
        if self._fd >= 0 and (self._broken or self._size >= self._compact_at):
            now = time.monotonic()
            if now >= self._retry_at:
                self._retry_at = now + RETRY_S
                self._rewrite()

    def close(self, *, delete: bool) -> None:
        """At shutdown: writes what is pending; deletes the file when nothing in it is needed."""
        if self._fd < 0:
            return
        self.flush()
        os.close(self._fd)
        self._fd = -1
        if delete:
            discard(self.path)

    def _records(self, pending: list[AnswerLog]) -> list[bytes]:
        parts, self._notes = self._notes, []
        for answer_log in pending:
            entry = self._answers.get(answer_log)
            if entry is None:  # appended to after its end: nothing more to keep
                continue
            number = entry.number
            frames, start, end = answer_log.frames, answer_log.visible, len(answer_log.frames)
            if end > start:
                body = frames[start] if end - start == 1 else b"".join(frames[start:end])
                parts.append(RECORD.pack(FRAMES, number, len(body)))
                parts.append(body)
            if answer_log.ending:
                parts.append(RECORD.pack(END, number, 0))
                del self._answers[answer_log]
        return parts

    def _append(self, records: list[bytes]) -> None:
        if not records:
            return
        payload = b"".join(records)
        batch = BATCH.pack(len(payload), zlib.crc32(payload)) + payload
        try:
            _write_all(self._fd, batch)
        except OSError as exc:
            # A torn batch would hide every later one from the replay: cut it off. The rewrite
            # that ends the outage puts back what this batch and the ones skipped meanwhile held.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            self._broken = True
            log.error(
                "the answer journal can't be written (%s): answers go on, but until it can, a crash "
                "loses up to CHECKPOINT_S of their text",
                exc,
            )
            return
        self._size += len(batch)

    def _rewrite(self) -> None:
        """A new file holding the open answers' frames replaces this one (compaction, or repair)."""
        temporary = self.path.with_name(self.path.name + ".tmp")
        fd = -1
        try:
            fd, size = _create(temporary)
            records: list[bytes] = []
            held = 0
            for answer_log, entry in self._answers.items():
                body = b"".join(answer_log.frames[: answer_log.visible])
                records += (entry.opening, entry.row, RECORD.pack(FRAMES, entry.number, len(body)), body)
                held += len(entry.opening) + len(body)
                if held >= REWRITE_BATCH_BYTES:
                    size += _write_batch(fd, records)
                    records, held = [], 0
            size += _write_batch(fd, records)
            os.replace(temporary, self.path)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            if not self._broken:  # a broken journal has said so already
                log.warning("compacting the answer journal failed (%s); trying again in %.0f s", exc, RETRY_S)
            return
        os.close(self._fd)
        self._fd, self._size = fd, size
        self._notes.clear()  # the open answers' OPEN and ROW records are in the new file
        # A journal of many long answers may stay above the limit: don't compact it every iteration.
        self._compact_at = max(self._max_bytes, 2 * size)
        if self._broken:
            self._broken = False
            log.warning("the answer journal is written again")


def _create(path: Path) -> tuple[int, int]:
    """A new, empty journal file (owner-only), open for appending; its fd and size."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        _write_all(fd, MAGIC)
    except OSError:
        os.close(fd)
        raise
    return fd, len(MAGIC)


def _write_batch(fd: int, records: list[bytes]) -> int:
    if not records:
        return 0
    payload = b"".join(records)
    _write_all(fd, BATCH.pack(len(payload), zlib.crc32(payload)) + payload)
    return BATCH.size + len(payload)


def _write_all(fd: int, data: bytes) -> None:
    """One write; a short one (the disk filled up) is an error, not something to finish later."""
    if os.write(fd, data) != len(data):
        raise OSError(errno.ENOSPC, "short write")
