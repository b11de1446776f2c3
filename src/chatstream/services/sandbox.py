"""Work that must not be able to take the server down, run in a child process with limits.

The parsers of uploaded files are native code (lxml) and Python fed by strangers: a crafted file
can make them crash, spin, or allocate gigabytes. Each job runs in a fresh process forked from
multiprocessing's fork server (started once, with the parsers already imported, so a job costs a
fork rather than an interpreter start; and forked from a single-threaded process, never from the
server's), under a CPU-time limit (RLIMIT_CPU), an address-space limit (RLIMIT_AS, counted above
what the process had when it started) and a wall-clock timeout after which it is killed. The
serving process only reads a pipe, without blocking its event loop or a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import pickle
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar, cast

log = logging.getLogger("chatstream.sandbox")

T = TypeVar("T")
READ_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    wall_s: float  # killed after this long
    cpu_s: int  # of CPU time
    memory_mb: int  # of address space beyond the fresh process's own
    result_mb: int = 512  # the most the server reads back


class SandboxFailure(Exception):
    """The job did not finish; str(error) says why, for a person ("parsing took longer than 60 s")."""


class Sandbox:
    def __init__(self, *, preload: list[str], what: str = "parsing") -> None:
        """`preload`: modules the fork server imports once, so that children start with them.

        They should include what the main script imports: every child runs the main script again
        (multiprocessing does, unless it is a package's `__main__`, as with `python -m chatstream`;
        Python 3.11's fork server ignores a request to preload `__main__`), which then costs about a
        millisecond instead of the imports' hundreds.
        """
        self._context = multiprocessing.get_context("forkserver")
        self._context.set_forkserver_preload(preload)
        self._what = what

    async def warm(self) -> None:
        """Starts the fork server now (about a second, once) rather than in the first upload."""
        from multiprocessing import forkserver

        await asyncio.to_thread(forkserver.ensure_running)

    async def run(self, job: Callable[..., T], /, *args: Any, limits: Limits, **kwargs: Any) -> T:
        """`job(*args, **kwargs)` in a child process: its result, or the exception it raised.

        `job` must be a module-level function (it is pickled by name). Raises SandboxFailure when
        the child overran a limit, crashed or was killed.
        """
        receive, send = self._context.Pipe(duplex=False)
        child = self._context.Process(target=_child, args=(send, limits, job, args, kwargs), daemon=True)
        try:
            await asyncio.to_thread(child.start)  # writes the pickled job to the child
        finally:
            send.close()
        try:
            try:
                payload = await asyncio.wait_for(_read_all(receive, limits.result_mb << 20), limits.wall_s)
            except TimeoutError:
                raise SandboxFailure(f"{self._what} took longer than {limits.wall_s:g} s") from None
            finally:
                if child.is_alive():
                    child.kill()
                await _ended(child)
            return cast(T, self._outcome(payload, child.exitcode, limits))
        finally:
            receive.close()
            with contextlib.suppress(ValueError):
                child.close()

    def _outcome(self, payload: bytes | None, exitcode: int | None, limits: Limits) -> object:
        what = self._what
        if payload is None:
            raise SandboxFailure(f"{what} produced more than {limits.result_mb} MiB of results")
        if payload:
            try:
                kind, value = pickle.loads(payload)
            except Exception:  # cut off as the child died: judged by how it ended, below
                kind, value = None, None
            if kind == "ok":
                return value
            if kind == "raised":
                raise value
            if kind == "memory":
                raise SandboxFailure(f"{what} needed more than {limits.memory_mb} MiB")
        if exitcode == -signal.SIGXCPU:
            raise SandboxFailure(f"{what} took more than {limits.cpu_s} s of CPU time")
        if exitcode == -signal.SIGKILL:
            raise SandboxFailure(f"{what} was killed by the system (out of memory?)")
        if exitcode is not None and exitcode < 0:
            raise SandboxFailure(f"{what} crashed ({signal.Signals(-exitcode).name})")
        raise SandboxFailure(f"{what} failed (exit status {exitcode})")


async def _read_all(receive: Connection, cap: int) -> bytes | None:
    """Everything the child writes until it closes its end; None past `cap` bytes."""
    loop = asyncio.get_running_loop()
    fd = receive.fileno()
    os.set_blocking(fd, False)
    parts: list[bytes] = []
    size = 0
    while True:
        readable = loop.create_future()
        loop.add_reader(fd, readable.set_result, None)
        try:
            await readable
        finally:
            loop.remove_reader(fd)
        while True:
            try:
                part = os.read(fd, READ_CHUNK)
            except BlockingIOError:
                break
            if not part:
                return b"".join(parts)
            size += len(part)
            if size > cap:
                return None
            parts.append(part)


async def _ended(child: multiprocessing.process.BaseProcess) -> None:
    """Waits for the child to exit without blocking the loop (its sentinel becomes readable)."""
    if child.exitcode is not None:
        return
    loop = asyncio.get_running_loop()
    ended = loop.create_future()

    def exited() -> None:
        if not ended.done():
            ended.set_result(None)

    loop.add_reader(child.sentinel, exited)
    try:
        if child.exitcode is None:  # it may have exited between the check and add_reader
            await ended
    finally:
        loop.remove_reader(child.sentinel)
    child.join(0)


def _child(
    send: Connection, limits: Limits, job: Callable[..., object], args: tuple[Any, ...], kwargs: Any
) -> None:
    """In the child: limits first, then the job; the outcome is pickled down the pipe."""
    _apply(limits)
    try:
        outcome: tuple[str, object] = ("ok", job(*args, **kwargs))
    except MemoryError:
        outcome = ("memory", None)
    except Exception as exc:
        outcome = ("raised", exc)
    try:
        payload = pickle.dumps(outcome, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:
        payload = pickle.dumps(("memory", None))
    except Exception as exc:  # an exception that does not pickle
        payload = pickle.dumps(("raised", RuntimeError(f"{type(exc).__name__}: {exc}")))
    view = memoryview(payload)
    fd = send.fileno()
    while view:
        view = view[os.write(fd, view) :]
    send.close()


def _apply(limits: Limits) -> None:
    # Below the server in the CPU's queue: parsing may take longer, answers and pings must not.
    os.nice(10)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # SIGXCPU at the soft limit ends the process; the hard limit (SIGKILL) is a backstop.
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_s, limits.cpu_s + 5))
    address_space = _address_space() + (limits.memory_mb << 20)
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))


def _address_space() -> int:
    """This process's virtual size now, in bytes (the interpreter and the preloaded parsers)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0
