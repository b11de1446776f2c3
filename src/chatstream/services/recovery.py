"""Answers cut off by an instance that died: marked `interrupted`, with the text it left behind.

The best text left, first to last: the instance's journal, when it ran on this data dir (every
frame a client could have been sent, and the question too, should its rows not have been saved
yet); with Redis, the frames it mirrored there (up to its last flush, a quarter of a second
behind at most); the last checkpoint in the database (up to CHECKPOINT_S behind), which is what
the answer keeps when nothing better is found.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from pathlib import Path
from typing import Protocol

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.stores import chats
from chatstream.streaming.frames import text_of
from chatstream.streaming.journal import discard, journal_files
from chatstream.streaming.journal_replay import JournaledAnswer, replay

log = logging.getLogger("chatstream.answers")


class Mirror(Protocol):
    """What recovery needs of Redis (stores/answer_bus_redis.py): who is alive, what they mirrored."""

    async def live_instances(self, candidates: set[str]) -> set[str]: ...

    async def mirrored_frames(self, session_ids: list[str], owner: str) -> dict[str, bytes]: ...


def journal_context(turn: chats.NewTurn) -> bytes:
    """What the journal keeps of an answer's turn, to save it should the crash come first."""
    return orjson.dumps(turn)


def _turn_from(answer: JournaledAnswer) -> chats.NewTurn | None:
    try:
        return chats.NewTurn(**orjson.loads(answer.context))
    except (orjson.JSONDecodeError, TypeError):
        log.warning("a journaled answer in session %s has no readable question; left out", answer.session_id)
        return None


async def recover_cut_off_answers(
    sessions: async_sessionmaker[AsyncSession], *, instance_id: str, journals: Path, mirror: Mirror | None
) -> int:
    """Answers left `streaming` by instances that are gone become `interrupted`; returns how many.

    With Redis (`mirror`) an instance is gone when its liveness key has expired; without, this
    server takes itself to be the only instance, so every other one is gone. The texts restored
    and the status change are saved in one transaction; the journals read are deleted after it.
    """
    async with sessions() as db:
        owners = await chats.streaming_owners(db)
    files = {owner: path for owner, path in journal_files(journals).items() if owner != instance_id}
    gone = {owner for owner in owners if owner != instance_id} | set(files)
    if mirror is not None and gone:
        gone -= await mirror.live_instances({owner for owner in gone if owner is not None})
    if not gone:
        return 0
    journaled = {}
    for owner, path in files.items():
        # In a thread: a journal may be up to journal_max_bytes to read.
        if owner in gone and (answers := await asyncio.to_thread(_read, path)) is not None:
            journaled[owner] = answers
    texts: dict[int, str] = {}  # by message id
    if mirror is not None:
        texts = await _mirrored_texts(sessions, mirror, {o for o in gone if o is not None} - set(journaled))
    async with sessions.begin() as db:
        for owner, answers in journaled.items():
            texts |= await _journaled_texts(db, owner, answers)
        restored = await chats.restore_text(db, texts)
        cut = await chats.mark_interrupted(db, gone)
    for owner in journaled:
        try:
            discard(files[owner])
        except OSError as exc:  # read again next time: harmless, the texts are saved by message id
            log.warning("a journal read could not be deleted (%s)", exc)
    if cut or restored:
        log.warning(
            "answers cut off by a stopped instance: %d marked interrupted, %d given the text "
            "its journal or Redis kept",
            cut,
            restored,
        )
    return cut


def _read(path: Path) -> list[JournaledAnswer] | None:
    """A dead instance's journal; None (and the file set aside) when it can't be read."""
    try:
        return replay(path)
    except Exception:  # a start must not fail for a bad file: keep it for a human to look at
        log.exception("the journal %s can't be read; it is renamed *.unreadable", path)
        with contextlib.suppress(OSError):
            path.rename(path.with_name(path.name + ".unreadable"))
        return None


async def _journaled_texts(db: AsyncSession, owner: str, answers: list[JournaledAnswer]) -> dict[int, str]:
    """By message id, the text of the answers in a dead instance's journal (saving lost turns)."""
    texts = {a.message_id: a.text for a in answers if a.message_id is not None}
    unsaved = [a for a in answers if a.message_id is None and not a.ended]
    if not unsaved:
        return texts
    # Rows saved a moment before the crash (their id not journaled yet), or by an earlier recovery
    # that read this journal but could not delete it, are the session's newest of this owner, and
    # unfinished: its earlier answers there all ended before this one started.
    newest = await chats.newest_answers(db, owner, [a.session_id for a in unsaved])
    lost = []
    for answer in unsaved:
        message_id, status = newest.get(answer.session_id, (0, ""))
        if status in ("streaming", "interrupted"):
            texts[message_id] = answer.text
        elif (turn := _turn_from(answer)) is not None:
            lost.append((answer, turn))
    if lost:
        saved = await chats.add_lost_turns(db, [turn for _, turn in lost])
        texts |= {saved[a.session_id]: a.text for a, _ in lost if a.session_id in saved}
    return texts


async def _mirrored_texts(
    sessions: async_sessionmaker[AsyncSession], mirror: Mirror, owners: set[str]
) -> dict[int, str]:
    """By message id, what gone instances mirrored of the answers they left `streaming`."""
    async with sessions() as db:
        cut_off = await chats.streaming_answers(db, owners)
    by_owner: dict[str, dict[str, int]] = defaultdict(dict)
    for owner, session_id, message_id in cut_off:
        by_owner[owner][session_id] = message_id  # oldest first: a session's newest answer wins
    texts: dict[int, str] = {}
    for owner, message_ids in by_owner.items():
        mirrored = await mirror.mirrored_frames(list(message_ids), owner)
        texts |= {message_ids[session_id]: text_of(blob) for session_id, blob in mirrored.items()}
    return texts
