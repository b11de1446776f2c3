"""Documents (each row is also its ingestion job) and their chunks' rows."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import ColumnElement, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatstream.stores.models import Document, DocumentChunk, utcnow


@dataclass(frozen=True, slots=True)
class NewChunk:
    ordinal: int
    section: str
    text: str
    tokens: int
    terms: str


async def by_hash(db: AsyncSession, user_id: int, content_hash: str) -> Document | None:
    found = await db.scalars(
        select(Document).where(Document.user_id == user_id, Document.content_hash == content_hash)
    )
    return found.first()


async def owned(db: AsyncSession, user_id: int, document_id: str) -> Document | None:
    if len(document_id) != 36:
        return None
    found = await db.scalars(select(Document).where(Document.id == document_id, Document.user_id == user_id))
    return found.first()


async def list_for_user(db: AsyncSession, user_id: int) -> Sequence[Document]:
    found = await db.scalars(
        select(Document).where(Document.user_id == user_id).order_by(Document.created_at.desc(), Document.id)
    )
    return found.all()


async def claim_next(db: AsyncSession, worker: str, max_attempts: int) -> Document | None:
    """Takes the next queued document for `worker`; None when none is queued (or another took it).

    Documents whose indexing was cut off before (their worker died) go after fresh ones, and one
    claimed `max_attempts` times already fails instead: it must not be queued again forever.
    """
    while True:
        found = (
            await db.execute(
                select(Document.id, Document.attempts)
                .where(Document.status == "queued")
                .order_by(Document.attempts, Document.created_at)
                .limit(1)
            )
        ).first()
        if found is None:
            return None
        oldest, attempts = found
        if attempts < max_attempts:
            break
        await db.execute(
            update(Document)
            .where(Document.id == oldest, Document.status == "queued")
            .values(
                status="failed",
                error=f"indexing was started {attempts} times and never finished; upload it again to retry",
                worker=None,
                updated_at=utcnow(),
            )
        )
    claimed = await db.execute(
        update(Document)
        .where(Document.id == oldest, Document.status == "queued")
        .values(
            status="indexing",
            worker=worker,
            progress=0.0,
            attempts=Document.attempts + 1,
            updated_at=utcnow(),
        )
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return None
    return await db.get(Document, oldest, populate_existing=True)


async def claim(db: AsyncSession, document_id: str, worker: str) -> bool:
    """Takes a queued (or failed: a retry) document for `worker`."""
    claimed = await db.execute(
        update(Document)
        .where(Document.id == document_id, Document.status.in_(("queued", "failed")))
        .values(
            status="indexing",
            worker=worker,
            error=None,
            progress=0.0,
            attempts=Document.attempts + 1,
            updated_at=utcnow(),
        )
    )
    return bool(claimed.rowcount)  # type: ignore[attr-defined]


async def requeue_all(db: AsyncSession) -> int:
    """Every document back to the queue, its chunks gone (the index is being rebuilt)."""
    await db.execute(delete(DocumentChunk))
    queued = await db.execute(
        update(Document).values(
            status="queued", error=None, progress=0.0, chunks=0, worker=None, attempts=0, updated_at=utcnow()
        )
    )
    return int(queued.rowcount)  # type: ignore[attr-defined]


async def content(db: AsyncSession, document_id: str) -> bytes | None:
    return await db.scalar(select(Document.content).where(Document.id == document_id))


async def set_progress(db: AsyncSession, document_id: str, progress: float) -> None:
    await db.execute(
        update(Document)
        .where(Document.id == document_id, Document.status == "indexing")
        .values(progress=progress, updated_at=utcnow())
    )


async def mark_ready(db: AsyncSession, document_id: str, chunks: int, embedding_model: str) -> bool:
    """False when the document was deleted (or re-queued) meanwhile."""
    done = await db.execute(
        update(Document)
        .where(Document.id == document_id, Document.status == "indexing")
        .values(
            status="ready",
            progress=1.0,
            chunks=chunks,
            embedding_model=embedding_model,
            error=None,
            updated_at=utcnow(),
        )
    )
    return bool(done.rowcount)  # type: ignore[attr-defined]


async def mark_failed(db: AsyncSession, document_id: str, reason: str) -> None:
    await db.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(status="failed", error=reason, progress=0.0, chunks=0, updated_at=utcnow())
    )


async def requeue(db: AsyncSession, document_id: str, *, retry: bool) -> None:
    """Back to the queue: a user's `retry` starts its attempts afresh; otherwise (a shutdown cut the
    attempt short, no fault of the document's) the attempt is not counted."""
    await db.execute(
        update(Document)
        .where(Document.id == document_id)
        .values(
            status="queued",
            error=None,
            progress=0.0,
            chunks=0,
            worker=None,
            attempts=0 if retry else Document.attempts - 1,
            updated_at=utcnow(),
        )
    )


