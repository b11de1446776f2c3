"""Documents over HTTP on SQLite and PostgreSQL: upload each type, chunks and section paths,
bad files, idempotent re-upload, isolation between users and sessions, delete, search."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Api, register
from tests.support.documents import make_docx, make_html, make_pdf
from tests.support.server import ServerProcess

MARKDOWN = b"""# Aurora Kettle Manual

Intro text about the kettle.

## Setup

### Filling

Fill the Aurora kettle with fresh water up to the MAX line marked at 1.7 litres.

```python
def boil(water):
    return water.heat(100)
```

## Safety

| Rule | Reason |
| --- | --- |
| Unplug before cleaning | electric shock |
| Never run dry | element damage |
"""


def upload(api: Api, name: str, data: bytes, **form: str) -> Any:
    return api.post("/AI/documents", files={"file": (name, data)}, data=form or None)


def wait_ready(api: Api, document_id: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        response = api.get(f"/AI/documents/{document_id}")
        assert response.status_code == 200, response.text
        document: dict[str, Any] = response.json()["document"]
        if document["status"] in ("ready", "failed"):
            return document
        assert time.monotonic() < deadline, f"still {document['status']} after {timeout}s"
        time.sleep(0.1)


def add_ready(api: Api, name: str, data: bytes, **form: str) -> dict[str, Any]:
    response = upload(api, name, data, **form)
    assert response.status_code == 202, response.text
    document = wait_ready(api, response.json()["document"]["id"])
    assert document["status"] == "ready", document
    return document


def chunks(api: Api, document_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/AI/documents/{document_id}/chunks")
    assert response.status_code == 200, response.text
    return list(response.json()["chunks"])


def search(api: Api, query: str, **extra: Any) -> list[dict[str, Any]]:
    response = api.post("/AI/documents/search", {"query": query, **extra})
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


def names(api: Api) -> list[str]:
    response = api.get("/AI/documents")
    assert response.status_code == 200, response.text
    return [d["name"] for d in response.json()["documents"]]


@pytest.fixture
def owner(storage_server: ServerProcess) -> Api:
    return register(storage_server)


def test_markdown_chunks_keep_sections_code_and_tables(owner: Api) -> None:
    response = upload(owner, "kettle.md", MARKDOWN)
    assert response.status_code == 202, response.text
    queued = response.json()["document"]
    assert queued["status"] in ("queued", "indexing") and queued["name"] == "kettle.md"
    document = wait_ready(owner, queued["id"])
    assert document["status"] == "ready" and document["progress"] == 1.0 and document["kind"] == "md"
    found = chunks(owner, document["id"])
    assert document["chunks"] == len(found) >= 3
    by_text = {c["section"]: c["text"] for c in found}
    assert "Fill the Aurora kettle" in by_text["Aurora Kettle Manual > Setup > Filling"]
    code = next(c for c in found if "def boil" in c["text"])
    assert "return water.heat(100)" in code["text"]  # the code block is whole
    table = next(c for c in found if "Unplug before cleaning" in c["text"])
    assert "Never run dry" in table["text"] and table["section"] == "Aurora Kettle Manual > Safety"
    listed = owner.get("/AI/documents").json()["documents"]
    assert [(d["id"], d["status"], d["chunks"]) for d in listed] == [(document["id"], "ready", len(found))]


@pytest.mark.parametrize(
    ("name", "data", "section", "phrase"),
    [
        (
            "notes.txt",
            b"First paragraph about otters.\n\nSecond paragraph: otters eat clams.",
            "",
            "clams",
        ),
        (
            "guide.html",
            make_html(
                [
                    ("h1", "Garden"),
                    ("h2", "Tomatoes"),
                    ("p", "Water tomatoes at dawn."),
                    ("raw", "<script>x=1</script>"),
                ]
            ),
            "Garden > Tomatoes",
            "Water tomatoes at dawn.",
        ),
        (
            "report.docx",
            make_docx(
                [
                    ("h1", "Quarterly Report"),
                    ("h2", "Revenue"),
                    ("p", "Revenue grew by 12 percent."),
                    ("table", "Region|Sales\nNorth|40"),
                ]
            ),
            "Quarterly Report > Revenue",
            "Revenue grew by 12 percent.",
        ),
        (
            "paper.pdf",
            make_pdf(["Photosynthesis turns light into sugar.", "Page two talks about roots."]),
            "",
            "roots",
        ),
    ],
)
def test_each_type_is_indexed(owner: Api, name: str, data: bytes, section: str, phrase: str) -> None:
    document = add_ready(owner, name, data)
    found = chunks(owner, document["id"])
    hit = next(c for c in found if phrase in c["text"])
    assert hit["section"] == section
    assert "x=1" not in " ".join(c["text"] for c in found)  # scripts are not text
    assert any(r["chunk"] == hit["id"] for r in search(owner, phrase, k=5))


def test_same_bytes_twice_is_one_document(owner: Api) -> None:
    first = add_ready(owner, "a.md", b"# Title\n\nUnique walrus sentence.")
    again = upload(owner, "renamed.md", b"# Title\n\nUnique walrus sentence.")
    assert again.status_code == 200
    assert again.json()["document"]["id"] == first["id"]
    assert names(owner) == ["a.md"]


@pytest.mark.parametrize(
    ("name", "data", "words"),
    [
        ("empty.md", b"", "empty"),
        ("blank.txt", b"  \n\n \t", "blank"),
        ("fake.pdf", b"just some text pretending", "not a PDF"),
        ("fake.docx", b"%PDF-1.4 not really", "not a Word document"),
        ("junk.txt", bytes(range(256)) * 4, "binary"),
        ("tool.exe", b"MZ\x90\x00", ".exe"),
        ("broken.pdf", b"%PDF-1.4\n%%garbage without objects", "damaged"),
    ],
)
def test_bad_files_are_refused_and_leave_nothing(owner: Api, name: str, data: bytes, words: str) -> None:
    response = upload(owner, name, data)
    assert response.status_code == 415, response.text
    body = response.json()
    assert body["status_code"] == 2001 and words.lower() in body["status_msg"].lower(), body
    assert names(owner) == []


def test_upload_without_a_file_names_the_field(owner: Api) -> None:
    response = owner.post("/AI/documents", data={"sessionId": "x"})
    assert response.status_code == 422
    assert "file" in response.json()["status_msg"]
    assert names(owner) == []


def test_a_file_that_fails_indexing_says_why_and_has_no_chunks(owner: Api) -> None:
    response = upload(owner, "blank.pdf", make_pdf(["", ""]))  # a valid PDF with no text (a scan)
    assert response.status_code == 202, response.text  # its text is only looked for by the job
    document = wait_ready(owner, response.json()["document"]["id"])
    assert document["status"] == "failed" and "text" in document["error"]
    assert document["chunks"] == 0 and chunks(owner, document["id"]) == []


def test_oversized_file_is_refused(storage_server: ServerProcess, owner: Api) -> None:
    limit = owner.get("/config").json()["documentMaxBytes"]
    response = upload(owner, "big.txt", b"a" * (limit + 1))
    assert response.status_code == 413
    assert "larger than" in response.json()["status_msg"]
    assert names(owner) == []


def test_nobody_else_retrieves_or_touches_a_document(storage_server: ServerProcess, owner: Api) -> None:
    document = add_ready(owner, "secret.md", b"# Vault\n\nThe vault code is zebra-4417 and opens at noon.")
    stranger = register(storage_server)
    assert search(stranger, "vault code zebra-4417") == []
    for mode in ("vector", "text"):
        assert search(stranger, "vault code zebra", mode=mode) == []
    _session_id, frames = stranger.ask_new("what is the vault code?", model="2")
    sources = frames[1].json()
    assert sources["type"] == "sources" and sources["sources"] == [] and sources["note"]
    assert stranger.get(f"/AI/documents/{document['id']}").json()["status_code"] == 2012
    assert stranger.get(f"/AI/documents/{document['id']}/chunks").status_code == 404
    deleted = stranger.http.delete(f"/AI/documents/{document['id']}")
    assert deleted.status_code == 404 and deleted.json()["status_code"] == 2012
    assert search(owner, "vault code zebra-4417")[0]["documentId"] == document["id"]


def test_a_session_document_serves_that_session_only(owner: Api) -> None:
    session_id, _ = owner.ask_new("/echo hello")
    other_session, _ = owner.ask_new("/echo other")
    add_ready(owner, "scoped.md", b"# Pond\n\nThe pond holds seventeen koi fish.", sessionId=session_id)
    assert search(owner, "how many koi fish in the pond", sessionId=session_id)
    assert search(owner, "how many koi fish in the pond", sessionId=other_session) == []
    assert search(owner, "how many koi fish in the pond") == []


def test_upload_to_someone_elses_session_is_refused(storage_server: ServerProcess, owner: Api) -> None:
    stranger = register(storage_server)
    session_id, _ = stranger.ask_new("/echo mine")
    response = upload(owner, "x.md", b"# X\n\ntext", sessionId=session_id)
    assert response.status_code == 404 and response.json()["status_code"] == 2011
    assert names(owner) == []


def test_delete_removes_chunks_and_vectors(owner: Api) -> None:
    keep = add_ready(owner, "keep.md", b"# Birds\n\nHerons wade in shallow water to hunt.")
    gone = add_ready(owner, "gone.md", b"# Cars\n\nThe roadster has a twelve cylinder engine.")
    assert search(owner, "roadster twelve cylinder engine", mode="vector")[0]["documentId"] == gone["id"]
    response = owner.http.delete(f"/AI/documents/{gone['id']}")
    assert response.status_code == 200, response.text
    assert names(owner) == ["keep.md"]
    assert owner.get(f"/AI/documents/{gone['id']}/chunks").status_code == 404
    for mode in ("vector", "text", "hybrid"):
        assert all(
            r["documentId"] == keep["id"] for r in search(owner, "roadster cylinder engine", mode=mode)
        )
    # Uploading it again indexes it afresh (the content hash was released with the row).
    assert add_ready(owner, "gone.md", b"# Cars\n\nThe roadster has a twelve cylinder engine.")["chunks"] >= 1


def test_search_refuses_bad_parameters(owner: Api) -> None:
    for body in ({"query": ""}, {"query": "x", "k": 0}, {"query": "x", "mode": "magic"}, {}):
        response = owner.post("/AI/documents/search", body)
        assert response.status_code == 422 and response.json()["status_code"] == 2001, body
