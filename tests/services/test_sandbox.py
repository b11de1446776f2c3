"""services/sandbox.py: a job runs in a child process; its result, its exception, or why it was stopped."""

from __future__ import annotations

import asyncio
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest

from chatstream.services.sandbox import Limits, Sandbox, SandboxFailure
from tests.support import sandbox_jobs as jobs

T = TypeVar("T")
ROOMY = Limits(wall_s=30, cpu_s=30, memory_mb=256)


def run(body: Callable[[Sandbox], Awaitable[T]]) -> T:
    # pytest: what the main script (pytest's) imports, so that children don't import it again.
    return asyncio.run(
        body(Sandbox(preload=["pytest", "chatstream.services.sandbox", "tests.support.sandbox_jobs"]))
    )


def failure(job: Callable[..., object], *args: object, limits: Limits = ROOMY) -> str:
    async def body(sandbox: Sandbox) -> str:
        with pytest.raises(SandboxFailure) as failed:
            await sandbox.run(job, *args, limits=limits)
        return str(failed.value)

    return run(body)


def test_a_job_returns_its_result_from_another_process() -> None:
    async def body(sandbox: Sandbox) -> tuple[int, int]:
        return await sandbox.run(jobs.add, 2, 3, times=4, limits=ROOMY), await sandbox.run(
            jobs.pid, limits=ROOMY
        )

    total, child = run(body)
    assert total == 20
    assert child != os.getpid()


def test_an_exception_in_the_job_is_raised_here() -> None:
    async def body(sandbox: Sandbox) -> None:
        await sandbox.run(jobs.refuse, "not a PDF", limits=ROOMY)

    with pytest.raises(ValueError, match="not a PDF"):
        run(body)


def test_a_job_that_overruns_the_wall_clock_is_killed() -> None:
    started = time.monotonic()
    assert failure(jobs.sleep, 60, limits=Limits(wall_s=0.5, cpu_s=30, memory_mb=256)) == (
        "parsing took longer than 0.5 s"
    )
    assert time.monotonic() - started < 30


def test_a_job_that_spins_hits_the_cpu_limit() -> None:
    assert failure(jobs.spin, limits=Limits(wall_s=60, cpu_s=1, memory_mb=256)) == (
        "parsing took more than 1 s of CPU time"
    )


def test_a_job_that_allocates_too_much_hits_the_memory_limit() -> None:
    assert failure(jobs.hog, 2048, limits=Limits(wall_s=60, cpu_s=30, memory_mb=128)) == (
        "parsing needed more than 128 MiB"
    )


def test_the_same_job_within_its_memory_limit_succeeds() -> None:
    async def body(sandbox: Sandbox) -> int:
        return await sandbox.run(jobs.hog, 64, limits=Limits(wall_s=60, cpu_s=30, memory_mb=128))

    assert run(body) == 64


@pytest.mark.parametrize(("job", "signal_name"), [(jobs.abort, "SIGABRT"), (jobs.segfault, "SIGSEGV")])
def test_a_job_that_crashes_is_reported(job: Callable[[], None], signal_name: str) -> None:
    assert failure(job) == f"parsing crashed ({signal_name})"


def test_a_result_larger_than_the_cap_is_not_read() -> None:
    limits = Limits(wall_s=30, cpu_s=30, memory_mb=256, result_mb=1)
    assert failure(jobs.blob, 4, limits=limits) == "parsing produced more than 1 MiB of results"


def test_the_event_loop_keeps_running_while_jobs_run() -> None:
    async def body(sandbox: Sandbox) -> tuple[list[float], list[int]]:
        await sandbox.warm()
        ticks: list[float] = []
        spinning = asyncio.gather(
            *(sandbox.run(jobs.add, i, i, limits=ROOMY) for i in range(4)),
            asyncio.wait_for(sandbox.run(jobs.sleep, 5, limits=Limits(1, 30, 256)), 10),
            return_exceptions=True,
        )
        while not spinning.done():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)
        results = await spinning
        return ticks, [r for r in results if isinstance(r, int)]

    ticks, sums = run(body)
    assert sums == [0, 2, 4, 6]
    assert len(ticks) > 20
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.5
