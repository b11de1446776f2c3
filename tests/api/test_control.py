"""Control of a running answer: follow and resume by id, stop, disconnect, restart."""

from __future__ import annotations

import contextlib
import signal
import threading
from pathlib import Path

import httpx
import pytest

from tests.conftest import Api, register, server_env
from tests.support.live import LiveAnswer, follow, wait_for
from tests.support.server import ServerProcess
from tests.support.sse import answer_text
from tests.support.upstream import StandInUpstream


def start_slow_answer(user: Api, tokens: int = 30, ms: int = 50) -> LiveAnswer:
    """Starts an answer and reads only its first frame (the session id); the caller reads on."""
    return LiveAnswer(user, f"/slow {tokens} {ms}")


def test_resume_after_every_frame_joins_to_the_whole_answer(user: Api) -> None:
    session_id, frames = user.ask_new("/echo one two three four five")
    full = answer_text(frames)
    assert full == "one two three four five"
    for k in range(len(frames) + 1):  # every cut, including after [DONE]
        _, tail = follow(user, session_id, last_event_id=k)
        assert [f.id for f in tail] == [f.id for f in frames[k:]]
        assert answer_text(frames[:k]) + answer_text(tail) == full
        _, by_query = follow(user, session_id, after=k)
        assert [f.text for f in by_query] == [f.text for f in tail]


def test_two_readers_of_a_live_answer_see_identical_frames(user: Api) -> None:
    live = start_slow_answer(user, tokens=15, ms=40)
    try:
        _, second = follow(user, live.session_id, last_event_id=0)
        rest = live.rest()
    finally:
        live.close()
    whole_first = [f.text for f in rest]
    assert [f.text for f in second][1:] == whole_first  # the follower also got the sessionId frame
    assert second[-1].text == "[DONE]"
    assert answer_text(second) == "".join(f"w{i} " for i in range(15))


def test_stop_mid_answer_closes_the_upstream_and_keeps_the_partial_text(
    user: Api, upstream: StandInUpstream
) -> None:
    closed_before = upstream.closed_by_client
    live = start_slow_answer(user, tokens=200, ms=30)
    session_id = live.session_id
    try:
        frames = [next(live.frames) for _ in range(3)]  # a few tokens in
        stopped = user.post("/AI/chat/stop", {"sessionId": session_id})
        assert stopped.status_code == 200 and stopped.json()["stopped"] is True
        rest = live.rest()
    finally:
        live.close()
    assert rest[-2].json() == {"type": "stopped"} and rest[-1].text == "[DONE]"
    assert upstream.wait_until(lambda u: u.closed_by_client > closed_before, timeout=1.0)
    answer = user.history(session_id)[1]
    assert answer["status"] == "stopped"
    text = answer_text(frames + rest)
    assert answer["content"] == text and text.startswith("w0 w1 w2 ") and len(text) < 200 * 3
    # Stopping again, or after the end, is harmless.
    again = user.post("/AI/chat/stop", {"sessionId": session_id})
    assert again.status_code == 200 and again.json()["stopped"] is False


def test_client_disconnect_does_not_stop_the_answer(user: Api) -> None:
    live = start_slow_answer(user, tokens=10, ms=40)
    session_id = live.session_id
    live.close()
    wait_for(lambda: user.history(session_id)[1]["status"] != "streaming")
    answer = user.history(session_id)[1]
    assert answer["status"] == "complete"
    assert answer["content"] == "".join(f"w{i} " for i in range(10))


def test_a_second_question_while_answering_is_429(user: Api, upstream: StandInUpstream) -> None:
    live = start_slow_answer(user, tokens=10, ms=50)
    session_id = live.session_id
    try:
        asked = len(upstream.requests)
        busy = user.post("/AI/chat/send", {"question": "/echo x", "modelType": "1", "sessionId": session_id})
        assert busy.status_code == 429 and busy.json()["status_code"] == 4029
        assert len(upstream.requests) == asked
        assert live.rest()[-1].text == "[DONE]"
    finally:
        live.close()
    assert [m["content"] for m in user.history(session_id)][::2] == ["/slow 10 50"]


def test_follow_with_nothing_running_is_404(user: Api) -> None:
    response, _ = follow(user, "00000000-0000-4000-8000-000000000000")
    assert response.status_code == 404 and response.json()["status_code"] == 2011


