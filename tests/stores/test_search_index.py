"""The PostgreSQL search index: an index made before the terms' tsvector was stored is upgraded."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from sqlalchemy import insert, text

from chatstream.config import Settings
from chatstream.stores.db import create_engine, migrate
from chatstream.stores.models import Document, DocumentChunk, User
from chatstream.stores.search_index import PostgresIndex
from tests.support.postgres import fresh_database

pytestmark = pytest.mark.postgres

OLD_LAYOUT = [
    # What PostgresIndex.create made before: no terms column, an expression index on document_chunk.
    "CREATE EXTENSION IF NOT EXISTS vector",
    "CREATE TABLE chunk_vector (chunk_id integer PRIMARY KEY REFERENCES document_chunk(id) "
    "ON DELETE CASCADE, user_id integer NOT NULL, scope varchar(36) NOT NULL DEFAULT '', "
    "embedding vector(3) NOT NULL)",
    "CREATE INDEX ix_document_chunk_terms ON document_chunk USING gin (to_tsvector('simple', terms))",
]


def test_an_index_from_before_stored_terms_is_upgraded_in_place(postgres_url: str) -> None:
    url = Settings(database_url=fresh_database(postgres_url, "upgrade")).resolved_database_url()
    index = PostgresIndex()
    unit = np.array([1.0, 0.0, 0.0], np.float32)

    async def main() -> None:
        engine = create_engine(url)
        await migrate(engine)
        async with engine.begin() as db:
            for statement in OLD_LAYOUT:
                await db.execute(text(statement))
        async with engine.begin() as db:
            await db.execute(insert(User).values(id=1, username="u", password_hash="x"))
            document = {"id": "d", "user_id": 1, "name": "n", "kind": "md", "size": 1, "content_hash": "h"}
            await db.execute(insert(Document).values(**document, content=b"x", status="ready", chunks=2))
            for chunk_id, terms in ((1, "espresso machine descale"), (2, "garden soil compost")):
                await db.execute(
                    insert(DocumentChunk).values(
                        id=chunk_id,
                        document_id="d",
                        user_id=1,
                        ordinal=chunk_id,
                        text=terms,
                        tokens=3,
                        terms=terms,
                    )
                )
                await db.execute(
                    text("INSERT INTO chunk_vector (chunk_id, user_id, embedding) VALUES (:c, 1, '[1,0,0]')"),
                    {"c": chunk_id},
                )
        for _ in range(2):  # the second start finds nothing to upgrade
            async with engine.begin() as db:
                await index.create(db, 3)
        async with engine.begin() as db:
            assert await index.matching(db, 1, None, ["soil"], 5) == [(2, pytest.approx(0.1))]
            assert [hit for hit, _ in await index.matching(db, 1, None, ["descale", "compost"], 5)] in (
                [1, 2],
                [2, 1],
            )
            assert await index.matching(db, 2, None, ["soil"], 5) == []  # another user's chunk
            assert [hit for hit, _ in await index.nearest(db, 1, None, unit, 5)] in ([1, 2], [2, 1])
            old = await db.scalar(
                text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_document_chunk_terms'")
            )
            new = await db.scalar(
                text("SELECT count(*) FROM pg_indexes WHERE indexname = 'ix_chunk_vector_terms'")
            )
            assert (old, new) == (0, 1)
        await engine.dispose()

    asyncio.run(main())
