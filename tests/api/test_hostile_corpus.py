"""The hostile-input corpus (tests/data/hostile/) through a live server, while others use it.

Every file ends as its manifest says: refused at upload (415, with the reason), or indexed, or
`failed` with the reason. Meanwhile `/healthz` answers within 200 ms, another user's answer keeps
streaming, and the server's own memory stays bounded (parsers run in sandboxed children, and what
they do there is not the server's memory). A document that overruns its limits fails with a
reason a person can read, and holds up the queue for no longer than its limit.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.test_document_recovery import big_manual
from tests.api.test_documents import upload, wait_ready
from tests.conftest import Api, register, server_env
from tests.support.probe import HealthProbe
from tests.support.server import ServerProcess
from tests.support.sse import parse
from tests.support.upstream import StandInUpstream

CORPUS = Path(__file__).resolve().parent.parent / "data" / "hostile"
LIMITS = {
    "CHATSTREAM_DOCUMENT_PARSE_TIMEOUT_S": "30",
    "CHATSTREAM_DOCUMENT_PARSE_CPU_S": "30",
    "CHATSTREAM_DOCUMENT_PARSE_MEMORY_MB": "384",
}
SERVER_RSS_LIMIT_MB = 1024  # the server with its embedder is ~400 MB; a bomb inflated here was 4.4 GB


def manifest() -> list[dict[str, str]]:
    entries: list[dict[str, str]] = json.loads((CORPUS / "manifest.json").read_text())["files"]
    return entries


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Watch:
    """What probes the server while it works: /healthz latency (from a process of its own), its
    memory, and another user's answer streaming."""

    server: ServerProcess
    talker: Api
    stop: threading.Event = field(default_factory=threading.Event)
    memory: list[float] = field(default_factory=list)
    answers: list[dict[str, Any]] = field(default_factory=list)
    threads: list[threading.Thread] = field(default_factory=list)
    prober: HealthProbe = field(init=False)

    def __enter__(self) -> Watch:
        self.prober = HealthProbe(self.server.url).start()
        for target in (self._sample_memory, self._keep_answering):
            thread = threading.Thread(target=target, daemon=True)
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.prober.stop()
        for thread in self.threads:
            thread.join(60)

    def _sample_memory(self) -> None:
        assert self.server.proc is not None
        while not self.stop.wait(0.1):
            self.memory.append(rss_mb(self.server.proc.pid))

    def _keep_answering(self) -> None:
        """Another user's answers, one after the other: 150 tokens 20 ms apart each."""
        while not self.stop.is_set():
            arrivals: list[float] = []
            with self.talker.http.stream(
                "POST",
                "/AI/chat/send-stream-new-session",
                json={"question": "/slow 150 20", "modelType": "1"},
            ) as response:
                frames = []
                for frame in parse(response.iter_lines()):
                    arrivals.append(time.monotonic())
                    frames.append(frame)
            deltas = [f for f in frames if f.text.startswith('{"type":"delta"')]
            gaps = [b - a for a, b in itertools.pairwise(arrivals)]
            self.answers.append(
                {
                    "status": response.status_code,
                    "deltas": len(deltas),
                    "done": bool(frames) and frames[-1].text == "[DONE]",
                    "max_gap": max(gaps, default=0.0),
                }
            )


@pytest.fixture
def server(tmp_path: Path, upstream: StandInUpstream) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", server_env(upstream, **LIMITS)).start()
    yield proc
    proc.stop()


@pytest.mark.timeout(900)
def test_the_hostile_corpus_through_a_live_server(server: ServerProcess) -> None:
    uploader, talker = register(server), register(server)
    entries = manifest()
    assert len(entries) >= 40
    # The embedding model is built on the first document (half a second, once per process, some of
    # it holding the GIL): that one-time build is not what this test measures.
    warm = upload(uploader, "warm.md", b"# Warm\n\nThe first document builds the embedding model.\n")
    assert wait_ready(uploader, warm.json()["document"]["id"])["status"] == "ready"
    uploaded: dict[str, str] = {}  # file -> document id
    problems: list[str] = []
    with Watch(server, talker) as watch:
        for entry in entries:
            response = upload(uploader, entry["file"], (CORPUS / entry["file"]).read_bytes())
            refused_at_upload = entry["outcome"] == "failed" and entry["stage"] in ("sniff", "check")
            if refused_at_upload:
                if response.status_code != 415 or entry["error"] not in response.json()["status_msg"]:
                    problems.append(
                        f"{entry['file']}: upload answered {response.status_code} {response.text}"
                    )
            elif response.status_code != 202:
                problems.append(f"{entry['file']}: upload answered {response.status_code} {response.text}")
            else:
                uploaded[entry["file"]] = response.json()["document"]["id"]
        for entry in entries:
            if entry["file"] not in uploaded:
                continue
            document = wait_ready(uploader, uploaded[entry["file"]], timeout=300)
            if document["status"] != entry["outcome"]:
                problems.append(f"{entry['file']}: {document['status']} ({document['error']})")
            elif entry["outcome"] == "failed" and entry["error"] not in str(document["error"]):
                problems.append(f"{entry['file']}: failed with {document['error']!r}")
        time.sleep(1)  # the answer in flight goes on a moment after the last document
    assert problems == []

    assert watch.prober.failures == []
    assert len(watch.prober.latencies) > 20
    assert max(watch.prober.latencies) < 0.2, sorted(watch.prober.latencies)[-5:]
    assert watch.answers, "no answer finished while the corpus was indexed"
    for answer in watch.answers:
        assert answer["status"] == 200 and answer["done"] and answer["deltas"] == 150, answer
        assert answer["max_gap"] < 1.0, answer
    assert max(watch.memory) < SERVER_RSS_LIMIT_MB, max(watch.memory)
    log = server.log()
    assert "Traceback" not in log, log[-3000:]
    assert len(log) < 100_000, log[-3000:]  # a damaged file is one line, not one per broken object


@pytest.mark.timeout(300)
def test_a_document_over_its_limits_fails_and_the_next_one_is_indexed(
    tmp_path: Path, upstream: StandInUpstream
) -> None:
    """One ingestion worker: the slow document fails at its limit; the one behind it is not held up."""
    env = server_env(
        upstream,
        CHATSTREAM_INGEST_WORKERS="1",
        CHATSTREAM_DOCUMENT_PARSE_TIMEOUT_S="0.5",
        CHATSTREAM_DOCUMENT_PARSE_CPU_S="30",
    )
    server = ServerProcess(tmp_path / "data", env).start()
    try:
        member = register(server)
        # 15 MB of Markdown: about 4 s of parsing (its check at upload, a decode, takes 50 ms).
        slow = upload(member, "manual.md", big_manual(sections=1500))
        quick = upload(member, "note.md", b"# Note\n\nThe kettle is in the second cupboard.\n")
        assert slow.status_code == quick.status_code == 202, (slow.text, quick.text)
        failed = wait_ready(member, slow.json()["document"]["id"], timeout=60)
        assert failed["status"] == "failed"
        assert failed["error"] == "manual.md could not be indexed: parsing took longer than 0.5 s"
        assert wait_ready(member, quick.json()["document"]["id"], timeout=60)["status"] == "ready"
        assert httpx.get(server.url + "/healthz").status_code == 200
    finally:
        server.stop()
