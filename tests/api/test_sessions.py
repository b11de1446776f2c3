"""The sessions list's page size setting."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import register, server_env
from tests.support.server import ServerProcess
from tests.support.upstream import StandInUpstream


def test_default_page_size_is_a_setting(tmp_path: Path, upstream: StandInUpstream) -> None:
    proc = ServerProcess(tmp_path / "pages", server_env(upstream, CHATSTREAM_SESSIONS_PAGE_SIZE="2")).start()
    try:
        member = register(proc)
        for n in range(3):
            member.ask_new(f"/echo {n}")
        first = member.get("/AI/chat/sessions").json()
        assert len(first["sessions"]) == 2 and first["nextCursor"]
        rest = member.get("/AI/chat/sessions", params={"cursor": first["nextCursor"]}).json()
        assert len(rest["sessions"]) == 1 and rest["nextCursor"] is None
        assert len(member.get("/AI/chat/sessions", params={"limit": 3}).json()["sessions"]) == 3
    finally:
        proc.stop()
