"""The frame log of one answer: the run appends encoded frames, readers replay and follow.

Frame n (the SSE `id:`) is `frames[n - 1]`. Each waiting reader has a future of its own
(a shared one would be cancelled for everybody when one reader goes away).
"""

from __future__ import annotations

import asyncio
import time


class AnswerLog:
    __slots__ = ("_waiters", "closed", "frames", "last_activity")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False
        self.last_activity = time.monotonic()
        self._waiters: list[asyncio.Future[None]] = []

    @property
    def next_seq(self) -> int:
        return len(self.frames) + 1

    def append(self, frame: bytes) -> None:
        self.frames.append(frame)
        self._wake()

    def close(self) -> None:
        """No frame will follow; readers drain what is there and end."""
        self.closed = True
        self._wake()

    def nudge(self) -> None:
        """Wake readers with nothing new, so they send a heartbeat."""
        self._wake()

    async def wait(self) -> None:
        """Until the next append, close or nudge."""
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
