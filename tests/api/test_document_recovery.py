"""A document whose indexing instance dies is indexed by another one (PostgreSQL + Redis)."""

from __future__ import annotations

import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_documents import search, upload, wait_ready
from tests.api.test_instances import SECRET
from tests.conftest import Api, register, server_env
from tests.support.live import wait_for
from tests.support.postgres import fresh_database
from tests.support.redis_server import RedisProcess
from tests.support.server import ServerProcess
from tests.support.upstream import StandInUpstream

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.timeout(300)]

WORDS = str.split(
    "grind tamper boiler steam valve pressure gauge filter basket portafilter reservoir descale pump "
    "gasket shower screen crema extraction dose ratio temperature purge wand milk pitcher bean roast "
    "burr hopper drip tray cup warmer switch lamp cable fuse seal spring lever piston bar"
)
LAST_WORDS = "The quartz fennel lighthouse is the final sentence of this manual."


def big_manual(sections: int = 300, seed: int = 3) -> bytes:
    """~3 MB of Markdown, about 3000 passages: long enough to index that an instance can die meanwhile."""
    rng = random.Random(seed)
    parts = ["# A long manual"]
    for s in range(sections):
        parts.append(f"## Part {s}")
        for _ in range(10):
            parts.append(" ".join(rng.choice(WORDS) for _ in range(150)) + ".")
    parts.append(LAST_WORDS)
    return "\n\n".join(parts).encode()


def start_indexing_big_manual(api: Api) -> str:
    """Uploads `big_manual()`; its id, once its indexing is under way."""
    response = upload(api, "manual.md", big_manual())
    assert response.status_code == 202, response.text
    document_id: str = response.json()["document"]["id"]
    wait_for(lambda: api.get(f"/AI/documents/{document_id}").json()["document"]["status"] == "indexing")
    return document_id


@pytest.fixture
def environment(tmp_path: Path, upstream: StandInUpstream, postgres_url: str) -> Iterator[dict[str, str]]:
    redis = RedisProcess(tmp_path / "redis").start()
    yield server_env(
        upstream,
        CHATSTREAM_DATABASE_URL=fresh_database(postgres_url, "recovery"),  # no other instance's workers
        CHATSTREAM_REDIS_URL=redis.url,
        CHATSTREAM_JWT_SECRET=SECRET,
        CHATSTREAM_INSTANCE_TTL_S="1.5",
        CHATSTREAM_RECOVERY_S="0.5",
    )
    redis.stop()


def test_a_document_left_indexing_by_a_killed_instance_is_indexed_by_another(
    tmp_path: Path, environment: dict[str, str]
) -> None:
    a = ServerProcess(tmp_path / "a", environment).start()
    b = ServerProcess(tmp_path / "b", environment)
    try:
        on_a = register(a)
        document_id = start_indexing_big_manual(on_a)

        b.start()  # a is alive: b must leave a's job alone
        on_b = Api(b, on_a.token, on_a.username)
        assert on_b.get(f"/AI/documents/{document_id}").json()["document"]["status"] == "indexing", (
            "a finished before the test could kill it: make the document longer"
        )
        a.stop(signal.SIGKILL)

        # b finds a's liveness key gone (1.5 s) within a recovery round (0.5 s), queues the job and does it.
        document = wait_ready(on_b, document_id, timeout=240)
        assert document["status"] == "ready", document
        assert document["chunks"] > 2000
        assert "queued again" in b.log()
        hits = search(on_b, "quartz fennel lighthouse final sentence", mode="text")
        assert hits and LAST_WORDS in hits[0]["text"]
        listed = on_b.get("/AI/documents").json()["documents"]
        assert [d["id"] for d in listed] == [document_id]  # one document, indexed once
    finally:
        a.stop()
        b.stop()
