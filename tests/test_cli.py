"""`python -m chatstream user add`: creates users a server on the same data dir lets in."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import register, server_env
from tests.support.server import FAST_HASHING, ServerProcess
from tests.support.upstream import StandInUpstream

PASSWORD = "correct horse battery"


def chatstream(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSTREAM_")}
    env.update(FAST_HASHING)
    env["CHATSTREAM_DATA_DIR"] = str(data_dir)
    return subprocess.run(
        [sys.executable, "-m", "chatstream", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def login(server: ServerProcess, username: str, password: str = PASSWORD) -> httpx.Response:
    return httpx.post(server.api + "/user/login", json={"username": username, "password": password})


def assert_refused(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode != 0, result
    assert "Traceback" not in result.stderr
    # Log lines may come first; the last line is the reason, for a person to read.
    reason = result.stderr.strip().splitlines()[-1]
    assert reason.startswith("chatstream: "), result.stderr
    for word in words:
        assert word in reason, result.stderr


def test_user_add_then_log_in(data_dir: Path, upstream: StandInUpstream) -> None:
    added = chatstream(
        data_dir, "user", "add", "alice", "--password", PASSWORD, "--email", "Alice@Example.com"
    )
    assert added.returncode == 0, added.stderr
    assert "user alice added" in added.stdout
    assert chatstream(data_dir, "user", "add", "bob", "--password", PASSWORD).returncode == 0

    server = ServerProcess(data_dir, server_env(upstream)).start()
    try:
        for name in ("alice", "alice@example.com", "ALICE@example.com", "bob"):
            response = login(server, name)
            assert response.status_code == 200, (name, response.text)
            token = response.json()["token"]
            listed = httpx.get(server.api + "/AI/chat/sessions", headers={"Authorization": f"Bearer {token}"})
            assert listed.status_code == 200, listed.text
        assert login(server, "alice", "wrong password").status_code == 401

        # With the server running: a second `add` of the same name or address is refused ...
        assert_refused(
            chatstream(data_dir, "user", "add", "alice", "--password", "other password"), "alice", "exists"
        )
        assert_refused(
            chatstream(
                data_dir, "user", "add", "carol", "--password", PASSWORD, "--email", "alice@example.com"
            ),
            "exists",
        )
        # ... and leaves the first account as it was, while a new name is added.
        assert login(server, "alice").status_code == 200
        assert login(server, "alice", "other password").status_code == 401
        assert chatstream(data_dir, "user", "add", "dave", "--password", PASSWORD).returncode == 0
        assert login(server, "dave").status_code == 200
    finally:
        server.stop()


@pytest.mark.parametrize(
    ("args", "word"),
    [
        (["erin", "--password", "short"], "password"),
        (["erin", "--password", PASSWORD, "--email", "not-an-address"], "e-mail"),
        (["no", "--password", PASSWORD], "username"),
        (["has space", "--password", PASSWORD], "username"),
    ],
)
def test_user_add_refuses_bad_input(data_dir: Path, args: list[str], word: str) -> None:
    assert_refused(chatstream(data_dir, "user", "add", *args), word)


def test_user_add_without_password_is_a_usage_error(data_dir: Path) -> None:
    result = chatstream(data_dir, "user", "add", "frank")
    assert result.returncode == 2
    assert "--password" in result.stderr


def test_user_add_leaves_a_running_servers_answers_alone(data_dir: Path, upstream: StandInUpstream) -> None:
    server = ServerProcess(data_dir, server_env(upstream)).start()
    try:
        member = register(server)
        asker = threading.Thread(target=member.ask_new, args=("/slow 40 100",))  # about 4 s
        asker.start()
        try:
            deadline = time.monotonic() + 10
            while not (listed := member.get("/AI/chat/sessions").json()["sessions"]):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            session_id = listed[0]["sessionId"]
            assert member.history(session_id)[-1]["status"] == "streaming"
            assert chatstream(data_dir, "user", "add", "grace", "--password", PASSWORD).returncode == 0
            assert member.history(session_id)[-1]["status"] == "streaming"
        finally:
            asker.join()
    finally:
        server.stop()
