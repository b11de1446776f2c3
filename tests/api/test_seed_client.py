"""The seed's own browser code (run in Node) against chatstream: both stream routes work unchanged."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Api

CLIENT = Path(__file__).resolve().parent.parent / "seed_client" / "seed_client.mjs"
NASTY = 'two\nlines "quoted" 😀 中文 [DONE] data: {"x":1}'


def run_seed_client(user: Api, question: str, session_id: str = "") -> dict[str, Any]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("Node.js is needed to run the seed's browser code (Debian: apt-get install nodejs)")
    args = [node, str(CLIENT), user.server.url, user.token or "", question]
    if session_id:
        args.append(session_id)
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=True)
    return dict(json.loads(done.stdout))


def test_seed_client_new_session_gets_session_id_and_whole_answer(user: Api) -> None:
    result = run_seed_client(user, "/echo " + NASTY)
    assert result["status"] == "done"
    assert result["content"] == NASTY
    sessions = user.get("/AI/chat/sessions").json()["sessions"]
    assert result["sessionId"] == sessions[0]["sessionId"]


def test_seed_client_existing_session(user: Api) -> None:
    session_id, _ = user.ask_new("/echo first")
    result = run_seed_client(user, "/echo second answer", session_id)
    assert (result["status"], result["content"], result["sessionId"]) == ("done", "second answer", session_id)
    assert [m["content"] for m in user.history(session_id)] == [
        "/echo first",
        "first",
        "/echo second answer",
        "second answer",
    ]
