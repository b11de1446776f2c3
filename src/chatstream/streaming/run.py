"""One answer being written: reads the provider, appends frames to the log, saves the text.

`AnswerRun.run()` is the per-token path: for each provider chunk it keeps the text and
appends one encoded frame. Nothing there awaits the database; the text is saved by the
answer service's checkpointer about once a second, and once at the end, before the
final frame, so a client that sees `[DONE]` finds the answer in history.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

from chatstream.errors import ModelFailed
from chatstream.providers.base import ChatMessage, ChatProvider, ProviderError, Usage
from chatstream.streaming import frames
from chatstream.streaming.log import AnswerLog


class AnswerWriter(Protocol):
    async def finish(
        self, message_id: int, content: str, status: str, *, error: str | None, usage: Usage | None
    ) -> None: ...


class AnswerRun:
    """Owns one answer from the first byte upstream to its final status."""

    def __init__(
        self,
        *,
        provider: ChatProvider,
        messages: list[ChatMessage],
        log: AnswerLog,
        writer: AnswerWriter,
        message_id: int,
    ) -> None:
        self.provider = provider
        self.messages = messages
        self.log = log
        self.writer = writer
        self.message_id = message_id
        self.parts: list[str] = []
        self.saved_parts = 0  # len(parts) at the last checkpoint
        self.status = "streaming"
        self.error: str | None = None
        # Resolved once the provider accepted the request, or with its refusal.
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.stop_status = "stopped"  # what a cancellation means: stopped, or interrupted at shutdown

    @property
    def text(self) -> str:
        return "".join(self.parts)

    async def run(self) -> None:
        """Write the answer to its end. Cancelling the task stops it with `stop_status`."""
        started = time.monotonic()
        try:
            stream = await self.provider.open(self.messages)
        except ProviderError as exc:
            self.opened.set_exception(exc)
            await self._end("error", error=exc.message)
            return
        except asyncio.CancelledError:
            self.opened.cancel()
            await self._end(self.stop_status, error=None)
            return
        self.opened.set_result(None)
        log, parts = self.log, self.parts
        usage: Usage | None = None
        status, error = "complete", None
        try:
            async for item in stream:
                if type(item) is str:
                    parts.append(item)
                    log.append(frames.delta(len(log.frames) + 1, item))
                elif isinstance(item, Usage):
                    usage = item
        except ProviderError as exc:
            status, error = "error", exc.message
        except asyncio.CancelledError:
            status = self.stop_status
        finally:
            await stream.aclose()  # before saving: a stopped upstream stops generating at once
        await self._end(status, error=error, usage=usage, started=started)

    async def _end(
        self, status: str, *, error: str | None, usage: Usage | None = None, started: float = 0.0
    ) -> None:
        self.status, self.error = status, error
        log = self.log
        try:
            await asyncio.shield(
                self.writer.finish(self.message_id, self.text, status, error=error, usage=usage)
            )
        finally:
            if status == "complete":
                usage = usage or Usage()
                log.append(
                    frames.data(
                        log.next_seq,
                        {
                            "type": "usage",
                            "promptTokens": usage.prompt_tokens,
                            "completionTokens": usage.completion_tokens,
                            "ms": round((time.monotonic() - started) * 1000),
                        },
                    )
                )
                log.append(frames.done(log.next_seq))
            elif status == "error":
                log.append(frames.error(log.next_seq, ModelFailed.code, error or "model failed"))
            else:
                log.append(frames.data(log.next_seq, {"type": status}))
                log.append(frames.done(log.next_seq))
            log.close()
