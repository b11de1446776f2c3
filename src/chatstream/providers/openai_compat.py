"""OpenAI-compatible chat completions (OpenAI, DeepSeek, Qwen DashScope, vLLM, llama.cpp, LM Studio).

Hand-written rather than the openai SDK: on the per-token path the SDK (httpx stack plus a
pydantic object per chunk) cost 2-3x the whole relay (shared/design/ECOSYSTEM.md). Here a
chunk is one readline, one orjson.loads and three dict lookups.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

import aiohttp
import orjson

from chatstream.providers._http import BROKEN, HttpPool, broke_off, refused, unreachable
from chatstream.providers.base import ChatMessage, ProviderError, ProviderStream, Usage


class OpenAICompatProvider:
    is_local = False

    def __init__(self, *, base_url: str, model: str, api_key: str | None, read_timeout: float) -> None:
        self._url = base_url.rstrip("/") + "/chat/completions"
        self._model = model
        self._headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._pool = HttpPool(read_timeout)
        self._what = f"the model server at {base_url}"

    async def open(self, messages: list[ChatMessage]) -> ProviderStream:
        body = orjson.dumps(
            {
                "model": self._model,
                "messages": messages,
                "stream": True,
                "stream_options": {"include_usage": True},
            }
        )
        try:
            response = await self._pool.session.post(self._url, data=body, headers=self._headers)
        except BROKEN as exc:
            raise unreachable(self._what, exc) from exc
        if response.status != 200:
            raise await refused(response, self._what)
        return self._read(response)

    async def _read(self, response: aiohttp.ClientResponse) -> AsyncGenerator[str | Usage, None]:
        finished = False
        try:
            async for line in response.content:
                if not line.startswith(b"data:"):
                    continue  # blank separators, comments, event: lines
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    # Read on to the end of the body: only a fully read response returns its
                    # connection to the pool (a new TCP connection per answer costs more).
                    finished = True
                    continue
                chunk = orjson.loads(payload)
                if "error" in chunk:
                    raise ProviderError(f"{self._what} reported: {chunk['error']}"[:400])
                choices = chunk.get("choices")
                if choices:
                    choice = choices[0]
                    content = (choice.get("delta") or {}).get("content")
                    if content:
                        yield content
                    if choice.get("finish_reason"):
                        finished = True
                usage = chunk.get("usage")
                if usage:
                    yield Usage(usage.get("prompt_tokens"), usage.get("completion_tokens"))
        except BROKEN as exc:
            response.close()
            raise broke_off(self._what) from exc
        except orjson.JSONDecodeError as exc:
            response.close()
            raise ProviderError(f"{self._what} sent a chunk that is not JSON") from exc
        finally:
            # Closing (not releasing) a response mid-answer drops the connection, which is
            # how the upstream learns to stop generating.
            if finished:
                response.release()
            else:
                response.close()
        if not finished:
            raise broke_off(self._what)

    async def close(self) -> None:
        await self._pool.close()
