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
Writing it: streaming/journal_writer.py; reading it back: streaming/journal_replay.py.
"""

from __future__ import annotations

import asyncio
import logging
import struct
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

from chatstream.config import Settings
from chatstream.streaming.journal_writer import BATCH, RETRY_S, Batch, JournalWriter, Published, Rewrite
from chatstream.streaming.log import AnswerLog

log = logging.getLogger("chatstream.journal")

SUFFIX = ".journal"
RECORD = struct.Struct("<BII")  # kind, answer number, body length
ROW_ID = struct.Struct("<q")
OPEN, ROW, FRAMES, END = 1, 2, 3, 4


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
        self._writer = JournalWriter(path, max_bytes)
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
            self._submit(Batch(BATCH.pack(len(payload), zlib.crc32(payload)) + payload, published))
        else:  # nothing to write, or no file to write it to: answers go on regardless
            self._published(published)
        writer = self._writer
        if writer.writing and (writer.broken or writer.size >= writer.compact_at):
            now = time.monotonic()
            if now >= self._retry_at:
                self._retry_at = now + RETRY_S
                self._submit(Rewrite(self._snapshot()))

    def close(self, *, delete: bool) -> None:
        """At shutdown: writes what is pending, stops the writer; deletes the file when nothing in it
        is needed."""
        if not self._writer.writing:
            return
        self.flush()
        self._writer.stop()
        if delete:
            discard(self.path)

    def _submit(self, task: Batch | Rewrite) -> None:
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
