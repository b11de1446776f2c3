"""Chat sessions: listing, history, rename, delete; every call checks ownership."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.errors import InvalidParams, SessionNotFound
from chatstream.stores import chats
from chatstream.stores.models import ChatSession, Message

TITLE_CHARS = 60


def title_from(question: str) -> str:
    """The first question, on one line, trimmed to a sidebar's width."""
    line = " ".join(question.split())
    return line if len(line) <= TITLE_CHARS else line[: TITLE_CHARS - 1].rstrip() + "…"


def encode_cursor(session: ChatSession) -> str:
    raw = f"{session.updated_at.isoformat()}|{session.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, sid = raw.split("|", 1)
        stamp = datetime.fromisoformat(at)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParams("cursor is not one this server gave out") from exc
    if not chats.is_session_id(sid):
        raise InvalidParams("cursor is not one this server gave out")
    return stamp, sid


async def require_owned(db: AsyncSession, user_id: int, session_id: str) -> ChatSession:
    """The user's session; 404 (2011) when it is missing or someone else's, alike."""
    session = await chats.owned_session(db, session_id, user_id)
    if session is None:
        raise SessionNotFound()
    return session


class ChatService:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def list(
        self, user_id: int, *, limit: int, cursor: str | None
    ) -> tuple[Sequence[ChatSession], str | None]:
        after = decode_cursor(cursor) if cursor else None
        async with self._sessions() as db:
            found = await chats.list_sessions(db, user_id, limit=limit + 1, after=after)
        page = found[:limit]
        return page, (encode_cursor(page[-1]) if len(found) > limit else None)

    async def require(self, user_id: int, session_id: str) -> ChatSession:
        async with self._sessions() as db:
            return await require_owned(db, user_id, session_id)

    async def history(self, user_id: int, session_id: str) -> tuple[ChatSession, Sequence[Message]]:
        async with self._sessions() as db:
            session = await require_owned(db, user_id, session_id)
            return session, await chats.messages(db, session_id)

    async def update(
        self, user_id: int, session_id: str, *, name: str | None = None, documents: bool | None = None
    ) -> ChatSession:
        """Renames a session and/or switches its answers from the user's documents on or off."""
        title = None
        if name is not None:
            title = " ".join(name.split())
            if not title:
                raise InvalidParams("name must not be empty")
            if len(title) > 200:
                raise InvalidParams("name must be at most 200 characters")
        async with self._sessions.begin() as db:
            session = await require_owned(db, user_id, session_id)
            await chats.update_session(db, session_id, title=title, documents=documents)
            await db.refresh(session)
        return session

    async def delete(self, user_id: int, session_id: str) -> None:
        async with self._sessions.begin() as db:
            await require_owned(db, user_id, session_id)
            await chats.delete_session(db, session_id)
