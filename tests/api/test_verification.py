"""E-mail verification codes end to end: console mode (the code in the server log) and real SMTP."""

from __future__ import annotations

import email
import email.message
import email.policy
import itertools
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from tests.conftest import server_env
from tests.support.envelope import assert_error, assert_ok
from tests.support.server import ServerProcess, free_port
from tests.support.upstream import StandInUpstream

PASSWORD = "correct horse battery"
SMTP_FROM = "codes@chatstream.test"

_serial = itertools.count(1)
_client_ips = itertools.count(2)


def unique_email() -> str:
    return f"v{next(_serial)}p{os.getpid()}@example.com"


def new_client_ip() -> str:
    """A loopback address of its own: the server counts codes per client, so each test is one."""
    n = next(_client_ips)
    return f"127.1.{n // 250}.{n % 250 + 2}"


def call(
    server: ServerProcess, method: str, path: str, body: Any = None, *, client_ip: str | None = None
) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=client_ip) if client_ip else None
    with httpx.Client(base_url=server.api, timeout=30, transport=transport) as http:
        return http.request(method, path, json=body)


def ask_code(server: ServerProcess, address: str, client_ip: str) -> httpx.Response:
    return call(server, "POST", "/user/captcha", {"email": address}, client_ip=client_ip)


def register(server: ServerProcess, **body: Any) -> httpx.Response:
    return call(server, "POST", "/user/register", {"password": PASSWORD} | body)


def login(server: ServerProcess, username: str, password: str = PASSWORD) -> httpx.Response:
    return call(server, "POST", "/user/login", {"username": username, "password": password})


def logged_code(server: ServerProcess, address: str, timeout: float = 5.0) -> str:
    """The newest code the console mailer logged for `address`."""
    pattern = re.compile(rf"mail to {re.escape(address)}: [^\n]*?\b(\d{{6}})\b")
    deadline = time.monotonic() + timeout
    while True:
        found = pattern.findall(server.log())
        if found:
            return str(found[-1])
        if time.monotonic() > deadline:
            raise AssertionError(f"no code for {address} in the server log:\n{server.log()[-2000:]}")
        time.sleep(0.05)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def code_rows(server: ServerProcess, address: str) -> list[dict[str, Any]]:
    db = server.data_dir / "chatstream.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        connection.row_factory = sqlite3.Row
        rows = connection.execute("SELECT * FROM verification_code WHERE email = ?", (address,))
        return [dict(row) for row in rows]


def start_server(
    tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream, name: str, **env: str
) -> ServerProcess:
    return ServerProcess(tmp_path_factory.mktemp(name), server_env(upstream, **env)).start()


# --- console mode ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory,
        upstream,
        "console",
        CHATSTREAM_EMAIL_VERIFICATION="console",
        CHATSTREAM_CODE_RESEND_INTERVAL_S="60",
        CHATSTREAM_CODES_PER_CLIENT_PER_HOUR="2",
    )
    yield proc
    proc.stop()


def test_config_reports_the_verification_mode(console: ServerProcess, server: ServerProcess) -> None:
    assert assert_ok(call(console, "GET", "/config"))["emailVerification"] == "console"
    assert assert_ok(call(server, "GET", "/config"))["emailVerification"] == "off"


def test_code_is_logged_and_registers_once(console: ServerProcess) -> None:
    address, ip = unique_email(), new_client_ip()
    body = assert_ok(ask_code(console, address, ip))
    assert set(body) == {"status_code", "status_msg"}  # the code never travels in the answer
    code = logged_code(console, address)
    # Stored hashed, not in clear.
    rows = code_rows(console, address)
    assert len(rows) == 1 and code not in rows[0]["code_hash"] and rows[0]["used_at"] is None

    answer = assert_ok(register(console, email=address, captcha=code, username=f"vu{next(_serial)}"))
    assert login(console, answer["username"]).status_code == 200
    assert login(console, address).status_code == 200
    assert code_rows(console, address)[0]["used_at"] is not None

    # Single use: the same code does not register the address again (nor reveal that it is taken).
    again = register(console, email=address, captcha=code, username=f"vu{next(_serial)}")
    assert_error(again, 400, 2008)


def test_register_needs_a_captcha(console: ServerProcess) -> None:
    address = unique_email()
    for body in ({}, {"captcha": ""}, {"captcha": "   "}, {"captcha": None}):
        msg = assert_error(register(console, email=address, **body), 422, 2001)
        assert "captcha" in msg
    assert_error(login(console, address), 401, 2004)


