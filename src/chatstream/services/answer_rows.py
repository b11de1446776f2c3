"""The database rows of answers: each turn's question and answer, and each answer's final save.

Hundreds of answers start and end each second under load: both writes go through a group
commit (services/batching.py), so the transactions stay few however many answers there are.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.providers.base import Usage
from chatstream.services.batching import GroupCommit
from chatstream.stores import chats


class AnswerRows:
    """streaming.run.AnswerWriter, and the turns' first write."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._turns = GroupCommit(self._write_turns)
        self._finishes = GroupCommit(self._write_finishes)

    async def add_turn(self, turn: chats.NewTurn) -> int:
        """Stores the question and an empty `streaming` answer (and the session, if new); the
        answer's message id."""
        return await self._turns.submit(turn)

    async def finish(
        self, message_id: int, content: str, status: str, *, error: str | None, usage: Usage | None
    ) -> None:
        """AnswerWriter: the final save of an answer."""
        await self._finishes.submit(
            chats.FinishedAnswer(
                message_id,
                content,
                status,
                error,
                usage.prompt_tokens if usage else None,
                usage.completion_tokens if usage else None,
            )
        )

    async def _write_turns(self, turns: list[chats.NewTurn]) -> list[int]:
        async with self._sessions.begin() as db:
            return await chats.add_turns(db, turns)

    async def _write_finishes(self, answers: list[chats.FinishedAnswer]) -> list[None]:
        async with self._sessions.begin() as db:
            await chats.finish_messages(db, answers)
        return [None] * len(answers)
