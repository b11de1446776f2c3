"""What the HTTP providers share: one aiohttp pool per provider and error wording."""

from __future__ import annotations

import asyncio

import aiohttp
import orjson

from chatstream.providers.base import ProviderError

# Failures that mean the upstream connection broke while an answer was being read.
BROKEN = (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError)


class HttpPool:
    """A lazily created aiohttp session: it must be born inside the running event loop."""

    def __init__(self, read_timeout: float) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=read_timeout)

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            # limit=0: one connection per open answer; the upstream decides what it can take.
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, json_serialize=lambda o: orjson.dumps(o).decode()
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


async def refused(response: aiohttp.ClientResponse, what: str) -> ProviderError:
    """A ProviderError for a non-200 answer, carrying the upstream's own message when it has one."""
    detail = ""
    try:
        body = await response.read()
        data = orjson.loads(body)
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            detail = str(error.get("message", ""))
        elif error:
            detail = str(error)
    except (orjson.JSONDecodeError, *BROKEN):
        pass
    response.release()
    message = f"{what} answered HTTP {response.status}" + (f": {detail[:300]}" if detail else "")
    return ProviderError(message, status=response.status, retry_after=response.headers.get("Retry-After"))


def unreachable(what: str, exc: BaseException) -> ProviderError:
    return ProviderError(f"cannot reach {what}: {type(exc).__name__}")


def broke_off(what: str) -> ProviderError:
    return ProviderError(f"{what} broke off the answer")
