"""Request bodies of the chat routes; `sessionId`, `modelType` are the seed's wire names."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError


def _no_nul(value: str) -> str:
    # PostgreSQL cannot store or even compare text holding U+0000; refuse it on every backend alike.
    if "\x00" in value:
        raise PydanticCustomError("nul_character", "must not contain NUL characters (U+0000)")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class SendNewSessionBody(_Body):
    # The length limit is a setting, checked by the answer service.
    question: Text = Field(min_length=1)
    model_type: Text = Field(alias="modelType", min_length=1, max_length=64)
    # Answer from the user's documents (also what modelType "2" means); sticks to the session.
    documents: bool | None = None


class SendBody(SendNewSessionBody):
    session_id: Text = Field(alias="sessionId", min_length=1, max_length=64)


class SessionBody(_Body):
    session_id: Text = Field(alias="sessionId", min_length=1, max_length=64)


class SessionUpdateBody(_Body):
    """A rename (`name`), documents on or off (`documents`), or both; the route wants one at least."""

    name: Annotated[str, Field(min_length=1, max_length=1000), AfterValidator(_no_nul)] | None = None
    documents: bool | None = None
