"""Documents: the checked upload (stored as a queued job), listing, passages, delete, the index's set-up.

An upload is checked in two steps. Here, bounded work only: the size, and the type by content
from a prefix of the bytes. Then the parsers' deep check (the PDF opens and is not locked, the
DOCX unpacks within bounds) in a sandboxed child process (services/sandbox.py), since it runs the
parsers on a stranger's bytes. The row is the ingestion job (services/ingestion.py); retrieval
for answers is services/retrieval.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import uuid
from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.errors import DocumentNotFound, InvalidParams, ServerBusy
from chatstream.rag.embeddings import Embedder, EmbeddingError
from chatstream.rag.extract import UnsupportedFile, check_content, sniff_kind
from chatstream.services.chats import require_owned
from chatstream.services.sandbox import Limits, Sandbox, SandboxFailure
from chatstream.stores import documents as store
from chatstream.stores.models import Document, DocumentChunk
from chatstream.stores.search_index import IndexMismatch, SearchIndex, record_model

log = logging.getLogger("chatstream.documents")


def parse_limits(settings: Settings) -> Limits:
    return Limits(
        wall_s=settings.document_parse_timeout_s,
        cpu_s=settings.document_parse_cpu_s,
        memory_mb=settings.document_parse_memory_mb,
    )


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
        sandbox: Sandbox,
        instance_id: str,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self.embedder = embedder
        self.index = index
        self._sandbox = sandbox
        self.instance_id = instance_id
        self.unavailable: str | None = None  # why documents can't be indexed or searched, if so
        self.queued = asyncio.Event()  # set when a document is queued here: the workers look at once
        self._prepared = False
        self._prepare_lock = asyncio.Lock()

    async def prepare(self, *, reindex: bool = False) -> None:
        """Creates the search index for the embedder, once; an index built by another one is refused.

        The first time, index entries left without their passage by older versions are removed. With
        `reindex` the index is emptied and rebuilt for the configured embedder (the CLI's `reindex`
        then queues every document again).
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
                        await self.index.drop(db)
                    await self.index.create(db, dim)
                    orphans = await self.index.remove_orphans(db)
            except IndexMismatch as exc:
                self.unavailable = str(exc)
                log.error("documents are unavailable: %s", exc)
                raise ServerBusy(f"documents are unavailable: {exc}") from exc
            if orphans:
                log.warning("removed %d search-index entries whose passages were gone", orphans)
            self._prepared = True

    async def close(self) -> None:
        await self.embedder.close()

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
            kind = sniff_kind(data, name)  # a bounded read: the extension against the content
            await self._sandbox.run(check_content, data, kind, name, limits=parse_limits(self._settings))
        except UnsupportedFile as exc:
            raise InvalidParams(str(exc), http_status=415) from exc
        except SandboxFailure as exc:
            raise InvalidParams(f"{name} could not be checked: {exc}", http_status=415) from exc
        digest = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())  # 20 MB: ~40 ms
        async with self._sessions.begin() as db:
            if session_id is not None:
                await require_owned(db, user_id, session_id)
            existing = await store.by_hash(db, user_id, digest)
            if existing is not None:
                if claim:
                    await store.claim(db, existing.id, self.instance_id)
                elif existing.status == "failed":  # a retry: the cause may be gone (an embedder down)
                    await store.requeue(db, existing.id, retry=True)
                    self.queued.set()
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
                attempts=1 if claim else 0,
                progress=0.0,
                chunks=0,
                embedding_model="",
            )
            db.add(document)
        self.queued.set()
        return document, True

    async def reindex(self) -> int:
        """Empties the index, rebuilds it for the configured embedder and queues every document."""
        self.unavailable = None
        await self.prepare(reindex=True)
        async with self._sessions.begin() as db:
            queued = await store.requeue_all(db)
        self.queued.set()
        return queued

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
        """Removes the document, its passages and their vectors and full-text entries, in one transaction."""
        async with self._sessions.begin() as db:
            if await store.owned(db, user_id, document_id) is None:
                raise DocumentNotFound()
            await store.delete_document(db, document_id)
