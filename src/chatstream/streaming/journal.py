"""The answer journal: an answer's frames reach a file of this instance before any reader.

A crash of the process (kill -9, the OOM killer) keeps what was written into the page cache, so
at the next start the journal gives back every frame a client could have been sent, and the
answers cut off get their text up to there (services/recovery.py). There is no fsync: a power
cut may lose the tail, as it loses the page cache; the checkpoints in the database cover that.

Writes are batched, and never made on the event loop: a write into the page cache usually takes
microseconds, but one that meets the file system's own journal commit can wait for milliseconds,
and the loop serves every stream. `AnswerLog.append` keeps a frame and marks its log pending; once
per event-loop iteration `flush()` gathers the new frames of every pending log into one batch for
the journal's writer thread, which writes whatever batches have piled up in one `os.write`
(O_APPEND) and then has the loop publish them (`AnswerLog.publish`): readers get frames only after
that. The per-token cost is a flag; the per-iteration cost, a list handed to a thread.

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
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
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


Published = list[tuple[AnswerLog, int, bool]]  # (log, frames written, its end written)


@dataclass(slots=True)
class _Batch:
    """One flush: framed records, and what readers may have once they are in the file."""

    data: bytes
    published: Published


@dataclass(slots=True)
class _Rewrite:
    """A compaction (or the repair after a failed write): these records become the whole file."""

    records: list[bytes]
    published: Published = field(default_factory=list)


class Journal:
    """This instance's journal file: the frames of all answers, written once per loop iteration."""

    def __init__(self, path: Path, *, max_bytes: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._writer = _Writer(path, max_bytes)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._retry_at = 0.0
        self._answers: dict[AnswerLog, _Open] = {}
        self._last_number = 0
        self._notes: list[bytes] = []  # OPEN and ROW records not written yet
        self._pending: list[AnswerLog] = []
        self._scheduled = False
        self._in_flight = 0  # batches and rewrites handed to the writer, not yet published

    @property
    def open_answers(self) -> int:
        return len(self._answers)

    @property
    def settled(self) -> bool:
        """Everything appended so far is in the file and published (tests wait for this)."""
        return not self._scheduled and not self._in_flight

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
        """FrameJournal: the log has new frames or its end, for this iteration's batch."""
        self._pending.append(answer_log)
        self._schedule()

    def _schedule(self) -> None:
        # One batch per loop iteration, however many frames of however many answers it brings.
        if not self._scheduled:
            self._scheduled = True
            self._loop = self._loop or asyncio.get_running_loop()
            self._loop.call_soon(self.flush)

    def flush(self) -> None:
        """Hands what the pending logs have new to the writer, as one batch."""
        self._scheduled = False
        pending, self._pending = self._pending, []
        records, published = self._records(pending)
        if records and self._writer.writing:
            payload = b"".join(records)
            self._submit(_Batch(BATCH.pack(len(payload), zlib.crc32(payload)) + payload, published))
        else:  # nothing to write, or no file to write it to: answers go on regardless
            self._published(published)
        writer = self._writer
        if writer.writing and (writer.broken or writer.size >= writer.compact_at):
            now = time.monotonic()
            if now >= self._retry_at:
                self._retry_at = now + RETRY_S
                self._submit(_Rewrite(self._snapshot()))

    def close(self, *, delete: bool) -> None:
        """At shutdown: writes what is pending, stops the writer; deletes the file when nothing in it
        is needed."""
        if not self._writer.writing:
            return
        self.flush()
        self._writer.stop()
        if delete:
            discard(self.path)

    def _submit(self, task: _Batch | _Rewrite) -> None:
        self._in_flight += 1
        self._writer.submit(task, self._written)

    def _written(self, published: Published) -> None:
        self._in_flight -= 1
        self._published(published)

    def _published(self, published: Published) -> None:
        for answer_log, upto, ended in published:
            answer_log.publish(upto, ended)

    def _records(self, pending: list[AnswerLog]) -> tuple[list[bytes], Published]:
        parts, self._notes = self._notes, []
        published: Published = []
        for answer_log in pending:
            answer_log.pending = False
            end, ending = len(answer_log.frames), answer_log.ending
            entry = self._answers.get(answer_log)
            if entry is not None:
                start = answer_log.journaled
                if end > start:
                    frames = answer_log.frames
                    body = frames[start] if end - start == 1 else b"".join(frames[start:end])
                    parts.append(RECORD.pack(FRAMES, entry.number, len(body)))
                    parts.append(body)
                if ending:
                    parts.append(RECORD.pack(END, entry.number, 0))
                    del self._answers[answer_log]
            answer_log.journaled = end
            published.append((answer_log, end, ending))
        return parts, published

    def _snapshot(self) -> list[bytes]:
        """The records of a new file: the open answers, with their frames so far."""
        records: list[bytes] = []
        for answer_log, entry in self._answers.items():
            body = b"".join(answer_log.frames[: answer_log.journaled])
            records += (entry.opening, entry.row, RECORD.pack(FRAMES, entry.number, len(body)), body)
        self._notes.clear()  # the open answers' OPEN and ROW records are in the snapshot
        return records


class _Writer:
    """The thread that owns the journal's file: appends batches in order, and compacts it."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._fd, self.size = _create(path)
        self.compact_at = max_bytes
        self.broken = False  # a write failed: frames go out unjournaled until a rewrite succeeds
        self._tasks: list[tuple[_Batch | _Rewrite, Callable[[Published], None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._write_forever, name="chatstream-journal", daemon=True)
        self._thread.start()

    @property
    def writing(self) -> bool:
        return self._fd >= 0 and not self._stopping

    def submit(self, task: _Batch | _Rewrite, published: Callable[[Published], None]) -> None:
        """Loop side: the task is written after those submitted before; `published` is then called
        on the loop with what readers may have."""
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        with self._wake:
            self._tasks.append((task, published))
            self._wake.notify()

    def stop(self) -> None:
        """Writes what was submitted, then ends the thread and closes the file (blocking)."""
        with self._wake:
            self._stopping = True
            self._wake.notify()
        self._thread.join()
        os.close(self._fd)
        self._fd = -1

    def _write_forever(self) -> None:
        while True:
            with self._wake:
                while not self._tasks and not self._stopping:
                    self._wake.wait()
                tasks, self._tasks = self._tasks, []
                if not tasks and self._stopping:
                    return
            # A rewrite's snapshot holds everything submitted before it: only the newest counts, and
            # only the batches after it still need writing.
            first = 0
            for i, (task, _) in enumerate(tasks):
                if isinstance(task, _Rewrite):
                    first, newest = i + 1, task
            if first:
                self._rewrite(newest)
            batches = [task.data for task, _ in tasks[first:] if isinstance(task, _Batch)]
            if batches:
                self._append(b"".join(batches))
            loop = self._loop
            if loop is not None:
                for task, published in tasks:
                    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody is reading
                        loop.call_soon_threadsafe(published, task.published)

    def _append(self, data: bytes) -> None:
        if self.broken:  # until a rewrite repairs the file, batches would leave holes in it
            return
        try:
            _write_all(self._fd, data)
        except OSError as exc:
            # A torn batch would hide every later one from the replay: cut it off. The rewrite
            # that ends the outage puts back what this batch and the ones skipped meanwhile held.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self.size)
            self.broken = True
            log.error(
                "the answer journal can't be written (%s): answers go on, but until it can, a crash "
                "loses up to CHECKPOINT_S of their text",
                exc,
            )
            return
        self.size += len(data)

    def _rewrite(self, task: _Rewrite) -> None:
        """A new file holding the snapshot's records replaces this one (compaction, or repair)."""
        temporary = self._path.with_name(self._path.name + ".tmp")
        fd = -1
        try:
            fd, size = _create(temporary)
            records: list[bytes] = []
            held = 0
            for record in task.records:
                records.append(record)
                held += len(record)
                if held >= REWRITE_BATCH_BYTES:
                    size += _write_batch(fd, records)
                    records, held = [], 0
            size += _write_batch(fd, records)
            os.replace(temporary, self._path)
        except OSError as exc:
            if fd >= 0:
                os.close(fd)
            with contextlib.suppress(OSError):
                temporary.unlink()
            if not self.broken:  # a broken journal has said so already
                log.warning("compacting the answer journal failed (%s); trying again in %.0f s", exc, RETRY_S)
            return
        os.close(self._fd)
        self._fd, self.size = fd, size
        # A journal of many long answers may stay above the limit: don't compact it every iteration.
        self.compact_at = max(self._max_bytes, 2 * size)
        if self.broken:
            self.broken = False
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
