"""Documents: upload, the ingestion job, listing, delete, and retrieval for answers.

An upload is checked (size, type by content) and stored with status `queued`; the row is
the job. Workers on every instance claim queued documents, then parse, chunk and embed
them outside any transaction, and write the chunks, their vectors and full-text entries
and the `ready` status in one transaction: a document is either wholly searchable or not
at all, and a failure leaves only the row, `failed` with its reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.errors import AppError, DocumentNotFound, InvalidParams, ServerBusy
from chatstream.rag.chunking import chunk
from chatstream.rag.embeddings import Embedder, EmbeddingError
from chatstream.rag.extract import UnsupportedFile, detect_kind, extract
from chatstream.rag.fusion import reciprocal_rank_fusion
from chatstream.rag.terms import cjk_share, search_terms, terms_text
from chatstream.services.chats import require_owned
from chatstream.services.periodic import every
from chatstream.stores import documents as store
from chatstream.stores.models import Document, DocumentChunk
from chatstream.stores.search_index import IndexedChunk, IndexMismatch, SearchIndex, record_model

log = logging.getLogger("chatstream.documents")

EMBED_BATCH = 64
SNIPPET_CHARS = 240
NOTHING_FOUND = "No passage in your documents matches this question."
NO_DOCUMENTS = "You have no documents ready to search."
SearchMode = Literal["hybrid", "vector", "text"]
LiveWorkers = Callable[[set[str]], Awaitable[set[str]]]  # which of these instance ids are alive


@dataclass(frozen=True, slots=True)
class Source:
    """A passage given to the model, as the `sources` frame and history show it."""

    n: int
    document_id: str
    title: str
    section: str
    chunk: int
    snippet: str
    text: str
    score: float

    def wire(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "documentId": self.document_id,
            "title": self.title,
            "section": self.section,
            "chunk": self.chunk,
            "snippet": self.snippet,
            "text": self.text,
            "score": self.score,
        }


@dataclass(slots=True)
class Retrieved:
    sources: list[Source] = field(default_factory=list)
    note: str | None = None  # why there are none


class _Gone(Exception):
    """The document left `indexing` while it was being indexed."""


def snippet(text: str, terms: Sequence[str]) -> str:
    """About SNIPPET_CHARS of the passage, around the first query word it contains."""
    flat = " ".join(text.split())
    if len(flat) <= SNIPPET_CHARS:
        return flat
    lowered = flat.lower()
    at = min((i for t in terms if (i := lowered.find(t)) >= 0), default=0)
    start = max(0, min(at - SNIPPET_CHARS // 3, len(flat) - SNIPPET_CHARS))
    piece = flat[start : start + SNIPPET_CHARS].strip()
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(flat) else "")


def embedding_text(section: str, text: str) -> str:
    """What a passage's vector is made from: its section path gives it context."""
    return f"{section}\n{text}" if section else text


def _safe_name(filename: str) -> str:
    name = re.sub(r"[\x00-\x1f\x7f/\\]", "_", filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]).strip()
    return name[:255] or "document"


