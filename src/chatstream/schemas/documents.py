"""Request bodies and response shapes of the document routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer

from chatstream.schemas.chat import Text, _Body


class SearchBody(_Body):
    query: Text = Field(min_length=1, max_length=4000)
    k: int = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "vector", "text"] = "hybrid"
    session_id: Text | None = Field(default=None, alias="sessionId", min_length=1, max_length=64)


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


class _Public(BaseModel):
    """A response shape: built from a row's attributes, written with the wire's camelCase names."""

    model_config = ConfigDict(from_attributes=True, populate_by_name=True, serialize_by_alias=True)


class DocumentPublic(_Public):
    id: str
    name: str
    kind: str
    size: int
    status: str  # queued | indexing | ready | failed
    progress: float
    chunks: int
    error: str | None
    session_id: str | None = Field(alias="sessionId")
    created_at: Annotated[datetime, PlainSerializer(_iso)] = Field(alias="createdAt")
    updated_at: Annotated[datetime, PlainSerializer(_iso)] = Field(alias="updatedAt")


class ChunkPublic(_Public):
    id: int
    ordinal: int
    section: str
    text: str
    tokens: int
