"""The frame log of one answer: the run appends encoded frames, readers replay and follow.

Frame n (the SSE `id:`) is `frames[n - 1]`. Readers may send `frames[:visible]` only. Without
a journal an appended frame is visible at once; with one (streaming/journal.py) it becomes
visible once the journal has written it to its file: no reader, here or on another instance,
ever has a frame that a crash could take back. The journal collects what every answer appended
during an event-loop iteration into one batch, which its own thread writes; readers are woken
when it is written (`publish`), and so is the Redis mirror (`on_publish`), which sends an
answer's start and end on at once: a client that has seen an answer end can ask another instance
about it straight away. Each waiting reader has a future of its own (a shared one
would be cancelled for everybody when one reader goes away).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class FrameJournal(Protocol):
    """Where frames go before any reader has them (streaming/journal.py's Journal)."""

    def enqueue(self, answer_log: AnswerLog) -> None:
        """The log has frames (or its end) to write; the journal calls `publish()` once it has."""


class AnswerLog:
    __slots__ = (
        "_journal",
        "_waiters",
        "closed",
        "ending",
        "frames",
        "journaled",
        "last_activity",
        "on_publish",
        "pending",
        "visible",
    )

    def __init__(self, journal: FrameJournal | None = None) -> None:
        self.frames: list[bytes] = []
        self.visible = 0  # frames[:visible] may be sent
        self.journaled = 0  # frames[:journaled] are in the journal's file or on their way there
        self.ending = False  # close() was called
        self.closed = False  # ended, and every frame is visible: readers drain and stop
        self.pending = False  # in the journal's next batch
        self.last_activity = time.monotonic()
        self.on_publish: Callable[[], None] | None = None  # told after readers are woken
        self._journal = journal
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def next_seq(self) -> int:
        return len(self.frames) + 1

    def append(self, frame: bytes) -> None:
        # THE per-token call: with a journal, a flag more (the write is batched per iteration).
        self.frames.append(frame)
        if self._journal is None:
            self.visible = len(self.frames)
            self._wake()
        elif not self.pending:
            self.pending = True
            self._journal.enqueue(self)

    def close(self) -> None:
        """No frame will follow; readers drain what is there and end."""
        self.ending = True
        if self._journal is None:
            self.closed = True
            self._wake()
        elif not self.pending:
            self.pending = True
            self._journal.enqueue(self)

    def publish(self, upto: int, ended: bool) -> None:
        """The journal's file has frames[:upto] (and the end, with `ended`): readers may have them."""
        self.visible = max(self.visible, upto)
        self.closed = self.closed or ended
        self._wake()
        if self.on_publish is not None:
            self.on_publish()

    def nudge(self) -> None:
        """Wake readers with nothing new, so they send a heartbeat."""
        self._wake()

    async def wait(self) -> None:
        """Until frames become visible, or the log closes or is nudged."""
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        await waiter

    def _wake(self) -> None:
        self.last_activity = time.monotonic()
        waiters = self._waiters
        if waiters:
            self._waiters = []
            for waiter in waiters:
                if not waiter.done():  # a reader that went away cancelled its own
                    waiter.set_result(None)