class DocumentService:
    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        embedder: Embedder,
        index: SearchIndex,
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self.embedder = embedder
        self._index = index
        self.instance_id = instance_id
        self.unavailable: str | None = None  # why documents can't be indexed or searched, if so
        self._prepared = False
        self._prepare_lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self.indexed_chunks = 0  # for /metrics
        self._live_workers: LiveWorkers | None = None

    async def prepare(self, *, reindex: bool = False) -> None:
        """Creates the search index for the embedder, once; an index built by another one is refused.

        With `reindex` the index is emptied and rebuilt for the configured embedder (the CLI's
        `reindex` then queues every document again).
        """
        if self._prepared and not reindex:
            return
        if self.unavailable is not None:
            raise ServerBusy(f"documents are unavailable: {self.unavailable}")
        async with self._prepare_lock:
            if self._prepared and not reindex:
                return
            try:
                dim = await self.embedder.probe()
            except EmbeddingError as exc:  # not fatal: the next upload or question tries again
                raise ServerBusy(f"the embedding model is unreachable: {exc}") from exc
            try:
                async with self._sessions.begin() as db:
                    await record_model(db, self.embedder.model_id, dim, replace=reindex)
                    if reindex:
                        await self._index.drop(db)
                    await self._index.create(db, dim)
            except IndexMismatch as exc:
                self.unavailable = str(exc)
                log.error("documents are unavailable: %s", exc)
                raise ServerBusy(f"documents are unavailable: {exc}") from exc
            self._prepared = True

    async def start_workers(self, live_workers: LiveWorkers | None = None) -> None:
        """Re-queues documents whose indexing instance is gone, then starts this instance's workers.

        `live_workers` (with Redis) answers which instance ids are alive; then abandoned documents
        are also looked for every `RECOVERY_S`, as other instances may die at any time. Without
        it this server is taken to be the only instance.
        """
        self._live_workers = live_workers
        await self.requeue_abandoned()
        with contextlib.suppress(ServerBusy):  # logged; uploads and questions say why
            await self.prepare()
        if self.unavailable is None:
            self._workers = [
                asyncio.create_task(self._work_forever(), name=f"chatstream-ingest-{i}")
                for i in range(self._settings.ingest_workers)
            ]
            if live_workers is not None:
                requeue = every(
                    self._settings.recovery_s, self.requeue_abandoned, log, "re-queueing documents"
                )
                self._workers.append(asyncio.create_task(requeue, name="chatstream-requeue"))
            warm = getattr(self.embedder, "warm", None)
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
            self._wake.set()
        return requeued

    async def close(self) -> None:
        for worker in self._workers:
            worker.cancel()
        for worker in self._workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        await self.embedder.close()

    # -- the API's calls ---------------------------------------------------------------------

    async def upload(
        self, user_id: int, filename: str, data: bytes, session_id: str | None, *, claim: bool = False
    ) -> tuple[Document, bool]:
        """Stores a checked upload as a queued job; (document, created). The same bytes twice: one document.

        `claim` (the CLI) takes the job for this process instead of queueing it for the workers.
        """
        await self.prepare()
        limit = self._settings.document_max_bytes
        if len(data) > limit:
            raise InvalidParams(f"file is larger than {limit / 1048576:g} MB", http_status=413)
        name = _safe_name(filename)
        try:
            kind = await asyncio.to_thread(detect_kind, data, name)
        except UnsupportedFile as exc:
            raise InvalidParams(str(exc), http_status=415) from exc
        digest = hashlib.sha256(data).hexdigest()
        async with self._sessions.begin() as db:
            if session_id is not None:
                await require_owned(db, user_id, session_id)
            existing = await store.by_hash(db, user_id, digest)
            if existing is not None:
                if claim:
                    await store.claim(db, existing.id, self.instance_id)
                elif (
                    existing.status == "failed"
                ):  # a retry: the cause may be gone (an embedder that was down)
                    await store.requeue(db, existing.id)
                    self._wake.set()
                await db.refresh(existing)
                return existing, False
            document = Document(
                id=str(uuid.uuid4()),
                user_id=user_id,
                session_id=session_id,
                name=name,
                kind=kind,
                size=len(data),
                content_hash=digest,
                content=data,
                status="indexing" if claim else "queued",
                worker=self.instance_id if claim else None,
                progress=0.0,
                chunks=0,
                embedding_model="",
            )
            db.add(document)
        self._wake.set()
        return document, True

    async def reindex(self) -> int:
        """Empties the index, rebuilds it for the configured embedder and queues every document."""
        self.unavailable = None
        await self.prepare(reindex=True)
        async with self._sessions.begin() as db:
            queued = await store.requeue_all(db)
        self._wake.set()
        return queued

    async def claim_next(self) -> Document | None:
        async with self._sessions.begin() as db:
            return await store.claim_next(db, self.instance_id)

    async def list(self, user_id: int) -> Sequence[Document]:
        async with self._sessions() as db:
            return await store.list_for_user(db, user_id)

    async def get(self, user_id: int, document_id: str) -> Document:
        async with self._sessions() as db:
            found = await store.owned(db, user_id, document_id)
        if found is None:
            raise DocumentNotFound()
        return found

    async def chunks(self, user_id: int, document_id: str) -> Sequence[DocumentChunk]:
        async with self._sessions() as db:
            if await store.owned(db, user_id, document_id) is None:
                raise DocumentNotFound()
            return await store.chunks_of(db, document_id)

    async def delete(self, user_id: int, document_id: str) -> None:
        """Removes the document, its chunks, vectors and full-text entries."""
        async with self._sessions.begin() as db:
            if await store.owned(db, user_id, document_id) is None:
                raise DocumentNotFound()
            await self._index.remove(db, await store.chunk_ids(db, document_id))
            await store.delete_document_row(db, document_id)  # chunks go with it (foreign key cascade)

    # -- retrieval ---------------------------------------------------------------------------

    async def retrieve(
        self, user_id: int, session_id: str | None, query: str, *, k: int, mode: SearchMode = "hybrid"
    ) -> Retrieved:
        """The passages most relevant to `query`, best first; none (with a note) when nothing is."""
        await self.prepare()
        terms = search_terms(query)
        try:
            vector = (await self.embedder.embed([query]))[0]
        except EmbeddingError as exc:
            raise ServerBusy(f"the embedding model failed: {exc}") from exc
        wide = max(4 * k, 20)  # each list goes deeper than k: fusion reorders them
        # How far the vectors are trusted: an English-only model's ranking of Chinese is near noise.
        trust = 1.0 if self.embedder.multilingual or mode == "vector" else 1.0 - cjk_share(query)
        async with self._sessions.begin() as db:
            nearest = (
                await self._index.nearest(db, user_id, session_id, vector, wide)
                if mode != "text" and trust > 0
                else []
            )
            matching = (
                await self._index.matching(db, user_id, session_id, terms, wide) if mode != "vector" else []
            )
            if not nearest and not matching:
                searchable = await store.has_chunks(db, user_id, session_id)
                return Retrieved(note=NOTHING_FOUND if searchable else NO_DOCUMENTS)
            fused = reciprocal_rank_fusion(
                [[c for c, _ in nearest], [c for c, _ in matching]], weights=[trust, 1.0]
            )
            similarity = dict(nearest)
            missing = [c for c, _ in fused[: 2 * k] if c not in similarity]
            similarity.update(await self._index.similarity(db, missing, vector))
            hits = await store.chunk_hits(db, [c for c, _ in fused[: 2 * k]])
        floor = self._settings.rag_min_similarity
        wanted = set(terms)
        needed = min(2, len(wanted))
        sources: list[Source] = []
        for chunk_id, _ in fused:
            hit = hits.get(chunk_id)
            if hit is None:
                continue
            score = similarity.get(chunk_id, 0.0)
            # Relevant by meaning (a trusted vector) or by words: sharing two of the question's terms
            # (one, for a one-term question). Stop words are not terms, so "the" never counts.
            shared = len(wanted.intersection(hit.terms.split())) if wanted else 0
            by_meaning = score >= floor and trust >= 0.5
            if not by_meaning and (needed == 0 or shared < needed):
                continue
            sources.append(
                Source(
                    n=len(sources) + 1,
                    document_id=hit.document_id,
                    title=hit.title,
                    section=hit.section,
                    chunk=chunk_id,
                    snippet=snippet(hit.text, [t for t in terms if t.isascii()]),
                    text=hit.text,
                    score=round(max(score, 0.0), 3),
                )
            )
            if len(sources) == k:
                break
        return Retrieved(sources=sources, note=None if sources else NOTHING_FOUND)

    # -- the ingestion job -------------------------------------------------------------------

    async def _work_forever(self) -> None:
        while True:
            try:
                document = await self.claim_next()
            except Exception:  # the database away for a moment: try again shortly
                log.exception("claiming a queued document failed")
                document = None
            if document is None:
                self._wake.clear()
                # Other instances' uploads are noticed by polling; this one's wake the worker at once.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=2.0)
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
                    await store.requeue(db, document.id)
            raise
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
        await self.prepare()
        async with self._sessions() as db:
            data = await store.content(db, document.id)
        if data is None:
            return 0  # deleted meanwhile
        settings = self._settings
        blocks = await asyncio.to_thread(extract, data, document.kind, name=document.name)
        chunks = await asyncio.to_thread(
            chunk, blocks, size=settings.chunk_tokens, overlap=settings.chunk_overlap
        )
        if not chunks:
            raise UnsupportedFile(f"{document.name} has no text to index")
        texts = [embedding_text(c.section, c.text) for c in chunks]
        vectors = []
        for start in range(0, len(texts), EMBED_BATCH):
            vectors.append(await self.embedder.embed(texts[start : start + EMBED_BATCH]))
            done = min(start + EMBED_BATCH, len(texts))
            if on_progress is not None:
                on_progress(done, len(texts))
            async with self._sessions.begin() as db:
                # Embedding is most of the work: progress is the share of passages embedded.
                await store.set_progress(db, document.id, round(0.95 * done / len(texts), 3))
        rows = [
            store.NewChunk(i, c.section, c.text, c.tokens, terms_text(embedding_text(c.section, c.text)))
            for i, c in enumerate(chunks)
        ]
        async with self._sessions.begin() as db:
            ids = list(
                await db.scalars(
                    insert(DocumentChunk).returning(DocumentChunk.id, sort_by_parameter_order=True),
                    [
                        {
                            "document_id": document.id,
                            "user_id": document.user_id,
                            "session_id": document.session_id,
                            "ordinal": r.ordinal,
                            "section": r.section,
                            "text": r.text,
                            "tokens": r.tokens,
                            "terms": r.terms,
                        }
                        for r in rows
                    ],
                )
            )
            flat = [v for batch in vectors for v in batch]
            await self._index.add(
                db,
                [
                    IndexedChunk(cid, document.user_id, document.session_id, vec)
                    for cid, vec in zip(ids, flat, strict=True)
                ],
                [r.terms for r in rows],
            )
            if not await store.mark_ready(db, document.id, len(ids), self.embedder.model_id):
                raise _Gone  # deleted or re-queued meanwhile: roll back, keep nothing
        self.indexed_chunks += len(ids)
        return len(ids)

    async def _fail(self, document: Document, reason: str) -> None:
        try:
            async with self._sessions.begin() as db:
                await store.mark_failed(db, document.id, reason)
        except Exception:
            log.exception("recording the failure of %s failed", document.id)
