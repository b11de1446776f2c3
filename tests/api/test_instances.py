"""Two `chatstream serve` processes on one PostgreSQL and one Redis behave as one server."""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.conftest import Api, register, server_env
from tests.support.live import LiveAnswer, follow, wait_for
from tests.support.redis_server import RedisProcess
from tests.support.server import ServerProcess
from tests.support.sse import answer_text
from tests.support.upstream import StandInUpstream

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

SECRET = "a-shared-secret-for-both-instances-0123456789"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisProcess]:
    proc = RedisProcess(tmp_path_factory.mktemp("redis")).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def pair(
    tmp_path_factory: pytest.TempPathFactory,
    upstream: StandInUpstream,
    postgres_url: str,
    redis_server: RedisProcess,
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    env = server_env(
        upstream,
        CHATSTREAM_DATABASE_URL=postgres_url,
        CHATSTREAM_REDIS_URL=redis_server.url,
        CHATSTREAM_JWT_SECRET=SECRET,
        CHATSTREAM_CHECKPOINT_S="0.2",
        CHATSTREAM_INSTANCE_TTL_S="1.5",
        CHATSTREAM_RECOVERY_S="0.5",
    )
    a = ServerProcess(tmp_path_factory.mktemp("a"), env).start()
    b = ServerProcess(tmp_path_factory.mktemp("b"), env).start()
    yield a, b
    a.stop()
    b.stop()


def on(server: ServerProcess, api: Api) -> Api:
    """The same user, talking to another instance."""
    return Api(server, api.token, api.username)


def test_an_answer_on_one_instance_resumes_on_the_other_from_any_frame(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pair
    on_a = register(a)
    on_b = on(b, on_a)
    session_id, frames = on_a.ask_new("/echo one two three four five six")
    full = answer_text(frames)
    for k in range(len(frames) + 1):
        response, tail = follow(on_b, session_id, last_event_id=k)
        assert response.status_code == 200, response.text
        assert [f.id for f in tail] == [f.id for f in frames[k:]]
        assert answer_text(frames[:k]) + answer_text(tail) == full
    assert on_b.history(session_id)[1]["content"] == full


def test_readers_on_both_instances_see_identical_frames(pair: tuple[ServerProcess, ServerProcess]) -> None:
    a, b = pair
    on_a = register(a)
    live = LiveAnswer(on_a, "/slow 20 30")
    try:
        response, remote = follow(
            on(b, on_a), live.session_id, last_event_id=0
        )  # joins mid-answer, reads to the end
        local = live.rest()
    finally:
        live.close()
    assert response.status_code == 200
    assert [(f.id, f.text) for f in remote[1:]] == [(f.id, f.text) for f in local]
    assert answer_text(remote) == "".join(f"w{i} " for i in range(20))


def test_stop_from_the_other_instance(
    pair: tuple[ServerProcess, ServerProcess], upstream: StandInUpstream
) -> None:
    a, b = pair
    on_a = register(a)
    closed_before = upstream.closed_by_client
    live = LiveAnswer(on_a, "/slow 300 30")
    try:
        seen = [next(live.frames) for _ in range(3)]
        asked = time.monotonic()
        stopped = on(b, on_a).post("/AI/chat/stop", {"sessionId": live.session_id})
        assert stopped.status_code == 200 and stopped.json()["stopped"] is True
        assert upstream.wait_until(lambda u: u.closed_by_client > closed_before, timeout=1.0)
        assert time.monotonic() - asked < 1.5
        rest = live.rest()
    finally:
        live.close()
    assert rest[-2].json() == {"type": "stopped"} and rest[-1].text == "[DONE]"
    answer = on_a.history(live.session_id)[1]
    assert answer["status"] == "stopped"
    assert answer["content"] == answer_text(seen + rest) and answer["content"].startswith("w0 w1 w2 ")
    again = on(b, on_a).post("/AI/chat/stop", {"sessionId": live.session_id})
    assert again.json()["stopped"] is False


def test_an_instance_killed_mid_answer_is_found_out_by_the_other(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pair
    on_a = register(a)
    on_b = on(b, on_a)

    def ask() -> None:
        with contextlib.suppress(httpx.HTTPError, AssertionError, IndexError):
            on_a.ask_new("/slow 1000 20")

    asker = threading.Thread(target=ask)
    asker.start()
    wait_for(lambda: bool(on_b.get("/AI/chat/sessions").json()["sessions"]))
    session_id = on_b.get("/AI/chat/sessions").json()["sessions"][0]["sessionId"]
    wait_for(lambda: len(on_b.history(session_id)[1]["content"]) > 12)  # checkpointed
    saved = on_b.history(session_id)[1]["content"]
    a.stop(signal.SIGKILL)
    asker.join(10)
    try:
        # b notices once a's liveness key has expired (1.5 s here), within a recovery round.
        wait_for(lambda: on_b.history(session_id)[1]["status"] == "interrupted", timeout=10)
        answer = on_b.history(session_id)[1]
        assert answer["content"].startswith(saved)
        assert answer_text(on_b.ask(session_id, "/echo carries on")) == "carries on"
    finally:
        a.start()


def test_redis_restarted_mid_answer(
    pair: tuple[ServerProcess, ServerProcess], redis_server: RedisProcess
) -> None:
    """Answers go on while Redis is away; following from elsewhere is a clear 503 until it is back."""
    a, b = pair
    on_a = register(a)
    on_b = on(b, on_a)
    live = LiveAnswer(on_a, "/slow 60 50")
    try:
        next(live.frames)
        redis_server.stop()
        response, _ = follow(on_b, live.session_id, last_event_id=0)
        assert response.status_code == 503
        assert response.json()["status_code"] == 4001 and "Redis" in response.json()["status_msg"]
        assert httpx.get(a.url + "/readyz").status_code == 503
        redis_server.start()  # empty: it keeps nothing on disk
        wait_for(lambda: httpx.get(a.url + "/readyz").status_code == 200)
        wait_for(lambda: follow(on_b, live.session_id, last_event_id=0)[0].status_code == 200)
        response, remote = follow(
            on_b, live.session_id, last_event_id=0
        )  # the whole answer, rewritten from a's memory
        local = live.rest()
    finally:
        live.close()
    assert answer_text(remote) == "".join(f"w{i} " for i in range(60))
    assert remote[-1].text == local[-1].text == "[DONE]"
    assert on_a.history(live.session_id)[1]["status"] == "complete"


def test_a_second_answer_in_a_session_is_followed_not_the_first(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = pair
    on_a = register(a)
    session_id, _ = on_a.ask_new("/echo the first answer")
    frames = on_a.ask(session_id, "/echo the second one")
    response, remote = follow(on(b, on_a), session_id, last_event_id=0)
    assert response.status_code == 200
    assert [(f.id, f.text) for f in remote] == [(f.id, f.text) for f in frames]
    assert answer_text(remote) == "the second one"


def test_the_newest_answer_is_followed_and_stopped_whichever_instance_wrote_it(
    pair: tuple[ServerProcess, ServerProcess],
) -> None:
    """A finished answer kept on one instance must not hide a newer one running on the other."""
    a, b = pair
    on_a = register(a)
    on_b = on(b, on_a)
    session_id, _ = on_a.ask_new("/echo first on a")
    with on_b.http.stream(
        "POST",
        "/AI/chat/send-stream",
        json={"question": "/slow 200 30", "modelType": "1", "sessionId": session_id},
    ) as running:
        assert running.status_code == 200
        lines = running.iter_lines()
        next(lines)  # the answer is under way on b
        # a still holds the first, finished answer; the stop must reach b's running one.
        wait_for(lambda: on_a.post("/AI/chat/stop", {"sessionId": session_id}).json()["stopped"], timeout=2)
        rest = list(lines)
    _, followed = follow(on_a, session_id, last_event_id=0)
    assert answer_text(followed).startswith("w0 ") and followed[-2].json() == {"type": "stopped"}
    assert any('"type":"stopped"' in line for line in rest)
    assert on_b.history(session_id)[-1]["status"] == "stopped"
