"""Answers shared across instances through Redis: frame logs, stop requests, live instances.

- Frames: each answer's frames are mirrored into the Stream `chatstream:answer:{session}`.
  Every `flush_s` (and at once when an answer starts or ends) one pipelined XADD per changed
  answer appends the frames since the last one as a single entry: field `f` is the
  concatenated frames, `s` the first frame's number, and the entry id `0-{last frame
  number}`, so `XREAD` after `0-{n}` resumes after frame n. The first entry carries `o`, the
  instance writing the answer; the last carries `end`, and the stream then expires after the
  retention time. Only visible frames are mirrored (with a journal, those already in its file).
  The local memory log stays the source of truth: the owner's readers never touch Redis.
- Recovery: an instance that died mid-answer left its frames in the stream, up to its last
  flush; `mirrored_frames` gives them to the instance that marks the answer `interrupted`.
- Stop: `PUBLISH chatstream:stop {session}`; the instance running that answer cancels it.
- Liveness: each instance keeps `chatstream:instance:{id}` alive, so the others can tell an
  answer left `streaming` by a dead instance from one still being written.

When Redis is unreachable, answers go on locally; the mirror retries, and once Redis is back
rewrites the streams of running answers from memory (so a Redis restart loses nothing of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError, ResponseError

log = logging.getLogger("chatstream.redis")

STOP_CHANNEL = "chatstream:stop"
RUNNING_TTL_S = 24 * 3600  # a stream whose writer died without ending it goes away eventually


def answer_key(session_id: str) -> str:
    return f"chatstream:answer:{session_id}"


def instance_key(instance_id: str) -> str:
    return f"chatstream:instance:{instance_id}"


class FrameLog(Protocol):
    """An answer's frames as streaming.log.AnswerLog keeps them: `frames[:visible]` may be read."""

    frames: list[bytes]
    visible: int
    closed: bool
    on_publish: Callable[[], None] | None  # with a journal: frames just became visible


@dataclass(slots=True)
class _Mirrored:
    log: FrameLog
    published: int = 0  # frames already in Redis


