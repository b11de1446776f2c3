"""A passage's search-index entries go with it, whatever deletes it; orphans of older versions go at start.

On SQLite the vectors (sqlite-vec) and full text (FTS5) are virtual tables that take no foreign keys.
Entries left behind by a deleted session's documents used to collide with the ids of later passages,
and every upload by anybody then ended `failed` until `chatstream reindex`.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlean
import sqlite_vec

from tests.api.test_document_recovery import big_manual, start_indexing_big_manual
from tests.api.test_documents import search, upload, wait_ready
from tests.conftest import Api, register, server_env
from tests.support.server import ServerProcess
from tests.support.upstream import StandInUpstream

NOTES = (
    b"# Field notes\n\nThe heron stood in the reeds at dawn, waiting for the silver minnows.\n\n"
    b"## Weather\n\nFog lifted from the marsh by nine, and the wind turned to the north-east.\n"
)
RECIPE = (
    b"# Bread\n\nKnead the dough for ten minutes until it is smooth and elastic.\n\n"
    b"## Baking\n\nBake the loaf at 220 degrees for thirty-five minutes, until it sounds hollow.\n"
)


@pytest.fixture
def server(tmp_path: Path, upstream: StandInUpstream) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", server_env(upstream)).start()
    yield proc
    proc.stop()


def database(server: ServerProcess) -> sqlean.Connection:
    connection = sqlean.connect(str(server.data_dir / "chatstream.db"))
    connection.enable_load_extension(True)
    connection.load_extension(sqlite_vec.loadable_path())
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def index_entries(server: ServerProcess) -> tuple[int, int, int]:
    """(passages, vectors, full-text rows), read from the server's SQLite file."""
    with database(server) as connection:
        counts = tuple(
            connection.execute(query).fetchone()[0]
            for query in (
                "SELECT count(*) FROM document_chunk",
                "SELECT count(*) FROM chunk_vec",
                "SELECT count(*) FROM (SELECT rowid FROM chunk_fts)",
            )
        )
    return counts  # type: ignore[return-value]


def indexed(api: Api, name: str, data: bytes, **form: str) -> dict[str, object]:
    response = upload(api, name, data, **form)
    assert response.status_code == 202, response.text
    document = wait_ready(api, response.json()["document"]["id"])
    return document


def test_deleting_a_session_removes_its_documents_index_entries(server: ServerProcess) -> None:
    alice = register(server)
    session_id, _ = alice.ask_new("hello")
    document = indexed(alice, "notes.md", NOTES, sessionId=session_id)
    assert document["status"] == "ready"
    passages = index_entries(server)[0]
    assert passages > 0 and index_entries(server) == (passages, passages, passages)

    assert alice.http.delete(f"/AI/chat/sessions/{session_id}").status_code == 200
    assert alice.get(f"/AI/documents/{document['id']}").status_code == 404
    assert index_entries(server) == (0, 0, 0)

    # Another user's upload reuses the passage ids: it must index, and find only its own text.
    bob = register(server)
    assert indexed(bob, "bread.md", RECIPE)["status"] == "ready"
    hits = search(bob, "how long to bake the loaf")
    assert hits and "thirty-five minutes" in hits[0]["text"]
    assert all("heron" not in hit["text"] for hit in search(bob, "heron minnows reeds", mode="text"))


def test_index_entries_left_by_older_versions_are_removed_at_start(server: ServerProcess) -> None:
    alice = register(server)
    assert indexed(alice, "notes.md", NOTES)["status"] == "ready"
    server.stop()
    with database(server) as connection:  # what a version without the trigger left behind
        connection.execute("DROP TRIGGER document_chunk_unindex")
        connection.execute("DELETE FROM document")
    left = index_entries(server)
    assert left[0] == 0 and left[1] > 0 and left[2] > 0

    server.start()
    assert "search-index entries whose passages were gone" in server.log()
    assert index_entries(server) == (0, 0, 0)
    bob = register(server)
    assert indexed(bob, "bread.md", RECIPE)["status"] == "ready"
    assert index_entries(server)[1] > 0


@pytest.mark.timeout(300)
def test_a_document_whose_indexing_never_finishes_fails_after_its_attempts(
    tmp_path: Path, upstream: StandInUpstream
) -> None:
    """Its instance dies mid-indexing every time: it must not be queued again forever."""
    server = ServerProcess(tmp_path / "data", server_env(upstream, CHATSTREAM_DOCUMENT_MAX_ATTEMPTS="1"))
    server.start()
    try:
        alice = register(server)
        document_id = start_indexing_big_manual(alice)
        server.stop(signal.SIGKILL)
        server.start()  # the job is queued again at start, and has had its one attempt
        after = wait_ready(Api(server, alice.token), document_id)
        assert after["status"] == "failed"
        assert "started 1 times and never finished" in str(after["error"])
        # A retry by the user (the same file again) starts its attempts afresh.
        again = upload(Api(server, alice.token), "manual.md", big_manual())
        assert again.status_code == 200 and again.json()["document"]["status"] == "queued"
    finally:
        server.stop()
