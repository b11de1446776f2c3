"""The ingestion job: queued documents are parsed, chunked, embedded and indexed by workers.

Workers on every instance claim queued documents (an atomic UPDATE). Parsing and chunking run in a
sandboxed child process with a CPU-time, memory and wall-clock limit (services/sandbox.py): a file
that would crash, stall or swell a parser fails with the reason instead, and one bad document
never holds up the others for longer than its limits. Embedding runs here (onnxruntime computes
without the GIL). The passages, their vectors and full-text entries and the `ready` status are
written in one transaction: a document is searchable whole or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.errors import AppError, ServerBusy
from chatstream.rag.embeddings import EmbeddingError
from chatstream.rag.extract import UnsupportedFile
from chatstream.rag.parsing import Passage, embedding_text, index_passages
from chatstream.services.documents import DocumentService, parse_limits
from chatstream.services.periodic import every
from chatstream.services.sandbox import Sandbox, SandboxFailure
from chatstream.stores import documents as store
from chatstream.stores.models import Document
from chatstream.stores.search_index import IndexedChunk, IndexMismatch, Vector

log = logging.getLogger("chatstream.documents")

EMBED_BATCH = 64
LiveWorkers = Callable[[set[str]], Awaitable[set[str]]]  # which of these instance ids are alive


class _Gone(Exception):
    """The document left `indexing` while it was being indexed."""


class IngestionService:
    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        documents: DocumentService,
        sandbox: Sandbox,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._documents = documents
        self._sandbox = sandbox
        self.instance_id = documents.instance_id
        self._workers: list[asyncio.Task[None]] = []
        self._live_workers: LiveWorkers | None = None
        self.indexed_chunks = 0  # for /metrics

    async def start(self, live_workers: LiveWorkers | None = None) -> None:
        """Re-queues documents whose indexing instance is gone, then starts this instance's workers.

        `live_workers` (with Redis) answers which instance ids are alive; then abandoned documents
        are also looked for every `RECOVERY_S`, as other instances may die at any time. Without
        it this server is taken to be the only instance.
        """
        documents = self._documents
        self._live_workers = live_workers
        await self.requeue_abandoned()
        with contextlib.suppress(ServerBusy):  # logged; uploads and questions say why
            await documents.prepare()
        if documents.unavailable is not None:
            return
        self._workers = [
            asyncio.create_task(self._work_forever(), name=f"chatstream-ingest-{i}")
            for i in range(self._settings.ingest_workers)
        ]
        self._workers.append(asyncio.create_task(self._sandbox.warm(), name="chatstream-sandbox-warm"))
        if live_workers is not None:
            requeue = every(self._settings.recovery_s, self.requeue_abandoned, log, "re-queueing documents")
            self._workers.append(asyncio.create_task(requeue, name="chatstream-requeue"))
        warm = getattr(documents.embedder, "warm", None)
        if warm is not None:
            async with self._sessions() as db:
                indexed = await store.any_chunks(db)
            if indexed:  # questions will search: build the local model now, not on the first one
                self._workers.append(asyncio.create_task(asyncio.to_thread(warm), name="chatstream-warm"))

    async def requeue_abandoned(self) -> int:
        """Documents left `indexing` by an instance that is gone go back to the queue; how many."""
        async with self._sessions() as db:
            others = {w for w in await store.indexing_workers(db) if w is not None} - {self.instance_id}
        gone = others - set(await self._live_workers(others)) if self._live_workers and others else others
        async with self._sessions.begin() as db:
            requeued = await store.requeue_abandoned(db, gone)
        if requeued:
            log.warning("%d documents left indexing by a stopped instance are queued again", requeued)
            self._documents.queued.set()
        return requeued

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    async def claim_next(self) -> Document | None:
        async with self._sessions.begin() as db:
            return await store.claim_next(db, self.instance_id, self._settings.document_max_attempts)

    async def _work_forever(self) -> None:
        queued = self._documents.queued
        while True:
            try:
                document = await self.claim_next()
            except Exception:  # the database away for a moment: try again shortly
                log.exception("claiming a queued document failed")
                document = None
            if document is None:
                queued.clear()
                # Other instances' uploads are noticed by polling; this one's wake the worker at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(queued.wait(), timeout=2.0)
                continue
            await self.index_document(document)

    async def index_document(
        self, document: Document, on_progress: Callable[[int, int], None] | None = None
    ) -> None:
        """Parses, chunks, embeds and indexes a claimed (`indexing`) document; never raises."""
        try:
            count = await self._index_document(document, on_progress)
        except _Gone:
            return
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):  # shutting down: another start picks it up again
                async with self._sessions.begin() as db:
                    await store.requeue(db, document.id, retry=False)
            raise
        except SandboxFailure as exc:
            log.warning("indexing %s (%s) failed: %s", document.id, document.name, exc)
            await self._fail(document, f"{document.name} could not be indexed: {exc}")
        except (UnsupportedFile, EmbeddingError, IndexMismatch, AppError) as exc:
            await self._fail(document, str(exc))
        except Exception as exc:
            log.exception("indexing %s (%s) failed", document.id, document.name)
            await self._fail(document, f"indexing failed ({type(exc).__name__}); the server log has details")
        else:
            if count:
                log.info("indexed %s (%s): %d chunks", document.id, document.name, count)

    async def _index_document(
        self, document: Document, on_progress: Callable[[int, int], None] | None
    ) -> int:
        documents, settings = self._documents, self._settings
        await documents.prepare()
        async with self._sessions() as db:
            data = await store.content(db, document.id)
        if data is None:
            return 0  # deleted meanwhile
        passages: list[Passage] = await self._sandbox.run(
            index_passages,
            data,
            document.kind,
            document.name,
            chunk_tokens=settings.chunk_tokens,
            chunk_overlap=settings.chunk_overlap,
            limits=parse_limits(settings),
        )
        del data
        texts = [embedding_text(p.chunk.section, p.chunk.text) for p in passages]
        vectors: list[Vector] = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors.extend(await documents.embedder.embed(texts[start : start + EMBED_BATCH]))
            done = min(start + EMBED_BATCH, len(texts))
            if on_progress is not None:
                on_progress(done, len(texts))
            async with self._sessions.begin() as db:
                # Embedding is most of the work: progress is the share of passages embedded.
                await store.set_progress(db, document.id, round(0.95 * done / len(texts), 3))
        rows = [
            store.NewChunk(i, p.chunk.section, p.chunk.text, p.chunk.tokens, p.terms)
            for i, p in enumerate(passages)
        ]
        async with self._sessions.begin() as db:
            ids = await store.insert_chunks(db, document, rows)
            await documents.index.add(
                db,
                [
                    IndexedChunk(cid, document.user_id, document.session_id, vector)
                    for cid, vector in zip(ids, vectors, strict=True)
                ],
                [r.terms for r in rows],
            )
            if not await store.mark_ready(db, document.id, len(ids), documents.embedder.model_id):
                raise _Gone  # deleted or re-queued meanwhile: roll back, keep nothing
        self.indexed_chunks += len(ids)
        return len(ids)

    async def _fail(self, document: Document, reason: str) -> None:
        try:
            async with self._sessions.begin() as db:
                await store.mark_failed(db, document.id, reason)
        except Exception:
            log.exception("recording the failure of %s failed", document.id)
