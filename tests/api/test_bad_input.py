"""Bad input on the chat routes: a clear error with the right status and code, and nothing changes.

Every refusal is checked three ways: the HTTP status and envelope code from API.md with a
`status_msg` naming the problem, the user's sessions list and an existing session's history
identical before and after, and no request reaching the model.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from tests.conftest import Api, register, server_env
from tests.support.server import ServerProcess
from tests.support.sse import parse
from tests.support.upstream import StandInUpstream

LIMIT = 1024 * 1024  # the default CHATSTREAM_MAX_BODY_BYTES
NEW_ROUTES = ["/AI/chat/send-stream-new-session", "/AI/chat/send-new-session"]
EXISTING_ROUTES = ["/AI/chat/send-stream", "/AI/chat/send"]
SEND_ROUTES = NEW_ROUTES + EXISTING_ROUTES
BODY_ROUTES = [*SEND_ROUTES, "/AI/chat/history"]


# -- helpers ---------------------------------------------------------------------------------------


def refused(response: httpx.Response, http_status: int, code: int, *needles: str) -> dict[str, Any]:
    """Asserts a JSON error envelope (never an event stream) and returns its body."""
    assert response.status_code == http_status, response.text
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body = dict(response.json())
    assert body["status_code"] == code, body
    for needle in needles:
        assert needle in body["status_msg"], body
    return body


def snapshot(api: Api, session_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    response = api.get("/AI/chat/sessions", params={"limit": 500})
    assert response.status_code == 200, response.text
    return list(response.json()["sessions"]), api.history(session_id)


@contextmanager
def nothing_changes(api: Api, session_id: str, upstream: StandInUpstream) -> Iterator[None]:
    """The sessions list, the session's history and the model's request count stay as they were."""
    before = snapshot(api, session_id)
    calls = len(upstream.requests)
    yield
    assert len(upstream.requests) == calls, "the model was called"
    assert snapshot(api, session_id) == before


def valid_body(route: str, session_id: str) -> dict[str, Any]:
    if route == "/AI/chat/history":
        return {"sessionId": session_id}
    body: dict[str, Any] = {"question": "/echo fine", "modelType": "1"}
    if route in EXISTING_ROUTES:
        body["sessionId"] = session_id
    return body


def raw_post(api: Api, route: str, content: Any, content_type: str | None) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type else {}
    return api.http.post(route, content=content, headers=headers)


@pytest.fixture
def existing(user: Api) -> tuple[Api, str]:
    """A user with one finished session (two messages)."""
    session_id, _ = user.ask_new("/echo already here")
    assert len(user.history(session_id)) == 2
    return user, session_id


# -- the control: the bodies the bad ones are made from are accepted -------------------------------


@pytest.mark.parametrize("route", BODY_ROUTES)
def test_valid_body_is_accepted(existing: tuple[Api, str], route: str) -> None:
    api, session_id = existing
    response = api.post(route, valid_body(route, session_id))
    assert response.status_code == 200, response.text
    response.read()


# -- fields ----------------------------------------------------------------------------------------


def _drop(field: str) -> Any:
    return lambda body: {k: v for k, v in body.items() if k != field}


def _set(field: str, value: Any) -> Any:
    return lambda body: {**body, field: value}


FIELD_CASES = [
    ("missing-question", _drop("question"), 422, ["field 'question' is required"]),
    ("missing-modelType", _drop("modelType"), 422, ["field 'modelType' is required"]),
    ("empty-question", _set("question", ""), 422, ["'question'", "at least 1 character"]),
    ("whitespace-question", _set("question", " \t\n  "), 422, ["question must not be empty"]),
    ("question-number", _set("question", 5), 422, ["field 'question'", "valid string"]),
    ("question-null", _set("question", None), 422, ["field 'question'", "valid string"]),
    ("question-object", _set("question", {"text": "hi"}), 422, ["field 'question'"]),
    ("modelType-number", _set("modelType", 1), 422, ["field 'modelType'", "valid string"]),
    ("modelType-empty", _set("modelType", ""), 422, ["field 'modelType'"]),
    ("modelType-long", _set("modelType", "m" * 65), 422, ["field 'modelType'", "at most 64"]),
    ("question-nul", _set("question", "a\x00b"), 422, ["field 'question'", "NUL"]),
    ("modelType-nul", _set("modelType", "1\x00"), 422, ["field 'modelType'", "NUL"]),
]
SESSION_FIELD_CASES = [
    ("missing-sessionId", _drop("sessionId"), 422, ["field 'sessionId' is required"]),
    ("sessionId-list", _set("sessionId", []), 422, ["field 'sessionId'", "valid string"]),
    ("sessionId-number", _set("sessionId", 7), 422, ["field 'sessionId'", "valid string"]),
    ("sessionId-empty", _set("sessionId", ""), 422, ["field 'sessionId'"]),
    ("sessionId-long", _set("sessionId", "s" * 65), 422, ["field 'sessionId'", "at most 64"]),
    ("sessionId-nul", _set("sessionId", "a\x00b"), 422, ["field 'sessionId'", "NUL"]),
]


def _field_params() -> list[Any]:
    params = []
    for route in SEND_ROUTES:
        for name, change, status, needles in FIELD_CASES:
            params.append(
                pytest.param(route, change, status, needles, id=f"{route.rsplit('/', 1)[1]}-{name}")
            )
    for route in [*EXISTING_ROUTES, "/AI/chat/history"]:
        for name, change, status, needles in SESSION_FIELD_CASES:
            params.append(
                pytest.param(route, change, status, needles, id=f"{route.rsplit('/', 1)[1]}-{name}")
            )
    return params


@pytest.mark.parametrize(("route", "change", "http_status", "needles"), _field_params())
def test_bad_field_is_refused_and_changes_nothing(
    existing: tuple[Api, str],
    upstream: StandInUpstream,
    route: str,
    change: Any,
    http_status: int,
    needles: list[str],
) -> None:
    api, session_id = existing
    with nothing_changes(api, session_id, upstream):
        response = api.post(route, change(valid_body(route, session_id)))
        refused(response, http_status, 2001, *needles)


def test_every_wrong_field_is_named_at_once(existing: tuple[Api, str], upstream: StandInUpstream) -> None:
    api, session_id = existing
    with nothing_changes(api, session_id, upstream):
        response = api.post("/AI/chat/send", {"question": 5, "modelType": 1, "sessionId": []})
        refused(response, 422, 2001, "field 'question'", "field 'modelType'", "field 'sessionId'")


# -- the body as a whole ---------------------------------------------------------------------------

BODY_CASES = [
    ("array", b'[{"question": "/echo x", "modelType": "1"}]', "application/json", 422, "a JSON object"),
    ("string", b'"/echo x"', "application/json", 422, "a JSON object"),
    ("number", b"42", "application/json", 422, "a JSON object"),
    ("null", b"null", "application/json", 422, "a JSON object"),
    ("empty", b"", "application/json", 422, "a JSON object"),
    ("invalid-json", b'{"question": "/echo x",', "application/json", 400, "invalid JSON"),
    ("single-quotes", b"{'question': '/echo x'}", "application/json", 400, "invalid JSON"),
    ("trailing-garbage", b'{"question": "/echo x"} tail', "application/json", 400, "invalid JSON"),
    ("text-plain", None, "text/plain", 422, "Content-Type: application/json"),
    ("form-type", None, "application/x-www-form-urlencoded", 422, "Content-Type: application/json"),
    ("no-content-type", None, None, 422, "Content-Type: application/json"),
]


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize(
    ("content", "content_type", "http_status", "needle"),
    [pytest.param(*case[1:], id=case[0]) for case in BODY_CASES],
)
def test_bad_body_is_refused_and_changes_nothing(
    existing: tuple[Api, str],
    upstream: StandInUpstream,
    route: str,
    content: bytes | None,
    content_type: str | None,
    http_status: int,
    needle: str,
) -> None:
    api, session_id = existing
    if content is None:  # a body that would be fine, sent without saying it is JSON
        content = json.dumps(valid_body(route, session_id)).encode()
    with nothing_changes(api, session_id, upstream):
        response = raw_post(api, route, content, content_type)
        body = refused(response, http_status, 2001, needle)
        if content_type and content_type != "application/json":
            assert content_type in body["status_msg"]


@pytest.mark.parametrize("route", BODY_ROUTES)
def test_body_that_is_not_utf8_is_refused(
    existing: tuple[Api, str], upstream: StandInUpstream, route: str
) -> None:
    api, session_id = existing
    with nothing_changes(api, session_id, upstream):
        response = raw_post(api, route, b'{"question": "\xff\xfe", "modelType": "1"}', "application/json")
        refused(response, 400, 2001, "body")


# -- model types -----------------------------------------------------------------------------------


@pytest.mark.parametrize("route", SEND_ROUTES)
def test_unknown_model_type_names_the_known_ones(
    existing: tuple[Api, str], upstream: StandInUpstream, route: str
) -> None:
    api, session_id = existing
    known = [m["type"] for m in api.get("/AI/chat/models").json()["models"]]
    assert known, "the test server offers models"
    with nothing_changes(api, session_id, upstream):
        body = {**valid_body(route, session_id), "modelType": "nope"}
        error = refused(api.post(route, body), 400, 5001, "'nope'", "known")
        for model_type in ["1", *known]:
            assert model_type in error["status_msg"]


@pytest.mark.parametrize("route", SEND_ROUTES)
def test_seed_tools_alias_not_enabled(
    existing: tuple[Api, str], upstream: StandInUpstream, route: str
) -> None:
    api, session_id = existing
    with nothing_changes(api, session_id, upstream):
        body = {**valid_body(route, session_id), "modelType": "3"}
        refused(api.post(route, body), 400, 5001, "'3'", "not enabled")


# -- sessions that are missing or someone else's ---------------------------------------------------


@pytest.mark.parametrize("route", [*EXISTING_ROUTES, "/AI/chat/history"])
def test_unknown_and_foreign_session_get_the_same_404(
    existing: tuple[Api, str], other_user: Api, upstream: StandInUpstream, route: str
) -> None:
    api, session_id = existing
    foreign_id, _ = other_user.ask_new("/echo not yours")
    foreign_before = other_user.history(foreign_id)
    with nothing_changes(api, session_id, upstream):
        missing = api.post(route, valid_body(route, str(uuid.uuid4())))
        foreign = api.post(route, valid_body(route, foreign_id))
        missing_body = refused(missing, 404, 2011, "session does not exist")
        foreign_body = refused(foreign, 404, 2011)
    assert foreign_body == missing_body
    assert foreign.headers.get("content-length") == missing.headers.get("content-length")
    assert other_user.history(foreign_id) == foreign_before


# -- body size -------------------------------------------------------------------------------------


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _json_of_size(total: int) -> bytes:
    """`{"question": "xxx…", "modelType": "1"}` exactly `total` bytes long."""
    shell = len(b'{"question": "", "modelType": "1"}')
    return b'{"question": "' + b"x" * (total - shell) + b'", "modelType": "1"}'


@pytest.mark.parametrize("route", BODY_ROUTES)
@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_body_is_413_naming_the_limit(
    existing: tuple[Api, str], upstream: StandInUpstream, route: str, chunked: bool
) -> None:
    api, session_id = existing
    data = _json_of_size(LIMIT + 1)
    with nothing_changes(api, session_id, upstream):
        content: Any = _chunks(data) if chunked else data
        response = raw_post(api, route, content, "application/json")
        if chunked:
            assert "content-length" not in response.request.headers
            assert response.request.headers["transfer-encoding"] == "chunked"
        refused(response, 413, 2001, str(LIMIT), "limit")


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_body_of_exactly_the_limit_passes_the_size_check(
    existing: tuple[Api, str], upstream: StandInUpstream, chunked: bool
) -> None:
    # Exactly the limit is allowed through, so the route sees it: the question is then too long.
    api, session_id = existing
    data = _json_of_size(LIMIT)
    assert len(data) == LIMIT
    with nothing_changes(api, session_id, upstream):
        content: Any = _chunks(data) if chunked else data
        response = raw_post(api, "/AI/chat/send-new-session", content, "application/json")
        refused(response, 422, 2001, "question is longer than 32000 characters")


def test_oversized_body_without_token_is_413(anonymous: Api, upstream: StandInUpstream) -> None:
    calls = len(upstream.requests)
    response = raw_post(anonymous, "/AI/chat/send-new-session", _json_of_size(LIMIT + 1), "application/json")
    refused(response, 413, 2001, str(LIMIT))
    assert len(upstream.requests) == calls


# -- the question length setting (its own server) --------------------------------------------------


@pytest.fixture(scope="module")
def short_server(
    tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream
) -> Iterator[ServerProcess]:
    env = server_env(upstream, CHATSTREAM_MAX_QUESTION_CHARS="100")
    proc = ServerProcess(tmp_path_factory.mktemp("short-questions"), env).start()
    yield proc
    proc.stop()


@pytest.mark.parametrize("route", SEND_ROUTES)
@pytest.mark.parametrize("letter", ["x", "中", "😀"], ids=["ascii", "cjk", "emoji"])
def test_question_longer_than_the_setting(
    short_server: ServerProcess, upstream: StandInUpstream, route: str, letter: str
) -> None:
    api = register(short_server)
    session_id, _ = api.ask_new("/echo short")
    with nothing_changes(api, session_id, upstream):
        body = {**valid_body(route, session_id), "question": letter * 101}
        refused(api.post(route, body), 422, 2001, "question is longer than 100 characters")


@pytest.mark.parametrize("letter", ["x", "中", "😀"], ids=["ascii", "cjk", "emoji"])
def test_question_of_exactly_the_setting_is_accepted(short_server: ServerProcess, letter: str) -> None:
    # Characters, not bytes: 100 emoji are 400 bytes of UTF-8 and still fit.
    api = register(short_server)
    question = "/echo " + letter * 94
    assert len(question) == 100
    session_id, _ = api.ask_new(question)
    assert [m["content"] for m in api.history(session_id)] == [question, letter * 94]


# -- the sessions list -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "needles"),
    [
        pytest.param({"limit": "0"}, ["limit", "greater than or equal to 1"], id="limit-0"),
        pytest.param({"limit": "-3"}, ["limit"], id="limit-negative"),
        pytest.param({"limit": "501"}, ["limit", "less than or equal to 500"], id="limit-too-big"),
        pytest.param({"limit": "abc"}, ["limit", "integer"], id="limit-abc"),
        pytest.param({"limit": "2.5"}, ["limit", "integer"], id="limit-fraction"),
        pytest.param({"cursor": "abc"}, ["cursor"], id="cursor-short"),
        pytest.param({"cursor": "not a cursor!"}, ["cursor"], id="cursor-garbage"),
        pytest.param({"cursor": "Zm9vfGJhcg"}, ["cursor"], id="cursor-base64-no-date"),
        pytest.param({"cursor": "bm8tc2VwYXJhdG9y"}, ["cursor"], id="cursor-base64-no-separator"),
        pytest.param({"cursor": "_-_-_-_-"}, ["cursor"], id="cursor-binary"),
        pytest.param({"cursor": "c" * 201}, ["cursor", "at most 200"], id="cursor-too-long"),
    ],
)
def test_bad_sessions_list_parameters(
    existing: tuple[Api, str], upstream: StandInUpstream, params: dict[str, str], needles: list[str]
) -> None:
    api, session_id = existing
    with nothing_changes(api, session_id, upstream):
        refused(api.get("/AI/chat/sessions", params=params), 422, 2001, *needles)


def test_sessions_pagination_newest_first_each_once(user: Api) -> None:
    questions = [f"  /echo  question {i}   with\tspaces  " for i in range(5)]
    ids = [user.ask_new(q)[0] for q in questions]
    # Activity moves a session to the top: ask again in the second one.
    user.ask(ids[1], "/echo again")
    expected = [ids[1], ids[4], ids[3], ids[2], ids[0]]
    names = {sid: f"/echo question {i} with spaces" for i, sid in enumerate(ids)}

    seen: list[dict[str, Any]] = []
    sizes = []
    cursor: str | None = None
    for _ in range(10):
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        response = user.get("/AI/chat/sessions", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status_code"] == 1000
        sizes.append(len(body["sessions"]))
        seen += body["sessions"]
        cursor = body["nextCursor"]
        if cursor is None:
            break
    assert sizes == [2, 2, 1]
    assert [s["sessionId"] for s in seen] == expected
    assert {s["sessionId"]: s["name"] for s in seen} == names
    stamps = [s["updatedAt"] for s in seen]
    assert stamps == sorted(stamps, reverse=True)

    whole = user.get("/AI/chat/sessions", params={"limit": 5}).json()
    assert [s["sessionId"] for s in whole["sessions"]] == expected
    assert whole["nextCursor"] is None
    default = user.get("/AI/chat/sessions").json()
    assert [s["sessionId"] for s in default["sessions"]] == expected


def test_sessions_cursor_does_not_cross_users(user: Api, other_user: Api) -> None:
    mine = [user.ask_new(f"/echo mine {i}")[0] for i in range(3)]
    other_user.ask_new("/echo theirs")
    first = user.get("/AI/chat/sessions", params={"limit": 1}).json()
    cursor = first["nextCursor"]
    assert cursor
    theirs = other_user.get("/AI/chat/sessions", params={"limit": 50, "cursor": cursor})
    assert theirs.status_code == 200
    assert not {s["sessionId"] for s in theirs.json()["sessions"]} & set(mine)


# -- rename and delete -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        pytest.param({"name": ""}, ["'name'", "at least 1 character"], id="empty"),
        pytest.param({"name": "  \t\n "}, ["name must not be empty"], id="whitespace"),
        pytest.param({}, ["field 'name' is required"], id="missing"),
        pytest.param({"name": 3}, ["field 'name'", "valid string"], id="number"),
        pytest.param({"name": "n" * 201}, ["name", "at most 200"], id="too-long"),
        pytest.param({"name": "a\x00b"}, ["field 'name'", "NUL"], id="nul"),
    ],
)
def test_bad_rename_is_refused(
    existing: tuple[Api, str], upstream: StandInUpstream, body: dict[str, Any], needles: list[str]
) -> None:
    api, session_id = existing
    with nothing_changes(api, session_id, upstream):
        response = api.http.patch(f"/AI/chat/sessions/{session_id}", json=body)
        refused(response, 422, 2001, *needles)


def test_rename_and_delete_of_a_missing_session(existing: tuple[Api, str], upstream: StandInUpstream) -> None:
    api, session_id = existing
    missing = str(uuid.uuid4())
    with nothing_changes(api, session_id, upstream):
        renamed = api.http.patch(f"/AI/chat/sessions/{missing}", json={"name": "new name"})
        deleted = api.http.delete(f"/AI/chat/sessions/{missing}")
        stopped = api.post("/AI/chat/stop", {"sessionId": missing})
        followed = api.get("/AI/chat/stream", params={"sessionId": missing})
        for response in (renamed, deleted, stopped, followed):
            refused(response, 404, 2011, "session does not exist")


@pytest.mark.parametrize(
    ("method", "path", "body", "needles"),
    [
        pytest.param("POST", "/AI/chat/stop", {}, ["field 'sessionId' is required"], id="stop-missing"),
        pytest.param("POST", "/AI/chat/stop", {"sessionId": []}, ["field 'sessionId'"], id="stop-list"),
        pytest.param("GET", "/AI/chat/stream", None, ["sessionId", "required"], id="follow-missing"),
        pytest.param("GET", "/AI/chat/stream?sessionId=", None, ["sessionId"], id="follow-empty"),
        pytest.param("GET", "/AI/chat/stream?sessionId=x&after=-1", None, ["after"], id="follow-after"),
    ],
)
def test_bad_stop_and_follow_parameters(
    existing: tuple[Api, str],
    upstream: StandInUpstream,
    method: str,
    path: str,
    body: Any,
    needles: list[str],
) -> None:
    api, session_id = existing
    with nothing_changes(api, session_id, upstream):
        refused(api.http.request(method, path, json=body), 422, 2001, *needles)


# Servers read header bytes as Latin-1: b"\xb2" arrives as "²", which str.isdigit() accepts.
@pytest.mark.parametrize("header", [b"\xb2", b"1\xb9", "١٢".encode(), b"7x", b"-1", b"1e3"])
def test_a_last_event_id_that_is_no_frame_number_replays_from_the_start(
    existing: tuple[Api, str], header: str
) -> None:
    """An EventSource sends back the `id:` it last had; anything else is read as "from the start"."""
    api, _ = existing
    session_id, frames = api.ask_new("/echo from the start")
    response = api.http.get(
        "/AI/chat/stream", params={"sessionId": session_id}, headers={"Last-Event-ID": header}
    )
    assert response.status_code == 200, response.text
    assert response.text == api.http.get("/AI/chat/stream", params={"sessionId": session_id, "after": 0}).text
    assert [f.id for f in parse(response.iter_lines())] == [f.id for f in frames]


# -- NUL characters, on both storage backends ------------------------------------------------------
# PostgreSQL can neither store nor compare text holding U+0000; SQLite can. The API must answer alike.


def test_nul_in_body_fields_is_refused_on_every_backend(
    storage_server: ServerProcess, upstream: StandInUpstream
) -> None:
    api = register(storage_server)
    session_id, _ = api.ask_new("/echo before")
    ask = {"question": "/echo a\x00b", "modelType": "1"}
    with nothing_changes(api, session_id, upstream):
        for route, body, field in [
            ("/AI/chat/send-new-session", ask, "question"),
            ("/AI/chat/send-stream-new-session", ask, "question"),
            ("/AI/chat/send", {**ask, "sessionId": session_id}, "question"),
            ("/AI/chat/send-stream", {**ask, "sessionId": session_id}, "question"),
            ("/AI/chat/history", {"sessionId": "a\x00b"}, "sessionId"),
            ("/AI/chat/stop", {"sessionId": "a\x00b"}, "sessionId"),
        ]:
            refused(api.post(route, body), 422, 2001, f"field '{field}'", "NUL")
        renamed = api.http.patch(f"/AI/chat/sessions/{session_id}", json={"name": "a\x00b"})
        refused(renamed, 422, 2001, "field 'name'", "NUL")


NUL_ELSEWHERE = [
    pytest.param("DELETE", "/AI/chat/sessions/a%00b", None, 404, id="delete-path"),
    pytest.param("PATCH", "/AI/chat/sessions/a%00b", {"name": "x"}, 404, id="rename-path"),
    pytest.param("GET", "/AI/chat/stream?sessionId=a%00b", None, 404, id="follow-query"),
    # base64url of "2020-01-01|a<NUL>b": a well-formed cursor with NUL in its session id
    pytest.param("GET", "/AI/chat/sessions?cursor=MjAyMC0wMS0wMXxhAGI", None, None, id="cursor"),
]


@pytest.mark.parametrize(("method", "path", "body", "http_status"), NUL_ELSEWHERE)
def test_nul_in_path_query_or_cursor_is_not_a_server_error(
    storage_server: ServerProcess,
    upstream: StandInUpstream,
    method: str,
    path: str,
    body: Any,
    http_status: int | None,
) -> None:
    api = register(storage_server)
    session_id, _ = api.ask_new("/echo before")
    with nothing_changes(api, session_id, upstream):
        # A fresh connection: after a 500 the server drops the keep-alive connection.
        with httpx.Client(base_url=api.server.api, headers=api.http.headers, timeout=30) as client:
            response = client.request(method, path, json=body)
        if http_status == 404:
            refused(response, 404, 2011, "session does not exist")
        else:  # a forged cursor may be refused or simply lead nowhere, but never break the server
            assert response.status_code in (200, 422), response.text
            assert response.json()["status_code"] in (1000, 2001)


def test_connection_survives_whatever_a_nul_path_does(storage_server: ServerProcess) -> None:
    # Whatever a NUL path does, the keep-alive connection must survive it: after a 500 the
    # server closes the connection, so it has to say Connection: close.
    api = register(storage_server)
    first = api.http.delete("/AI/chat/sessions/a%00b")
    assert first.status_code in (404, 500)
    if first.status_code == 500:
        assert first.headers["connection"] == "close"
        assert first.json() == {
            "status_code": 4001,
            "status_msg": "server busy: an unexpected error was logged",
        }
    after = api.get("/AI/chat/sessions")
    assert after.status_code == 200, after.text


# -- authentication --------------------------------------------------------------------------------


def _auth_calls(session_id: str) -> list[Any]:
    ask = {"question": "/echo sneaky", "modelType": "1"}
    return [
        pytest.param("POST", "/AI/chat/send-stream-new-session", ask, id="send-stream-new-session"),
        pytest.param("POST", "/AI/chat/send-stream", {**ask, "sessionId": session_id}, id="send-stream"),
        pytest.param("POST", "/AI/chat/send-new-session", ask, id="send-new-session"),
        pytest.param("POST", "/AI/chat/send", {**ask, "sessionId": session_id}, id="send"),
        pytest.param("POST", "/AI/chat/history", {"sessionId": session_id}, id="history"),
        pytest.param("POST", "/AI/chat/stop", {"sessionId": session_id}, id="stop"),
        pytest.param("GET", "/AI/chat/sessions", None, id="sessions"),
        pytest.param("GET", "/AI/chat/models", None, id="models"),
        pytest.param("GET", f"/AI/chat/stream?sessionId={session_id}", None, id="follow"),
        pytest.param("PATCH", f"/AI/chat/sessions/{session_id}", {"name": "pwned"}, id="rename"),
        pytest.param("DELETE", f"/AI/chat/sessions/{session_id}", None, id="delete"),
    ]


SESSION_PLACEHOLDER = "SESSION-ID"


@pytest.mark.parametrize(("method", "path", "body"), _auth_calls(SESSION_PLACEHOLDER))
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer", "Bearer not-a-token", "Basic dXNlcjpwYXNz", "Bearer a.b.c"],
    ids=["none", "empty-bearer", "garbage", "basic", "forged-jwt"],
)
def test_chat_routes_need_a_valid_token(
    existing: tuple[Api, str],
    upstream: StandInUpstream,
    method: str,
    path: str,
    body: Any,
    authorization: str | None,
) -> None:
    api, session_id = existing
    headers = {"Authorization": authorization} if authorization else {}
    path = path.replace(SESSION_PLACEHOLDER, session_id)
    if isinstance(body, dict) and "sessionId" in body:
        body = {**body, "sessionId": session_id}
    with (
        nothing_changes(api, session_id, upstream),
        httpx.Client(base_url=api.server.api, headers=headers, timeout=30) as stranger,
    ):
        response = stranger.request(method, path, json=body)
        refused(response, 401, 2006, "token")
        assert response.headers["www-authenticate"] == "Bearer"


def test_token_checked_before_the_body(anonymous: Api, upstream: StandInUpstream) -> None:
    # A stranger learns nothing about the body rules: no token is the first thing said.
    calls = len(upstream.requests)
    for route in BODY_ROUTES:
        refused(anonymous.post(route, {}), 401, 2006, "token")
        refused(anonymous.post(route, {"question": 5}), 401, 2006, "token")
    assert len(upstream.requests) == calls
