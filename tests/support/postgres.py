"""A new, empty database on the tests' PostgreSQL, for tests that must not share one."""

from __future__ import annotations

import uuid

import psycopg
from sqlalchemy import make_url


def fresh_database(postgres_url: str, prefix: str = "t") -> str:
    """Creates a database beside the one `postgres_url` names; answers its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
