"""The search index over document chunks: vectors and full text, per backend.

SQLite: a sqlite-vec `vec0` table (cosine, partitioned by user, the session scope as a
metadata column so filters apply during the KNN scan) and a contentless FTS5 table ranked
by bm25(). PostgreSQL: one table holding each chunk's vector (HNSW index) and its terms'
tsvector (GIN index), stored so that ranking does not parse the terms again. Chunk `terms` are
words plus CJK character bigrams (rag.terms), so full-text search works for Chinese on both.

These structures depend on the embedding model's dimension, so they are created here at
start (not by Alembic), and `index_meta` records the model and dimension that built them:
a different embedder is refused instead of mixing vectors that can't be compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from sqlalchemy import bindparam, text
from sqlalchemy.ext.asyncio import AsyncSession

from chatstream.stores.models import IndexMeta, utcnow

Vector = npt.NDArray[np.float32]


class IndexMismatch(Exception):
    """The index was built by another embedding model (or dimension) than the configured one."""

    def __init__(self, built_with: str, built_dim: int, configured: str, dim: int) -> None:
        self.built_with, self.built_dim = built_with, built_dim
        super().__init__(
            f"the document index was built with {built_with} ({built_dim} dimensions) but the configured "
            f"embedder is {configured} ({dim}); configure {built_with} again, or run "
            "`chatstream reindex` to rebuild the index with the new one"
        )


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    chunk_id: int
    user_id: int
    session_id: str | None
    vector: Vector


async def record_model(db: AsyncSession, model: str, dim: int, *, replace: bool = False) -> None:
    """Records which model builds the index; raises IndexMismatch if another one did."""
    meta = await db.get(IndexMeta, 1)
    if meta is None:
        db.add(IndexMeta(id=1, embedding_model=model, dim=dim, created_at=utcnow()))
        await db.flush()
    elif (meta.embedding_model, meta.dim) != (model, dim):
        if not replace:
            raise IndexMismatch(meta.embedding_model, meta.dim, model, dim)
        meta.embedding_model, meta.dim, meta.created_at = model, dim, utcnow()
        await db.flush()


def _scope(session_id: str | None) -> str:
    return session_id or ""


class SearchIndex:
    """What both backends offer; `for_dialect` picks one."""

    @staticmethod
    def for_dialect(name: str) -> SearchIndex:
        return PostgresIndex() if name == "postgresql" else SqliteIndex()

    async def create(self, db: AsyncSession, dim: int) -> None:
        raise NotImplementedError

    async def drop(self, db: AsyncSession) -> None:
        raise NotImplementedError

    async def add(self, db: AsyncSession, chunks: Sequence[IndexedChunk], terms: Sequence[str]) -> None:
        raise NotImplementedError

    async def remove_orphans(self, db: AsyncSession) -> int:
        """Deletes index entries whose passage is gone (left by older versions); how many."""
        raise NotImplementedError

    async def nearest(
        self, db: AsyncSession, user_id: int, session_id: str | None, vector: Vector, k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, cosine similarity), most similar first."""
        raise NotImplementedError

    async def matching(
        self, db: AsyncSession, user_id: int, session_id: str | None, terms: Sequence[str], k: int
    ) -> list[tuple[int, float]]:
        """(chunk id, text score), best first; chunks sharing any of the terms."""
        raise NotImplementedError

    async def similarity(
        self, db: AsyncSession, chunk_ids: Sequence[int], vector: Vector
    ) -> dict[int, float]:
        raise NotImplementedError


