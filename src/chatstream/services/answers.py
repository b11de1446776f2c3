"""Starting, following and finishing answers.

An answer runs as a task owned by this service, not by the HTTP request: the request
that started it is only its first reader, and a client that goes away does not stop it.
Its rows are written by group commits (services/answer_rows.py). The service runs small
tickers for all answers at once (services/answer_upkeep.py): the checkpointer (the text of
every answer in progress, about once a second, in one statement) and the heartbeat (nudges
logs that have been quiet, so their readers send `: ping`); and the recovery of answers
left `streaming` by instances that died (services/recovery.py), at start and, with Redis,
every RECOVERY_S. With a journal (streaming/journal.py) every frame is in a file before a
reader gets it, so a crash loses no text a client was sent. With Redis (`bus`), answers can
be followed and stopped from any instance (stores/answer_bus_redis.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.errors import (
    AppError,
    InvalidParams,
    ModelFailed,
    ServerBusy,
    SessionNotFound,
    TooManyRequests,
    UnknownModel,
)
from chatstream.providers.base import ProviderError
from chatstream.providers.registry import ModelRegistry
from chatstream.services.answer_rows import AnswerRows
from chatstream.services.answer_upkeep import checkpoint_forever, heartbeat_forever
from chatstream.services.chats import require_owned, title_from
from chatstream.services.context import build_context, documents_prompt
from chatstream.services.periodic import every
from chatstream.services.recovery import journal_context, recover_cut_off_answers
from chatstream.services.retrieval import RetrievalService, Retrieved
from chatstream.stores import chats
from chatstream.stores.models import Message, utcnow
from chatstream.streaming import frames
from chatstream.streaming.journal import Journal, journal_dir
from chatstream.streaming.log import AnswerLog
from chatstream.streaming.relay import relay
from chatstream.streaming.run import AnswerRun

log = logging.getLogger("chatstream.answers")

HISTORY_ROWS = 200  # the most messages ever read back for a context
DOCUMENTS_ALIAS = "2"  # the seed's modelType for chat over the user's documents: the default model


class AnswerBus(Protocol):
    """What the service needs to share answers across instances (RedisAnswerBus has it)."""

    healthy: bool

    def track(self, session_id: str, answer_log: AnswerLog) -> None: ...

    def flush_soon(self, session_id: str) -> None: ...

    async def follow(self, session_id: str, after: int) -> AsyncIterator[bytes] | None: ...

    async def request_stop(self, session_id: str) -> bool: ...

    async def live_instances(self, candidates: set[str]) -> set[str]: ...

    async def mirrored_frames(self, session_ids: list[str], owner: str) -> dict[str, bytes]: ...


@dataclass(slots=True)
class Answer:
    session_id: str
    user_id: int
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
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        models: ModelRegistry,
        bus: AnswerBus | None = None,
        instance_id: str | None = None,
        journal: Journal | None = None,
        retrieval: RetrievalService | None = None,
    ) -> None:
        self._settings = settings
        self._retrieval = retrieval
        self._sessions = sessions
        self._models = models
        self._bus = bus
        self._journal = journal
        self.instance_id = instance_id or uuid.uuid4().hex
        self._answers: dict[str, Answer] = {}  # by session id: the running or recently finished answer
        self._in_flight: dict[int, int] = {}  # by user id: answers running
        self.ended_by_status: dict[str, int] = {}  # for /metrics
        self.chunks_relayed = 0
        self._tickers: list[asyncio.Task[None]] = []
        self._rows = AnswerRows(sessions)

    async def start_tickers(self) -> None:
        """At server start: recover what dead instances left, then run the tickers."""
        await self.recover_abandoned()
        self._tickers = [
            asyncio.create_task(
                checkpoint_forever(self._runs, self._sessions, self._settings.checkpoint_s),
                name="chatstream-checkpoint",
            ),
            asyncio.create_task(
                heartbeat_forever(self._logs, self._settings.heartbeat_s), name="chatstream-heartbeat"
            ),
        ]
        if self._bus is not None:
            recover = every(
                self._settings.recovery_s, self.recover_abandoned, log, "looking for abandoned answers"
            )
            self._tickers.append(asyncio.create_task(recover, name="chatstream-recovery"))

    async def recover_abandoned(self) -> int:
        """Answers left `streaming` by an instance that is gone become `interrupted`.

        Their text is restored from the journal the instance left in this data dir, or, with
        Redis, from what it mirrored there, when that holds more than the last checkpoint.
        """
        return await recover_cut_off_answers(
            self._sessions,
            instance_id=self.instance_id,
            journals=journal_dir(self._settings.data_dir),
            mirror=self._bus,
        )

    async def start(
        self,
        *,
        user_id: int,
        question: str,
        model_type: str,
        session_id: str | None,
        documents: bool | None = None,
    ) -> Answer:
        """Stores the question, starts the answer and waits until the model accepted it.

        With documents (modelType "2", `documents=True`, or a session that has them on) the
        passages retrieved for the question go to the model and, first, to the client as a
        `sources` frame. Raises before anything is stored for bad input; raises a
        ModelFailed-family error (carrying the sessionId) when the model refuses before its
        first token.
        """
        if not question.strip():
            raise InvalidParams("question must not be empty")
        if len(question) > self._settings.max_question_chars:
            raise InvalidParams(f"question is longer than {self._settings.max_question_chars} characters")
        use_documents = bool(documents) or model_type == DOCUMENTS_ALIAS
        model = self._models.resolve("1" if model_type == DOCUMENTS_ALIAS else model_type)
        new = session_id is None
        sid = session_id or str(uuid.uuid4())
        history: list[Message] = []
        if not new:
            async with self._sessions() as db:
                session = await require_owned(db, user_id, sid)
                history = list(await chats.recent_messages(db, sid, limit=HISTORY_ROWS))
            use_documents = use_documents or session.documents
        retrieved = None
        if use_documents:
            # Checked before retrieval too, so a refused send costs no embedding and no search.
            self._check_free(user_id, None if new else sid)
            retrieved = await self._retrieve(user_id, None if new else sid, question)
        # No await from this check to registering the answer below, so concurrent sends can't both pass.
        self._check_free(user_id, None if new else sid)
        turn = chats.NewTurn(
            session_id=sid,
            user_id=user_id,
            question=question,
            model=model.config.id,
            owner=self.instance_id,
            title=title_from(question) if new else None,
            documents=use_documents,
            sources=retrieved.history_json() if retrieved else None,
        )
        messages = build_context(
            system_prompt=self._settings.system_prompt,
            history_newest_first=history,
            question=question,
            budget_tokens=self._settings.context_budget_tokens,
            documents=documents_prompt(retrieved.sources, retrieved.note) if retrieved else None,
        )
        if self._journal is None:
            answer_log = AnswerLog()
        else:  # with the turn, so that a crash before its rows are saved loses neither
            answer_log = self._journal.new_log(sid, journal_context(turn))
        if new:
            answer_log.append(frames.data(1, {"sessionId": sid}))
        if retrieved is not None:
            answer_log.append(frames.data(answer_log.next_seq, retrieved.frame()))
        # The rows are written while the model is asked: the database is not on the way to the first token.
        row_id = asyncio.ensure_future(self._rows.add_turn(turn))
        if self._journal is not None:
            row_id.add_done_callback(functools.partial(self._row_saved, answer_log))
        run = AnswerRun(
            provider=model.provider, messages=messages, log=answer_log, writer=self._rows, row_id=row_id
        )
        task = asyncio.create_task(run.run(), name=f"answer-{sid}")
        answer = Answer(sid, user_id, run, task)
        self._answers[sid] = answer
        self._in_flight[user_id] = self._in_flight.get(user_id, 0) + 1
        task.add_done_callback(lambda _t: self._ended(answer))
        if self._bus is not None:
            # Mirrored from its first visible frame (with a journal, once that is in the file).
            self._bus.track(sid, answer_log)
        try:
            await asyncio.shield(run.opened)
        except ProviderError as exc:
            await asyncio.shield(task)  # the refusal is saved before the client hears of it
            raise refusal(exc, sid) from exc
        return answer

    def _row_saved(self, answer_log: AnswerLog, row_id: asyncio.Future[int]) -> None:
        """The journal notes the answer's row, where a crash's replay will put its text."""
        if self._journal is not None and not row_id.cancelled() and row_id.exception() is None:
            self._journal.row_saved(answer_log, row_id.result())

    async def _retrieve(self, user_id: int, session_id: str | None, question: str) -> Retrieved:
        if self._retrieval is None:
            raise UnknownModel(f"modelType {DOCUMENTS_ALIAS!r} (chat over your documents) is not enabled")
        return await self._retrieval.retrieve(user_id, session_id, question, k=self._settings.rag_top_k)

    async def complete(self, answer: Answer) -> str:
        """Waits for the whole answer (the non-stream routes); its text, or the error."""
        await asyncio.shield(answer.task)
        if answer.run.status == "error":
            raise ModelFailed(f"model failed mid-answer: {answer.run.error}", sessionId=answer.session_id)
        return answer.run.text

    def first_reader(self, answer: Answer) -> AsyncIterator[bytes]:
        """The stream of the request that started the answer."""
        if self._settings.on_disconnect == "cancel":
            return self._cancel_on_leave(answer)
        return relay(answer.log)

    async def _cancel_on_leave(self, answer: Answer) -> AsyncIterator[bytes]:
        try:
            async for chunk in relay(answer.log):
                yield chunk
        finally:
            if not answer.log.closed:  # the client left before the end
                answer.task.cancel()

    async def follow(self, user_id: int, session_id: str, after: int) -> AsyncIterator[bytes]:
        """Frames after `after` of the session's running (or recently finished) answer, then live ones.

        An answer running here is read from memory. Otherwise, with Redis, the session's stream
        there holds its newest answer, whichever instance wrote it; a finished answer kept here
        is the fallback.
        """
        await self._require_owned(user_id, session_id)
        answer = self._answers.get(session_id)
        if answer is not None and not answer.task.done():
            return relay(answer.log, after)
        if self._bus is not None and (self._bus.healthy or answer is None):
            self._require_bus()
            # An answer that another instance started or ended a moment ago may not be mirrored yet.
            deadline = time.monotonic() + 1.0
            while (remote := await self._bus.follow(session_id, after)) is None:
                if time.monotonic() > deadline or not await self._recently_active(session_id):
                    break
                await asyncio.sleep(0.05)
            if remote is not None:
                return remote
        if answer is not None:
            return relay(answer.log, after)
        raise SessionNotFound("no answer is being written in this session")

    async def _recently_active(self, session_id: str) -> bool:
        async with self._sessions() as db:
            last = await chats.last_answer(db, session_id)
        return last is not None and (
            last.status == "streaming" or (utcnow() - last.updated_at).total_seconds() < 5
        )

    async def stop(self, user_id: int, session_id: str) -> bool:
        """Stops the session's answer, on whichever instance; False when none was running."""
        await self._require_owned(user_id, session_id)
        answer = self._answers.get(session_id)
        if answer is not None and self.stop_local(session_id):
            await asyncio.wait([answer.task], timeout=10)
            return True
        if self._bus is not None:  # it may run on another instance
            self._require_bus()
            return await self._bus.request_stop(session_id)
        return False

    def stop_local(self, session_id: str) -> bool:
        """Cancels the answer if it runs here (also for stop requests from other instances)."""
        answer = self._answers.get(session_id)
        if answer is None or answer.task.done():
            return False
        answer.task.cancel()
        return True

    def _require_bus(self) -> None:
        if self._bus is not None and not self._bus.healthy:
            raise ServerBusy(
                "Redis is unreachable: answers on other instances can't be followed or stopped "
                "until it is back"
            )

    def _check_free(self, user_id: int, session_id: str | None) -> None:
        """Raises unless the session (if any) is idle and the user and server may start an answer."""
        if session_id is not None:
            current = self._answers.get(session_id)
            if current is not None and not current.task.done():
                raise TooManyRequests("this session is still answering; wait for it or stop it")
        s = self._settings
        if self._in_flight.get(user_id, 0) >= s.answers_per_user:
            raise TooManyRequests(
                f"you have {s.answers_per_user} answers in progress already; wait for one or stop it",
                retryAfter=5,
            )
        if self.running >= s.answers_max:
            raise ServerBusy(f"this server is writing {s.answers_max} answers already; try again shortly")

    def _runs(self) -> Iterable[AnswerRun]:
        return (answer.run for answer in self._answers.values())

    def _logs(self) -> Iterable[AnswerLog]:
        return (answer.log for answer in self._answers.values())

    @property
    def running(self) -> int:
        """Answers being written on this instance."""
        return sum(self._in_flight.values())

    async def _require_owned(self, user_id: int, session_id: str) -> None:
        async with self._sessions() as db:
            await require_owned(db, user_id, session_id)

    def _ended(self, answer: Answer) -> None:
        if self._bus is not None:
            self._bus.flush_soon(answer.session_id)  # other instances' readers get the end at once
        status = answer.run.status
        self.ended_by_status[status] = self.ended_by_status.get(status, 0) + 1
        self.chunks_relayed += len(answer.run.parts)
        left = self._in_flight[answer.user_id] - 1
        if left:
            self._in_flight[answer.user_id] = left
        else:
            del self._in_flight[answer.user_id]

        def retire() -> None:
            if self._answers.get(answer.session_id) is answer:
                del self._answers[answer.session_id]

        # The frames stay readable for a while (a reload, another tab), then only history has them.
        asyncio.get_running_loop().call_later(self._settings.answer_log_retention_s, retire)

    async def shutdown(self, grace_s: float = 5.0) -> None:
        """Marks answers still running as interrupted and saves them; closes the journal."""
        running = [a for a in self._answers.values() if not a.task.done()]
        for answer in running:
            answer.run.stop_status = "interrupted"
            answer.task.cancel()
        if running:
            await asyncio.wait([a.task for a in running], timeout=grace_s)
        if self._journal is not None:
            # Every answer ended and saved: the journal holds nothing the database lacks.
            saved = self._journal.open_answers == 0 and all(a.run.saved for a in self._answers.values())
            self._journal.close(delete=saved)
        for ticker in self._tickers:
            ticker.cancel()
        for ticker in self._tickers:
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
