"""The seed's non-stream chat routes, the sessions list, history, rename and delete."""

from __future__ import annotations

from datetime import datetime

import orjson
from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from chatstream.api.deps import CurrentUser, ServicesDep
from chatstream.api.envelope import ok
from chatstream.errors import InvalidParams
from chatstream.schemas.chat import SendBody, SendNewSessionBody, SessionBody, SessionUpdateBody

router = APIRouter(prefix="/AI/chat", tags=["chat"])


def _iso(at: datetime) -> str:
    return at.isoformat().replace("+00:00", "Z")


@router.get("/sessions")
async def sessions(
    user: CurrentUser,
    services: ServicesDep,
    limit: int | None = Query(default=None, ge=1, le=500),
    cursor: str | None = Query(default=None, max_length=200),
) -> JSONResponse:
    """The user's sessions, most recently active first; pass `nextCursor` back as `cursor` for more."""
    page_size = limit or services.settings.sessions_page_size
    page, next_cursor = await services.chats.list(user.user_id, limit=page_size, cursor=cursor)
    return ok(
        sessions=[
            {
                "sessionId": s.id,
                "name": s.title,
                "documents": s.documents,
                "createdAt": _iso(s.created_at),
                "updatedAt": _iso(s.updated_at),
            }
            for s in page
        ],
        nextCursor=next_cursor,
    )


@router.post("/send-new-session")
async def send_new_session(
    body: SendNewSessionBody, user: CurrentUser, services: ServicesDep
) -> JSONResponse:
    """Ask in a new session and wait for the whole answer."""
    answer = await services.answers.start(
        user_id=user.user_id,
        question=body.question,
        model_type=body.model_type,
        session_id=None,
        documents=body.documents,
    )
    text = await services.answers.complete(answer)
    return ok(sessionId=answer.session_id, Information=text)


@router.post("/send")
async def send(body: SendBody, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Ask in an existing session and wait for the whole answer."""
    answer = await services.answers.start(
        user_id=user.user_id,
        question=body.question,
        model_type=body.model_type,
        session_id=body.session_id,
        documents=body.documents,
    )
    return ok(Information=await services.answers.complete(answer))


@router.post("/history")
async def history(body: SessionBody, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """A session's messages, oldest first; `documents` says whether it answers from your documents."""
    session, found = await services.chats.history(user.user_id, body.session_id)
    return ok(
        documents=session.documents,
        history=[
            {
                "id": m.id,
                "is_user": m.role == "user",
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.model,
                "error": m.error,
                "promptTokens": m.prompt_tokens,
                "completionTokens": m.completion_tokens,
                "createdAt": _iso(m.created_at),
                **_sources(m.sources),
            }
            for m in found
        ],
    )


def _sources(stored: str | None) -> dict[str, object]:
    """A document answer's `sources` (and `sourcesNote` when none matched) for its history item."""
    if not stored:
        return {}
    kept = orjson.loads(stored)
    fields: dict[str, object] = {"sources": kept.get("sources", [])}
    if kept.get("note"):
        fields["sourcesNote"] = kept["note"]
    return fields


@router.patch("/sessions/{session_id}")
async def update(
    session_id: str, body: SessionUpdateBody, user: CurrentUser, services: ServicesDep
) -> JSONResponse:
    """Rename a session (`name`), or switch answering from your documents on or off (`documents`)."""
    if body.name is None and body.documents is None:
        raise InvalidParams("invalid parameters: field 'name' is required (or 'documents')")
    session = await services.chats.update(user.user_id, session_id, name=body.name, documents=body.documents)
    return ok(sessionId=session_id, name=session.title, documents=session.documents)


@router.delete("/sessions/{session_id}")
async def delete(session_id: str, user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """Delete a session and its messages."""
    await services.answers.stop(user.user_id, session_id)
    await services.chats.delete(user.user_id, session_id)
    return ok()


@router.get("/models")
async def models(_user: CurrentUser, services: ServicesDep) -> JSONResponse:
    """The models this server offers; `type` is what to send as modelType.

    `local` says the model runs on this server, and `sizeBytes` how big its file is (null
    for models behind an API, whose size the server does not know).
    """
    registry = services.models
    return ok(
        models=[
            {
                "type": m.config.id,
                "label": m.config.label or m.config.model or m.config.id,
                "description": m.config.description,
                "provider": m.config.provider,
                "local": m.provider.is_local,
                "sizeBytes": getattr(m.provider, "size_bytes", None),
                "available": True,
                "isDefault": m.config.id == registry.default_id,
            }
            for m in registry.listing()
        ]
    )
