"""Starting, following and finishing answers.

An answer runs as a task owned by this service, not by the HTTP request: the request
that started it is only its first reader, and a client that goes away does not stop it.
The service also runs two small tickers for all answers at once: the checkpointer (saves
the text of every answer in progress about once a second, in one statement) and the
heartbeat (nudges logs that have been quiet, so their readers send `: ping`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.errors import AppError, InvalidParams, ModelFailed, SessionNotFound, TooManyRequests
from chatstream.providers.base import ProviderError, Usage
from chatstream.providers.registry import ModelRegistry
from chatstream.services.batching import GroupCommit
from chatstream.services.chats import title_from
from chatstream.services.context import build_context
from chatstream.stores import chats
from chatstream.stores.models import Message
from chatstream.streaming import frames
from chatstream.streaming.log import AnswerLog
from chatstream.streaming.run import AnswerRun

log = logging.getLogger("chatstream.answers")

HISTORY_ROWS = 200  # the most messages ever read back for a context
RETAIN_FINISHED_S = 60.0  # how long a finished answer's frames stay readable


@dataclass(slots=True)
class Answer:
    session_id: str
    run: AnswerRun
    task: asyncio.Task[None]

    @property
    def log(self) -> AnswerLog:
        return self.run.log


def refusal(exc: ProviderError, session_id: str) -> AppError:
    """The client-facing error for a model that refused before its first token."""
    if exc.status == 429:
        return TooManyRequests(
            f"the model is rate-limiting requests ({exc.message}); try again shortly", sessionId=session_id
        )
    return ModelFailed(f"model failed: {exc.message}", sessionId=session_id)


class AnswerService:
    def __init__(
        self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession], models: ModelRegistry
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._models = models
        self._answers: dict[str, Answer] = {}  # by session id: the running or recently finished answer
        self._tickers: list[asyncio.Task[None]] = []
        self._turns = GroupCommit(self._write_turns)
        self._finishes = GroupCommit(self._write_finishes)

    async def start_tickers(self) -> None:
        self._tickers = [
            asyncio.create_task(self._checkpoint_forever(), name="chatstream-checkpoint"),
            asyncio.create_task(self._heartbeat_forever(), name="chatstream-heartbeat"),
        ]

    async def start(self, *, user_id: int, question: str, model_type: str, session_id: str | None) -> Answer:
        """Stores the question, starts the answer and waits until the model accepted it.

        Raises before anything is stored for bad input; raises a ModelFailed-family error
        (carrying the sessionId) when the model refuses before its first token.
        """
        if not question.strip():
            raise InvalidParams("question must not be empty")
        if len(question) > self._settings.max_question_chars:
            raise InvalidParams(f"question is longer than {self._settings.max_question_chars} characters")
        model = self._models.resolve(model_type)
        new = session_id is None
        sid = session_id or str(uuid.uuid4())
        history: list[Message] = []
        if not new:
            async with self._sessions() as db:
                if await chats.owned_session(db, sid, user_id) is None:
                    raise SessionNotFound()
                history = list(await chats.recent_messages(db, sid, limit=HISTORY_ROWS))
            # No await from this check to registering the new answer below, so two sends can't both pass.
            current = self._answers.get(sid)
            if current is not None and not current.task.done():
                raise TooManyRequests("this session is still answering; wait for it or stop it")
        turn = chats.NewTurn(
            session_id=sid,
            user_id=user_id,
            question=question,
            model=model.config.id,
            title=title_from(question) if new else None,
        )
        messages = build_context(
            system_prompt=self._settings.system_prompt,
            history_newest_first=history,
            question=question,
            budget_tokens=self._settings.context_budget_tokens,
        )
        answer_log = AnswerLog()
        if new:
            answer_log.append(frames.data(1, {"sessionId": sid}))
        # The rows are written while the model is asked: the database is not on the way to the first token.
        row_id = asyncio.ensure_future(self._turns.submit(turn))
        run = AnswerRun(
            provider=model.provider, messages=messages, log=answer_log, writer=self, row_id=row_id
        )
        task = asyncio.create_task(run.run(), name=f"answer-{sid}")
        answer = Answer(sid, run, task)
        self._answers[sid] = answer
        task.add_done_callback(lambda _t: self._retire_later(answer))
        try:
            await asyncio.shield(run.opened)
        except ProviderError as exc:
            await asyncio.shield(task)  # the refusal is saved before the client hears of it
            raise refusal(exc, sid) from exc
        return answer

    async def complete(self, answer: Answer) -> str:
        """Waits for the whole answer (the non-stream routes); its text, or the error."""
        await asyncio.shield(answer.task)
        if answer.run.status == "error":
            raise ModelFailed(f"model failed mid-answer: {answer.run.error}", sessionId=answer.session_id)
        return answer.run.text

    async def current(self, user_id: int, session_id: str) -> Answer:
        """The session's running (or recently finished) answer."""
        await self._require_owned(user_id, session_id)
        answer = self._answers.get(session_id)
        if answer is None:
            raise SessionNotFound("no answer is being written in this session")
        return answer

    async def stop(self, user_id: int, session_id: str) -> bool:
        """Stops the session's answer; False when none was running (stopping is idempotent)."""
        await self._require_owned(user_id, session_id)
        answer = self._answers.get(session_id)
        if answer is None or answer.task.done():
            return False
        answer.task.cancel()
        await asyncio.wait([answer.task], timeout=10)
        return True

    async def _require_owned(self, user_id: int, session_id: str) -> None:
        async with self._sessions() as db:
            if await chats.owned_session(db, session_id, user_id) is None:
                raise SessionNotFound()

    def _retire_later(self, answer: Answer) -> None:
        def retire() -> None:
            if self._answers.get(answer.session_id) is answer:
                del self._answers[answer.session_id]

        asyncio.get_running_loop().call_later(RETAIN_FINISHED_S, retire)

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

    async def _checkpoint_forever(self) -> None:
        while True:
            await asyncio.sleep(self._settings.checkpoint_s)
            changed = [
                a.run
                for a in self._answers.values()
                if a.run.status == "streaming"
                and len(a.run.parts) != a.run.saved_parts
                and a.run.row_id.done()
                and not a.run.row_id.exception()
            ]
            if not changed:
                continue
            contents = []
            for run in changed:
                run.saved_parts = len(run.parts)
                contents.append((run.row_id.result(), run.text))
            try:
                async with self._sessions.begin() as db:
                    await chats.checkpoint_messages(db, contents)
            except Exception:  # a failed checkpoint is retried next tick; the answer goes on
                log.exception("checkpoint of %d answers failed", len(contents))
                for run in changed:
                    run.saved_parts = -1

    async def _heartbeat_forever(self) -> None:
        interval = self._settings.heartbeat_s
        while True:
            await asyncio.sleep(min(1.0, interval / 4))
            quiet_since = time.monotonic() - interval
            for answer in list(self._answers.values()):
                answer_log = answer.log
                if not answer_log.closed and answer_log.last_activity <= quiet_since:
                    answer_log.nudge()

    async def shutdown(self, grace_s: float = 5.0) -> None:
        """Marks answers still running as interrupted and saves them."""
        running = [a for a in self._answers.values() if not a.task.done()]
        for answer in running:
            answer.run.stop_status = "interrupted"
            answer.task.cancel()
        if running:
            await asyncio.wait([a.task for a in running], timeout=grace_s)
        for ticker in self._tickers:
            ticker.cancel()
        for ticker in self._tickers:
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
