"""Sessions and messages live in the database: the same tests on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from tests.conftest import Api, register
from tests.support.server import ServerProcess
from tests.support.sse import answer_text


@pytest.fixture
def member(storage_server: ServerProcess) -> Api:
    return register(storage_server)


def test_two_turn_conversation_is_stored_with_roles_in_order(member: Api) -> None:
    session_id, frames = member.ask_new("/echo first reply")
    assert answer_text(frames) == "first reply"
    frames = member.ask(session_id, "/prompt")
    history = member.history(session_id)
    assert [(m["is_user"], m["role"]) for m in history] == [
        (True, "user"),
        (False, "assistant"),
        (True, "user"),
        (False, "assistant"),
    ]
    assert [m["content"] for m in history[:3]] == ["/echo first reply", "first reply", "/prompt"]
    assert all(m["status"] == "complete" for m in history)
    assert history[1]["completionTokens"] == 2 and history[1]["promptTokens"] > 0
    stamps = [datetime.fromisoformat(m["createdAt"]) for m in history]
    assert stamps == sorted(stamps)
    # What the model was sent for the second turn: the first turn, in order, with the right roles.
    assert json.loads(answer_text(frames)) == [
        {"role": "user", "content": "/echo first reply"},
        {"role": "assistant", "content": "first reply"},
        {"role": "user", "content": "/prompt"},
    ]


def test_sessions_are_listed_most_recent_first_with_titles(member: Api) -> None:
    first, _ = member.ask_new("/echo   the   first   question  ")
    second, _ = member.ask_new("/echo " + "long " * 40)
    member.ask(first, "/echo touch the first again")
    sessions = member.get("/AI/chat/sessions").json()["sessions"]
    assert [s["sessionId"] for s in sessions] == [first, second]
    assert sessions[0]["name"] == "/echo the first question"
    assert len(sessions[1]["name"]) <= 60 and sessions[1]["name"].endswith("…")


def test_failed_answer_is_stored_with_error_status(member: Api) -> None:
    session_id, _ = member.ask_new("/fail 2")
    answer = member.history(session_id)[1]
    assert (answer["status"], answer["content"]) == ("error", "tok0 tok1 ")


def test_rename_and_delete(member: Api) -> None:
    session_id, _ = member.ask_new("/echo x")
    assert (
        member.http.patch(f"/AI/chat/sessions/{session_id}", json={"name": " Renamed  chat "}).status_code
        == 200
    )
    names = {s["sessionId"]: s["name"] for s in member.get("/AI/chat/sessions").json()["sessions"]}
    assert names[session_id] == "Renamed chat"
    assert member.http.delete(f"/AI/chat/sessions/{session_id}").status_code == 200
    response = member.post("/AI/chat/history", {"sessionId": session_id})
    assert response.status_code == 404 and response.json()["status_code"] == 2011


def test_restart_keeps_users_sessions_and_history(storage_server: ServerProcess) -> None:
    member = register(storage_server)
    session_id, _ = member.ask_new("/echo kept across restarts")
    before = member.history(session_id)
    storage_server.restart()
    assert member.history(session_id) == before  # the old token still works: the secret was kept
    again = Api(storage_server)
    response = again.post("/user/login", {"username": member.username, "password": "correct horse"})
    assert response.status_code == 200
    assert [s["sessionId"] for s in member.get("/AI/chat/sessions").json()["sessions"]] == [session_id]
    frames = member.ask(session_id, "/echo and continues")
    assert answer_text(frames) == "and continues"
