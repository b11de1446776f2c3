"""Accounts end to end: registration, login, stored hashes, tokens, login throttling, the JWT secret."""

from __future__ import annotations

import itertools
import os
import re
import sqlite3
import stat
import time
import warnings
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from tests.conftest import server_env
from tests.support.envelope import assert_error
from tests.support.server import ServerProcess
from tests.support.upstream import StandInUpstream

PASSWORD = "correct horse battery"
SECRET = "s3cret-for-tests-" + "x" * 23  # 40 characters, above the 32 the server requires
assert len(SECRET) == 40

_serial = itertools.count(1)
_client_ips = itertools.count(2)


def unique(prefix: str = "u") -> str:
    return f"{prefix}{next(_serial)}p{os.getpid()}"


def call(
    server: ServerProcess,
    method: str,
    path: str,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    client_ip: str | None = None,
) -> httpx.Response:
    """One request; `client_ip` picks the loopback address it comes from (a distinct client)."""
    transport = httpx.HTTPTransport(local_address=client_ip) if client_ip else None
    with httpx.Client(base_url=server.api, timeout=30, transport=transport) as http:
        return http.request(method, path, json=body, headers=headers)


def new_client_ip() -> str:
    """A loopback address no other test uses: the server sees a client of its own."""
    n = next(_client_ips)
    return f"127.0.{n // 250}.{n % 250 + 2}"


def register(server: ServerProcess, **body: Any) -> httpx.Response:
    return call(server, "POST", "/user/register", body)


def login(
    server: ServerProcess, username: str, password: str, client_ip: str | None = None
) -> httpx.Response:
    return call(
        server, "POST", "/user/login", {"username": username, "password": password}, client_ip=client_ip
    )


def sessions(server: ServerProcess, token: str) -> httpx.Response:
    return call(server, "GET", "/AI/chat/sessions", headers={"Authorization": f"Bearer {token}"})


def new_user(server: ServerProcess, password: str = PASSWORD) -> tuple[str, str, str]:
    """Registers a fresh user; returns (username, email, token)."""
    name = unique()
    email = f"{name}@example.com"
    response = register(server, email=email, password=password, username=name)
    assert response.status_code == 200, response.text
    return name, email, response.json()["token"]


def assert_token_works(server: ServerProcess, token: str) -> None:
    response = sessions(server, token)
    assert response.status_code == 200, response.text
    assert response.json()["status_code"] == 1000
    assert isinstance(response.json()["sessions"], list)


def stored_user(server: ServerProcess, username: str) -> dict[str, Any] | None:
    """The user's row, read straight from the server's SQLite file (read-only)."""
    db = server.data_dir / "chatstream.db"
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as connection:
        connection.row_factory = sqlite3.Row
        row = connection.execute("SELECT * FROM user_account WHERE username = ?", (username,)).fetchone()
        return dict(row) if row is not None else None


# --- registration and login on the shared server (verification off) ---------------------------


def test_register_answers_a_working_token_and_the_username(server: ServerProcess) -> None:
    name = unique()
    response = register(server, email=f"{name}@example.com", password=PASSWORD, username=name)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status_code"] == 1000 and body["status_msg"] == "success"
    assert body["username"] == name
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert claims["name"] == name and claims["sub"].isdigit()
    assert claims["exp"] > claims["iat"] >= int(time.time()) - 60
    listed = sessions(server, body["token"])
    assert listed.status_code == 200, listed.text
    assert listed.json()["sessions"] == []


def test_register_without_username_generates_an_account_number(server: ServerProcess) -> None:
    email = f"{unique('anon')}@example.com"
    response = register(server, email=email, password=PASSWORD)
    assert response.status_code == 200, response.text
    username = response.json()["username"]
    assert re.fullmatch(r"[1-9]\d{10}", username), username
    assert_token_works(server, response.json()["token"])
    by_number = login(server, username, PASSWORD)
    assert by_number.status_code == 200, by_number.text
    assert_token_works(server, by_number.json()["token"])
    # A second one gets a different number.
    other = register(server, email=f"{unique('anon')}@example.com", password=PASSWORD)
    assert other.status_code == 200, other.text
    assert other.json()["username"] != username


