"""Request bodies of the chat routes; `sessionId`, `modelType` are the seed's wire names."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SendNewSessionBody(_Body):
    # The length limit is a setting, checked by the answer service.
    question: str = Field(min_length=1)
    model_type: str = Field(alias="modelType", min_length=1, max_length=64)


class SendBody(SendNewSessionBody):
    session_id: str = Field(alias="sessionId", min_length=1, max_length=64)


class SessionBody(_Body):
    session_id: str = Field(alias="sessionId", min_length=1, max_length=64)


class RenameBody(_Body):
    name: str = Field(min_length=1, max_length=1000)
