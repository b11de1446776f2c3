"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from chatstream.stores.db import create_engine as create_async_engine
from chatstream.stores.db import migrate
from chatstream.stores.models import Base


def test_migrations_match_models(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"

    async def upgrade() -> None:
        engine = create_async_engine(url)
        await migrate(engine)
        await migrate(engine)  # a second start finds nothing to do
        await engine.dispose()

    asyncio.run(upgrade())
    engine = create_engine(f"sqlite:///{tmp_path / 'm.db'}")
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
        tables = set(inspect(connection).get_table_names())
        journal = connection.exec_driver_sql("PRAGMA journal_mode").scalar()
    engine.dispose()
    assert diff == []
    assert {"user_account", "chat_session", "message", "verification_code", "alembic_version"} <= tables
    assert journal == "wal"
