"""Ollama's native chat API (`POST /api/chat`, newline-delimited JSON)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp
import orjson

from chatstream.providers._http import BROKEN, HttpPool, broke_off, refused, unreachable
from chatstream.providers.base import ChatMessage, ProviderError, ProviderStream, Usage


class OllamaProvider:
    is_local = False

    def __init__(self, *, base_url: str, model: str, read_timeout: float) -> None:
        self._url = base_url.rstrip("/") + "/api/chat"
        self._model = model
        self._pool = HttpPool(read_timeout)
        self._what = f"Ollama at {base_url}"

    async def open(self, messages: list[ChatMessage]) -> ProviderStream:
        body = orjson.dumps({"model": self._model, "messages": messages, "stream": True})
        try:
            response = await self._pool.session.post(
                self._url, data=body, headers={"Content-Type": "application/json"}
            )
        except BROKEN as exc:
            raise unreachable(self._what, exc) from exc
        if response.status != 200:
            raise await refused(response, self._what)
        return self._read(response)

    async def _read(self, response: aiohttp.ClientResponse) -> AsyncGenerator[str | Usage, None]:
        finished = False
        try:
            async for line in response.content:
                if not line.strip():
                    continue
                chunk = orjson.loads(line)
                if "error" in chunk:
                    raise ProviderError(f"{self._what} reported: {chunk['error']}"[:400])
                content = (chunk.get("message") or {}).get("content")
                if content:
                    yield content
                if chunk.get("done"):
                    finished = True
                    yield Usage(chunk.get("prompt_eval_count"), chunk.get("eval_count"))
                    # and read on to the end of the body, so the connection goes back to the pool
        except BROKEN as exc:
            raise broke_off(self._what) from exc
        except orjson.JSONDecodeError as exc:
            raise ProviderError(f"{self._what} sent a line that is not JSON") from exc
        finally:
            if finished:
                response.release()
            else:
                response.close()
        if not finished:
            raise broke_off(self._what)

    async def close(self) -> None:
        await self._pool.close()
