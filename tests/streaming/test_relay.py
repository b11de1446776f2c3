"""The log and the relay: replay from any point, many readers, heartbeats on nudge."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from chatstream.streaming import frames
from chatstream.streaming.log import AnswerLog
from chatstream.streaming.relay import relay


async def collect(stream: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in stream])


def test_replay_after_each_point_then_follow_live() -> None:
    async def scenario() -> None:
        log = AnswerLog()
        for n in range(1, 4):
            log.append(frames.delta(n, f"t{n}"))
        readers = [asyncio.create_task(collect(relay(log, after))) for after in range(5)]
        await asyncio.sleep(0)
        log.append(frames.delta(4, "t4"))
        log.append(frames.done(5))
        log.close()
        everything = b"".join(log.frames)
        results = await asyncio.gather(*readers)
        for after, got in enumerate(results):
            assert got == b"".join(log.frames[after:])
        assert results[0] == everything

    asyncio.run(scenario())


def test_two_readers_see_identical_bytes() -> None:
    async def scenario() -> None:
        log = AnswerLog()
        a = asyncio.create_task(collect(relay(log)))
        b = asyncio.create_task(collect(relay(log)))
        for n in range(1, 50):
            log.append(frames.delta(n, str(n)))
            if n % 7 == 0:
                await asyncio.sleep(0)
        log.close()
        assert await a == await b == b"".join(log.frames)

    asyncio.run(scenario())


def test_nudge_sends_a_ping_only_when_nothing_is_new() -> None:
    async def scenario() -> None:
        log = AnswerLog()
        reader = relay(log)
        first = asyncio.ensure_future(reader.__anext__())
        await asyncio.sleep(0)
        log.nudge()
        assert await first == frames.PING
        log.append(frames.done(1))
        assert await reader.__anext__() == frames.done(1)
        log.close()
        assert [c async for c in reader] == []

    asyncio.run(scenario())


def test_a_reader_going_away_harms_neither_the_writer_nor_other_readers() -> None:
    async def scenario() -> None:
        log = AnswerLog()
        leaving = asyncio.create_task(collect(relay(log)))
        staying = asyncio.create_task(collect(relay(log)))
        await asyncio.sleep(0)
        leaving.cancel()  # as when a client disconnects mid-answer
        await asyncio.sleep(0)
        log.append(frames.delta(1, "still"))  # must not raise
        log.append(frames.done(2))
        log.close()
        assert await staying == b"".join(log.frames)
        assert leaving.cancelled()

    asyncio.run(scenario())
