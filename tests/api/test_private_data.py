"""The data directory and what the server keeps there are for the server's user only."""

from __future__ import annotations

import stat
from pathlib import Path

from tests.conftest import register, server_env
from tests.support.server import ServerProcess
from tests.support.upstream import StandInUpstream


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_data_directory_is_private_and_an_old_readable_one_is_tightened(
    tmp_path: Path, upstream: StandInUpstream
) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)  # as a version before this one left it, whatever the umask
    (data / "jwt-secret").write_text("an-old-secret-that-is-long-enough-for-hs256-0123456789\n")
    (data / "jwt-secret").chmod(0o644)
    (data / "notes.txt").write_text("not ours")
    (data / "notes.txt").chmod(0o644)
    server = ServerProcess(data, server_env(upstream)).start()
    try:
        member = register(server)
        session_id, _ = member.ask_new("/echo a secret conversation")  # rows, WAL, journal
        assert member.history(session_id)[1]["content"] == "a secret conversation"
        assert mode_of(data) == 0o700
        for name in ("chatstream.db", "chatstream.db-wal", "jwt-secret"):
            assert mode_of(data / name) == 0o600, name
        assert mode_of(data / "journal") == 0o700
        journals = list((data / "journal").iterdir())
        assert journals and all(mode_of(path) == 0o600 for path in journals)
        assert mode_of(data / "notes.txt") == 0o644  # not the server's: left alone
    finally:
        server.stop()


def test_a_new_data_directory_is_private_from_the_start(tmp_path: Path, upstream: StandInUpstream) -> None:
    data = tmp_path / "fresh" / "data"
    server = ServerProcess(data, server_env(upstream)).start()
    try:
        register(server).ask_new("/echo hello")
        assert mode_of(data) == 0o700
        assert mode_of(data / "chatstream.db") == 0o600 and mode_of(data / "jwt-secret") == 0o600
    finally:
        server.stop()
