"""User accounts."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from chatstream.stores.models import User


async def add_user(db: AsyncSession, *, username: str, email: str | None, password_hash: str) -> User:
    user = User(username=username, email=email, password_hash=password_hash)
    db.add(user)
    await db.flush()
    return user


async def find_by_login(db: AsyncSession, login: str) -> User | None:
    """The user whose username or e-mail address is `login`."""
    found = await db.scalars(select(User).where(or_(User.username == login, User.email == login)).limit(1))
    return found.first()


async def login_taken(db: AsyncSession, *, username: str | None = None, email: str | None = None) -> bool:
    conditions = []
    if username:
        conditions += [User.username == username, User.email == username]
    if email:
        conditions += [User.email == email, User.username == email]
    if not conditions:
        return False
    found = await db.scalar(select(User.id).where(or_(*conditions)).limit(1))
    return found is not None


async def exists(db: AsyncSession, *, user_id: int, username: str) -> bool:
    found = await db.scalar(select(User.id).where(User.id == user_id, User.username == username))
    return found is not None


async def find_by_username(db: AsyncSession, username: str) -> User | None:
    found = await db.scalars(select(User).where(User.username == username).limit(1))
    return found.first()
