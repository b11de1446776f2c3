"""Alembic environment: runs on the connection chatstream hands it (see stores/db.py)."""

from __future__ import annotations

from alembic import context

from chatstream.stores.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through chatstream (stores.db.migrate), not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