def test_register_with_a_taken_email_is_409_and_the_first_account_is_untouched(
    server: ServerProcess,
) -> None:
    name, email, _ = new_user(server)
    for taken in (email, email.upper()):
        response = register(server, email=taken, password="another password", username=unique())
        assert "exists" in assert_error(response, 409, 2002)
    assert login(server, name, PASSWORD).status_code == 200
    assert_error(login(server, email, "another password"), 401, 2004)


def test_register_with_a_taken_username_is_409_and_the_first_account_is_untouched(
    server: ServerProcess,
) -> None:
    name, _, _ = new_user(server)
    other_email = f"{unique('other')}@example.com"
    response = register(server, email=other_email, password="another password", username=name)
    assert_error(response, 409, 2002)
    assert login(server, name, PASSWORD).status_code == 200
    assert_error(login(server, name, "another password"), 401, 2004)
    # The refused registration created nothing under the other address either.
    assert_error(login(server, other_email, "another password"), 401, 2004)


@pytest.mark.parametrize("how", ["username", "email", "EMAIL", "padded"])
def test_login_by_username_or_email(server: ServerProcess, how: str) -> None:
    name, email, _ = new_user(server)
    given = {"username": name, "email": email, "EMAIL": email.upper(), "padded": f"  {email}  "}[how]
    response = login(server, given, PASSWORD)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status_code"] == 1000
    assert jwt.decode(body["token"], options={"verify_signature": False})["name"] == name
    assert_token_works(server, body["token"])


def test_login_also_answers_under_the_seed_prefix(server: ServerProcess) -> None:
    name, _, _ = new_user(server)
    with httpx.Client(base_url=server.url, timeout=30) as http:
        response = http.post("/api/user/login", json={"username": name, "password": PASSWORD})
    assert response.status_code == 200, response.text
    assert_token_works(server, response.json()["token"])


def test_wrong_password_and_unknown_user_look_the_same(server: ServerProcess) -> None:
    name, _, _ = new_user(server)
    wrong = login(server, name, PASSWORD + "!")
    unknown = login(server, unique("nobody"), PASSWORD)
    assert assert_error(wrong, 401, 2004) == assert_error(unknown, 401, 2004)
    assert wrong.headers["www-authenticate"] == "Bearer"
    assert "token" not in wrong.json() and "token" not in unknown.json()


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": "two@@example.com"}, "email"),
        ({"email": "spaces in@example.com"}, "email"),
        ({"email": ""}, "email"),
        ({"password": "seven77"}, "password"),
        ({"password": "x" * 257}, "password"),
        ({"username": "ab"}, "username"),
        ({"username": "has space"}, "username"),
        ({"username": "slash/name"}, "username"),
        ({"username": "at@sign"}, "username"),
        ({"email": None}, "email"),
        ({"password": None}, "password"),
    ],
)
def test_invalid_registration_is_422_naming_the_field(
    server: ServerProcess, change: dict[str, Any], field: str
) -> None:
    name = unique()
    body = {"email": f"{name}@example.com", "password": PASSWORD, "username": name} | change
    body = {k: v for k, v in body.items() if v is not None}  # None: leave the field out
    msg = assert_error(register(server, **body), 422, 2001)
    assert field in msg.lower(), msg
    # Nothing was created.
    assert_error(login(server, name, PASSWORD), 401, 2004)


def test_password_length_bounds_are_inclusive(server: ServerProcess) -> None:
    for password in ("8chars!!", "y" * 256):
        name = unique()
        response = register(server, email=f"{name}@example.com", password=password, username=name)
        assert response.status_code == 200, response.text
        assert login(server, name, password).status_code == 200


@pytest.mark.parametrize("body", [{"username": "someone"}, {"password": PASSWORD}, {}, [], "text"])
def test_invalid_login_body_is_422(server: ServerProcess, body: Any) -> None:
    assert_error(call(server, "POST", "/user/login", body), 422, 2001)


def test_passwords_are_stored_argon2id_hashed(server: ServerProcess) -> None:
    name, email, _ = new_user(server)
    row = stored_user(server, name)
    assert row is not None
    assert row["email"] == email
    assert row["password_hash"].startswith("$argon2id$")
    assert PASSWORD not in row["password_hash"]
    # Salted: the same password gives another hash for another user.
    other, _, _ = new_user(server)
    other_row = stored_user(server, other)
    assert other_row is not None and other_row["password_hash"] != row["password_hash"]


