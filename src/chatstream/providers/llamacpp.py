"""GGUF models, run by llama.cpp in supervised child processes: one process per instance.

This server never runs llama.cpp code. Each instance of a model is a child process
(`llamacpp_child.py`, driven through `llamacpp_process.py`), started on the first request.
A crash in native code (an illegal instruction, an abort, the OOM killer) ends that process
and fails only the answer it was writing; the next request that needs the instance starts a
fresh process, at once after one crash, then after a pause that doubles (1 s up to 30 s)
while processes keep failing without finishing an answer. The processes map the weights,
so they share one copy in the page cache; each has its own context.

`open()` has a process prepare the prompt (the model's own chat template, tokenized, the
oldest turns dropped to fit the context, a question too long refused) on the process's
control thread, beside any answer it is writing, so a refusal never waits for a busy
instance. The answer then takes a free instance, or waits for one in a first-come
first-served queue (logged at INFO, counted by `stats()`). Stopping sends a message the
process turns into a flag its sampling loop reads between tokens, so the model computes at
most the token it is on; the instance goes back to the pool when the process says the
answer has ended.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections import deque
from collections.abc import AsyncGenerator
from pathlib import Path

from chatstream.providers.base import ChatMessage, ProviderError, ProviderStream, Usage
from chatstream.providers.llamacpp_process import (
    GRACE_S,
    SHUT_DOWN,
    Generation,
    ModelProcess,
    Prompt,
    exit_reason,
)

log = logging.getLogger("chatstream.llamacpp")

BACKOFF_FIRST_S = 1.0  # the pause before the second fresh process in a row ...
BACKOFF_MAX_S = 30.0  # ... doubling up to this
# What stats()["state"] can say (/readyz and /metrics show it).
STATES = ("not started", "starting", "ready", "restarting", "failed", "stopped")


def backoff_s(failures_in_a_row: int) -> float:
    """The pause before the next process: none after one failure, then 1 s, 2 s, 4 s ... 30 s."""
    if failures_in_a_row <= 1:
        return 0.0
    return min(BACKOFF_MAX_S, BACKOFF_FIRST_S * 2.0 ** (failures_in_a_row - 2))


class _Instance:
    """One copy of the model: the process serving it, when there is one."""

    __slots__ = ("crashed", "process", "starting")

    def __init__(self) -> None:
        self.process: ModelProcess | None = None  # set once loaded, cleared when it ends
        self.starting: asyncio.Task[ModelProcess] | None = None
        self.crashed = False  # its last process stopped unexpectedly: the next one is a restart


class LlamaCppProvider:
    """One GGUF model, `instances` processes of it, for the whole server."""

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
        self._instances = [_Instance() for _ in range(instances)]
        self._idle = list(self._instances)
        self._waiters: deque[asyncio.Future[_Instance]] = deque()
        self._generations: dict[_Instance, Generation] = {}
        self._closed = False
        # Supervision: why the last process ended or could not start, and when to try again.
        self._problem = ""
        self._load_failed = False
        self._failures_in_a_row = 0
        self._next_start_at = 0.0
        self._crashes = 0
        self._restarts = 0
        # Counters for stats(), updated on the loop.
        self._answers = 0
        self._tokens = 0
        self._tokens_after_stop = 0

    # -- the provider contract -------------------------------------------------------------

    async def open(self, messages: list[ChatMessage]) -> ProviderStream:
        if self._closed:
            raise ProviderError(SHUT_DOWN)
        process = await self._process_for_prompts()
        prompt = await process.prepare(messages, self.max_tokens)
        return self._stream(prompt)

    async def close(self) -> None:
        """Stops every answer, then the processes (EOF and SIGTERM, SIGKILL after a grace)."""
        self._closed = True
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(ProviderError(SHUT_DOWN))
        for generation in self._generations.values():
            generation.stop()
        ending = [g.ended for g in self._generations.values()]
        if ending:  # stopped answers end with what they wrote, not with a dead process
            await asyncio.wait(ending, timeout=GRACE_S)
        starting = [i.starting for i in self._instances if i.starting is not None]
        for task in starting:
            task.cancel()
        processes = [i.process for i in self._instances if i.process is not None]
        await asyncio.gather(*starting, *(p.terminate() for p in processes), return_exceptions=True)

    def stats(self) -> dict[str, int | str | bool]:
        """The state, the queue and the work so far (for /readyz, /metrics and the log)."""
        live = self.process_ids()
        return {
            "model": self.name,
            "state": self._state(bool(live)),
            "problem": self._problem,  # why the last process ended or could not start
            "loaded": bool(live),
            "instances": self.instances,
            "processes": len(live),
            "running": self.instances - len(self._idle),
            "waiting": sum(1 for w in self._waiters if not w.done()),
            "answers": self._answers,
            "tokens": self._tokens,
            "tokens_after_stop": self._tokens_after_stop,
            "crashes": self._crashes,
            "restarts": self._restarts,
            "failures_in_a_row": self._failures_in_a_row,
            "next_start_in_s": max(0, math.ceil(self._next_start_at - time.monotonic())),
        }

    def process_ids(self) -> list[int]:
        """The pids of this model's live processes."""
        return [i.process.pid for i in self._instances if i.process is not None and i.process.alive]

    def _state(self, live: bool) -> str:
        if self._closed:
            return "stopped"
        if live:
            return "ready"
        crashed = bool(self._problem) and not self._load_failed
        if any(i.starting is not None for i in self._instances):
            return "restarting" if crashed else "starting"
        if self._load_failed:
            return "failed"
        return "restarting" if crashed else "not started"

    # -- the answer ------------------------------------------------------------------------

    async def _stream(self, prompt: Prompt) -> AsyncGenerator[str | Usage, None]:
        instance = await self._acquire()
        try:
            process = await self._process_of(instance)
            generation = process.generate(prompt)
        except BaseException:
            self._release(instance)
            raise
        self._generations[instance] = generation
        self._answers += 1
        generation.ended.add_done_callback(lambda _: self._finished(instance, generation))
        try:
            while True:
                await generation.wait()
                parts = generation.parts
                if parts:  # everything that piled up since the last look, as one delta
                    text = "".join(parts)
                    parts.clear()
                    yield text
                    continue
                if generation.error is not None:
                    raise ProviderError(generation.error)
                if generation.usage is not None:
                    yield generation.usage
                return
        finally:
            generation.stop()  # a no-op when it ended by itself; else it stops at the next token

    def _finished(self, instance: _Instance, generation: Generation) -> None:
        """Loop, when the process says the answer ended (or died): count, hand the instance on."""
        self._generations.pop(instance, None)
        self._tokens += generation.computed
        self._tokens_after_stop += generation.tokens_after_stop
        if generation.error is None:  # a process that finishes answers is healthy again
            self._failures_in_a_row = 0
        self._release(instance)

    # -- the instance pool: first come, first served -----------------------------------------

    async def _acquire(self) -> _Instance:
        if self._idle and not self._waiters:
            return self._take_idle()
        waiter: asyncio.Future[_Instance] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        log.info(
            "local model %s: a request waits its turn (%d waiting, %d of %d instances busy)",
            self.name,
            len(self._waiters),
            self.instances - len(self._idle),
            self.instances,
        )
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed an instance just as it was cancelled
                self._release(waiter.result())
            elif waiter in self._waiters:
                self._waiters.remove(waiter)
            raise

    def _take_idle(self) -> _Instance:
        """An idle instance, one with a running process first (no load to wait for)."""
        for index, instance in enumerate(self._idle):
            if instance.process is not None and instance.process.alive:
                return self._idle.pop(index)
        return self._idle.pop()

    def _release(self, instance: _Instance) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(instance)
                return
        self._idle.append(instance)

    # -- the processes ---------------------------------------------------------------------

    async def _process_for_prompts(self) -> ModelProcess:
        """A running process to prepare a prompt, idle if there is one. With none running,
        starts them all (the first request, or after crashes) and takes the first loaded;
        refuses at once while the pause after repeated failures lasts."""
        live = [i for i in self._instances if i.process is not None and i.process.alive]
        if live:
            chosen = next((i for i in live if i in self._idle), live[0])
            assert chosen.process is not None
            return chosen.process
        pause = self._next_start_at - time.monotonic()
        if pause > 0:
            raise ProviderError(self._paused_message(pause))
        pending = {self._start(i) for i in self._instances}
        error: BaseException = ProviderError(SHUT_DOWN)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if not task.cancelled():  # cancelled: close() is under way
                    if task.exception() is None:
                        return task.result()
                    error = task.exception() or error
        raise error

    async def _process_of(self, instance: _Instance) -> ModelProcess:
        """The instance's process, started (after the pause, if one is due) when it has none."""
        process = instance.process
        if process is not None and process.alive:
            return process
        task = self._start(instance)
        try:
            return await asyncio.shield(task)  # an answer leaving does not stop the load
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and not (current is not None and current.cancelling()):
                raise ProviderError(SHUT_DOWN) from None
            raise

    def _start(self, instance: _Instance) -> asyncio.Task[ModelProcess]:
        if instance.starting is None:
            task = asyncio.create_task(self._start_process(instance))

            def done(task: asyncio.Task[ModelProcess]) -> None:
                instance.starting = None
                if not task.cancelled():
                    task.exception()  # retrieved: the awaiting request (if any) reports it

            task.add_done_callback(done)
            instance.starting = task
        return instance.starting

    async def _start_process(self, instance: _Instance) -> ModelProcess:
        pause = self._next_start_at - time.monotonic()
        if pause > 0:
            await asyncio.sleep(pause)
        if self._closed:
            raise ProviderError(SHUT_DOWN)
        if not self.path.is_file():
            log.error("local model %s: the model file %s does not exist", self.name, self.path)
            self._problem, self._load_failed = f"the model file {self.path.name} does not exist", True
            raise ProviderError(self._problem)
        spawned = time.monotonic()
        try:
            process = await ModelProcess.start(
                name=self.name,
                path=self.path,
                threads=self.threads,
                context_size=self.context_size,
                on_exit=lambda process, returncode: self._exited(instance, process, returncode),
            )
        except ProviderError as exc:
            log.error("local model %s: %s", self.name, exc.message)
            self._problem, self._load_failed = exc.message, True
            self._failed_again()
            raise
        if self._closed:
            await process.terminate()
            raise ProviderError(SHUT_DOWN)
        instance.process = process
        if instance.crashed:
            instance.crashed = False
            self._restarts += 1
        self._load_failed = False
        log.info(
            "local model %s: loaded %s in %.0f ms (process %d, ready %.0f ms after it was started; "
            "%d threads, context %d tokens)",
            self.name,
            self.path.name,
            process.info["load_ms"],
            process.pid,
            (time.monotonic() - spawned) * 1000,
            self.threads,
            process.info["context"],
        )
        return process

    def _exited(self, instance: _Instance, process: ModelProcess, returncode: int) -> None:
        """A process ended: when we did not ask it to, count a crash and set the next pause."""
        if instance.process is not process:  # it never finished loading: _start_process reports it
            return
        instance.process = None
        if process.leaving:
            return
        reason = exit_reason(returncode)
        instance.crashed = True
        self._crashes += 1
        self._problem, self._load_failed = f"its process stopped unexpectedly ({reason})", False
        pause = self._failed_again()
        log.error(
            "local model %s: process %d stopped unexpectedly (%s)%s; %s",
            self.name,
            process.pid,
            reason,
            " while writing an answer" if process.generation is not None else "",
            f"the next starts in {pause:.0f} s at the earliest ({self._failures_in_a_row} failures in a row)"
            if pause
            else "the next request starts a fresh one",
        )

    def _failed_again(self) -> float:
        self._failures_in_a_row += 1
        pause = backoff_s(self._failures_in_a_row)
        self._next_start_at = time.monotonic() + pause
        return pause

    def _paused_message(self, pause: float) -> str:
        if self._load_failed:
            return self._problem
        return (
            f"the local model's process keeps stopping unexpectedly ({self._failures_in_a_row} times "
            f"in a row); it is started again in {math.ceil(pause)} s"
        )