@pytest.fixture
def own_server(tmp_path: Path, upstream: StandInUpstream) -> ServerProcess:
    return ServerProcess(tmp_path / "own", server_env(upstream, CHATSTREAM_CHECKPOINT_S="0.2"))


@pytest.mark.parametrize(
    ("sig", "status"), [(signal.SIGTERM, "interrupted"), (signal.SIGKILL, "interrupted")]
)
def test_server_stopped_mid_answer_keeps_what_was_written(
    own_server: ServerProcess, sig: signal.Signals, status: str
) -> None:
    own_server.start()
    try:
        member = register(own_server)

        def ask() -> None:
            # The stream is cut when the server goes away.
            with contextlib.suppress(httpx.HTTPError, AssertionError, IndexError):
                member.ask_new("/slow 1000 20")

        asker = threading.Thread(target=ask)
        asker.start()
        wait_for(lambda: bool(member.get("/AI/chat/sessions").json()["sessions"]))
        session_id = member.get("/AI/chat/sessions").json()["sessions"][0]["sessionId"]
        wait_for(lambda: len(member.history(session_id)[1]["content"]) > 20)  # a checkpoint happened
        saved = member.history(session_id)[1]["content"]
        own_server.stop(sig)
        asker.join(10)
        own_server.start()
        answer = member.history(session_id)[1]
        assert answer["status"] == "interrupted"
        assert answer["content"].startswith(saved) and answer["content"].startswith("w0 w1 ")
        assert member.history(session_id)[0]["content"] == "/slow 1000 20"
        assert answer_text(member.ask(session_id, "/echo still works")) == "still works"
    finally:
        own_server.stop()


def test_disconnect_can_be_set_to_cancel_the_answer(tmp_path: Path, upstream: StandInUpstream) -> None:
    proc = ServerProcess(tmp_path / "cancel", server_env(upstream, CHATSTREAM_ON_DISCONNECT="cancel")).start()
    try:
        member = register(proc)
        closed_before = upstream.closed_by_client
        live = start_slow_answer(member, tokens=200, ms=30)
        next(live.frames)
        live.close()
        wait_for(lambda: member.history(live.session_id)[1]["status"] != "streaming")
        answer = member.history(live.session_id)[1]
        assert answer["status"] == "stopped" and answer["content"].startswith("w0 ")
        assert upstream.wait_until(lambda u: u.closed_by_client > closed_before, timeout=1.0)
    finally:
        proc.stop()


def metric(server: ServerProcess, line_start: str) -> float:
    text = httpx.get(server.url + "/metrics").text
    found = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(found[0]) if found else 0.0


def test_metrics_count_answers_by_status_and_chunks(user: Api) -> None:
    complete = 'chatstream_answers_ended_total{status="complete"}'
    errors = 'chatstream_answers_ended_total{status="error"}'
    before = (
        metric(user.server, complete),
        metric(user.server, errors),
        metric(user.server, "chatstream_answer_chunks_total"),
    )
    user.ask_new("/echo a b c")
    user.ask_new("/fail 1")
    wait_for(lambda: metric(user.server, errors) > before[1])
    assert metric(user.server, complete) >= before[0] + 1
    assert metric(user.server, "chatstream_answer_chunks_total") >= before[2] + 4
    assert "# TYPE chatstream_answers_running gauge" in httpx.get(user.server.url + "/metrics").text


def test_per_user_limit_is_429_and_frees_its_slot(server: ServerProcess) -> None:
    user = register(server)
    lives = [LiveAnswer(user, "/slow 8 50") for _ in range(3)]  # the default limit is 3 per user
    try:
        refused = user.post("/AI/chat/send-new-session", {"question": "/echo one more", "modelType": "1"})
        assert refused.status_code == 429 and refused.json()["status_code"] == 4029
        assert "in progress" in refused.json()["status_msg"]
        for live in lives:
            assert live.rest()[-1].text == "[DONE]"
    finally:
        for live in lives:
            live.close()
    wait_for(
        lambda: (
            user.post("/AI/chat/send-new-session", {"question": "/echo again", "modelType": "1"}).status_code
            == 200
        )
    )
    other = register(server)  # other users were never limited by this one
    assert (
        other.post("/AI/chat/send-new-session", {"question": "/echo x", "modelType": "1"}).status_code == 200
    )
