"""GGUF models run in this process with llama-cpp-python (llama.cpp).

The model file is loaded once, on the first request, as `instances` copies (llama.cpp
maps the weights, so copies share them; each has its own context). An answer takes a
free copy, or waits for one in a first-come first-served queue (logged at INFO, and
counted by `stats()`), and is generated in a worker thread: llama.cpp computes with the
GIL released, so the event loop, other streams and pings keep flowing. Tokens cross to
the loop through `_Channel`: the worker appends text and wakes the loop with one
`call_soon_threadsafe` per batch (whatever piled up while the loop was busy goes out as
one delta). Stopping sets a flag the worker reads between tokens, so the model computes
at most the token it is on; the copy goes back to the pool when the worker has stopped.

The prompt is the model's own chat template (the GGUF's `tokenizer.chat_template`,
rendered the way llama-cpp-python renders it), tokenized off the loop. A conversation too
long for the context loses its oldest turns first.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import ctypes
import logging
import os
import threading
import time
from collections import deque
from collections.abc import AsyncGenerator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chatstream.providers.base import ChatMessage, ProviderError, ProviderStream, Usage

if TYPE_CHECKING:
    from llama_cpp import Llama

log = logging.getLogger("chatstream.llamacpp")

# llama-cpp-python's chat-completion defaults, plus a mild repeat penalty: without it
# small models loop ("la France, la France, ...").
SAMPLING: dict[str, Any] = {"temp": 0.2, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}
# Used when a GGUF carries no chat template (ChatML, which many small models follow).
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


class _Done:
    """The worker's last item: how the answer ended."""

    __slots__ = ("error", "usage")

    def __init__(self, usage: Usage | None, error: str | None = None) -> None:
        self.usage = usage
        self.error = error


