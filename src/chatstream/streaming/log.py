"""The frame log of one answer: the run appends encoded frames, readers replay and follow.

Frame n (the SSE `id:`) is `frames[n - 1]`. All readers of a log await one shared future,
so an appended frame costs one wake-up however many tabs are reading.
"""

from __future__ import annotations

import asyncio
import time


class AnswerLog:
    __slots__ = ("_changed", "closed", "frames", "last_activity")

    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.closed = False
        self.last_activity = time.monotonic()
        self._changed: asyncio.Future[None] | None = None

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
        if self._changed is None:
            self._changed = asyncio.get_running_loop().create_future()
        await self._changed

    def _wake(self) -> None:
        self.last_activity = time.monotonic()
        changed = self._changed
        if changed is not None:
            self._changed = None
            changed.set_result(None)
