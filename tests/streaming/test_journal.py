"""The journal: records and replay, a torn tail, compaction, and frames visible only once in the file."""

from __future__ import annotations

import asyncio
import os
import stat
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chatstream.config import Settings
from chatstream.streaming import frames
from chatstream.streaming.journal import Journal, open_journal
from chatstream.streaming.journal_replay import replay
from chatstream.streaming.log import AnswerLog
from chatstream.streaming.relay import relay

SESSION_A = "6f0c2f8e-0000-4000-8000-00000000000a"
SESSION_B = "6f0c2f8e-0000-4000-8000-00000000000b"


def say(answer_log: AnswerLog, *words: str) -> None:
    for word in words:
        answer_log.append(frames.delta(answer_log.next_seq, word))


def end(answer_log: AnswerLog) -> None:
    answer_log.append(frames.done(answer_log.next_seq))
    answer_log.close()


def texts(path: Path) -> dict[str, str]:
    return {answer.session_id: answer.text for answer in replay(path)}


async def written(journal: Journal) -> None:
    """Until the journal's writer thread has written and published everything appended so far."""
    await asyncio.sleep(0)
    for _ in range(2000):
        if journal.settled:
            return
        await asyncio.sleep(0.001)
    raise AssertionError("the journal did not write its batches")


def test_replay_gives_each_sessions_newest_answer(tmp_path: Path) -> None:
    path = tmp_path / "i.journal"

    async def scenario() -> None:
        writing = Journal(path, max_bytes=1 << 20)
        a, b = writing.new_log(SESSION_A), writing.new_log(SESSION_B)
        a.append(frames.data(1, {"sessionId": SESSION_A}))
        say(a, "one ", "two ")
        say(b, "uno ")
        await written(writing)
        say(a, 'three\n[DONE] data: "quoted" ')  # what could break a frame does not
        say(b, "dos 中文")
        end(a)
        await written(writing)
        again = writing.new_log(SESSION_A)  # a second answer in the same session replaces the first
        say(again, "second ", "answer")
        await written(writing)
        writing.close(delete=False)

    asyncio.run(scenario())
    assert texts(path) == {SESSION_A: "second answer", SESSION_B: "uno dos 中文"}


def test_a_batch_cut_off_by_the_crash_is_ignored_at_every_byte(tmp_path: Path) -> None:
    path = tmp_path / "i.journal"

    async def scenario() -> int:
        writing = Journal(path, max_bytes=1 << 20)
        answer = writing.new_log(SESSION_A)
        say(answer, "kept ")
        await written(writing)
        whole_batches = path.stat().st_size
        say(answer, "torn ", "off")
        await written(writing)
        writing.close(delete=False)
        return whole_batches

    whole = asyncio.run(scenario())
    data = path.read_bytes()
    assert whole < len(data)
    torn = tmp_path / "torn.journal"
    for cut in range(whole, len(data)):
        torn.write_bytes(data[:cut])
        assert texts(torn) == {SESSION_A: "kept "}, cut
    flipped = bytearray(data)
    flipped[-2] ^= 0xFF  # garbage in the last batch: its crc no longer matches
    torn.write_bytes(bytes(flipped))
    assert texts(torn) == {SESSION_A: "kept "}
    assert texts(path) == {SESSION_A: "kept torn off"}


def test_compaction_keeps_only_the_answers_still_open(tmp_path: Path) -> None:
    path = tmp_path / "i.journal"
    word = "x" * 200 + " "

    async def scenario() -> None:
        writing = Journal(path, max_bytes=4096)
        ended, running = writing.new_log(SESSION_A), writing.new_log(SESSION_B, b"turn")
        writing.row_saved(running, 7)
        for _ in range(6):
            say(ended, word)
            say(running, "r ")
            await written(writing)
        end(ended)
        await written(writing)
        before = path.stat().st_size
        for _ in range(15):  # past max_bytes: compacted on the way
            say(running, word)
            await written(writing)
        assert path.stat().st_size < before + 15 * len(word)
        assert not path.with_name(path.name + ".tmp").exists()
        say(running, "after")  # appended to the compacted file
        await written(writing)
        writing.close(delete=False)

    asyncio.run(scenario())
    (running,) = replay(path)
    assert (running.session_id, running.context, running.message_id) == (SESSION_B, b"turn", 7)
    assert running.text == "r " * 6 + word * 15 + "after"


