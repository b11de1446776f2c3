"""E-mail verification codes (stored hashed, single-use, expiring)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from chatstream.stores.models import VerificationCode


async def add_code(
    db: AsyncSession, *, email: str, code_hash: str, client: str, created_at: datetime, expires_at: datetime
) -> None:
    db.add(
        VerificationCode(
            email=email, code_hash=code_hash, client=client, created_at=created_at, expires_at=expires_at
        )
    )
    await db.flush()


async def last_sent_at(db: AsyncSession, email: str) -> datetime | None:
    return await db.scalar(
        select(func.max(VerificationCode.created_at)).where(VerificationCode.email == email)
    )


async def count_from_client(db: AsyncSession, client: str, since: datetime) -> int:
    found = await db.scalar(
        select(func.count())
        .select_from(VerificationCode)
        .where(VerificationCode.client == client, VerificationCode.created_at >= since)
    )
    return int(found or 0)


async def consume_code(db: AsyncSession, *, email: str, code_hash: str, now: datetime) -> bool:
    """Marks the matching live code used; False when there is none. Atomic, so a code works once."""
    result = await db.execute(
        update(VerificationCode)
        .where(
            VerificationCode.email == email,
            VerificationCode.code_hash == code_hash,
            VerificationCode.used_at.is_(None),
            VerificationCode.expires_at > now,
        )
        .values(used_at=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def retire_codes(db: AsyncSession, *, email: str, now: datetime) -> None:
    """Marks the address's live codes used, so that only a newer one works."""
    await db.execute(
        update(VerificationCode)
        .where(VerificationCode.email == email, VerificationCode.used_at.is_(None))
        .values(used_at=now)
    )
