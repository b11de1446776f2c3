"""Password hashing (argon2, off the event loop) and JWT access tokens."""

from __future__ import annotations

import time
from dataclasses import dataclass

import anyio.to_thread
import jwt
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher

from chatstream.errors import InvalidToken

_ALGORITHM = "HS256"
MIN_SECRET = 32  # characters; as CHATSTREAM_JWT_SECRET must have


class PasswordHasher:
    """argon2id; each hash costs ~0.2 s of CPU, so it runs in a worker thread."""

    def __init__(self, *, time_cost: int, memory_kib: int) -> None:
        self._hash = PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))
        # Verifying against this when the user is unknown keeps login time the same either way.
        self._dummy = self._hash.hash("chatstream-dummy-password")

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(self._hash.hash, password)

    async def verify(self, password: str, password_hash: str | None) -> bool:
        return await anyio.to_thread.run_sync(self._hash.verify, password, password_hash or self._dummy)


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    username: str


class TokenCodec:
    def __init__(self, secret: str, ttl_s: float) -> None:
        # The environment's secret is checked by the settings; one read from the data dir is not,
        # and an empty one (a truncated file) would let the server start and then fail every login.
        if len(secret) < MIN_SECRET:
            raise ValueError(
                f"the JWT secret must be at least {MIN_SECRET} characters; "
                "fix or delete the data dir's jwt-secret file (a new one is generated)"
            )
        self._secret = secret
        self._ttl_s = ttl_s

    def issue(self, user_id: int, username: str) -> str:
        now = int(time.time())
        claims = {"sub": str(user_id), "name": username, "iat": now, "exp": now + int(self._ttl_s)}
        return jwt.encode(claims, self._secret, algorithm=_ALGORITHM)

    def decode(self, token: str) -> TokenClaims:
        """The token's claims; any malformed, forged or expired token raises InvalidToken (401)."""
        try:
            claims = jwt.decode(
                token, self._secret, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]}
            )
            return TokenClaims(user_id=int(claims["sub"]), username=str(claims.get("name", "")))
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired: log in again") from exc
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            raise InvalidToken("invalid token") from exc
