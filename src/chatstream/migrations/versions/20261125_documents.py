"""documents

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 14:00:00

The search structures that depend on the embedding model's dimension or on a SQLite
extension (vec0, FTS5, pgvector, the full-text GIN index) are created by
stores/search_index.py at start, not here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import chatstream.stores.models

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    utc = chatstream.stores.models.UTCDateTime(timezone=True)
    op.create_table(
        "document",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("chunks", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=128), nullable=False),
        sa.Column("worker", sa.String(length=32), nullable=True),
        sa.Column("created_at", utc, nullable=False),
        sa.Column("updated_at", utc, nullable=False),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["chat_session.id"],
            name=op.f("fk_document_session_id_chat_session"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["user_account.id"],
            name=op.f("fk_document_user_id_user_account"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document")),
        sa.UniqueConstraint("user_id", "content_hash", name=op.f("uq_document_user_id")),
    )
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.create_index("ix_document_status", ["status"], unique=False)
        batch_op.create_index("ix_document_user_recent", ["user_id", "created_at"], unique=False)

    op.create_table(
        "document_chunk",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.Column("ordinal", sa.Integer(), nullable=False),
        sa.Column("section", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("terms", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["document.id"],
            name=op.f("fk_document_chunk_document_id_document"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_chunk")),
    )
    with op.batch_alter_table("document_chunk", schema=None) as batch_op:
        batch_op.create_index("ix_document_chunk_document_ordinal", ["document_id", "ordinal"], unique=False)
        batch_op.create_index(batch_op.f("ix_document_chunk_user_id"), ["user_id"], unique=False)

    op.create_table(
        "index_meta",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("embedding_model", sa.String(length=128), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("created_at", utc, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_index_meta")),
    )
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.add_column(sa.Column("documents", sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sources", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("sources")
    with op.batch_alter_table("chat_session", schema=None) as batch_op:
        batch_op.drop_column("documents")
    op.drop_table("index_meta")
    with op.batch_alter_table("document_chunk", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_document_chunk_user_id"))
        batch_op.drop_index("ix_document_chunk_document_ordinal")
    op.drop_table("document_chunk")
    with op.batch_alter_table("document", schema=None) as batch_op:
        batch_op.drop_index("ix_document_user_recent")
        batch_op.drop_index("ix_document_status")
    op.drop_table("document")
