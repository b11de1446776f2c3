"""`chatstream ingest` and `chatstream reindex`, and a server refusing an index built by another model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import Api, server_env
from tests.support.server import FAST_HASHING, ServerProcess
from tests.support.upstream import StandInUpstream
from tests.test_cli import PASSWORD, login


def run(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CHATSTREAM_")}
    full.update(FAST_HASHING)
    full["CHATSTREAM_DATA_DIR"] = str(data_dir)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "chatstream", *args], env=full, capture_output=True, text=True, timeout=120
    )


def logged_in(server: ServerProcess, name: str) -> Api:
    response = login(server, name)
    assert response.status_code == 200, response.text
    return Api(server, response.json()["token"], name)


def test_ingest_indexes_files_and_folders_with_progress(tmp_path: Path, upstream: StandInUpstream) -> None:
    data_dir = tmp_path / "data"
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.md").write_text("# Alpha\n\nThe alpha reactor runs at 300 kelvin.\n")
    (docs / "sub" / "b.txt").write_text("Beta notes: the beta pump needs oil every week.\n")
    (docs / "skip.bin").write_bytes(b"\x00\x01")  # not a document suffix: folders skip it
    bad = tmp_path / "fake.pdf"
    bad.write_text("not a pdf")
    assert run(data_dir, "user", "add", "carol", "--password", PASSWORD).returncode == 0

    result = run(data_dir, "ingest", str(docs), str(bad), "--user", "carol")
    assert result.returncode == 1, result  # one file failed
    assert "a.md: ready, 1 passages" in result.stdout and "b.txt: ready, 1 passages" in result.stdout
    assert "fake.pdf" in result.stderr and "not a PDF" in result.stderr
    assert "passage" in result.stderr  # tqdm's bar (it writes to stderr)
    again = run(data_dir, "ingest", str(docs / "a.md"), "--user", "carol")
    assert again.returncode == 0 and "already indexed" in again.stdout
    nobody = run(data_dir, "ingest", str(docs / "a.md"), "--user", "nobody")
    assert nobody.returncode == 1 and "no user named 'nobody'" in nobody.stderr

    server = ServerProcess(data_dir, server_env(upstream)).start()
    try:
        carol = logged_in(server, "carol")
        listed = carol.get("/AI/documents").json()["documents"]
        assert sorted((d["name"], d["status"]) for d in listed) == [("a.md", "ready"), ("b.txt", "ready")]
        found = carol.post("/AI/documents/search", {"query": "how often does the beta pump need oil"})
        assert found.json()["results"][0]["title"] == "b.txt"
    finally:
        server.stop()


def test_another_embedder_is_refused_until_reindex(tmp_path: Path, upstream: StandInUpstream) -> None:
    data_dir = tmp_path / "data"
    assert run(data_dir, "user", "add", "dave", "--password", PASSWORD).returncode == 0
    note = tmp_path / "note.md"
    note.write_text("# Garden\n\nThe garden gate is painted green.\n")
    assert run(data_dir, "ingest", str(note), "--user", "dave").returncode == 0

    remote = {
        "CHATSTREAM_EMBEDDER": "openai",
        "CHATSTREAM_EMBEDDING_BASE_URL": upstream.base_url,
        "CHATSTREAM_EMBEDDING_MODEL": "hashed",
    }
    server = ServerProcess(data_dir, server_env(upstream, **remote)).start()
    try:
        dave = logged_in(server, "dave")
        assert httpx.get(server.api + "/config").json()["documents"] is False
        refused = dave.post("/AI/documents", files={"file": ("x.md", b"# X\n\nsome text")})
        assert refused.status_code == 503
        reason = refused.json()["status_msg"]
        assert "all-MiniLM-L6-v2" in reason and "reindex" in reason
        asked = dave.post("/AI/documents/search", {"query": "gate colour"})
        assert asked.status_code == 503
        assert [d["name"] for d in dave.get("/AI/documents").json()["documents"]] == ["note.md"]  # kept
    finally:
        server.stop()

    rebuilt = run(data_dir, "reindex", env=remote)
    assert rebuilt.returncode == 0, rebuilt.stderr
    server = ServerProcess(data_dir, server_env(upstream, **remote)).start()
    try:
        dave = logged_in(server, "dave")
        assert httpx.get(server.api + "/config").json()["documents"] is True
        [document] = dave.get("/AI/documents").json()["documents"]
        assert document["status"] == "ready" and document["chunks"] == 1
        results = dave.post("/AI/documents/search", {"query": "garden gate painted"}).json()["results"]
        assert results[0]["title"] == "note.md"
    finally:
        server.stop()