class SqliteIndex(SearchIndex):
    async def create(self, db: AsyncSession, dim: int) -> None:
        await db.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunk_vec USING vec0("
                "chunk_id integer primary key, user_id integer partition key, scope text, "
                f"embedding float[{int(dim)}] distance_metric=cosine)"
            )
        )
        await db.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunk_fts USING fts5("
                "terms, content='', contentless_delete=1, tokenize='unicode61')"
            )
        )

        # Virtual tables take no foreign keys: a trigger removes a passage's entries with its row,
        # whatever deletes it (the document, its session or its user, by cascade), in the same
        # transaction. Without it, entries outlive their passage and a later passage that reuses the
        # id can't be indexed.
        await db.execute(
            text(
                "CREATE TRIGGER IF NOT EXISTS document_chunk_unindex AFTER DELETE ON document_chunk "
                "BEGIN DELETE FROM chunk_vec WHERE chunk_id = OLD.id; "
                "DELETE FROM chunk_fts WHERE rowid = OLD.id; END"
            )
        )

    async def drop(self, db: AsyncSession) -> None:
        await db.execute(text("DROP TRIGGER IF EXISTS document_chunk_unindex"))
        await db.execute(text("DROP TABLE IF EXISTS chunk_vec"))
        await db.execute(text("DROP TABLE IF EXISTS chunk_fts"))

    async def add(self, db: AsyncSession, chunks: Sequence[IndexedChunk], terms: Sequence[str]) -> None:
        if not chunks:
            return
        await db.execute(
            text("INSERT INTO chunk_vec(chunk_id, user_id, scope, embedding) VALUES (:c, :u, :s, :e)"),
            [
                {"c": c.chunk_id, "u": c.user_id, "s": _scope(c.session_id), "e": c.vector.tobytes()}
                for c in chunks
            ],
        )
        await db.execute(
            text("INSERT INTO chunk_fts(rowid, terms) VALUES (:c, :t)"),
            [{"c": c.chunk_id, "t": t} for c, t in zip(chunks, terms, strict=True)],
        )

    async def remove_orphans(self, db: AsyncSession) -> int:
        gone = "NOT IN (SELECT id FROM document_chunk)"
        vectors = await db.execute(text(f"DELETE FROM chunk_vec WHERE chunk_id {gone}"))
        terms = await db.execute(text(f"DELETE FROM chunk_fts WHERE rowid {gone}"))
        return max(int(vectors.rowcount), int(terms.rowcount))  # type: ignore[attr-defined]

    async def nearest(
        self, db: AsyncSession, user_id: int, session_id: str | None, vector: Vector, k: int
    ) -> list[tuple[int, float]]:
        rows = await db.execute(
            text(
                "SELECT chunk_id, distance FROM chunk_vec WHERE embedding MATCH :v AND k = :k "
                "AND user_id = :u AND scope IN ('', :s) ORDER BY distance"
            ),
            {"v": vector.tobytes(), "k": k, "u": user_id, "s": _scope(session_id)},
        )
        return [(int(c), 1.0 - float(d)) for c, d in rows]

    async def matching(
        self, db: AsyncSession, user_id: int, session_id: str | None, terms: Sequence[str], k: int
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        # Each term quoted: FTS5 reads it as a string, never as query syntax.
        query = " OR ".join('"' + t.replace('"', '""') + '"' for t in dict.fromkeys(terms))
        rows = await db.execute(
            text(
                "SELECT f.rowid, bm25(chunk_fts) AS rank FROM chunk_fts f "
                "JOIN document_chunk c ON c.id = f.rowid "
                "WHERE chunk_fts MATCH :q AND c.user_id = :u AND (c.session_id IS NULL OR c.session_id = :s) "
                "ORDER BY rank LIMIT :k"
            ),
            {"q": query, "u": user_id, "s": _scope(session_id), "k": k},
        )
        return [(int(c), -float(r)) for c, r in rows]  # bm25() is negative: lower is better

    async def similarity(
        self, db: AsyncSession, chunk_ids: Sequence[int], vector: Vector
    ) -> dict[int, float]:
        found: dict[int, float] = {}
        for chunk_id in chunk_ids:  # point lookups: an IN list would scan every vector
            distance = await db.scalar(
                text("SELECT vec_distance_cosine(embedding, :v) FROM chunk_vec WHERE chunk_id = :c"),
                {"v": vector.tobytes(), "c": chunk_id},
            )
            if distance is not None:
                found[chunk_id] = 1.0 - float(distance)
        return found


def _pg_vector(vector: Vector) -> str:
    return "[" + ",".join(map(repr, vector.tolist())) + "]"


class PostgresIndex(SearchIndex):
    async def create(self, db: AsyncSession, dim: int) -> None:
        # Several instances may start at once: one creates, the others wait for it.
        await db.execute(text("SELECT pg_advisory_xact_lock(724012)"))
        await db.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        await db.execute(
            text(
                "CREATE TABLE IF NOT EXISTS chunk_vector ("
                "chunk_id integer PRIMARY KEY REFERENCES document_chunk(id) ON DELETE CASCADE, "
                "user_id integer NOT NULL, scope varchar(36) NOT NULL DEFAULT '', "
                f"embedding vector({int(dim)}) NOT NULL, terms tsvector)"
            )
        )
        await self._store_terms(db)
        await db.execute(
            text(
                "CREATE INDEX IF NOT EXISTS ix_chunk_vector_hnsw ON chunk_vector "
                "USING hnsw (embedding vector_cosine_ops)"
            )
        )
        await db.execute(text("CREATE INDEX IF NOT EXISTS ix_chunk_vector_user ON chunk_vector (user_id)"))
        await db.execute(
            text("CREATE INDEX IF NOT EXISTS ix_chunk_vector_terms ON chunk_vector USING gin (terms)")
        )

    @staticmethod
    async def _store_terms(db: AsyncSession) -> None:
        """Upgrades an index from before the tsvector was stored (ranking then parsed every matching row)."""
        stored = await db.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'chunk_vector' AND column_name = 'terms'"
            )
        )
        if not stored:
            await db.execute(text("ALTER TABLE chunk_vector ADD COLUMN terms tsvector"))
            await db.execute(
                text(
                    "UPDATE chunk_vector v SET terms = to_tsvector('simple', c.terms) "
                    "FROM document_chunk c WHERE c.id = v.chunk_id"
                )
            )
        # The old expression index on document_chunk that the stored column replaces.
        await db.execute(text("DROP INDEX IF EXISTS ix_document_chunk_terms"))

    async def drop(self, db: AsyncSession) -> None:
        await db.execute(text("DROP TABLE IF EXISTS chunk_vector"))

    async def add(self, db: AsyncSession, chunks: Sequence[IndexedChunk], terms: Sequence[str]) -> None:
        if not chunks:
            return
        await db.execute(
            text(
                "INSERT INTO chunk_vector (chunk_id, user_id, scope, embedding, terms) "
                "VALUES (:c, :u, :s, CAST(:e AS vector), to_tsvector('simple', :t))"
            ),
            [
                {
                    "c": c.chunk_id,
                    "u": c.user_id,
                    "s": _scope(c.session_id),
                    "e": _pg_vector(c.vector),
                    "t": t,
                }
                for c, t in zip(chunks, terms, strict=True)
            ],
        )

    async def remove_orphans(self, db: AsyncSession) -> int:
        return 0  # chunk_vector's foreign key deletes its rows with their passage: none can be left

    async def nearest(
        self, db: AsyncSession, user_id: int, session_id: str | None, vector: Vector, k: int
    ) -> list[tuple[int, float]]:
        # Iterative scans keep filling the k results when the user filter drops HNSW candidates.
        await db.execute(text("SET LOCAL hnsw.iterative_scan = relaxed_order"))
        await db.execute(text(f"SET LOCAL hnsw.ef_search = {max(40, 2 * int(k))}"))
        rows = await db.execute(
            text(
                "SELECT chunk_id, embedding <=> CAST(:v AS vector) AS d FROM chunk_vector "
                "WHERE user_id = :u AND scope IN ('', :s) ORDER BY d LIMIT :k"
            ),
            {"v": _pg_vector(vector), "u": user_id, "s": _scope(session_id), "k": k},
        )
        found = [(int(c), 1.0 - float(d)) for c, d in rows]
        found.sort(key=lambda hit: -hit[1])  # relaxed order: nearly sorted
        return found

    async def matching(
        self, db: AsyncSession, user_id: int, session_id: str | None, terms: Sequence[str], k: int
    ) -> list[tuple[int, float]]:
        if not terms:
            return []
        query = " | ".join("'" + t.replace("\\", "").replace("'", "''") + "'" for t in dict.fromkeys(terms))
        rows = await db.execute(
            text(
                "SELECT v.chunk_id, ts_rank_cd(v.terms, q) AS rank "
                "FROM chunk_vector v, to_tsquery('simple', :q) q "
                "WHERE v.terms @@ q AND v.user_id = :u AND v.scope IN ('', :s) ORDER BY rank DESC LIMIT :k"
            ),
            {"q": query, "u": user_id, "s": _scope(session_id), "k": k},
        )
        return [(int(c), float(r)) for c, r in rows]

    async def similarity(
        self, db: AsyncSession, chunk_ids: Sequence[int], vector: Vector
    ) -> dict[int, float]:
        if not chunk_ids:
            return {}
        rows = await db.execute(
            text(
                "SELECT chunk_id, 1 - (embedding <=> CAST(:v AS vector)) FROM chunk_vector "
                "WHERE chunk_id IN :ids"
            ).bindparams(bindparam("ids", expanding=True)),
            {"v": _pg_vector(vector), "ids": list(chunk_ids)},
        )
        return {int(c): float(s) for c, s in rows}
