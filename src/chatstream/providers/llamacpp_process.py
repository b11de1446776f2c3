"""One local-model process, seen from the server: starting it, talking to it, its end.

`ModelProcess.start()` runs `python -m chatstream.providers.llamacpp_child` with one end of
a socketpair (the protocol is in that module's docstring) and returns once the model is
loaded. The child's stdout and stderr (a traceback, llama.cpp's errors) come back on one
pipe and go to this server's log line by line; the protocol has its own socket, so no stray
native print can corrupt it. Text arrives in `data_received`: everything that piled up since
the loop last looked goes to the answer at once, one wake-up and one delta. However the
process ends (a signal, an abort, the OOM killer, or us), what it was doing fails with a
message safe to show a user, and `on_exit` hears of it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from chatstream.providers.base import ChatMessage, ProviderError, Usage

log = logging.getLogger("chatstream.llamacpp")

CHILD_MODULE = "chatstream.providers.llamacpp_child"
GRACE_S = 2.0  # how long a process whose socket closed has before SIGKILL
EOF_GRACE_S = 0.5  # after EOF on its socket, before SIGTERM; as long again before SIGKILL
SHUT_DOWN = "the server is shutting down"


@dataclass(frozen=True, slots=True)
class Prompt:
    """A prepared question: its tokens and the room left for the answer."""

    tokens: list[int]
    max_tokens: int


class Generation:
    """One answer a process is writing. Its text piles up in `parts` until the stream takes it."""

    __slots__ = (
        "_waiter",
        "computed",
        "deltas",
        "ended",
        "error",
        "id",
        "parts",
        "stop",
        "tokens_after_stop",
        "usage",
    )

    def __init__(self, generation_id: int, stop: Callable[[], None]) -> None:
        self.id = generation_id
        self.stop = stop  # asks the process to stop this answer (idempotent)
        self.parts: list[str] = []
        self.ended: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.usage: Usage | None = None
        self.error: str | None = None  # set when the answer failed
        self.computed = 0  # tokens the model computed (the child's count; deltas when it died)
        self.tokens_after_stop = 0
        self.deltas = 0
        self._waiter: asyncio.Future[None] | None = None

    async def wait(self) -> None:
        """Until there is text to take or the answer has ended."""
        while not self.parts and not self.ended.done():
            self._waiter = asyncio.get_running_loop().create_future()
            await self._waiter

    def wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def finish(self, usage: Usage, computed: int, after_stop: int) -> None:
        self.usage, self.computed, self.tokens_after_stop = usage, computed, after_stop
        self._end()

    def fail(self, message: str) -> None:
        self.error = message
        self.computed = self.deltas
        self._end()

    def _end(self) -> None:
        if not self.ended.done():
            self.ended.set_result(None)
        self.wake()


def exit_reason(returncode: int) -> str:
    """`signal 9, SIGKILL` or `exit status 1`."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        return f"signal {-returncode}, {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


class ModelProcess:
    """A child running one copy of a model; at most one answer at a time, prompts beside it."""

    def __init__(
        self, proc: asyncio.subprocess.Process, name: str, on_exit: Callable[[ModelProcess, int], None]
    ) -> None:
        self.pid = proc.pid
        self.name = name
        self.info: dict[str, Any] = {}  # the child's "ready" message
        self.alive = True
        self.leaving = False  # we told it to go: its end is no crash
        self.generation: Generation | None = None
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._proc = proc
        self._on_exit = on_exit
        self._ids = itertools.count(1)
        self._hello: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._prepares: dict[int, asyncio.Future[Prompt]] = {}
        self._transport: asyncio.Transport | None = None
        self._channel_closed = asyncio.Event()
        self._kill_timer: asyncio.TimerHandle | None = None
        assert proc.stdout is not None
        self._relay = asyncio.create_task(self._relay_output(proc.stdout))
        self._watch = asyncio.create_task(self._watch_exit())

    @classmethod
    async def start(
        cls,
        *,
        name: str,
        path: Path,
        threads: int,
        context_size: int,
        on_exit: Callable[[ModelProcess, int], None],
    ) -> ModelProcess:
        """A loaded process; ProviderError when the model cannot load or the process dies first."""
        ours, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", CHILD_MODULE,
                "--channel-fd", str(theirs.fileno()),
                "--parent-pid", str(os.getpid()),
                "--model", str(path),
                "--threads", str(threads),
                "--context-size", str(context_size),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
            )  # fmt: skip
        except BaseException as exc:
            ours.close()
            if isinstance(exc, OSError):
                raise ProviderError(f"could not start the local model's process: {exc.strerror}") from exc
            raise
        finally:
            theirs.close()
        process = cls(proc, name, on_exit)
        try:
            loop = asyncio.get_running_loop()
            process._transport, _ = await loop.create_unix_connection(lambda: _Channel(process), sock=ours)
            hello = await process._hello
        except BaseException:
            await asyncio.shield(process.terminate())
            raise
        if "failed" in hello:
            await process.terminate()
            raise ProviderError(str(hello["failed"]))
        process.info = hello["ready"]
        return process

    # -- requests ----------------------------------------------------------------------------

    async def prepare(self, messages: list[ChatMessage], max_tokens: int) -> Prompt:
        """The question as tokens, fitted to the context (on the child's control thread, so
        beside a running answer); ProviderError when the model refuses it."""
        request_id = next(self._ids)
        reply: asyncio.Future[Prompt] = asyncio.get_running_loop().create_future()
        self._prepares[request_id] = reply
        try:
            self._send({"op": "prepare", "id": request_id, "messages": messages, "max_tokens": max_tokens})
            return await reply
        finally:
            self._prepares.pop(request_id, None)

    def generate(self, prompt: Prompt) -> Generation:
        """Starts the answer; its text and end arrive on the returned Generation."""
        assert self.generation is None, "one answer at a time"
        generation_id = next(self._ids)
        generation = Generation(generation_id, lambda: self._stop(generation))
        tokens, room = prompt.tokens, prompt.max_tokens
        self._send({"op": "generate", "id": generation_id, "tokens": tokens, "max_tokens": room})
        self.generation = generation  # after the send: a process gone already takes no answer
        return generation

    def _stop(self, generation: Generation) -> None:
        if not generation.ended.done():
            with contextlib.suppress(ProviderError):  # gone already: nothing left to stop
                self._send({"op": "stop", "id": generation.id})

    def _send(self, message: dict[str, Any]) -> None:
        if not self.alive or self._transport is None or self._transport.is_closing():
            raise ProviderError(SHUT_DOWN if self.leaving else "the local model's process has stopped")
        self._transport.write(orjson.dumps(message) + b"\n")

    # -- what the child says -------------------------------------------------------------------

    def _received(self, lines: list[bytes]) -> None:
        generation = self.generation
        fed = False
        for line in lines:
            message = orjson.loads(line)
            text = message.get("d")
            if text is not None:  # the per-token message, first and cheapest
                if generation is not None:
                    generation.parts.append(text)
                    generation.deltas += 1
                    fed = True
            else:
                self._dispatch(message)
        if fed and generation is not None:
            generation.wake()

    def _dispatch(self, message: dict[str, Any]) -> None:
        generation = self.generation
        if "done" in message and generation is not None and generation.id == message["done"]:
            self.generation = None
            usage = Usage(message["prompt"], message["completion"])
            generation.finish(usage, message["computed"], message["after_stop"])
        elif "broke" in message and generation is not None and generation.id == message["broke"]:
            self.generation = None
            generation.fail(message["message"])
        elif "prepared" in message or "refused" in message:
            reply = self._prepares.get(message.get("prepared") or message["refused"])
            if reply is None or reply.done():  # its request was cancelled meanwhile
                return
            if "refused" in message:
                reply.set_exception(ProviderError(message["message"]))
            else:
                reply.set_result(Prompt(message["tokens"], message["max_tokens"]))
        elif ("ready" in message or "failed" in message) and not self._hello.done():
            self._hello.set_result(message)
        else:
            log.warning("local model %s (process %d): unexpected %.200r", self.name, self.pid, message)

    async def _relay_output(self, stream: asyncio.StreamReader) -> None:
        """The child's stdout and stderr, into this server's log."""
        pending = b""
        while chunk := await stream.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > 65536:  # no newline in sight: log what there is
                lines.append(pending)
                pending = b""
            for line in lines:
                self._log_output(line)
        self._log_output(pending)

    def _log_output(self, line: bytes) -> None:
        if line.strip():
            text = line.decode("utf-8", errors="replace").rstrip()
            log.warning("local model %s (process %d): %s", self.name, self.pid, text)

    # -- the end --------------------------------------------------------------------------------

    def _channel_lost(self) -> None:
        self._channel_closed.set()
        # A child never closes its socket and lives on; if this one does, it is broken.
        self._kill_timer = asyncio.get_running_loop().call_later(GRACE_S, self._kill)

    def _kill(self) -> None:
        if self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()

    async def _watch_exit(self) -> None:
        returncode = await self._proc.wait()
        # The text it wrote before dying is still in the socket: let it in, so the answer
        # keeps every token its reader was sent, and let its last words reach the log first.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._channel_closed.wait(), GRACE_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._relay), 0.5)
        if self._transport is not None:
            self._transport.close()
        self._ended(returncode)

    def _ended(self, returncode: int) -> None:
        self.alive = False
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        reason = exit_reason(returncode)
        message = SHUT_DOWN if self.leaving else f"the local model's process stopped unexpectedly ({reason})"
        if not self._hello.done():
            loading = f"the local model's process stopped while loading ({reason})"
            self._hello.set_exception(ProviderError(loading))
        self._on_exit(self, returncode)
        for reply in self._prepares.values():
            if not reply.done():
                reply.set_exception(ProviderError(message))
        generation, self.generation = self.generation, None
        if generation is not None:
            generation.fail(message)
        self.exited.set_result(returncode)

    async def terminate(self) -> int:
        """Tells the process to go: EOF on its socket, SIGTERM if it lingers, SIGKILL after
        GRACE_S more. Returns its exit status."""
        self.leaving = True
        if self._transport is not None:
            self._transport.close()  # EOF: a healthy child exits at once
        for signal_it in (self._proc.terminate, self._kill):
            try:
                return await asyncio.wait_for(asyncio.shield(self.exited), EOF_GRACE_S)
            except TimeoutError:
                if self._proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        signal_it()
        return await asyncio.shield(self.exited)


class _Channel(asyncio.Protocol):
    """The socket's bytes, cut into lines, handed over once per read."""

    def __init__(self, process: ModelProcess) -> None:
        self._process = process
        self._buffer = bytearray()

    def data_received(self, data: bytes) -> None:
        end = data.rfind(b"\n")
        if end < 0:
            self._buffer += data
            return
        if self._buffer:
            self._buffer += data[: end + 1]
            chunk = bytes(self._buffer)
            self._buffer.clear()
        else:
            chunk = data[: end + 1]
        self._buffer += data[end + 1 :]
        self._process._received(chunk[:-1].split(b"\n"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._process._channel_lost()
