"""The database engine: SQLite (WAL) by default, PostgreSQL by URL; migrations run at start."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import sqlean
import sqlite_vec
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def use_extension_sqlite() -> None:
    """Makes `sqlite3` mean sqlean.py (SQLite 3.50 with FTS5 and extension loading) for aiosqlite.

    Python builds without loadable extensions are common (this machine's is one), and the
    vector index needs sqlite-vec. aiosqlite and SQLAlchemy import `sqlite3` lazily, so the
    swap must come before either driver is imported; it is refused once that happened.
    """
    current = sys.modules.get("sqlite3")
    if current is sqlean:
        return
    if "aiosqlite" in sys.modules:
        raise RuntimeError("aiosqlite was imported with the stdlib sqlite3 before chatstream could swap it")
    sys.modules["sqlite3"] = sqlean
    sys.modules["sqlite3.dbapi2"] = sqlean.dbapi2


def create_engine(url: str) -> AsyncEngine:
    if url.startswith("sqlite"):
        use_extension_sqlite()
        # SQLite takes one writer at a time, and a connection that finds the file locked
        # sleeps in its busy handler; one shared connection queues writers in order instead.
        engine = create_async_engine(url, connect_args={"timeout": 30}, pool_size=1, max_overflow=0)
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # sqlite-vec's vec0 tables (stores/search_index.py); loaded on every connection.
    path = sqlite_vec.loadable_path()
    dbapi_connection.run_async(lambda c: c.enable_load_extension(True))
    dbapi_connection.run_async(lambda c: c.load_extension(path))
    dbapi_connection.run_async(lambda c: c.enable_load_extension(False))
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection) -> None:
    if connection.dialect.name == "postgresql":
        # Several instances may start at once: one migrates, the others wait for it.
        connection.execute(text("SELECT pg_advisory_xact_lock(724011)"))
    command.upgrade(alembic_config(connection), "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest Alembic revision."""
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade)