async def requeue_abandoned(db: AsyncSession, gone_workers: set[str]) -> int:
    """Documents left `indexing` by these workers (which are gone) go back to the queue.

    Named rather than "all but the live ones", so that a worker that claimed a document since the
    caller looked is never taken for gone.
    """
    abandoned = await db.execute(
        update(Document)
        .where(
            Document.status == "indexing",
            or_(Document.worker.is_(None), Document.worker.in_(gone_workers or {""})),
        )
        .values(status="queued", worker=None, progress=0.0, updated_at=utcnow())
    )
    return int(abandoned.rowcount)  # type: ignore[attr-defined]


async def indexing_workers(db: AsyncSession) -> set[str | None]:
    found = await db.scalars(select(Document.worker).where(Document.status == "indexing").distinct())
    return set(found.all())


async def insert_chunks(db: AsyncSession, document: Document, chunks: Sequence[NewChunk]) -> list[int]:
    """Adds a document's passages; their ids, in order."""
    ids = await db.scalars(
        insert(DocumentChunk).returning(DocumentChunk.id, sort_by_parameter_order=True),
        [
            {
                "document_id": document.id,
                "user_id": document.user_id,
                "session_id": document.session_id,
                "ordinal": c.ordinal,
                "section": c.section,
                "text": c.text,
                "tokens": c.tokens,
                "terms": c.terms,
            }
            for c in chunks
        ],
    )
    return list(ids.all())


async def chunks_of(db: AsyncSession, document_id: str) -> Sequence[DocumentChunk]:
    found = await db.scalars(
        select(DocumentChunk).where(DocumentChunk.document_id == document_id).order_by(DocumentChunk.ordinal)
    )
    return found.all()


@dataclass(frozen=True, slots=True)
class ChunkHit:
    id: int
    document_id: str
    title: str
    section: str
    text: str
    terms: str


async def chunk_hits(db: AsyncSession, ids: Sequence[int]) -> dict[int, ChunkHit]:
    if not ids:
        return {}
    rows = await db.execute(
        select(
            DocumentChunk.id,
            DocumentChunk.document_id,
            Document.name,
            DocumentChunk.section,
            DocumentChunk.text,
            DocumentChunk.terms,
        )
        .join(Document, Document.id == DocumentChunk.document_id)
        .where(DocumentChunk.id.in_(ids))
    )
    return {row[0]: ChunkHit(*row) for row in rows}


async def any_chunks(db: AsyncSession) -> bool:
    """Whether anybody has a searchable passage."""
    return await db.scalar(select(DocumentChunk.id).limit(1)) is not None


async def has_chunks(db: AsyncSession, user_id: int, session_id: str | None) -> bool:
    """Whether the user has any searchable passage (in this session's scope)."""
    scope: ColumnElement[bool] = DocumentChunk.session_id.is_(None)
    if session_id is not None:
        scope = or_(scope, DocumentChunk.session_id == session_id)
    found = await db.scalar(select(DocumentChunk.id).where(DocumentChunk.user_id == user_id, scope).limit(1))
    return found is not None


async def delete_document(db: AsyncSession, document_id: str) -> None:
    """The row, its passages (foreign key cascade) and their index entries (stores.search_index)."""
    await db.execute(delete(Document).where(Document.id == document_id))