def test_wrong_code_is_2008_creates_nothing_and_spares_the_right_code(console: ServerProcess) -> None:
    address, ip = unique_email(), new_client_ip()
    assert_ok(ask_code(console, address, ip))
    code = logged_code(console, address)
    for wrong in (other_code(code), "abcdef", code[:5], code + "0"):
        msg = assert_error(register(console, email=address, captcha=wrong), 400, 2008)
        assert "code" in msg
    assert_error(login(console, address), 401, 2004)
    assert code_rows(console, address)[0]["used_at"] is None
    # A code is bound to its address.
    assert_error(register(console, email=unique_email(), captcha=code), 400, 2008)
    # The right code, padded and with the address in another case, still works.
    assert_ok(register(console, email=address.upper(), captcha=f" {code} "))
    assert login(console, address).status_code == 200


def test_a_refused_registration_does_not_use_up_the_code(console: ServerProcess) -> None:
    taken = f"taken{next(_serial)}"
    first, ip = unique_email(), new_client_ip()
    assert_ok(ask_code(console, first, ip))
    assert_ok(register(console, email=first, captcha=logged_code(console, first), username=taken))

    second = unique_email()
    assert_ok(ask_code(console, second, ip))
    code = logged_code(console, second)
    assert_error(register(console, email=second, captcha=code, username=taken), 409, 2002)
    assert_error(register(console, email=second, captcha=code, password="short"), 422, 2001)
    assert_ok(register(console, email=second, captcha=code, username=f"free{next(_serial)}"))


def test_a_registered_address_gets_a_code_and_the_code_answers_409(console: ServerProcess) -> None:
    """Asking a code does not tell whether the address is registered; only its owner learns that."""
    address, ip = unique_email(), new_client_ip()
    assert_ok(ask_code(console, address, ip))
    assert_ok(register(console, email=address, captcha=logged_code(console, address)))
    # Without a valid code, an attacker probing the address only ever sees 2008.
    assert_error(register(console, email=address, captcha="000000"), 400, 2008)
    assert_error(register(console, email=address, captcha="999999"), 400, 2008)


def test_asking_again_too_soon_is_429_saying_when(console: ServerProcess) -> None:
    address, ip = unique_email(), new_client_ip()
    assert_ok(ask_code(console, address, ip))
    first = logged_code(console, address)
    for again in (address, address.upper()):
        # From another client too: the interval is per address.
        msg = assert_error(ask_code(console, again, new_client_ip()), 429, 4029)
        match = re.search(r"ask again in (\d+) s", msg)
        assert match, msg
        assert 0 < int(match.group(1)) <= 60
    assert len(code_rows(console, address)) == 1
    # The refused requests sent nothing: the first code is still the one to use.
    assert logged_code(console, address) == first
    assert_ok(register(console, email=address, captcha=first))


def test_codes_per_client_are_capped(console: ServerProcess) -> None:
    ip = new_client_ip()
    assert_ok(ask_code(console, unique_email(), ip))
    assert_ok(ask_code(console, unique_email(), ip))
    third = unique_email()
    msg = assert_error(ask_code(console, third, ip), 429, 4029)
    assert "too many" in msg
    assert code_rows(console, third) == []
    # Another client is not affected.
    assert_ok(ask_code(console, third, new_client_ip()))


@pytest.mark.parametrize("address", ["not-an-address", "a@b", "", "x" * 300 + "@example.com"])
def test_captcha_for_an_invalid_address_is_422(console: ServerProcess, address: str) -> None:
    msg = assert_error(ask_code(console, address, new_client_ip()), 422, 2001)
    assert "email" in msg


@pytest.fixture(scope="module")
def short_lived(
    tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream
) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory,
        upstream,
        "short-lived",
        CHATSTREAM_EMAIL_VERIFICATION="console",
        CHATSTREAM_CODE_TTL_S="2",
    )
    yield proc
    proc.stop()


def test_an_expired_code_is_2008(short_lived: ServerProcess) -> None:
    fresh, stale, ip = unique_email(), unique_email(), new_client_ip()
    asked = time.monotonic()
    assert_ok(ask_code(short_lived, fresh, ip))
    assert_ok(ask_code(short_lived, stale, ip))
    stale_code = logged_code(short_lived, stale)
    assert_ok(register(short_lived, email=fresh, captcha=logged_code(short_lived, fresh)))
    time.sleep(max(0.0, asked + 2.5 - time.monotonic()))
    assert_error(register(short_lived, email=stale, captcha=stale_code), 400, 2008)
    assert_error(login(short_lived, stale), 401, 2004)


# --- SMTP mode, against a real SMTP server -----------------------------------------------------


