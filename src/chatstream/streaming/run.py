"""One answer being written: reads the provider, appends frames to the log, saves the text.

`AnswerRun.run()` is the per-token path: for each provider chunk it keeps the text and
appends one encoded frame. Nothing there awaits the database. The answer's row is
written while the model is being asked (`row_id` resolves when it is), its text is
saved by the answer service's checkpointer about once a second, and once at the end,
before the final frame, so a client that sees `[DONE]` finds the answer in history.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Protocol

from chatstream.errors import ModelFailed, ServerBusy
from chatstream.providers.base import ChatMessage, ChatProvider, ProviderError, Usage
from chatstream.streaming import frames
from chatstream.streaming.log import AnswerLog

logger = logging.getLogger("chatstream.answers")


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
        row_id: asyncio.Future[int],
    ) -> None:
        self.provider = provider
        self.messages = messages
        self.log = log
        self.writer = writer
        self.row_id = row_id
        self.parts: list[str] = []
        self.saved_parts = 0  # len(parts) at the last checkpoint
        self.status = "streaming"
        self.error: str | None = None
        self.saved = False  # the final save went through
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
        code = ModelFailed.code
        try:
            # Shielded: a stop arriving now must not cancel the save itself.
            message_id = await asyncio.shield(self.row_id)
            await asyncio.shield(self.writer.finish(message_id, self.text, status, error=error, usage=usage))
            self.saved = True
        except Exception:
            logger.exception("saving an answer failed")
            status, code, error = "error", ServerBusy.code, "the answer could not be saved"
            self.status, self.error = status, error
        self._final_frames(status, code, error, usage, started)

    def _final_frames(
        self, status: str, code: int, error: str | None, usage: Usage | None, started: float
    ) -> None:
        log = self.log
        if status == "complete":
            usage = usage or Usage()
            stats = {
                "type": "usage",
                "promptTokens": usage.prompt_tokens,
                "completionTokens": usage.completion_tokens,
                "ms": round((time.monotonic() - started) * 1000),
            }
            log.append(frames.data(log.next_seq, stats))
            log.append(frames.done(log.next_seq))
        elif status == "error":
            log.append(frames.error(log.next_seq, code, error or "model failed"))
        else:  # stopped or interrupted: a clean end the client can tell apart
            log.append(frames.data(log.next_seq, {"type": status}))
            log.append(frames.done(log.next_seq))
        log.close()