class _Channel:
    """Worker thread -> event loop, batched: one loop wake-up for whatever piled up."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._items: list[str | _Done] = []
        self._wake_pending = False
        self._waiter: asyncio.Future[None] | None = None

    def put(self, item: str | _Done) -> None:
        """Worker side."""
        with self._lock:
            self._items.append(item)
            if self._wake_pending:
                return
            self._wake_pending = True
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is reading
            self._loop.call_soon_threadsafe(self._wake)

    def _wake(self) -> None:
        with self._lock:
            self._wake_pending = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def take(self) -> list[str | _Done]:
        """Loop side: everything put since the last take, waiting for at least one item."""
        while True:
            with self._lock:
                if self._items:
                    items, self._items = self._items, []
                    return items
                self._waiter = self._loop.create_future()
            await self._waiter


class _Job:
    """One answer being generated: what the worker needs and the stop flag it reads."""

    __slots__ = ("channel", "computed", "computed_at_stop", "lock", "max_tokens", "prompt", "stopped")

    def __init__(self, prompt: list[int], max_tokens: int, channel: _Channel) -> None:
        self.prompt = prompt
        self.max_tokens = max_tokens
        self.channel = channel
        self.lock = threading.Lock()
        self.stopped = False
        self.computed = 0  # tokens the model produced for this answer
        self.computed_at_stop = 0

    def stop(self) -> None:
        with self.lock:
            if not self.stopped:
                self.stopped = True
                self.computed_at_stop = self.computed


@dataclass(slots=True)
class _Prompt:
    tokens: list[int]
    max_tokens: int


class LlamaCppProvider:
    """One GGUF model, `instances` copies of it, for the whole server."""

    is_local = True

    def __init__(
        self,
        *,
        name: str,
        path: Path,
        threads: int = 0,
        context_size: int = 4096,
        max_tokens: int = 1024,
        instances: int = 1,
    ) -> None:
        self.name = name
        self.path = path
        self.instances = instances
        self.threads = threads or max(1, (os.cpu_count() or 1) // instances)
        self.context_size = context_size
        self.max_tokens = max_tokens
        try:
            self.size_bytes: int | None = path.stat().st_size
        except OSError:
            self.size_bytes = None
            log.warning("local model %s: no file at %s; its requests will fail", name, path)
        # The workers: one thread per instance, apart from asyncio's default executor so
        # that long generations never starve other blocking work (password hashing).
        self._executor = ThreadPoolExecutor(max_workers=instances, thread_name_prefix=f"llamacpp-{name}")
        self._load_lock = asyncio.Lock()
        self._models: list[Llama] = []  # all instances, once loaded
        self._idle: list[Llama] = []
        self._waiters: deque[asyncio.Future[Llama]] = deque()
        self._jobs: set[_Job] = set()
        self._template: Callable[[list[ChatMessage]], str] | None = None
        self._eog: Callable[[int], bool] | None = None
        self._closed = False
        # Counters for stats(), updated on the loop.
        self._answers = 0
        self._tokens = 0
        self._tokens_after_stop = 0

    # -- the provider contract -------------------------------------------------------------

    async def open(self, messages: list[ChatMessage]) -> ProviderStream:
        if self._closed:
            raise ProviderError("the server is shutting down")
        await self._ensure_loaded()
        prompt = await asyncio.to_thread(self._prepare, messages)
        return self._stream(prompt)

    async def close(self) -> None:
        """Stops every answer, waits for the workers, frees the models."""
        self._closed = True
        for job in self._jobs:
            job.stop()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ProviderError("the server is shutting down"))
        await asyncio.to_thread(self._executor.shutdown, wait=True)
        for model in self._models:
            model.close()
        self._models.clear()
        self._idle.clear()

    def stats(self) -> dict[str, int | str | bool]:
        """The queue and the work so far (for /metrics and the log)."""
        return {
            "model": self.name,
            "loaded": bool(self._models),
            "instances": self.instances,
            "running": len(self._jobs),
            "waiting": sum(1 for w in self._waiters if not w.done()),
            "answers": self._answers,
            "tokens": self._tokens,
            "tokens_after_stop": self._tokens_after_stop,
        }

    # -- loading ---------------------------------------------------------------------------

    async def _ensure_loaded(self) -> None:
        if self._models:
            return
        async with self._load_lock:
            if self._models:
                return
            loop = asyncio.get_running_loop()
            try:
                models = await loop.run_in_executor(self._executor, self._load)
            except ProviderError as exc:
                log.error("local model %s: %s", self.name, exc.message)
                raise
            self._models = models
            self._idle = list(models)

    def _load(self) -> list[Llama]:
        """Worker thread. All copies in one thread: llama-cpp-python silences the process's
        stdout/stderr while it loads, which two loads at once would leave silenced."""
        if not self.path.is_file():
            raise ProviderError(f"the model file {self.path} does not exist")
        started = time.monotonic()
        try:
            from llama_cpp import Llama
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter

            models = [
                Llama(
                    str(self.path),
                    n_ctx=self.context_size,
                    n_threads=self.threads,
                    n_threads_batch=self.threads,
                    verbose=False,
                )
                for _ in range(self.instances)
            ]
        except Exception as exc:  # llama.cpp says little more than "failed to load"
            raise ProviderError(f"could not load the model {self.path.name}: {exc}") from exc
        first = models[0]
        template = first.metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATE

        def token_text(token: int) -> str:
            return first._model.token_get_text(token) if token >= 0 else ""

        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=token_text(first.token_eos()),
            bos_token=token_text(first.token_bos()),
        )
        self._template = lambda messages: formatter(messages=messages).prompt  # type: ignore[arg-type]
        self._eog = _eog_check(first)
        log.info(
            "local model %s: loaded %s in %.0f ms (%d instance%s, %d threads each, context %d tokens)",
            self.name,
            self.path.name,
            (time.monotonic() - started) * 1000,
            self.instances,
            "" if self.instances == 1 else "s",
            self.threads,
            first.n_ctx(),
        )
        return models

    # -- the prompt ------------------------------------------------------------------------

    def _prepare(self, messages: list[ChatMessage]) -> _Prompt:
        """Thread (tokenizing a long history takes milliseconds): the prompt's tokens and
        the answer's room. The oldest turns go first when the context is too small."""
        assert self._template is not None
        model = self._models[0]  # tokenizing reads the vocabulary only: safe beside generation
        n_ctx = model.n_ctx()
        room = min(self.max_tokens, n_ctx // 2)
        system = [m for m in messages[:1] if m["role"] == "system"]
        turns = messages[len(system) :]
        while True:
            try:
                text = self._template([*system, *turns])
            except Exception as exc:  # a template that raises (e.g. on role order)
                raise ProviderError(f"the model's chat template failed: {exc}") from exc
            tokens = model.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) <= n_ctx - room or len(turns) <= 1:
                break
            turns = turns[1:]
            while len(turns) > 1 and turns[0]["role"] != "user":  # templates may want a user turn first
                turns = turns[1:]
        if len(tokens) >= n_ctx - 1:
            raise ProviderError(
                f"the question is too long for this model: {len(tokens)} tokens, its context holds {n_ctx}"
            )
        return _Prompt(tokens, min(self.max_tokens, n_ctx - len(tokens)))

    # -- generating ------------------------------------------------------------------------

    async def _stream(self, prompt: _Prompt) -> AsyncGenerator[str | Usage, None]:
        loop = asyncio.get_running_loop()
        model = await self._acquire()
        job = _Job(prompt.tokens, prompt.max_tokens, _Channel(loop))
        self._jobs.add(job)
        self._answers += 1
        try:
            worker = loop.run_in_executor(self._executor, self._generate, model, job)
        except RuntimeError as exc:  # the executor was shut down meanwhile
            self._jobs.discard(job)
            self._release(model)
            raise ProviderError("the server is shutting down") from exc
        worker.add_done_callback(lambda _f: self._finished(model, job, _f))
        try:
            while True:
                items = await job.channel.take()
                done = items[-1] if type(items[-1]) is _Done else None
                text = "".join([i for i in items if isinstance(i, str)])
                if text:
                    yield text
                if done is not None:
                    if done.error is not None:
                        raise ProviderError(done.error)
                    if done.usage is not None:
                        yield done.usage
                    return
        finally:
            job.stop()  # a no-op when it ended by itself; else the worker stops at the next token

    def _generate(self, model: Llama, job: _Job) -> None:
        """Worker thread: samples tokens until the end of the turn, the limit, or a stop."""
        assert self._eog is not None
        is_eog, put = self._eog, job.channel.put
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        piece = _piece_reader(model)
        produced = 0
        tokens = model.generate(job.prompt, **SAMPLING)
        try:
            for token in tokens:
                with job.lock:
                    job.computed += 1
                    if job.stopped:
                        break
                if is_eog(token):
                    break
                produced += 1
                text = decoder.decode(piece(token))
                if text:
                    put(text)
                if produced >= job.max_tokens or job.stopped:
                    break
            text = decoder.decode(b"", final=True)
            if text:
                put(text)
            put(_Done(Usage(len(job.prompt), produced)))
        except Exception as exc:
            log.exception("local model %s failed mid-answer", self.name)
            put(_Done(None, f"the local model failed: {exc}"[:400]))
        finally:
            tokens.close()  # here, in the worker: never resumed, so no further token is computed

    # -- the instance pool: first come, first served -----------------------------------------

    async def _acquire(self) -> Llama:
        if self._idle and not self._waiters:
            return self._idle.pop()
        waiter: asyncio.Future[Llama] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        log.info(
            "local model %s: a request waits its turn (%d waiting, %d of %d instances busy)",
            self.name,
            len(self._waiters),
            len(self._jobs),
            self.instances,
        )
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a copy just as it was cancelled
                self._release(waiter.result())
            else:
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def _release(self, model: Llama) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(model)
                return
        self._idle.append(model)

    def _finished(self, model: Llama, job: _Job, worker: asyncio.Future[None]) -> None:
        """Loop, when the worker has returned: count, and hand the copy on."""
        if not worker.cancelled() and worker.exception() is not None:  # _generate catches; never here
            log.error("local model %s: worker died: %r", self.name, worker.exception())
        self._jobs.discard(job)
        self._tokens += job.computed
        if job.stopped:
            self._tokens_after_stop += job.computed - job.computed_at_stop
        if self._closed:
            return
        self._release(model)


def _eog_check(model: Llama) -> Callable[[int], bool]:
    """Whether a token ends the turn (end of sequence, <|im_end|>, <|eot_id|>, ...)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(model.model)
    return lambda token: bool(llama_cpp.llama_vocab_is_eog(vocab, token))


def _piece_reader(model: Llama) -> Callable[[int], bytes]:
    """A token's bytes, with one buffer per answer (llama-cpp-python's own detokenize
    allocates per call and caps pieces at 32 bytes)."""
    import llama_cpp

    vocab = llama_cpp.llama_model_get_vocab(model.model)
    buffer = ctypes.create_string_buffer(64)

    def piece(token: int) -> bytes:
        n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
        if n >= 0:
            return buffer.raw[:n]
        bigger = ctypes.create_string_buffer(-n)
        n = llama_cpp.llama_token_to_piece(vocab, token, bigger, len(bigger), 0, False)
        return bigger.raw[:n]

    return piece
