"""Registration, login and verification codes."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.errors import (
    InvalidParams,
    InvalidToken,
    ServerBusy,
    TooManyRequests,
    UserExists,
    WrongCode,
    WrongCredentials,
)
from chatstream.security import PasswordHasher, TokenCodec
from chatstream.services.limits import SlidingWindow
from chatstream.services.mailer import Mailer
from chatstream.stores import codes, users
from chatstream.stores.models import utcnow

log = logging.getLogger("chatstream.accounts")

EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
USERNAME_RE = re.compile(r"^[\w.\-]{3,64}$")
CODE_ATTEMPTS = 5  # wrong codes per address before it needs a new code
MIN_PASSWORD = 8
MAX_PASSWORD = 256


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL_RE.match(email):
        raise InvalidParams("email is not a valid e-mail address")
    return email


def check_new_user(username: str, password: str, email: str | None) -> str | None:
    """Validates an account's fields (raises InvalidParams); returns the normalized address."""
    if not USERNAME_RE.match(username):
        raise InvalidParams("username must be 3-64 letters, digits, '.', '-' or '_'")
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidParams(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
    return normalize_email(email) if email else None


def _code_hash(email: str, code: str) -> str:
    return hashlib.sha256(f"{email}\0{code}".encode()).hexdigest()


class AccountService:
    def __init__(
        self,
        *,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        hasher: PasswordHasher,
        tokens: TokenCodec,
        mailer: Mailer | None,
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._hasher = hasher
        self._tokens = tokens
        self._mailer = mailer
        self._login_failures = SlidingWindow(settings.login_failures_per_window, settings.login_window_s)
        # Wrong codes per address: a 6-digit code must not be guessable by trying them all.
        self._code_failures = SlidingWindow(CODE_ATTEMPTS, settings.code_ttl_s)
        self._known_users: set[tuple[int, str]] = set()

    @property
    def verification(self) -> str:
        return self._settings.email_verification

    async def send_code(self, email: str, client: str) -> None:
        """Sends a 6-digit code to `email`; throttled per address and per client."""
        email = normalize_email(email)
        if self._mailer is None:
            return  # verification is off: nothing to send
        s = self._settings
        now = utcnow()
        async with self._sessions.begin() as db:
            last = await codes.last_sent_at(db, email)
            if last is not None and now - last < timedelta(seconds=s.code_resend_interval_s):
                wait = int(s.code_resend_interval_s - (now - last).total_seconds()) + 1
                raise TooManyRequests(
                    f"a code was just sent to this address; ask again in {wait} s", retryAfter=wait
                )
            if (
                await codes.count_from_client(db, client, now - timedelta(hours=1))
                >= s.codes_per_client_per_hour
            ):
                raise TooManyRequests(
                    "too many codes requested from this client; try again later", retryAfter=3600
                )
            code = f"{secrets.randbelow(1_000_000):06d}"
            await codes.retire_codes(db, email=email, now=now)  # only the newest code works
            await codes.add_code(
                db,
                email=email,
                code_hash=_code_hash(email, code),
                client=client[:64],
                created_at=now,
                expires_at=now + timedelta(seconds=s.code_ttl_s),
            )
            minutes = max(1, round(s.code_ttl_s / 60))
            expiry = f"{minutes} minute" + ("s" if minutes != 1 else "")
            try:
                await self._mailer.send(
                    email,
                    "Your chatstream verification code",
                    f"Your chatstream verification code is {code}. It expires in {expiry}.",
                )
            except OSError as exc:  # smtplib errors are OSErrors; the code is not kept
                log.error("sending a verification code to %s failed: %s", email, exc)
                raise ServerBusy("the verification e-mail could not be sent; try again later") from exc
        self._code_failures.reset(email)

    async def register(
        self, *, email: str, password: str, captcha: str | None, username: str | None
    ) -> tuple[str, str]:
        """Creates the account; returns (token, username)."""
        email = normalize_email(email)
        if username is not None:
            username = username.strip()
            if not USERNAME_RE.match(username):
                raise InvalidParams("username must be 3-64 letters, digits, '.', '-' or '_'")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise InvalidParams(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters long")
        if self._mailer is not None and not (captcha or "").strip():
            raise InvalidParams("captcha is required: request a code with POST /user/captcha first")
        password_hash = await self._hasher.hash(password)
        async with self._sessions.begin() as db:
            # The code first: without one, nobody learns whether an address is registered, and a
            # used code stays used. Any error below rolls the transaction back, code included.
            if self._mailer is not None:
                if self._code_failures.exceeded(email):
                    raise WrongCode("too many wrong codes for this address: request a new code")
                ok = await codes.consume_code(
                    db, email=email, code_hash=_code_hash(email, (captcha or "").strip()), now=utcnow()
                )
                if not ok:
                    self._code_failures.hit(email)
                    raise WrongCode()
            if await users.login_taken(db, username=username, email=email):
                raise UserExists("a user with this e-mail address or username already exists")
            name = username or await self._free_account_number(db)
            try:
                user = await users.add_user(db, username=name, email=email, password_hash=password_hash)
            except IntegrityError as exc:  # lost a race with a concurrent registration
                raise UserExists("a user with this e-mail address or username already exists") from exc
        return self._tokens.issue(user.id, user.username), user.username

    async def _free_account_number(self, db: AsyncSession) -> str:
        # The seed app mailed an 11-digit account number as the username; keep that habit.
        while True:
            candidate = str(secrets.randbelow(9 * 10**10) + 10**10)
            if not await users.login_taken(db, username=candidate):
                return candidate

    async def login(self, login: str, password: str, client: str) -> str:
        """A token for the user named (or e-mailed) `login`; wrong name and wrong password look alike."""
        login = login.strip()
        if "@" in login:
            login = login.lower()  # addresses are stored lower-case
        key = f"{client}\0{login.lower()}"
        if self._login_failures.exceeded(key):
            raise TooManyRequests(
                "too many failed logins; wait a few minutes", retryAfter=int(self._settings.login_window_s)
            )
        async with self._sessions() as db:
            user = await users.find_by_login(db, login)
        ok = await self._hasher.verify(password, user.password_hash if user else None)
        if user is None or not ok:
            self._login_failures.hit(key)
            raise WrongCredentials()
        self._login_failures.reset(key)
        return self._tokens.issue(user.id, user.username)

    async def require_user(self, user_id: int, username: str) -> None:
        """Refuses a well-signed token whose user is gone (or a database recreated under a kept secret)."""
        if (user_id, username) in self._known_users:
            return  # users are never deleted, so one look per process is enough
        async with self._sessions() as db:
            if not await users.exists(db, user_id=user_id, username=username):
                raise InvalidToken("the token's user does not exist: log in again")
        self._known_users.add((user_id, username))

    async def add_user(self, *, username: str, password: str, email: str | None) -> None:
        """For the command line: no verification code."""
        email = check_new_user(username, password, email)
        password_hash = await self._hasher.hash(password)
        async with self._sessions.begin() as db:
            if await users.login_taken(db, username=username, email=email):
                raise UserExists(f"user {username} (or that e-mail address) already exists")
            await users.add_user(db, username=username, email=email, password_hash=password_hash)