class RedisAnswerBus:
    def __init__(
        self,
        url: str,
        *,
        instance_id: str,
        retention_s: float,
        max_entries: int,
        flush_s: float = 0.25,
        heartbeat_s: float = 15.0,
        instance_ttl_s: float = 15.0,
        ping: bytes = b": ping\n\n",
    ) -> None:
        # Any: redis-py's response types are unions of every shape a reply can take.
        self._redis: Any = aioredis.from_url(url, socket_connect_timeout=2, health_check_interval=10)
        self._instance_id = instance_id
        self._retention_s = int(retention_s)
        self._max_entries = max_entries
        self._flush_s = flush_s
        self._heartbeat_s = heartbeat_s
        self._ping = ping  # what a remote reader gets while the answer is quiet
        self._instance_ttl_ms = int(instance_ttl_s * 1000)
        self._mirrored: dict[str, _Mirrored] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._resync = False  # set after an outage: rewrite running answers' streams
        self._wake = asyncio.Event()  # flush the urgent answers now
        self._urgent: set[str] = set()  # answers that just started or ended
        self.healthy = True

    async def start(self, on_stop: Callable[[str], object]) -> None:
        self._tasks = [
            asyncio.create_task(self._mirror_forever(), name="chatstream-redis-mirror"),
            asyncio.create_task(self._stops_forever(on_stop), name="chatstream-redis-stops"),
            asyncio.create_task(self._alive_forever(), name="chatstream-redis-alive"),
        ]

    async def start_liveness(self) -> None:
        """Only announce this process alive (a CLI indexing documents: no answers to carry)."""
        self._tasks = [asyncio.create_task(self._alive_forever(), name="chatstream-redis-alive")]

    def track(self, session_id: str, answer_log: FrameLog) -> None:
        """Mirror this answer's frames from now until it ends (its start goes out at once)."""
        mirrored = _Mirrored(answer_log)
        self._mirrored[session_id] = mirrored
        # With a journal, frames become visible when its writer has them in the file, a moment
        # after they were appended: the start and the end go out then, not a tick later.
        answer_log.on_publish = functools.partial(self._published, session_id, mirrored)
        self.flush_soon(session_id)

    def _published(self, session_id: str, mirrored: _Mirrored) -> None:
        if mirrored.published == 0 or mirrored.log.closed:
            self.flush_soon(session_id)

    def flush_soon(self, session_id: str) -> None:
        """Mirror this answer without waiting for the next tick (it started or ended)."""
        self._urgent.add(session_id)
        self._wake.set()

    # -- mirroring -----------------------------------------------------------------------------

    async def _mirror_forever(self) -> None:
        """Every answer each `flush_s`; in between, only those that started or ended."""
        next_tick = time.monotonic() + self._flush_s
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, next_tick - time.monotonic()))
            self._wake.clear()
            if time.monotonic() >= next_tick or self._resync:
                next_tick = time.monotonic() + self._flush_s
                chosen = list(self._mirrored)
            else:
                chosen = [s for s in self._urgent if s in self._mirrored]
            self._urgent.clear()
            if chosen:
                await self._flush(chosen)

    async def _flush(self, session_ids: list[str] | None = None) -> None:
        pending = []
        pipe = self._redis.pipeline(transaction=False)
        resync, self._resync = self._resync, False
        if resync or session_ids is None:
            session_ids = list(self._mirrored)
        for session_id in session_ids:
            mirrored = self._mirrored[session_id]
            answer_log = mirrored.log
            key = answer_key(session_id)
            if resync:
                mirrored.published = 0
            if mirrored.published == 0:
                # A new answer (or a rewrite): the stream of an earlier answer in this session must
                # go, or its higher entry ids would make these XADDs look done already.
                pipe.delete(key)
            end = answer_log.visible
            closed = answer_log.closed  # only once every frame is visible
            if end > mirrored.published:
                fields: dict[str, bytes | int | str] = {
                    "f": b"".join(answer_log.frames[mirrored.published : end]),
                    "s": mirrored.published + 1,
                }
                if mirrored.published == 0:
                    fields["o"] = self._instance_id
                if closed:
                    fields["end"] = 1
                pipe.xadd(key, fields, id=f"0-{end}", maxlen=self._max_entries, approximate=True)
                if closed or mirrored.published == 0:  # not every flush: commands cost CPU here
                    pipe.expire(key, self._retention_s if closed else RUNNING_TTL_S)
                pending.append((session_id, mirrored, end, closed))
            elif closed:
                del self._mirrored[session_id]
        if not pending and not resync:
            return
        try:
            results = await pipe.execute(raise_on_error=False)
        except (RedisError, OSError) as exc:
            self._outage(exc)
            return
        errors = [r for r in results if isinstance(r, Exception) and not _already_there(r)]
        if errors:
            self._outage(errors[0])
            return
        self._reachable()
        for session_id, mirrored, end, closed in pending:
            mirrored.published = end
            if closed:
                self._mirrored.pop(session_id, None)

    def _reachable(self) -> None:
        if not self.healthy:
            log.warning("Redis is reachable again; answers are shared across instances again")
            self.healthy = True

    def _outage(self, exc: BaseException) -> None:
        if self.healthy:
            log.warning(
                "Redis unreachable (%s): answers go on, but other instances can't follow or stop "
                "them until it is back",
                exc,
            )
        self.healthy = False
        self._resync = True

    # -- following from another instance -------------------------------------------------------

    async def follow(self, session_id: str, after: int) -> AsyncIterator[bytes] | None:
        """Frames after `after` of an answer mirrored by any instance; None if there is none."""
        key = answer_key(session_id)
        if not await self._redis.exists(key):
            return None
        return self._follow(key, after)

    async def _follow(self, key: str, after: int) -> AsyncIterator[bytes]:
        seen = after  # the last frame number this reader has
        block_ms = int(self._heartbeat_s * 1000)
        if await self._ended_before(key, seen):
            return
        while True:
            found = await self._redis.xread({key: f"0-{seen}"}, block=block_ms, count=100)
            if not found:
                if await self._ended_before(key, seen):
                    return
                yield self._ping
                continue
            for entry_id, fields in found[0][1]:
                blob: bytes = fields[b"f"]
                first = int(fields[b"s"])
                if first <= seen:  # the entry began before where this reader is (or was rewritten)
                    blob = b"".join(f + b"\n\n" for f in blob.split(b"\n\n")[seen - first + 1 : -1])
                seen = int(entry_id.split(b"-")[1])
                if blob:
                    yield blob
                if b"end" in fields:
                    return

    async def _ended_before(self, key: str, seen: int) -> bool:
        """Whether the answer is over with nothing after frame `seen` (or its stream is gone)."""
        last = await self._redis.xrevrange(key, count=1)
        return not last or (b"end" in last[0][1] and int(last[0][0].split(b"-")[1]) <= seen)

    async def mirrored_frames(self, session_ids: list[str], owner: str) -> dict[str, bytes]:
        """The frames `owner` mirrored of its answer in each of these sessions, from the first one.

        A session is left out when its stream is gone, holds another instance's answer, or lost
        its first entries to the length cap. What the owner wrote after its last flush (at most
        `flush_s`) is not there.
        """
        pipe = self._redis.pipeline(transaction=False)
        for session_id in session_ids:
            pipe.xrange(answer_key(session_id))
        found: dict[str, bytes] = {}
        for session_id, entries in zip(session_ids, await pipe.execute(), strict=True):
            if not entries:
                continue
            first = entries[0][1]
            if first.get(b"o") == owner.encode() and int(first[b"s"]) == 1:
                found[session_id] = b"".join(fields[b"f"] for _, fields in entries)
        return found

    # -- stop ----------------------------------------------------------------------------------

    async def request_stop(self, session_id: str, wait_s: float = 10.0) -> bool:
        """Asks whichever instance runs the answer to stop it; True if one was running."""
        key = answer_key(session_id)
        last = await self._redis.xrevrange(key, count=1)
        if not last or b"end" in last[0][1]:
            return False
        await self._redis.publish(STOP_CHANNEL, session_id)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            last = await self._redis.xrevrange(key, count=1)
            if not last or b"end" in last[0][1]:
                break
        return True

    async def _stops_forever(self, on_stop: Callable[[str], object]) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(STOP_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            on_stop(message["data"].decode())
            except (RedisError, OSError) as exc:
                self._outage(exc)
                await asyncio.sleep(1.0)

    # -- liveness ------------------------------------------------------------------------------

    async def _alive_forever(self) -> None:
        while True:
            try:
                await self._redis.set(instance_key(self._instance_id), 1, px=self._instance_ttl_ms)
            except (RedisError, OSError) as exc:
                self._outage(exc)
            else:
                self._reachable()
            await asyncio.sleep(self._instance_ttl_ms / 3000)

    async def live_instances(self, candidates: set[str]) -> set[str]:
        """Which of these instance ids are alive (have refreshed their key lately)."""
        ids = sorted(candidates)
        if not ids:
            return set()
        found = await self._redis.mget([instance_key(i) for i in ids])
        return {i for i, value in zip(ids, found, strict=True) if value is not None}

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (RedisError, OSError):
            return False

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._mirrored:
            with contextlib.suppress(RedisError, OSError):
                await self._flush()
        with contextlib.suppress(RedisError, OSError):
            await self._redis.delete(instance_key(self._instance_id))
        await self._redis.aclose()


def _already_there(error: Exception) -> bool:
    """An XADD retried after a half-applied pipeline: the entry is in the stream already."""
    return isinstance(error, ResponseError) and "equal or smaller" in str(error)
