"""Chat sessions and their messages."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import cast

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Table,
    and_,
    bindparam,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from chatstream.stores.models import ChatSession, Message, utcnow

# Core handles on the tables, for the many-row statements of the answer path.
SESSIONS = cast(Table, ChatSession.__table__)
MESSAGES = cast(Table, Message.__table__)
SESSION_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


async def add_session(db: AsyncSession, *, session_id: str, user_id: int, title: str) -> None:
    now = utcnow()
    await db.execute(
        insert(ChatSession).values(
            id=session_id, user_id=user_id, title=title, created_at=now, updated_at=now
        )
    )


def is_session_id(value: str) -> bool:
    """Whether `value` has the shape of the ids this server gives out (a UUID)."""
    return len(value) == 36 and SESSION_ID.fullmatch(value) is not None


async def owned_session(db: AsyncSession, session_id: str, user_id: int) -> ChatSession | None:
    """The session if it exists and belongs to the user; None either way, so callers can't tell which."""
    if not is_session_id(session_id):
        return None  # not ours, and PostgreSQL refuses some strings (NUL) outright
    found = await db.scalars(
        select(ChatSession).where(ChatSession.id == session_id, ChatSession.user_id == user_id)
    )
    return found.first()


@dataclass(frozen=True, slots=True)
class NewTurn:
    """A question and its empty `streaming` answer; `title` is set when the session is new."""

    session_id: str
    user_id: int
    question: str
    model: str
    owner: str
    title: str | None = None
    documents: bool = False  # the session answers from the user's documents
    sources: str | None = None  # the answer's sources, JSON


async def add_turns(db: AsyncSession, turns: list[NewTurn]) -> list[int]:
    """Stores the turns (and the new sessions among them); returns each answer's message id."""
    now = utcnow()
    new_sessions = [
        {
            "id": t.session_id,
            "user_id": t.user_id,
            "title": t.title,
            "documents": t.documents,
            "created_at": now,
            "updated_at": now,
        }
        for t in turns
        if t.title is not None
    ]
    # Core inserts on the tables: the ORM's bulk path costs several times more per row.
    if new_sessions:
        await db.execute(insert(SESSIONS), new_sessions)
    rows = [
        {"session_id": t.session_id, "model": t.model, "owner": t.owner, "created_at": now, "updated_at": now}
        for t in turns
    ]
    await db.execute(
        insert(MESSAGES),
        [
            {**row, "role": "user", "content": t.question, "status": "complete"}
            for row, t in zip(rows, turns, strict=True)
        ],
    )
    ids = await db.scalars(
        insert(MESSAGES).returning(MESSAGES.c.id, sort_by_parameter_order=True),
        [
            {**row, "role": "assistant", "content": "", "status": "streaming", "sources": t.sources}
            for row, t in zip(rows, turns, strict=True)
        ],
    )
    continued = [{"sid": t.session_id, "docs": t.documents} for t in turns if t.title is None]
    if continued:
        # A session that answered from documents once keeps doing so (it is switched off by PATCH).
        await db.execute(
            update(SESSIONS)
            .where(SESSIONS.c.id == bindparam("sid"))
            .values(updated_at=now, documents=or_(SESSIONS.c.documents, bindparam("docs", type_=Boolean))),
            continued,
        )
    return list(ids.all())


async def recent_messages(db: AsyncSession, session_id: str, *, limit: int) -> Sequence[Message]:
    """The session's last `limit` messages, newest first."""
    found = await db.scalars(
        select(Message).where(Message.session_id == session_id).order_by(Message.id.desc()).limit(limit)
    )
    return found.all()


async def last_answer(db: AsyncSession, session_id: str) -> Message | None:
    found = await db.scalars(
        select(Message)
        .where(Message.session_id == session_id, Message.role == "assistant")
        .order_by(Message.id.desc())
        .limit(1)
    )
    return found.first()


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


async def update_session(
    db: AsyncSession, session_id: str, *, title: str | None = None, documents: bool | None = None
) -> None:
    values: dict[str, object] = {}
    if title is not None:
        values["title"] = title
    if documents is not None:
        values["documents"] = documents
    if values:
        await db.execute(update(ChatSession).where(ChatSession.id == session_id).values(**values))


async def delete_session(db: AsyncSession, session_id: str) -> None:
    await db.execute(delete(Message).where(Message.session_id == session_id))
    await db.execute(delete(ChatSession).where(ChatSession.id == session_id))


@dataclass(frozen=True, slots=True)
class FinishedAnswer:
    message_id: int
    content: str
    status: str
    error: str | None
    prompt_tokens: int | None
    completion_tokens: int | None


async def finish_messages(db: AsyncSession, answers: list[FinishedAnswer]) -> None:
    """The final text, status and token counts of answers, in one statement."""
    await db.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id == bindparam("mid"))
        .values(
            content=bindparam("text"),
            status=bindparam("final_status"),
            error=bindparam("err"),
            prompt_tokens=bindparam("pt"),
            completion_tokens=bindparam("ct"),
            updated_at=utcnow(),
        ),
        [
            {
                "mid": a.message_id,
                "text": a.content,
                "final_status": a.status,
                "err": a.error,
                "pt": a.prompt_tokens,
                "ct": a.completion_tokens,
            }
            for a in answers
        ],
    )


