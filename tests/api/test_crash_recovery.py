"""A crash loses no text a client was sent: SIGKILL mid-answer, restart, and history holds it all.

The checkpoint interval is set far beyond the tests (30 s), so whatever text an answer has after
the crash came from the journal (or, with Redis, from the mirrored stream), not from a checkpoint.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Api, register, server_env
from tests.support.live import LiveAnswer, wait_for
from tests.support.redis_server import RedisProcess
from tests.support.server import ServerProcess
from tests.support.sse import Frame, answer_text
from tests.support.upstream import StandInUpstream

NO_CHECKPOINT = "30"


def read(live: LiveAnswer, deltas: int) -> list[Frame]:
    """Frames until this many deltas have come (heartbeats in between are frames too)."""
    received: list[Frame] = []
    while len([f for f in received if f.data]) < deltas:
        received.append(next(live.frames))
    return received


def drain(live: LiveAnswer) -> list[Frame]:
    """What still reaches the client after the server died (anything sent before it did)."""
    received = []
    with contextlib.suppress(httpx.HTTPError):
        for frame in live.frames:
            received.append(frame)
    live.close()
    return received


def journals(server: ServerProcess) -> list[str]:
    directory = server.data_dir / "journal"
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


@pytest.fixture
def crashing_server(tmp_path: Path, upstream: StandInUpstream) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "crash", server_env(upstream, CHATSTREAM_CHECKPOINT_S=NO_CHECKPOINT))
    yield proc
    proc.stop()


@pytest.mark.parametrize("k", [1, 4, 9])
def test_a_crash_loses_no_text_the_client_was_sent(crashing_server: ServerProcess, k: int) -> None:
    member = register(crashing_server.start())
    live = LiveAnswer(member, "/slow 1000 100")
    received = read(live, k)
    crashing_server.stop(signal.SIGKILL)
    received += drain(live)
    assert len(journals(crashing_server)) == 1  # the dead instance's, left by the crash

    crashing_server.start()
    answer = member.history(live.session_id)[1]
    assert answer["status"] == "interrupted"
    assert answer["content"] == answer_text(received)
    assert answer["content"].startswith("w0 ") and answer["content"].count(" ") >= k
    assert len(journals(crashing_server)) == 1  # the old one was read and deleted; this is the new one's
    assert answer_text(member.ask(live.session_id, "/echo goes on")) == "goes on"
    crashing_server.stop(signal.SIGTERM)
    assert journals(crashing_server) == []  # a clean stop saved every answer: nothing to keep


def test_two_answers_cut_off_by_one_crash_keep_what_each_client_got(crashing_server: ServerProcess) -> None:
    member = register(crashing_server.start())
    first = LiveAnswer(member, "/slow 1000 80")
    second = LiveAnswer(member, "/slow 1000 130")
    got_first, got_second = read(first, 3), read(second, 5)
    got_first += read(first, 2)
    crashing_server.stop(signal.SIGKILL)
    got_first += drain(first)
    got_second += drain(second)

    crashing_server.start()
    for live, received in ((first, got_first), (second, got_second)):
        answer = member.history(live.session_id)[1]
        assert answer["status"] == "interrupted"
        assert answer["content"] == answer_text(received) != ""


def test_without_the_journal_a_crash_falls_back_to_the_last_checkpoint(
    tmp_path: Path, upstream: StandInUpstream
) -> None:
    """The difference the journal makes: the same crash keeps only the last checkpoint (none here)."""
    env = server_env(upstream, CHATSTREAM_CHECKPOINT_S=NO_CHECKPOINT, CHATSTREAM_JOURNAL="off")
    proc = ServerProcess(tmp_path / "no-journal", env).start()
    try:
        member = register(proc)
        live = LiveAnswer(member, "/slow 1000 100")
        received = read(live, 6)
        proc.stop(signal.SIGKILL)
        received += drain(live)
        assert journals(proc) == []
        proc.start()
        answer = member.history(live.session_id)[1]
        assert answer["status"] == "interrupted"
        assert answer["content"] == ""  # the answer's row as first written: nothing was checkpointed
        assert answer_text(received).startswith("w0 w1 w2 w3 w4 w5 ")
    finally:
        proc.stop()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path / "redis").start()
    yield proc
    proc.stop()


@pytest.fixture
def two_machines(
    tmp_path: Path, upstream: StandInUpstream, postgres_url: str, redis_server: RedisProcess
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two instances with a data dir each (as on two machines): neither can read the other's journal."""
    env = server_env(
        upstream,
        CHATSTREAM_DATABASE_URL=postgres_url,
        CHATSTREAM_REDIS_URL=redis_server.url,
        CHATSTREAM_JWT_SECRET="a-shared-secret-for-both-instances-0123456789",
        CHATSTREAM_CHECKPOINT_S=NO_CHECKPOINT,
        CHATSTREAM_INSTANCE_TTL_S="1.5",
        CHATSTREAM_RECOVERY_S="0.5",
    )
    a = ServerProcess(tmp_path / "a", env).start()
    b = ServerProcess(tmp_path / "b", env).start()
    yield a, b
    a.stop()
    b.stop()


def kill_a_mid_answer(
    a: ServerProcess, b: ServerProcess, question: str, deltas: int, *, wait_s: float = 0.0
) -> tuple[Api, str, list[Frame]]:
    """`a` is SIGKILLed once its client has `deltas` deltas of the answer (and `wait_s` more);
    returns the user on `b`, the session, and every frame the client got, once `b` has marked
    the answer `interrupted`."""
    on_a = register(a)
    on_b = Api(b, on_a.token, on_a.username)
    live = LiveAnswer(on_a, question)
    received = read(live, deltas)
    time.sleep(wait_s)
    a.stop(signal.SIGKILL)
    received += drain(live)
    wait_for(lambda: on_b.history(live.session_id)[1]["status"] == "interrupted", timeout=15)
    return on_b, live.session_id, received


@pytest.mark.postgres
@pytest.mark.redis
def test_an_instance_killed_mid_answer_gets_its_text_back_from_redis_on_another(
    two_machines: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = two_machines
    # A token a second: the mirror (flushed every 250 ms) has caught up when the crash comes,
    # after two of its flushes and still 0.5 s before the next token.
    on_b, session_id, received = kill_a_mid_answer(a, b, "/slow 100 1000", 3, wait_s=0.5)
    answer = on_b.history(session_id)[1]
    assert answer["content"] == answer_text(received) == "w0 w1 w2 "  # a checkpoint would be ""

    a.start()  # a new instance on the dead one's data dir: its journal agrees, and is gone
    wait_for(lambda: len(journals(a)) == 1)
    assert on_b.history(session_id)[1]["content"] == "w0 w1 w2 "


@pytest.mark.postgres
@pytest.mark.redis
def test_a_killed_instance_back_on_its_data_dir_restores_what_the_mirror_had_not_yet(
    two_machines: tuple[ServerProcess, ServerProcess],
) -> None:
    """Tokens every 20 ms: the mirror trails the client by up to 250 ms, the journal does not."""
    a, b = two_machines
    on_b, session_id, received = kill_a_mid_answer(a, b, "/slow 1000 20", 30)
    from_redis = on_b.history(session_id)[1]["content"]
    assert answer_text(received).startswith(from_redis) and from_redis.startswith("w0 w1 ")

    a.start()  # a new instance on the dead one's data dir reads its journal: the longer text wins
    wait_for(lambda: len(journals(a)) == 1)
    answer = on_b.history(session_id)[1]
    assert answer["status"] == "interrupted" and answer["content"] == answer_text(received)