class Mailbox:
    """An aiosmtpd handler that keeps every message it is given."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._arrived = threading.Condition()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, email.message.EmailMessage)
        with self._arrived:
            self.messages.append(message)
            self.envelopes.append((str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos]))
            self._arrived.notify_all()
        return "250 OK"

    def wait_for(self, address: str, timeout: float = 10.0) -> email.message.EmailMessage:
        with self._arrived:
            found = self._arrived.wait_for(
                lambda: any(m["To"] == address for m in self.messages), timeout=timeout
            )
            assert found, f"no mail to {address}; got {[m['To'] for m in self.messages]}"
            return [m for m in self.messages if m["To"] == address][-1]


@contextmanager
def smtp_server(port: int) -> Iterator[Mailbox]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


def mailed_code(message: email.message.EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.findall(r"\b\d{6}\b", body.get_content())
    assert len(found) == 1, body.get_content()
    return str(found[0])


@pytest.fixture(scope="module")
def smtp_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def smtp_mode(
    tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream, smtp_port: int
) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory,
        upstream,
        "smtp",
        CHATSTREAM_EMAIL_VERIFICATION="smtp",
        CHATSTREAM_SMTP_HOST="127.0.0.1",
        CHATSTREAM_SMTP_PORT=str(smtp_port),
        CHATSTREAM_SMTP_FROM=SMTP_FROM,
    )
    yield proc
    proc.stop()


def test_smtp_code_arrives_by_mail_and_registers(smtp_mode: ServerProcess, smtp_port: int) -> None:
    assert assert_ok(call(smtp_mode, "GET", "/config"))["emailVerification"] == "smtp"
    address = unique_email()
    with smtp_server(smtp_port) as mailbox:
        assert_ok(ask_code(smtp_mode, address, new_client_ip()))
        message = mailbox.wait_for(address)
    assert message["From"] == SMTP_FROM
    assert "verification code" in message["Subject"]
    assert mailbox.envelopes[-1] == (SMTP_FROM, [address])
    code = mailed_code(message)
    assert "mail to" not in smtp_mode.log()  # SMTP mode does not also write codes to the log
    answer = assert_ok(register(smtp_mode, email=address, captcha=code))
    assert login(smtp_mode, answer["username"]).status_code == 200
    assert_error(register(smtp_mode, email=address, captcha=code), 400, 2008)


def test_unreachable_smtp_server_is_503_and_keeps_no_code(smtp_mode: ServerProcess, smtp_port: int) -> None:
    address, ip = unique_email(), new_client_ip()
    # Nothing listens on the port yet.
    msg = assert_error(ask_code(smtp_mode, address, ip), 503, 4001)
    assert "could not be sent" in msg
    assert code_rows(smtp_mode, address) == []
    assert f"sending a verification code to {address} failed" in smtp_mode.log()
    # Once mail works again, asking right away is not throttled, and the code registers.
    with smtp_server(smtp_port) as mailbox:
        assert_ok(ask_code(smtp_mode, address, ip))
        code = mailed_code(mailbox.wait_for(address))
    assert_ok(register(smtp_mode, email=address, captcha=code))


# --- guessing ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def resendable(
    tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream
) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory,
        upstream,
        "resendable",
        CHATSTREAM_EMAIL_VERIFICATION="console",
        CHATSTREAM_CODE_RESEND_INTERVAL_S="0",
    )
    yield proc
    proc.stop()


def test_five_wrong_codes_retire_the_right_one_until_a_new_code(resendable: ServerProcess) -> None:
    address, ip = unique_email(), new_client_ip()
    assert_ok(ask_code(resendable, address, ip))
    code = logged_code(resendable, address)
    for n in range(5):
        assert_error(
            register(resendable, email=address, captcha=f"{(int(code) + 1 + n) % 1_000_000:06d}"), 400, 2008
        )
    msg = assert_error(register(resendable, email=address, captcha=code), 400, 2008)
    assert "new code" in msg
    assert_error(login(resendable, address), 401, 2004)
    assert_ok(ask_code(resendable, address, ip))
    assert_ok(register(resendable, email=address, captcha=logged_code(resendable, address)))


def test_a_new_code_retires_the_older_one(resendable: ServerProcess) -> None:
    address, ip = unique_email(), new_client_ip()
    assert_ok(ask_code(resendable, address, ip))
    first = logged_code(resendable, address)
    assert_ok(ask_code(resendable, address, ip))
    second = logged_code(resendable, address)
    if first != second:  # one in a million they are equal
        assert_error(register(resendable, email=address, captcha=first), 400, 2008)
    assert_ok(register(resendable, email=address, captcha=second))


def test_throttled_answers_carry_retry_after(console: ServerProcess) -> None:
    address, ip = unique_email(), new_client_ip()
    assert_ok(ask_code(console, address, ip))
    response = ask_code(console, address, ip)
    assert response.status_code == 429
    assert 0 < int(response.headers["retry-after"]) <= 60
