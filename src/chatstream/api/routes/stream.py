"""The SSE routes: the seed's two streaming sends, re-attaching to an answer, and stop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.responses import JSONResponse
from starlette.responses import StreamingResponse

from chatstream.api.deps import CurrentUser, ServicesDep
from chatstream.api.envelope import ok
from chatstream.schemas.chat import SendBody, SendNewSessionBody, SessionBody

router = APIRouter(prefix="/AI/chat", tags=["stream"])

# Set before the first byte: no caching, no proxy buffering, never compressed.
SSE_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "Connection": "keep-alive",
    "X-Accel-Buffering": "no",
    "Content-Encoding": "identity",
}


def _stream(frames: AsyncIterator[bytes]) -> StreamingResponse:
    return StreamingResponse(frames, media_type="text/event-stream", headers=SSE_HEADERS)


@router.post("/send-stream-new-session")
async def send_stream_new_session(
    body: SendNewSessionBody, user: CurrentUser, services: ServicesDep
) -> StreamingResponse:
    """Ask in a new session; the answer streams as SSE, `{"sessionId"}` first."""
    answer = await services.answers.start(
        user_id=user.user_id,
        question=body.question,
        model_type=body.model_type,
        session_id=None,
        documents=body.documents,
    )
    return _stream(services.answers.first_reader(answer))


@router.post("/send-stream")
async def send_stream(body: SendBody, user: CurrentUser, services: ServicesDep) -> StreamingResponse:
    """Ask in an existing session; the answer streams as SSE."""
    answer = await services.answers.start(
        user_id=user.user_id,
        question=body.question,
        model_type=body.model_type,
        session_id=body.session_id,
        documents=body.documents,
    )
    return _stream(services.answers.first_reader(answer))


@router.get("/stream")
async def follow(
    user: CurrentUser,
    services: ServicesDep,
    session_id: Annotated[str, Query(alias="sessionId", min_length=1, max_length=64)],
    after: Annotated[int | None, Query(ge=0)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    """Re-attach to the session's answer: frames after `Last-Event-ID` (or `after`), then live."""
    if after is None:
        after = _frame_number(last_event_id)
    return _stream(await services.answers.follow(user.user_id, session_id, after))


def _frame_number(last_event_id: str | None) -> int:
    """The frame a reconnecting EventSource last had; anything else means from the start. ASCII
    digits only: isdigit() also admits "²", which int() refuses."""
    if last_event_id and last_event_id.isascii() and last_event_id.isdigit():
        return int(last_event_id)
    return 0


@router.post("/stop")
async def stop(body: SessionBody, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Stop the session's answer; what was written is kept, marked stopped. Harmless if already over."""
    stopped = await services.answers.stop(user.user_id, body.session_id)
    return ok(stopped=stopped)