def test_a_relay_never_yields_a_frame_before_it_is_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "i.journal"
    checked: list[bytes] = []

    async def read_checking(stream: AsyncIterator[bytes]) -> None:
        async for chunk in stream:
            assert chunk != frames.PING  # woken at the append, never before the write: nothing to ping
            in_file = path.read_bytes()
            for frame in chunk.split(b"\n\n")[:-1]:
                assert frame + b"\n\n" in in_file
                checked.append(frame)

    async def scenario() -> None:
        writing = Journal(path, max_bytes=1 << 20)
        answer = writing.new_log(SESSION_A)
        readers = [asyncio.create_task(read_checking(relay(answer))) for _ in range(3)]
        await asyncio.sleep(0)
        for n in range(1, 40):
            say(answer, *[f"w{n}.{i} " for i in range(n % 4 + 1)])  # several frames per iteration
            assert answer.visible < len(answer.frames)  # kept, not yet visible
            if n % 5:
                await asyncio.sleep(0)
        end(answer)
        await asyncio.gather(*readers)
        writing.close(delete=True)
        assert not path.exists()

    asyncio.run(scenario())
    assert len(checked) == 3 * (sum(n % 4 + 1 for n in range(1, 40)) + 1)


def test_replay_knows_each_answers_turn_row_and_end(tmp_path: Path) -> None:
    path = tmp_path / "i.journal"

    async def scenario() -> None:
        writing = Journal(path, max_bytes=1 << 20)
        saved, unsaved = writing.new_log(SESSION_A, b'{"question":"a?"}'), writing.new_log(SESSION_B, b"b")
        say(saved, "kept")
        say(unsaved, "before its row")
        writing.row_saved(saved, 42)
        await written(writing)
        end(saved)
        await written(writing)
        writing.close(delete=False)

    asyncio.run(scenario())
    found = {answer.session_id: answer for answer in replay(path)}
    assert (found[SESSION_A].context, found[SESSION_A].message_id, found[SESSION_A].ended) == (
        b'{"question":"a?"}',
        42,
        True,
    )
    assert (found[SESSION_B].context, found[SESSION_B].message_id, found[SESSION_B].ended) == (
        b"b",
        None,
        False,
    )


def test_a_log_without_journal_shows_frames_at_once() -> None:
    answer = AnswerLog()
    say(answer, "now")
    assert answer.visible == 1
    answer.close()
    assert answer.closed


def test_frames_go_out_when_a_write_fails_and_a_rewrite_puts_them_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "i.journal"
    real_write = os.write
    failures = [OSError(28, "No space left on device")]

    def full_disk_once(fd: int, data: bytes) -> int:
        if failures:
            raise failures.pop()
        return real_write(fd, data)

    async def scenario() -> None:
        writing = Journal(path, max_bytes=1 << 20)
        answer = writing.new_log(SESSION_A)
        monkeypatch.setattr(os, "write", full_disk_once)
        say(answer, "lost ", "then ")
        await written(writing)
        assert answer.visible == 2  # the answer went on
        say(answer, "found")
        await written(writing)
        writing.close(delete=False)

    asyncio.run(scenario())
    assert texts(path) == {SESSION_A: "lost then found"}


def test_the_journal_is_private_to_its_owner(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    writing = open_journal(settings, "a" * 32)
    assert writing is not None
    try:
        assert stat.S_IMODE(writing.path.parent.stat().st_mode) == 0o700
        assert stat.S_IMODE(writing.path.stat().st_mode) == 0o600
        assert writing.path == tmp_path / "data" / "journal" / ("a" * 32 + ".journal")
    finally:
        writing.close(delete=True)
    assert open_journal(Settings(data_dir=tmp_path / "data", journal=False), "b" * 32) is None


def test_the_event_loop_never_writes_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write that meets the file system's own commit can wait for milliseconds: not on the loop."""
    path = tmp_path / "i.journal"
    real_write = os.write
    writers: set[str] = set()

    def recording_write(fd: int, data: bytes) -> int:
        writers.add(threading.current_thread().name)
        return real_write(fd, data)

    async def scenario() -> None:
        writing = Journal(path, max_bytes=1 << 20)  # created (at start-up) by whoever builds it
        monkeypatch.setattr(os, "write", recording_write)
        answer = writing.new_log(SESSION_A)
        for n in range(20):
            say(answer, f"w{n} ")
            await asyncio.sleep(0)
        end(answer)
        await written(writing)
        writing.close(delete=False)

    asyncio.run(scenario())
    assert texts(path) == {SESSION_A: "".join(f"w{n} " for n in range(20))}
    assert writers == {"chatstream-journal"}
