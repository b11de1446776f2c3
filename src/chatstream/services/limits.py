"""In-process sliding-window counters (login failures per client and name)."""

from __future__ import annotations

import time
from collections import deque


class SlidingWindow:
    def __init__(self, limit: int, window_s: float) -> None:
        self._limit = limit
        self._window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def _recent(self, key: str, now: float) -> deque[float]:
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self._window_s:
            hits.popleft()
        return hits

    def exceeded(self, key: str) -> bool:
        hits = self._recent(key, time.monotonic())
        if not hits:
            self._hits.pop(key, None)
        return len(hits) >= self._limit

    def hit(self, key: str) -> None:
        now = time.monotonic()
        self._recent(key, now).append(now)
        if len(self._hits) > 100_000:  # bound memory under a flood of distinct keys
            self._hits.clear()

    def reset(self, key: str) -> None:
        self._hits.pop(key, None)
