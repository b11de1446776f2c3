"""Chores for all answers in progress at once: checkpointing their text, and heartbeats.

One ticker each for every answer together, never a timer per answer or per reader: under
load a timer per token or per reader costs more than the frames themselves.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.stores import chats
from chatstream.streaming.log import AnswerLog
from chatstream.streaming.run import AnswerRun

log = logging.getLogger("chatstream.answers")


async def checkpoint_forever(
    runs: Callable[[], Iterable[AnswerRun]], sessions: async_sessionmaker[AsyncSession], every_s: float
) -> None:
    """Every `every_s`, the text of each answer being written that changed, in one statement."""
    while True:
        await asyncio.sleep(every_s)
        changed = [
            run
            for run in runs()
            if run.status == "streaming"
            and len(run.parts) != run.saved_parts
            and run.row_id.done()
            and not run.row_id.exception()
        ]
        if not changed:
            continue
        contents = []
        for run in changed:
            run.saved_parts = len(run.parts)
            contents.append((run.row_id.result(), run.text))
        try:
            async with sessions.begin() as db:
                await chats.checkpoint_messages(db, contents)
        except Exception:  # a failed checkpoint is retried next tick; the answer goes on
            log.exception("checkpoint of %d answers failed", len(contents))
            for run in changed:
                run.saved_parts = -1


async def heartbeat_forever(logs: Callable[[], Iterable[AnswerLog]], quiet_s: float) -> None:
    """Nudges the logs quiet for `quiet_s`, so that their readers send `: ping`."""
    while True:
        await asyncio.sleep(min(1.0, quiet_s / 4))
        quiet_since = time.monotonic() - quiet_s
        for answer_log in list(logs()):
            if not answer_log.closed and answer_log.last_activity <= quiet_since:
                answer_log.nudge()