def test_email_is_stored_lower_case(server: ServerProcess) -> None:
    name = unique()
    response = register(server, email=f"  {name.upper()}@Example.COM ", password=PASSWORD, username=name)
    assert response.status_code == 200, response.text
    row = stored_user(server, name)
    assert row is not None and row["email"] == f"{name.lower()}@example.com"


# --- tokens, on a server with a known secret ---------------------------------------------------


@pytest.fixture(scope="module")
def keyed_server(
    tmp_path_factory: pytest.TempPathFactory, upstream: StandInUpstream
) -> Iterator[ServerProcess]:
    """Known JWT secret; three failed logins per window."""
    env = server_env(upstream, CHATSTREAM_JWT_SECRET=SECRET, CHATSTREAM_LOGIN_FAILURES_PER_WINDOW="3")
    proc = ServerProcess(tmp_path_factory.mktemp("keyed"), env).start()
    yield proc
    proc.stop()


def forge(user_id: Any, *, secret: str = SECRET, ttl: int = 3600, **extra: Any) -> str:
    now = int(time.time())
    claims = {"sub": user_id, "name": "forged", "iat": now, "exp": now + ttl, **extra}
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, secret, algorithm="HS256")


def test_tokens_are_signed_with_the_configured_secret(keyed_server: ServerProcess) -> None:
    name, _, token = new_user(keyed_server)
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])  # raises if signed with anything else
    assert claims["name"] == name
    assert claims["exp"] - claims["iat"] == 7 * 24 * 3600
    assert not (keyed_server.data_dir / "jwt-secret").exists()
    # A token made with the same secret and claims is as good as the server's own...
    assert_token_works(keyed_server, forge(claims["sub"], name=name))
    # ...but not one naming another user than the id's (a database recreated under a kept secret).
    assert_error(sessions(keyed_server, forge(claims["sub"], name="someone-else")), 401, 2006)
    # The scheme is case-insensitive (RFC 9110).
    response = call(keyed_server, "GET", "/AI/chat/sessions", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200, response.text


def _hs512(claims: dict[str, Any]) -> str:
    """Right secret, wrong algorithm (PyJWT warns that the key is short for SHA-512)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", jwt.warnings.InsecureKeyLengthWarning)
        return jwt.encode(claims, SECRET, algorithm="HS512")


def _bad_authorizations() -> dict[str, str | None]:
    other_secret = "another-secret-" + "y" * 30
    return {
        "missing": None,
        "empty": "",
        "bearer-only": "Bearer",
        "garbage": "Bearer garbage",
        "three-dots": "Bearer a.b.c",
        "basic": "Basic dXNlcjpwYXNz",
        "other-secret": "Bearer " + forge("1", secret=other_secret),
        "expired": "Bearer " + forge("1", ttl=-120),
        "non-numeric-sub": "Bearer " + forge("abc"),
        "integer-sub": "Bearer " + forge(1),
        "no-sub": "Bearer " + forge(None),
        "no-exp": "Bearer " + jwt.encode({"sub": "1", "name": "x"}, SECRET, algorithm="HS256"),
        "alg-none": "Bearer "
        + jwt.encode({"sub": "1", "exp": int(time.time()) + 60}, None, algorithm="none"),
        "hs512": "Bearer " + _hs512({"sub": "1", "exp": int(time.time()) + 60}),
        "token-no-scheme": forge("1"),
    }


@pytest.mark.parametrize("case", list(_bad_authorizations()))
def test_bad_tokens_are_401_code_2006(keyed_server: ServerProcess, case: str) -> None:
    value = _bad_authorizations()[case]
    headers = {} if value is None else {"Authorization": value}
    for method, path, body in [
        ("GET", "/AI/chat/sessions", None),
        ("POST", "/AI/chat/history", {"sessionId": "x"}),
        ("POST", "/AI/chat/send-stream-new-session", {"question": "/echo hi", "modelType": "1"}),
    ]:
        response = call(keyed_server, method, path, body, headers=headers)
        msg = assert_error(response, 401, 2006)
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.headers["content-type"].startswith("application/json")
        if case == "expired":
            assert "expired" in msg
        if case == "missing":
            assert "Authorization" in msg


# --- login throttling (3 failures per window on keyed_server) ----------------------------------


def test_fourth_wrong_login_is_throttled_even_with_the_right_password(keyed_server: ServerProcess) -> None:
    name, _, _ = new_user(keyed_server)
    ip = new_client_ip()
    for _ in range(3):
        assert_error(login(keyed_server, name, "wrong password", ip), 401, 2004)
    assert_error(login(keyed_server, name, "wrong password", ip), 429, 4029)
    msg = assert_error(login(keyed_server, name, PASSWORD, ip), 429, 4029)
    assert "too many" in msg.lower()
    # Throttled per client and name: the same name from another client, and another name from
    # this client, still get in.
    assert login(keyed_server, name, PASSWORD, new_client_ip()).status_code == 200
    other, _, _ = new_user(keyed_server)
    assert login(keyed_server, other, PASSWORD, ip).status_code == 200


def test_throttling_counts_email_logins_case_insensitively(keyed_server: ServerProcess) -> None:
    _, email, _ = new_user(keyed_server)
    ip = new_client_ip()
    for given in (email, email.upper(), email.title()):
        assert_error(login(keyed_server, given, "wrong password", ip), 401, 2004)
    assert_error(login(keyed_server, email, PASSWORD, ip), 429, 4029)


def test_unknown_names_are_throttled_too(keyed_server: ServerProcess) -> None:
    ip = new_client_ip()
    ghost = unique("ghost")
    for _ in range(3):
        assert_error(login(keyed_server, ghost, PASSWORD, ip), 401, 2004)
    assert_error(login(keyed_server, ghost, PASSWORD, ip), 429, 4029)


def test_a_successful_login_resets_the_failure_count(keyed_server: ServerProcess) -> None:
    name, _, _ = new_user(keyed_server)
    ip = new_client_ip()
    for _ in range(2):
        assert_error(login(keyed_server, name, "wrong password", ip), 401, 2004)
    assert login(keyed_server, name, PASSWORD, ip).status_code == 200
    for _ in range(2):
        assert_error(login(keyed_server, name, "wrong password", ip), 401, 2004)
    assert login(keyed_server, name, PASSWORD, ip).status_code == 200


# --- the generated secret ----------------------------------------------------------------------


def test_generated_secret_is_kept_in_the_data_dir_and_tokens_survive_a_restart(
    tmp_path: Path, upstream: StandInUpstream
) -> None:
    proc = ServerProcess(tmp_path / "gen", server_env(upstream)).start()
    try:
        secret_file = proc.data_dir / "jwt-secret"
        assert secret_file.exists()
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        secret = secret_file.read_text().strip()
        assert len(secret) >= 32
        name, _, token = new_user(proc)
        assert jwt.decode(token, secret, algorithms=["HS256"])["name"] == name
        proc.restart()
        assert secret_file.read_text().strip() == secret
        assert_token_works(proc, token)
        assert login(proc, name, PASSWORD).status_code == 200
    finally:
        proc.stop()


def test_a_signed_token_for_a_user_that_does_not_exist_is_401(keyed_server: ServerProcess) -> None:
    headers = {"Authorization": "Bearer " + forge("987654321")}
    for method, path, body in [
        ("GET", "/AI/chat/sessions", None),
        ("POST", "/AI/chat/send-new-session", {"question": "/echo hi", "modelType": "1"}),
    ]:
        assert_error(call(keyed_server, method, path, body, headers=headers), 401, 2006)


@pytest.mark.parametrize("content", ["", "\n", "too-short-secret\n"])
def test_a_bad_secret_file_stops_the_server_at_start(
    tmp_path: Path, upstream: StandInUpstream, content: str
) -> None:
    data_dir = tmp_path / "bad-secret"
    data_dir.mkdir()
    (data_dir / "jwt-secret").write_text(content)
    proc = ServerProcess(data_dir, server_env(upstream))
    try:
        with pytest.raises(RuntimeError, match="jwt-secret"):
            proc.start()
    finally:
        proc.stop()
