"""Request bodies of the document routes."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from chatstream.schemas.chat import Text, _Body


class SearchBody(_Body):
    query: Text = Field(min_length=1, max_length=4000)
    k: int = Field(default=5, ge=1, le=50)
    mode: Literal["hybrid", "vector", "text"] = "hybrid"
    session_id: Text | None = Field(default=None, alias="sessionId", min_length=1, max_length=64)
