"""The SSE routes, end to end: frames, headers, ids, errors mid-answer, heartbeats."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Api
from tests.support.sse import answer_text

NASTY = 'line one\nline "two"\r\n\ttab 😀 中文テキスト [DONE] data: {"type":"delta"} \\ end'


def test_new_session_stream_frames_in_order(user: Api) -> None:
    response, frames = user.stream(
        "/AI/chat/send-stream-new-session", {"question": "/echo alpha beta gamma", "modelType": "1"}
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache, no-transform"
    assert response.headers["x-accel-buffering"] == "no"
    assert response.headers["content-encoding"] == "identity"
    assert frames[0].json().keys() == {"sessionId"}
    assert [f.json() for f in frames[1:4]] == [
        {"type": "delta", "content": "alpha "},
        {"type": "delta", "content": "beta "},
        {"type": "delta", "content": "gamma"},
    ]
    usage = frames[4].json()
    assert usage["type"] == "usage" and usage["completionTokens"] == 3 and usage["promptTokens"] > 0
    assert frames[5].text == "[DONE]"
    assert [f.id for f in frames] == [str(n) for n in range(1, 7)]


def test_text_arrives_byte_for_byte(user: Api) -> None:
    session_id, frames = user.ask_new("/echo " + NASTY)
    assert answer_text(frames) == NASTY
    assert frames[-1].text == "[DONE]"
    assert user.history(session_id)[1]["content"] == NASTY


def test_existing_session_stream_has_no_session_frame(user: Api) -> None:
    session_id, _ = user.ask_new("/echo one")
    frames = user.ask(session_id, "/echo two three")
    assert frames[0].json() == {"type": "delta", "content": "two "}
    assert answer_text(frames) == "two three"
    assert frames[-1].text == "[DONE]"


def test_upstream_failing_mid_answer_sends_error_frame_and_keeps_partial(user: Api) -> None:
    session_id, frames = user.ask_new("/fail 3")
    assert answer_text(frames) == "tok0 tok1 tok2 "
    last = frames[-1]
    assert last.event == "error"
    assert last.json()["type"] == "error" and last.json()["code"] == 5003
    assert all(f.text != "[DONE]" for f in frames)
    answer = user.history(session_id)[1]
    assert answer["status"] == "error"
    assert answer["content"] == "tok0 tok1 tok2 "
    assert "broke off" in answer["error"]


@pytest.mark.parametrize(("upstream_status", "http_status", "code"), [(500, 502, 5003), (429, 429, 4029)])
def test_upstream_refusing_before_the_stream_is_a_json_error(
    user: Api, upstream_status: int, http_status: int, code: int
) -> None:
    response, frames = user.stream(
        "/AI/chat/send-stream-new-session", {"question": f"/status {upstream_status}", "modelType": "1"}
    )
    assert response.status_code == http_status
    body = response.json()
    assert body["status_code"] == code
    assert f"HTTP {upstream_status}" in body["status_msg"]
    assert frames == []
    history = user.history(body["sessionId"])
    assert [m["status"] for m in history] == ["complete", "error"]


def test_stalled_upstream_gets_heartbeats(user: Api) -> None:
    # The test server pings after 0.5 s of silence (CHATSTREAM_HEARTBEAT_S).
    _, frames = user.ask_new("/stall 1.6")
    pings = [f for f in frames if "ping" in f.comments]
    assert len(pings) >= 2
    assert frames[-1].text == "[DONE]"
    assert answer_text(frames) == "tok0 tok1 tok2 tok3 tok4 "


def test_ollama_model_streams(user: Api) -> None:
    session_id, frames = user.ask_new("/echo from ollama", model="ollama")
    assert answer_text(frames) == "from ollama"
    assert frames[-1].text == "[DONE]"
    usage = frames[-2].json()
    assert usage["type"] == "usage" and usage["completionTokens"] == 2
    assert user.history(session_id)[1]["model"] == "ollama"


def test_ollama_failure_mid_answer(user: Api) -> None:
    session_id, frames = user.ask_new("/fail 2", model="ollama")
    assert frames[-1].event == "error"
    assert user.history(session_id)[1]["status"] == "error"


def test_non_stream_routes_answer_information(user: Api) -> None:
    response = user.post("/AI/chat/send-new-session", {"question": "/echo whole answer", "modelType": "1"})
    assert response.status_code == 200
    body = response.json()
    assert body["status_code"] == 1000 and body["Information"] == "whole answer"
    response = user.post(
        "/AI/chat/send", {"question": "/echo second", "modelType": "1", "sessionId": body["sessionId"]}
    )
    assert response.json()["Information"] == "second"


def test_non_stream_failure_is_an_error_status(user: Api) -> None:
    response = user.post("/AI/chat/send-new-session", {"question": "/fail 1", "modelType": "1"})
    assert response.status_code == 502
    body = response.json()
    assert body["status_code"] == 5003
    assert user.history(body["sessionId"])[1]["status"] == "error"


def test_api_alias_without_v1(user: Api) -> None:
    response = user.http.post(
        user.server.url + "/api/AI/chat/send-new-session", json={"question": "/echo alias", "modelType": "1"}
    )
    assert response.json()["Information"] == "alias"


def test_model_is_sent_system_prompt_free_history_with_right_roles(user: Api) -> None:
    session_id, _ = user.ask_new("/echo first answer")
    frames = user.ask(session_id, "/prompt")
    sent = json.loads(answer_text(frames))
    assert sent == [
        {"role": "user", "content": "/echo first answer"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "/prompt"},
    ]
