"""Chat sessions and their messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import and_, bindparam, delete, insert, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatstream.stores.models import ChatSession, Message, utcnow


async def add_session(db: AsyncSession, *, session_id: str, user_id: int, title: str) -> None:
    now = utcnow()
    await db.execute(
        insert(ChatSession).values(
            id=session_id, user_id=user_id, title=title, created_at=now, updated_at=now
        )
    )


async def owned_session(db: AsyncSession, session_id: str, user_id: int) -> ChatSession | None:
    """The session if it exists and belongs to the user; None either way, so callers can't tell which."""
    found = await db.scalars(
        select(ChatSession).where(ChatSession.id == session_id, ChatSession.user_id == user_id)
    )
    return found.first()


async def add_turn(db: AsyncSession, *, session_id: str, question: str, model: str) -> int:
    """Stores the question and an empty `streaming` answer; returns the answer's message id."""
    now = utcnow()
    await db.execute(
        insert(Message).values(
            session_id=session_id,
            role="user",
            content=question,
            model=model,
            status="complete",
            created_at=now,
            updated_at=now,
        )
    )
    answer_id = await db.scalar(
        insert(Message)
        .values(
            session_id=session_id,
            role="assistant",
            content="",
            model=model,
            status="streaming",
            created_at=now,
            updated_at=now,
        )
        .returning(Message.id)
    )
    await db.execute(update(ChatSession).where(ChatSession.id == session_id).values(updated_at=now))
    assert answer_id is not None
    return int(answer_id)


async def recent_messages(db: AsyncSession, session_id: str, *, limit: int) -> Sequence[Message]:
    """The session's last `limit` messages, newest first."""
    found = await db.scalars(
        select(Message)
        .where(Message.session_id == session_id)
        .order_by(Message.id.desc())
        .limit(limit)
    )
    return found.all()


async def messages(db: AsyncSession, session_id: str) -> Sequence[Message]:
    found = await db.scalars(select(Message).where(Message.session_id == session_id).order_by(Message.id))
    return found.all()


async def list_sessions(
    db: AsyncSession, user_id: int, *, limit: int, after: tuple[datetime, str] | None
) -> Sequence[ChatSession]:
    """Most recently active first; `after` is the (updated_at, id) of the last session already seen."""
    query = select(ChatSession).where(ChatSession.user_id == user_id)
    if after is not None:
        at, sid = after
        query = query.where(
            or_(ChatSession.updated_at < at, and_(ChatSession.updated_at == at, ChatSession.id < sid))
        )
    found = await db.scalars(
        query.order_by(ChatSession.updated_at.desc(), ChatSession.id.desc()).limit(limit)
    )
    return found.all()


async def rename_session(db: AsyncSession, session_id: str, title: str) -> None:
    await db.execute(update(ChatSession).where(ChatSession.id == session_id).values(title=title))


async def delete_session(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(Message).where(Message.session_id == session_id))
    await db.execute(delete(ChatSession).where(ChatSession.id == session_id))


async def finish_message(
    db: AsyncSession,
    message_id: int,
    *,
    content: str,
    status: str,
    error: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
) -> None:
    await db.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(
            content=content,
            status=status,
            error=error,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            updated_at=utcnow(),
        )
    )


async def checkpoint_messages(db: AsyncSession, contents: list[tuple[int, str]]) -> None:
    """Saves the text so far of answers still being written, in one statement."""
    if not contents:
        return
    now = utcnow()
    await db.execute(
        update(Message.__table__)  # type: ignore[arg-type]
        .where(Message.__table__.c.id == bindparam("message_id"), Message.__table__.c.status == "streaming")
        .values(content=bindparam("text"), updated_at=now),
        [{"message_id": mid, "text": text} for mid, text in contents],
    )


async def mark_abandoned(db: AsyncSession) -> int:
    """Answers left `streaming` by a process that died become `interrupted`."""
    result = await db.execute(
        update(Message).where(Message.status == "streaming").values(status="interrupted", updated_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
