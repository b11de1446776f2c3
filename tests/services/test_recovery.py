"""Recovery from a dead instance's journal, against a real (SQLite) database.

The cases a crash test can only hit by chance: a turn whose rows were never saved (the crash
came before the group commit), a row saved a moment before the crash (its id not journaled),
and answers that ended before it (nothing to do).
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.services.recovery import journal_context, recover_cut_off_answers
from chatstream.stores import chats, users
from chatstream.stores.db import create_engine, migrate, session_factory
from chatstream.stores.models import ChatSession, Message
from chatstream.streaming import frames
from chatstream.streaming.journal import OPEN, RECORD, Journal, journal_dir
from chatstream.streaming.journal_writer import BATCH, MAGIC
from chatstream.streaming.log import AnswerLog

DEAD = "d" * 32
ALIVE = "a" * 32
NEW_SESSION = "00000000-0000-4000-8000-000000000001"
OLD_SESSION = "00000000-0000-4000-8000-000000000002"
SAVED_SESSION = "00000000-0000-4000-8000-000000000003"
ENDED_SESSION = "00000000-0000-4000-8000-000000000004"


def turn(user_id: int, session_id: str, question: str, *, new: bool) -> chats.NewTurn:
    return chats.NewTurn(
        session_id=session_id,
        user_id=user_id,
        question=question,
        model="m",
        owner=DEAD,
        title=question if new else None,
    )


def say(answer_log: AnswerLog, text: str) -> None:
    answer_log.append(frames.delta(answer_log.next_seq, text))


async def rows(sessions: async_sessionmaker[AsyncSession], session_id: str) -> list[tuple[str, str, str]]:
    async with sessions() as db:
        found = await db.scalars(select(Message).where(Message.session_id == session_id).order_by(Message.id))
        return [(m.role, m.content, m.status) for m in found]


def test_a_dead_instances_journal_restores_text_and_lost_turns(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    journals = journal_dir(data_dir)
    journals.mkdir(parents=True)

    async def scenario() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
        await migrate(engine)
        sessions = session_factory(engine)
        async with sessions.begin() as db:
            user_id = (await users.add_user(db, username="u", email=None, password_hash="x")).id
            old, saved, ended = (
                turn(user_id, OLD_SESSION, "first", new=True),
                turn(user_id, SAVED_SESSION, "saved", new=True),
                turn(user_id, ENDED_SESSION, "ended", new=True),
            )
            old_id, saved_id, ended_id = await chats.add_turns(db, [old, saved, ended])
            await chats.finish_messages(db, [chats.FinishedAnswer(old_id, "done", "complete", None, 1, 1)])
            await chats.finish_messages(
                db, [chats.FinishedAnswer(ended_id, "all of it", "complete", None, 1, 1)]
            )
            await chats.checkpoint_messages(db, [(saved_id, "checkp")])  # a checkpoint, behind the journal

        writing = Journal(journals / f"{DEAD}.journal", max_bytes=1 << 20)
        lost_new = writing.new_log(NEW_SESSION, journal_context(turn(user_id, NEW_SESSION, "hi", new=True)))
        lost_old = writing.new_log(
            OLD_SESSION, journal_context(turn(user_id, OLD_SESSION, "again", new=False))
        )
        in_row = writing.new_log(SAVED_SESSION, journal_context(saved))
        done = writing.new_log(ENDED_SESSION, journal_context(ended))
        writing.row_saved(done, ended_id)
        for answer_log, text in (
            (lost_new, "never "),
            (lost_old, "saved "),
            (in_row, "checkpointed "),
            (done, "all "),
        ):
            say(answer_log, text)
        await asyncio.sleep(0)
        say(done, "of it")
        done.close()
        say(in_row, "and more")
        await asyncio.sleep(0)
        writing.close(delete=False)  # as a crash leaves it: nothing deleted
        left = (journals / f"{DEAD}.journal").read_bytes()

        cut = await recover_cut_off_answers(sessions, instance_id=ALIVE, journals=journals, mirror=None)
        assert cut == 3  # the saved row and the two turns saved now
        assert await rows(sessions, NEW_SESSION) == [
            ("user", "hi", "complete"),
            ("assistant", "never ", "interrupted"),
        ]
        assert await rows(sessions, OLD_SESSION) == [
            ("user", "first", "complete"),
            ("assistant", "done", "complete"),
            ("user", "again", "complete"),
            ("assistant", "saved ", "interrupted"),
        ]
        assert (await rows(sessions, SAVED_SESSION))[1] == (
            "assistant",
            "checkpointed and more",
            "interrupted",
        )
        assert (await rows(sessions, ENDED_SESSION))[1] == ("assistant", "all of it", "complete")
        async with sessions() as db:
            created = await db.get(ChatSession, NEW_SESSION)
            assert created is not None and created.user_id == user_id and created.title == "hi"
        assert list(journals.iterdir()) == []  # read, saved, deleted
        everything = [
            await rows(sessions, s) for s in (NEW_SESSION, OLD_SESSION, SAVED_SESSION, ENDED_SESSION)
        ]

        # A crash between the commit and the deletion: the journal is read again, to no effect.
        (journals / f"{DEAD}.journal").write_bytes(left)
        assert await recover_cut_off_answers(sessions, instance_id=ALIVE, journals=journals, mirror=None) == 0
        again = [await rows(sessions, s) for s in (NEW_SESSION, OLD_SESSION, SAVED_SESSION, ENDED_SESSION)]
        assert again == everything
        assert list(journals.iterdir()) == []
        await engine.dispose()

    asyncio.run(scenario())


def test_a_journal_that_cannot_be_read_is_set_aside_not_fatal(tmp_path: Path) -> None:
    journals = journal_dir(tmp_path / "data")
    journals.mkdir(parents=True)
    payload = RECORD.pack(OPEN, 1, 3) + b"\xff\n{"  # a whole batch, but no session id in it
    bad = journals / f"{DEAD}.journal"
    bad.write_bytes(MAGIC + BATCH.pack(len(payload), zlib.crc32(payload)) + payload)

    async def scenario() -> None:
        engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}")
        await migrate(engine)
        assert (
            await recover_cut_off_answers(
                session_factory(engine), instance_id=ALIVE, journals=journals, mirror=None
            )
            == 0
        )
        await engine.dispose()

    asyncio.run(scenario())
    assert [p.name for p in journals.iterdir()] == [f"{DEAD}.journal.unreadable"]
