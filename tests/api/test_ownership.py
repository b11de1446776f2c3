"""A session belongs to its user: anyone else gets the same 404 as for a session that never existed."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.conftest import Api
from tests.support.sse import answer_text, parse
from tests.support.upstream import StandInUpstream

Action = Callable[[Api, str], httpx.Response]


def _history(api: Api, sid: str) -> httpx.Response:
    return api.post("/AI/chat/history", {"sessionId": sid})


def _send(api: Api, sid: str) -> httpx.Response:
    return api.post("/AI/chat/send", {"question": "/echo hijack", "modelType": "1", "sessionId": sid})


def _send_stream(api: Api, sid: str) -> httpx.Response:
    response, frames = api.stream(
        "/AI/chat/send-stream", {"question": "/echo hijack", "modelType": "1", "sessionId": sid}
    )
    assert frames == []
    return response


def _rename(api: Api, sid: str) -> httpx.Response:
    return api.http.patch(f"/AI/chat/sessions/{sid}", json={"name": "hijacked"})


def _delete(api: Api, sid: str) -> httpx.Response:
    return api.http.delete(f"/AI/chat/sessions/{sid}")


def _stop(api: Api, sid: str) -> httpx.Response:
    return api.post("/AI/chat/stop", {"sessionId": sid})


def _follow(api: Api, sid: str) -> httpx.Response:
    with api.http.stream("GET", "/AI/chat/stream", params={"sessionId": sid}) as response:
        response.read()
    return response


def _follow_after(api: Api, sid: str) -> httpx.Response:
    with api.http.stream(
        "GET", "/AI/chat/stream", params={"sessionId": sid}, headers={"Last-Event-ID": "1"}
    ) as response:
        response.read()
    return response


ACTIONS = [
    pytest.param(_history, id="history"),
    pytest.param(_send, id="send"),
    pytest.param(_send_stream, id="send-stream"),
    pytest.param(_rename, id="rename"),
    pytest.param(_delete, id="delete"),
    pytest.param(_stop, id="stop"),
    pytest.param(_follow, id="follow"),
    pytest.param(_follow_after, id="follow-last-event-id"),
]


def sessions_of(api: Api) -> list[dict[str, Any]]:
    response = api.get("/AI/chat/sessions", params={"limit": 500})
    assert response.status_code == 200, response.text
    return list(response.json()["sessions"])


def assert_same_404(foreign: httpx.Response, missing: httpx.Response) -> None:
    """Someone else's session is answered exactly like one that does not exist."""
    assert missing.status_code == 404, missing.text
    assert missing.headers["content-type"].startswith("application/json")
    assert missing.json() == {"status_code": 2011, "status_msg": "session does not exist"}
    assert foreign.status_code == missing.status_code
    assert foreign.headers["content-type"] == missing.headers["content-type"]
    assert foreign.json() == missing.json()
    assert foreign.content == missing.content


@pytest.fixture
def a_session(user: Api) -> str:
    """User A's session with two finished turns."""
    session_id, _ = user.ask_new("/echo hello from A")
    user.ask(session_id, "/echo second turn")
    assert [m["status"] for m in user.history(session_id)] == ["complete"] * 4
    return session_id


@pytest.mark.parametrize("action", ACTIONS)
def test_other_user_cannot_touch_a_finished_session(
    user: Api, other_user: Api, a_session: str, upstream: StandInUpstream, action: Action
) -> None:
    b_own, _ = other_user.ask_new("/echo B's own")
    a_before = (sessions_of(user), user.history(a_session))
    b_before = sessions_of(other_user)
    calls = len(upstream.requests)

    foreign = action(other_user, a_session)
    missing = action(other_user, str(uuid.uuid4()))

    assert_same_404(foreign, missing)
    assert len(upstream.requests) == calls, "the model was called"
    assert (sessions_of(user), user.history(a_session)) == a_before
    b_after = sessions_of(other_user)
    assert b_after == b_before
    assert a_session not in {s["sessionId"] for s in b_after}
    assert b_own in {s["sessionId"] for s in b_after}


@pytest.mark.parametrize("action", ACTIONS)
def test_other_user_cannot_touch_a_session_while_it_answers(
    user: Api, other_user: Api, upstream: StandInUpstream, action: Action
) -> None:
    # A's answer is running (held in memory, followable, stoppable by A) while B tries.
    with user.http.stream(
        "POST", "/AI/chat/send-stream-new-session", json={"question": "/slow 12 100", "modelType": "1"}
    ) as response:
        assert response.status_code == 200
        lines = response.iter_lines()
        first = next(parse(lines))
        a_session = first.json()["sessionId"]
        calls = len(upstream.requests)

        foreign = action(other_user, a_session)
        missing = action(other_user, str(uuid.uuid4()))
        assert_same_404(foreign, missing)
        assert len(upstream.requests) == calls, "the model was called"
        assert a_session not in {s["sessionId"] for s in sessions_of(other_user)}

        frames = [first, *parse(lines)]
    assert frames[-1].text == "[DONE]", "B's attempt disturbed A's answer"
    expected = "".join(f"w{i} " for i in range(12))
    assert answer_text(frames) == expected
    history = user.history(a_session)
    assert [(m["content"], m["status"]) for m in history] == [
        ("/slow 12 100", "complete"),
        (expected, "complete"),
    ]
    assert [s["name"] for s in sessions_of(user) if s["sessionId"] == a_session] == ["/slow 12 100"]


def test_owner_can_follow_and_stop_own_session(user: Api) -> None:
    # The control for the two in-memory actions: the owner is let through.
    session_id, _ = user.ask_new("/echo followed")
    with user.http.stream("GET", "/AI/chat/stream", params={"sessionId": session_id}) as response:
        assert response.status_code == 200
        frames = list(parse(response.iter_lines()))
    assert answer_text(frames) == "followed"
    stopped = user.post("/AI/chat/stop", {"sessionId": session_id})
    assert stopped.status_code == 200
    assert stopped.json() == {"status_code": 1000, "status_msg": "success", "stopped": False}


def test_owner_can_rename(user: Api, a_session: str) -> None:
    history = user.history(a_session)
    response = user.http.patch(f"/AI/chat/sessions/{a_session}", json={"name": "  Trip   planning\t"})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status_code": 1000,
        "status_msg": "success",
        "sessionId": a_session,
        "name": "Trip planning",
        "documents": False,
    }
    names = {s["sessionId"]: s["name"] for s in sessions_of(user)}
    assert names[a_session] == "Trip planning"
    assert user.history(a_session) == history


def test_owner_can_delete(user: Api, a_session: str) -> None:
    keep, _ = user.ask_new("/echo keep me")
    keep_history = user.history(keep)
    response = user.http.delete(f"/AI/chat/sessions/{a_session}")
    assert response.status_code == 200, response.text
    assert response.json() == {"status_code": 1000, "status_msg": "success"}

    gone = user.post("/AI/chat/history", {"sessionId": a_session})
    assert_same_404(gone, user.post("/AI/chat/history", {"sessionId": str(uuid.uuid4())}))
    assert [s["sessionId"] for s in sessions_of(user)] == [keep]
    assert user.history(keep) == keep_history
    again = user.http.delete(f"/AI/chat/sessions/{a_session}")
    assert_same_404(again, user.http.delete(f"/AI/chat/sessions/{uuid.uuid4()}"))
    resend = _send(user, a_session)
    assert_same_404(resend, _send(user, str(uuid.uuid4())))
