"""Scripted stand-in for OpenAI-compatible and Ollama model servers, spoken over real HTTP.

Runs an aiohttp server on 127.0.0.1 in a daemon thread, so sync and async tests can both use it.

POST /v1/embeddings answers `hashed_embedding(text)` for each input (deterministic unit vectors,
EMBEDDING_DIM long unless the body asks for "dimensions"), listed in reverse order so that clients
must sort by "index". A command anywhere in an input (as a word of its own) changes the whole
answer: "/status N" -> HTTP N with an OpenAI error body, "/fail" -> HTTP 500, "/stall S" -> answers
after S seconds, "/garbage" -> HTTP 200 with a body that is not JSON, "/drop" -> the connection is
closed without an answer.
Those requests are recorded in `embedding_requests` (not `requests`, which counts chat calls).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from aiohttp import web

DEFAULT_MODEL = "upstream-sim"
EMBEDDING_DIM = 64

# Commands may stand anywhere in an input (a document's chunk starts with its section path).
_EMBEDDING_COMMAND = re.compile(r"(?<!\S)/(status|stall|fail|garbage|drop)(?: (\d+(?:\.\d+)?))?(?!\S)")
# A word is a run of latin letters/digits, or one CJK character (CJK text has no spaces).
_EMBEDDING_WORDS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|[^\W_]+")


def hashed_embedding(text: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """A unit-length bag of words: each lowercased word adds 1 to bucket crc32(word) % dim.

    Texts that share words come out close (cosine > 0), texts with none in common near 0: enough
    for retrieval tests, and the same on every run and machine (crc32, unlike hash(), is not salted).
    """
    counts = [0.0] * dim
    for word in _EMBEDDING_WORDS.findall(text.lower()) or [""]:
        counts[zlib.crc32(word.encode()) % dim] += 1.0
    norm = math.sqrt(sum(c * c for c in counts))
    return [c / norm for c in counts]


@dataclass
class _Plan:
    """What one chat request is answered with, decided by its last user message."""

    pieces: list[str] = field(default_factory=list)
    pauses: list[float] = field(default_factory=list)  # seconds to wait before each piece
    stall: float = 0.0
    fail: bool = False  # drop the connection after the pieces instead of finishing
    status: int | None = None


class _BadRequest(Exception):
    pass


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and "text" in part
        )
    return "" if content is None else json.dumps(content, ensure_ascii=False)


def _last_user(messages: list[Any]) -> str:
    for msg in reversed(messages):
        if isinstance(msg, dict) and msg.get("role") == "user":
            return _text_of(msg.get("content"))
    return ""


def _prompt_tokens(messages: list[Any]) -> int:
    return sum(len(_text_of(m.get("content"))) for m in messages if isinstance(m, dict)) // 4


def _split_after_spaces(text: str) -> list[str]:
    pieces: list[str] = []
    while text:
        i = text.find(" ")
        if i < 0:
            pieces.append(text)
            break
        pieces.append(text[: i + 1])
        text = text[i + 1 :]
    return pieces


def _command_arg(prompt: str, command: str) -> str | None:
    if prompt == command:
        return ""
    if prompt.startswith(command + " "):
        return prompt[len(command) + 1 :]
    return None


def _plan_for(messages: list[Any], default_tokens: int, delay: float) -> _Plan:
    prompt = _last_user(messages)

    def default_words(n: int) -> list[str]:
        return [f"tok{i} " for i in range(n)]

    try:
        if "/prompt" in prompt:
            dumped = json.dumps(messages, ensure_ascii=False)
            pieces = [dumped[i : i + 16] for i in range(0, len(dumped), 16)]
            return _Plan(pieces, [0.0] * len(pieces))
        if (arg := _command_arg(prompt, "/echo")) is not None:
            pieces = _split_after_spaces(arg)
            return _Plan(pieces, [0.0] * len(pieces))
        if (arg := _command_arg(prompt, "/fail")) is not None:
            n = int(arg.strip())
            return _Plan(default_words(n), [delay] * n, fail=True)
        if (arg := _command_arg(prompt, "/status")) is not None:
            return _Plan(status=int(arg.strip()))
        if (arg := _command_arg(prompt, "/stall")) is not None:
            return _Plan(default_words(default_tokens), [delay] * default_tokens, stall=float(arg.strip()))
        if (arg := _command_arg(prompt, "/slow")) is not None:
            count, millis = arg.split()
            n, pause = int(count), float(millis) / 1000
            return _Plan([f"w{i} " for i in range(n)], [0.0] + [pause] * (n - 1) if n else [])
    except ValueError as exc:
        raise _BadRequest(f"bad command arguments in {prompt!r}") from exc
    return _Plan(default_words(default_tokens), [delay] * default_tokens)


def _ollama_time() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def _ndjson(obj: dict[str, Any]) -> bytes:
    return (json.dumps(obj, ensure_ascii=False) + "\n").encode()


def _sse(obj: dict[str, Any] | str) -> bytes:
    data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


class StandInUpstream:
    """A fake model server. Use as a context manager, or call start() and stop()."""

    def __init__(self, *, tokens: int = 5, delay: float = 0.0) -> None:
        self.tokens = tokens
        self.delay = delay
        self.requests: list[dict[str, Any]] = []
        self.embedding_requests: list[dict[str, Any]] = []
        self.open_streams = 0
        self.closed_by_client = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._port: int | None = None
        self._stopping = False

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> StandInUpstream:
        if self._thread is not None:
            return self
        ready = threading.Event()
        failure: list[BaseException] = []
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stopping = False
        thread = threading.Thread(
            target=self._serve, args=(loop, ready, failure), name="stand-in-upstream", daemon=True
        )
        self._thread = thread
        thread.start()
        if not ready.wait(10) or failure:
            self._thread = None
            self._loop = None
            raise RuntimeError("stand-in upstream failed to start") from (failure[0] if failure else None)
        return self

    def stop(self) -> None:
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        self._stopping = True
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        self._thread = None
        self._loop = None
        self._runner = None
        self._port = None

    def __enter__(self) -> StandInUpstream:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(
        self, loop: asyncio.AbstractEventLoop, ready: threading.Event, failure: list[BaseException]
    ) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._open())
        except BaseException as exc:
            failure.append(exc)
            ready.set()
            loop.close()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            if self._runner is not None:
                loop.run_until_complete(self._runner.cleanup())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _open(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai_chat)
        app.router.add_get("/v1/models", self._openai_models)
        app.router.add_post("/v1/embeddings", self._openai_embeddings)
        app.router.add_post("/api/chat", self._ollama_chat)
        app.router.add_get("/api/tags", self._ollama_tags)
        # handler_cancellation makes a client disconnect interrupt a sleeping handler at once;
        # the short shutdown_timeout keeps stop() from waiting on streams that are still open.
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=0.2, access_log=None)
        await runner.setup()
        self._runner = runner
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self._port = runner.addresses[0][1]

    # -- public views ----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("stand-in upstream is not running; call start() first")
        return self._port

    @property
    def ollama_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.ollama_url}/v1"

    def wait_until(self, predicate: Callable[[StandInUpstream], bool], timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.01)
        return predicate(self)

    # -- request handling ------------------------------------------------------------------------------

    async def _read_chat(self, request: web.Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            raise _BadRequest(f"bad json: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            raise _BadRequest("body must be a JSON object with a 'messages' list")
        with self._lock:
            self.requests.append(
                {"path": request.path, "body": body, "authorization": request.headers.get("Authorization")}
            )
        return body

    async def _stream(
        self,
        request: web.Request,
        plan: _Plan,
        content_type: str,
        frame: Callable[[str], bytes],
        opening: bytes,
        closing: Callable[[], bytes],
    ) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": content_type, "Cache-Control": "no-cache"})
        dropping = False
        with self._lock:
            self.open_streams += 1
        try:
            await resp.prepare(request)
            if plan.stall:
                await asyncio.sleep(plan.stall)
            if opening:
                await resp.write(opening)
            for piece, pause in zip(plan.pieces, plan.pauses, strict=True):
                if pause:
                    await asyncio.sleep(pause)
                await resp.write(frame(piece))
            if plan.fail:
                # close() still flushes the chunks already written, then the body just stops mid-way.
                dropping = True
                if request.transport is not None:
                    request.transport.close()
                return resp
            await resp.write(closing())
            await resp.write_eof()
        except ConnectionResetError:
            self._count_client_close(dropping)
        except asyncio.CancelledError:
            self._count_client_close(dropping)
            raise
        finally:
            with self._lock:
                self.open_streams -= 1
        return resp

    def _count_client_close(self, dropping: bool) -> None:
        if not dropping and not self._stopping:
            with self._lock:
                self.closed_by_client += 1

    async def _drop_without_answer(self, request: web.Request, plan: _Plan) -> web.Response:
        await asyncio.sleep(plan.stall + sum(plan.pauses))
        if request.transport is not None:
            request.transport.close()
        return web.Response()

    async def _openai_chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_chat(request)
            max_tokens = body.get("max_tokens") or body.get("max_completion_tokens")
            tokens = max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else self.tokens
            plan = _plan_for(body["messages"], tokens, self.delay)
        except _BadRequest as exc:
            return _openai_error(400, str(exc), "invalid_request_error")
        if plan.status is not None:
            return _openai_error(plan.status, f"upstream answered {plan.status}", "server_error")
        model = body.get("model") or DEFAULT_MODEL
        prompt_tokens = _prompt_tokens(body["messages"])
        completion_id = f"chatcmpl-{time.time_ns():x}"
        created = int(time.time())

        if not body.get("stream"):
            if plan.fail:
                return await self._drop_without_answer(request, plan)
            await asyncio.sleep(plan.stall + sum(plan.pauses))
            n = len(plan.pieces)
            return web.json_response(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": "".join(plan.pieces)},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": {
                        "prompt_tokens": prompt_tokens,
                        "completion_tokens": n,
                        "total_tokens": prompt_tokens + n,
                    },
                }
            )

        def chunk(delta: dict[str, str], finish_reason: str | None = None) -> dict[str, Any]:
            return {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            }

        closing = _sse(chunk({}, "stop"))
        options = body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            n = len(plan.pieces)
            usage = chunk({})
            usage["choices"] = []
            usage["usage"] = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": n,
                "total_tokens": prompt_tokens + n,
            }
            closing += _sse(usage)
        closing += _sse("[DONE]")
        return await self._stream(
            request,
            plan,
            "text/event-stream",
            lambda text: _sse(chunk({"content": text})),
            _sse(chunk({"role": "assistant", "content": ""})),
            lambda: closing,
        )

    async def _ollama_chat(self, request: web.Request) -> web.StreamResponse:
        try:
            body = await self._read_chat(request)
            options = body.get("options")
            num_predict = options.get("num_predict") if isinstance(options, dict) else None
            tokens = num_predict if isinstance(num_predict, int) and num_predict > 0 else self.tokens
            plan = _plan_for(body["messages"], tokens, self.delay)
        except _BadRequest as exc:
            return web.json_response({"error": str(exc)}, status=400)
        if plan.status is not None:
            return web.json_response({"error": f"upstream answered {plan.status}"}, status=plan.status)
        model = body.get("model") or DEFAULT_MODEL
        n = len(plan.pieces)

        def line(content: str, done: bool) -> dict[str, Any]:
            return {
                "model": model,
                "created_at": _ollama_time(),
                "message": {"role": "assistant", "content": content},
                "done": done,
            }

        final_extra = {
            "done_reason": "stop",
            "prompt_eval_count": _prompt_tokens(body["messages"]),
            "eval_count": n,
        }
        if body.get("stream") is False:
            if plan.fail:
                return await self._drop_without_answer(request, plan)
            await asyncio.sleep(plan.stall + sum(plan.pauses))
            return web.json_response(line("".join(plan.pieces), True) | final_extra)
        return await self._stream(
            request,
            plan,
            "application/x-ndjson",
            lambda text: _ndjson(line(text, False)),
            b"",
            lambda: _ndjson(line("", True) | final_extra),
        )

    async def _openai_embeddings(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError) as exc:
            return _openai_error(400, f"bad json: {exc}", "invalid_request_error")
        inputs = body.get("input") if isinstance(body, dict) else None
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(t, str) for t in inputs):
            return _openai_error(
                400, "'input' must be a string or a non-empty list of strings", "invalid_request_error"
            )
        if any(text == "" for text in inputs):
            return _openai_error(400, "input cannot be an empty string", "invalid_request_error")
        dim = body.get("dimensions", EMBEDDING_DIM)
        if not isinstance(dim, int) or dim < 1:
            return _openai_error(400, "'dimensions' must be a positive integer", "invalid_request_error")
        with self._lock:
            self.embedding_requests.append(
                {"path": request.path, "body": body, "authorization": request.headers.get("Authorization")}
            )
        for text in inputs:
            for command, arg in _EMBEDDING_COMMAND.findall(text):
                if command == "status" and arg:
                    return _openai_error(int(arg), f"upstream answered {arg}", "server_error")
                if command == "fail":
                    return _openai_error(500, "upstream failed", "server_error")
                if command == "stall" and arg:
                    await asyncio.sleep(float(arg))
                if command == "garbage":
                    return web.Response(text="<html>not json</html>", content_type="application/json")
                if command == "drop":
                    if request.transport is not None:
                        request.transport.close()
                    return web.Response()
        data = [
            {"object": "embedding", "index": i, "embedding": hashed_embedding(text, dim)}
            for i, text in enumerate(inputs)
        ]
        tokens = sum(len(text) for text in inputs) // 4
        return web.json_response(
            {
                "object": "list",
                "data": data[::-1],  # any order is allowed: clients must go by "index"
                "model": body.get("model") or DEFAULT_MODEL,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            }
        )

    async def _openai_models(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "object": "list",
                "data": [{"id": DEFAULT_MODEL, "object": "model", "created": 0, "owned_by": "bench"}],
            }
        )

    async def _ollama_tags(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "models": [
                    {
                        "name": DEFAULT_MODEL,
                        "model": DEFAULT_MODEL,
                        "modified_at": "2024-01-01T00:00:00Z",
                        "size": 0,
                        "digest": "0" * 64,
                        "details": {"format": "gguf", "family": "sim", "parameter_size": "0B"},
                    }
                ]
            }
        )


def _openai_error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": status}}, status=status)
