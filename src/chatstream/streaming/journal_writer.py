"""The thread that owns this instance's journal file (streaming/journal.py): it appends the
batches the loop hands it, in order, compacts the file when asked, and has the loop publish
each batch's frames once they are in the file. Writes never happen on the event loop: one that
meets the file system's own journal commit can wait for milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import struct
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from chatstream.streaming.log import AnswerLog

log = logging.getLogger("chatstream.journal")

MAGIC = b"CSJ1"
BATCH = struct.Struct("<II")  # payload length, crc32 of the payload
RETRY_S = 1.0  # a failed write or compaction is tried again after this long
REWRITE_BATCH_BYTES = 1 << 20  # a compaction writes batches of about this size

Published = list[tuple[AnswerLog, int, bool]]  # (log, frames written, its end written)


@dataclass(slots=True)
class Batch:
    """One flush: framed records, and what readers may have once they are in the file."""

    data: bytes
    published: Published


@dataclass(slots=True)
class Rewrite:
    """A compaction (or the repair after a failed write): these records become the whole file."""

    records: list[bytes]
    published: Published = field(default_factory=list)


class JournalWriter:
    """The thread that owns the journal's file: appends batches in order, and compacts it."""

    def __init__(self, path: Path, max_bytes: int) -> None:
        self._path = path
        self._max_bytes = max_bytes
        self._fd, self.size = _create(path)
        self.compact_at = max_bytes
        self.broken = False  # a write failed: frames go out unjournaled until a rewrite succeeds
        self._tasks: list[tuple[Batch | Rewrite, Callable[[Published], None]]] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._write_forever, name="chatstream-journal", daemon=True)
        self._thread.start()

    @property
    def writing(self) -> bool:
        return self._fd >= 0 and not self._stopping

    def submit(self, task: Batch | Rewrite, published: Callable[[Published], None]) -> None:
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
                if isinstance(task, Rewrite):
                    first, newest = i + 1, task
            if first:
                self._rewrite(newest)
            batches = [task.data for task, _ in tasks[first:] if isinstance(task, Batch)]
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

    def _rewrite(self, task: Rewrite) -> None:
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
