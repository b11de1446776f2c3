"""Document answers: the `sources` frame, the passages the model is sent, citations kept in history."""

from __future__ import annotations

import json
from typing import Any

from tests.api.test_documents import add_ready
from tests.conftest import Api
from tests.support.sse import Frame, answer_text

GUIDE = b"""# Lighthouse Keeper Guide

## Lamp

The lamp of the Brightwater lighthouse must be lit at sunset and turned off at sunrise.

## Fuel

The generator runs on diesel; the tank holds 400 litres and lasts about nine days.

## Visitors

Visitors may climb the tower on Saturdays between ten and four.
"""


def sent_messages(frames: list[Frame]) -> list[dict[str, Any]]:
    """What the model was sent: the stand-in upstream answers '/prompt' questions with it, as JSON."""
    return list(json.loads(answer_text(frames)))


def sources_of(frames: list[Frame]) -> dict[str, Any]:
    frame = next(f.json() for f in frames if f.text.startswith("{") and f.json().get("type") == "sources")
    return dict(frame)


def test_sources_frame_comes_first_and_matches_what_the_model_got(user: Api) -> None:
    document = add_ready(user, "guide.md", GUIDE)
    session_id, frames = user.ask_new("/prompt how big is the diesel tank of the generator?", model="2")
    assert frames[0].json().keys() == {"sessionId"}
    assert frames[1].json()["type"] == "sources"  # before any delta
    sources = sources_of(frames)["sources"]
    assert sources and sources[0]["documentId"] == document["id"]
    assert sources[0]["title"] == "guide.md" and sources[0]["section"] == "Lighthouse Keeper Guide > Fuel"
    assert "400 litres" in sources[0]["text"] and 0 < sources[0]["score"] <= 1
    assert [s["n"] for s in sources] == list(range(1, len(sources) + 1))
    messages = sent_messages(frames)
    assert messages[-1] == {"role": "user", "content": "/prompt how big is the diesel tank of the generator?"}
    passages = messages[-2]
    assert passages["role"] == "system" and "[n]" in passages["content"]
    for source in sources:
        assert f"[{source['n']}] guide.md — {source['section']}\n{source['text']}" in passages["content"]
    answer = user.history(session_id)[1]
    assert answer["sources"] == sources and "sourcesNote" not in answer


def test_nothing_relevant_is_said_in_the_frame_and_to_the_model(user: Api) -> None:
    add_ready(user, "guide.md", GUIDE)
    session_id, frames = user.ask_new("/prompt quantum chromodynamics of gluons", model="2")
    frame = sources_of(frames)
    assert frame["sources"] == [] and "No passage" in frame["note"]
    assert "no passage in them matches" in sent_messages(frames)[-2]["content"]
    answer = user.history(session_id)[1]
    assert answer["sources"] == [] and answer["sourcesNote"] == frame["note"]


def test_no_documents_at_all_is_said_too(user: Api) -> None:
    _, frames = user.ask_new("/echo anything", model="2")
    frame = sources_of(frames)
    assert frame["sources"] == [] and "no documents" in frame["note"].lower()
    assert answer_text(frames) == "anything"


def test_documents_switched_on_for_a_session_with_another_model(user: Api) -> None:
    add_ready(user, "guide.md", GUIDE)
    session_id, frames = user.ask_new("/echo plain question")
    assert all(f.text == "[DONE]" or f.json().get("type") != "sources" for f in frames)
    listed = user.get("/AI/chat/sessions").json()["sessions"]
    assert next(s for s in listed if s["sessionId"] == session_id)["documents"] is False
    response = user.http.patch(f"/AI/chat/sessions/{session_id}", json={"documents": True})
    assert response.status_code == 200 and response.json()["documents"] is True
    frames = user.ask(session_id, "/prompt when may visitors climb the tower?")
    sources = sources_of(frames)["sources"]
    assert sources[0]["section"] == "Lighthouse Keeper Guide > Visitors"
    listed = user.get("/AI/chat/sessions").json()["sessions"]
    assert next(s for s in listed if s["sessionId"] == session_id)["documents"] is True
    assert user.post("/AI/chat/history", {"sessionId": session_id}).json()["documents"] is True


def test_model_2_session_keeps_answering_from_documents(user: Api) -> None:
    add_ready(user, "guide.md", GUIDE)
    session_id, _ = user.ask_new("/echo first", model="2")
    frames = user.ask(session_id, "/prompt when is the lamp lit?", model="1")
    assert sources_of(frames)["sources"][0]["section"] == "Lighthouse Keeper Guide > Lamp"


def test_send_body_documents_flag(user: Api) -> None:
    add_ready(user, "guide.md", GUIDE)
    response, frames = user.stream(
        "/AI/chat/send-stream-new-session",
        {"question": "/prompt diesel tank size", "modelType": "1", "documents": True},
    )
    assert response.status_code == 200
    assert sources_of(frames)["sources"][0]["section"] == "Lighthouse Keeper Guide > Fuel"
    session = "/AI/chat/sessions/" + frames[0].json()["sessionId"]
    for body in ({"documents": "maybe"}, {}):
        bad = user.http.patch(session, json=body)
        assert bad.status_code == 422 and bad.json()["status_code"] == 2001, body