async def checkpoint_messages(db: AsyncSession, contents: list[tuple[int, str]]) -> None:
    """Saves the text so far of answers still being written, in one statement."""
    if not contents:
        return
    now = utcnow()
    await db.execute(
        update(MESSAGES)
        .where(MESSAGES.c.id == bindparam("message_id"), MESSAGES.c.status == "streaming")
        .values(content=bindparam("text"), updated_at=now),
        [{"message_id": mid, "text": text} for mid, text in contents],
    )


async def streaming_owners(db: AsyncSession) -> set[str | None]:
    """The instances that have answers marked `streaming`."""
    found = await db.scalars(select(Message.owner).where(Message.status == "streaming").distinct())
    return set(found.all())


RESTORE_CHUNK = 500  # answers per statement: well inside every database's limit on parameters


async def streaming_answers(db: AsyncSession, owners: set[str]) -> list[tuple[str, str, int]]:
    """(owner, session id, message id) of the answers these instances left `streaming`, oldest first."""
    if not owners:
        return []
    found = await db.execute(
        select(MESSAGES.c.owner, MESSAGES.c.session_id, MESSAGES.c.id)
        .where(MESSAGES.c.status == "streaming", MESSAGES.c.owner.in_(owners))
        .order_by(MESSAGES.c.id)
    )
    return [(owner, session_id, message_id) for owner, session_id, message_id in found.all()]


async def newest_answers(db: AsyncSession, owner: str, session_ids: list[str]) -> dict[str, tuple[int, str]]:
    """By session, the id and status of the newest answer this instance wrote there."""
    newest: dict[str, tuple[int, str]] = {}
    for start in range(0, len(session_ids), RESTORE_CHUNK):
        found = await db.execute(
            select(MESSAGES.c.session_id, MESSAGES.c.id, MESSAGES.c.status)
            .where(
                MESSAGES.c.owner == owner,
                MESSAGES.c.role == "assistant",
                MESSAGES.c.session_id.in_(session_ids[start : start + RESTORE_CHUNK]),
            )
            .order_by(MESSAGES.c.id)
        )
        newest |= {session_id: (message_id, status) for session_id, message_id, status in found}
    return newest


async def add_lost_turns(db: AsyncSession, turns: list[NewTurn]) -> dict[str, int]:
    """Stores turns that a dead instance started but had not saved; by session, each answer's id.

    A turn in a session that is gone meanwhile (deleted) is left out; an existing session is not
    created again.
    """
    existing = set(
        await db.scalars(select(SESSIONS.c.id).where(SESSIONS.c.id.in_([t.session_id for t in turns])))
    )
    kept = [
        replace(t, title=None) if t.session_id in existing else t
        for t in turns
        if t.session_id in existing or t.title is not None
    ]
    if not kept:
        return {}
    ids = await add_turns(db, kept)
    return {turn.session_id: message_id for turn, message_id in zip(kept, ids, strict=True)}


async def restore_text(db: AsyncSession, texts: dict[int, str]) -> int:
    """Saves the text a dead instance's journal (or mirror) kept of answers, by message id.

    A text goes to an answer still `streaming` (mark it `interrupted` in the same transaction) or
    marked `interrupted` already with less text (by a recovery that had less to go on), and only
    when it is longer than what the answer holds. Returns how many answers got text.
    """
    message_ids = list(texts)
    restored = []
    for start in range(0, len(message_ids), RESTORE_CHUNK):
        found = await db.execute(
            select(MESSAGES.c.id, MESSAGES.c.status, func.length(MESSAGES.c.content)).where(
                MESSAGES.c.id.in_(message_ids[start : start + RESTORE_CHUNK])
            )
        )
        for message_id, status, length in found:
            text = texts[message_id]
            if status in ("streaming", "interrupted") and len(text) > (length or 0):
                restored.append({"message_id": message_id, "restored": text})
    if restored:
        await db.execute(
            update(MESSAGES)
            .where(MESSAGES.c.id == bindparam("message_id"))
            .values(content=bindparam("restored"), updated_at=utcnow()),
            restored,
        )
    return len(restored)


async def mark_interrupted(db: AsyncSession, owners: set[str | None]) -> int:
    """Answers left `streaming` by these (dead) instances become `interrupted`."""
    named = {o for o in owners if o is not None}
    conditions: list[ColumnElement[bool]] = [Message.owner.in_(named)] if named else []
    if None in owners:
        conditions.append(Message.owner.is_(None))
    if not conditions:
        return 0
    result = await db.execute(
        update(Message)
        .where(Message.status == "streaming", or_(*conditions))
        .values(status="interrupted", updated_at=utcnow())
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
