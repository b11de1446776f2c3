"""The model provider contract: stream text deltas, then usage, for a list of messages.

A provider is used in two steps so that failures before the first token can still be
answered as plain JSON with an HTTP status:

    stream = await provider.open(messages)   # sends the request; raises ProviderError if refused
    async for item in stream: ...            # str deltas, then at most one Usage
    await stream.aclose()                    # always; closes the upstream request

Items are plain `str` for text (one per upstream chunk, no wrapper object: this is the
per-token path) and a `Usage` at the end when the provider reports token counts.
Cancelling the task that iterates, or calling `aclose()`, must close the upstream
connection so the model stops generating (and billing). Any failure surfaces as
`ProviderError` with a message safe to show the user.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import Literal, Protocol, TypedDict


class ChatMessage(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None


class ProviderError(Exception):
    """The model could not answer. `status` is the upstream HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after


# An async generator: `aclose()` ends it and closes the upstream request.
ProviderStream = AsyncGenerator[str | Usage, None]


class ChatProvider(Protocol):
    """One configured model. `is_local` says whether it runs on this machine."""

    @property
    def is_local(self) -> bool: ...

    async def open(self, messages: list[ChatMessage]) -> ProviderStream: ...

    async def close(self) -> None:
        """Release shared resources (connection pools) at shutdown."""
