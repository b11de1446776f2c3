"""The llamacpp provider on a tiny random-weight GGUF the tests write themselves.

The tiny model writes printable ASCII, one character per token, and never ends a turn by
itself, so every answer runs to its token limit: lengths and counts are exact. Every answer
here is computed by a real child process (llama.cpp never runs in the test process).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import uvloop

from chatstream.providers.base import ChatMessage, ProviderError, Usage
from chatstream.providers.llamacpp import LlamaCppProvider
from tests.support.tiny_gguf import write_tiny_gguf

T = TypeVar("T")
HI: list[ChatMessage] = [{"role": "user", "content": "hi"}]
# <|im_start|> "user\nhi" <|im_end|> "\n" <|im_start|> "assistant\n": one token per byte or marker
HI_PROMPT_TOKENS = 1 + 7 + 1 + 1 + 1 + 10
KILLED = "the local model's process stopped unexpectedly (signal 9, SIGKILL)"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny.gguf")


def with_provider(path: Path, body: Callable[[LlamaCppProvider], Awaitable[T]], **settings: Any) -> T:
    """Runs `body` on a fresh provider in a fresh event loop, and closes the provider."""

    async def main() -> T:
        provider = LlamaCppProvider(name="tiny", path=path, **{"threads": 1, **settings})
        try:
            return await body(provider)
        finally:
            await provider.close()

    return asyncio.run(main())


async def collect(provider: LlamaCppProvider, messages: list[ChatMessage]) -> list[str | Usage]:
    stream = await provider.open(messages)
    try:
        return [item async for item in stream]
    finally:
        await stream.aclose()


async def until(condition: Callable[[], bool], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.002)


def the_pid(provider: LlamaCppProvider) -> int:
    [pid] = provider.process_ids()
    return pid


def gone(pid: int) -> bool:
    """The process has ended (reaped, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def maps_of(pid: int | str) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


# -- what an answer is ----------------------------------------------------------------------------


def test_the_tiny_model_loads_fast_in_a_child_process(tiny: Path) -> None:
    size = tiny.stat().st_size
    assert 100_000 < size < 1_000_000

    async def body(provider: LlamaCppProvider) -> None:
        stats = provider.stats()
        assert (stats["loaded"], stats["state"], stats["processes"]) == (False, "not started", 0)  # lazily
        started = time.monotonic()
        await provider.open(HI)  # starts the process; the stream is never started, so nothing runs
        assert time.monotonic() - started < 5  # a Python start, llama_cpp's import, a tiny load
        stats = provider.stats()
        assert (stats["loaded"], stats["state"], stats["processes"]) == (True, "ready", 1)
        assert provider.is_local and provider.size_bytes == size
        pid = the_pid(provider)
        assert parent_of(pid) == os.getpid()
        assert str(tiny) in maps_of(pid)  # the weights are mapped, so processes share them

    with_provider(tiny, body)
    assert "llama_cpp" not in sys.modules  # this process never ran llama.cpp ...
    assert "libllama" not in maps_of("self") and "libggml" not in maps_of("self")  # ... nor loaded it


def test_streams_deltas_then_usage(tiny: Path) -> None:
    items = with_provider(tiny, lambda p: collect(p, HI), max_tokens=40)
    *deltas, usage = items
    assert deltas and all(type(d) is str and d for d in deltas)
    text = "".join(deltas)  # type: ignore[arg-type]
    assert len(text) == 40 and text.isascii() and text.isprintable()
    # The prompt is the model's chat template, its markers read as special tokens.
    assert usage == Usage(prompt_tokens=HI_PROMPT_TOKENS, completion_tokens=40)


def test_a_system_prompt_and_history_go_through_the_template(tiny: Path) -> None:
    messages: list[ChatMessage] = [
        {"role": "system", "content": "Be-brief."},
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "hi"},
    ]
    *_, usage = with_provider(tiny, lambda p: collect(p, messages), max_tokens=3)
    # (No spaces: the llama tokenizer writes a space as "▁", three byte tokens here.)
    # Four turns of <|im_start|> role "\n" content <|im_end|> "\n", then the assistant's opening.
    turns = [("system", "Be-brief."), ("user", "hi"), ("assistant", "hello"), ("user", "hi")]
    expected = sum(1 + len(role) + 1 + len(content) + 1 + 1 for role, content in turns) + 1 + 10
    assert usage == Usage(prompt_tokens=expected, completion_tokens=3)


def test_max_tokens_is_capped_by_the_context(tiny: Path) -> None:
    *_, usage = with_provider(tiny, lambda p: collect(p, HI), context_size=256, max_tokens=1000)
    assert usage == Usage(HI_PROMPT_TOKENS, 256 - HI_PROMPT_TOKENS)


def test_old_turns_are_dropped_to_fit_the_context(tiny: Path) -> None:
    old = "x" * 60
    messages: list[ChatMessage] = [{"role": "system", "content": "sys"}]
    for _ in range(5):
        messages += [{"role": "user", "content": old}, {"role": "assistant", "content": old}]
    messages.append({"role": "user", "content": "hi"})
    *_, usage = with_provider(tiny, lambda p: collect(p, messages), context_size=256, max_tokens=64)
    assert isinstance(usage, Usage) and usage.prompt_tokens is not None
    assert usage.prompt_tokens <= 256 - 64  # the oldest turns went, the system prompt and question stayed
    assert usage.completion_tokens == 64


def test_a_question_too_long_is_refused_at_once_even_while_the_instance_is_busy(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> str:
        running = asyncio.create_task(collect(provider, HI))
        await until(lambda: provider.stats()["running"] == 1)
        with pytest.raises(ProviderError) as refused:
            await provider.open([{"role": "user", "content": "y" * 500}])
        assert not running.done()  # refused by the busy process beside its answer, not after it
        assert provider.stats()["waiting"] == 0
        running.cancel()
        return refused.value.message

    message = with_provider(tiny, body, context_size=256, max_tokens=3000)
    assert "too long for this model" in message and "256" in message


def test_a_missing_file_is_a_clear_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(provider: LlamaCppProvider) -> tuple[str, dict[str, Any]]:
        assert provider.size_bytes is None
        with pytest.raises(ProviderError) as refused:
            await provider.open(HI)
        return refused.value.message, provider.stats()

    missing = tmp_path / "nowhere.gguf"
    message, stats = with_provider(missing, body)
    # The user is told which model; only the log has the server's path.
    assert message == "the model file nowhere.gguf does not exist"
    assert stats["state"] == "failed" and stats["problem"] == message and stats["processes"] == 0
    assert (
        f"no file at {missing}" in caplog.text and f"the model file {missing} does not exist" in caplog.text
    )


def test_a_file_that_is_not_a_model_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file" * 100)

    async def body(provider: LlamaCppProvider) -> tuple[str, dict[str, Any]]:
        with pytest.raises(ProviderError) as refused:
            await provider.open(HI)
        return refused.value.message, provider.stats()

    message, stats = with_provider(bad, body)
    assert message.startswith("could not load the model bad.gguf")
    assert str(tmp_path) not in message
    assert "could not load the model bad.gguf" in caplog.text
    assert stats["state"] == "failed" and stats["processes"] == 0 and stats["crashes"] == 0


# -- stopping, queueing, the event loop --------------------------------------------------------------


def test_stopping_mid_answer_stops_generation_within_one_token(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> tuple[int, dict[str, Any]]:
        stream = await provider.open(HI)
        seen = 0

        async def read() -> None:  # how an answer task reads (streaming/run.py)
            nonlocal seen
            try:
                async for item in stream:
                    seen += len(item) if isinstance(item, str) else 0
            finally:
                await stream.aclose()

        task = asyncio.create_task(read())
        await until(lambda: seen >= 10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await until(lambda: provider.stats()["running"] == 0)  # the process said the answer ended
        return seen, provider.stats()

    seen, stats = with_provider(tiny, body, max_tokens=3000)
    assert 10 <= seen < 3000
    assert stats["tokens_after_stop"] <= 1  # the token being computed at the stop, no more
    assert stats["tokens"] < 3000
    assert stats["processes"] == 1 and stats["crashes"] == 0  # stopped, not killed


def test_closing_the_stream_stops_generation(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> dict[str, Any]:
        stream = await provider.open(HI)
        first = await anext(stream)
        assert isinstance(first, str) and first
        await stream.aclose()
        await until(lambda: provider.stats()["running"] == 0)
        return provider.stats()

    stats = with_provider(tiny, body, max_tokens=3000)
    assert stats["tokens_after_stop"] <= 1 and stats["tokens"] < 3000


def test_two_requests_on_one_instance_take_turns(tiny: Path, caplog: pytest.LogCaptureFixture) -> None:
    events: list[tuple[str, str]] = []

    async def answer(provider: LlamaCppProvider, name: str) -> list[str | Usage]:
        stream = await provider.open(HI)
        items: list[str | Usage] = []
        try:
            async for item in stream:
                events.append((name, "usage" if isinstance(item, Usage) else "delta"))
                items.append(item)
        finally:
            await stream.aclose()
        return items

    async def body(provider: LlamaCppProvider) -> tuple[list[Any], list[dict[str, Any]]]:
        first = asyncio.create_task(answer(provider, "first"))
        await until(lambda: provider.stats()["running"] == 1)
        second = asyncio.create_task(answer(provider, "second"))
        await until(lambda: provider.stats()["waiting"] == 1)
        queued = provider.stats()
        results = await asyncio.gather(first, second)
        await until(lambda: provider.stats()["running"] == 0)
        return results, [queued, provider.stats()]

    with caplog.at_level(logging.INFO, logger="chatstream.llamacpp"):
        (first, second), (queued, after) = with_provider(tiny, body, max_tokens=300)
    assert first[-1] == second[-1] == Usage(HI_PROMPT_TOKENS, 300)
    assert queued["running"] == 1 and queued["waiting"] == 1
    assert after["running"] == 0 and after["waiting"] == 0 and after["answers"] == 2
    assert after["processes"] == 1  # one instance, one process, both answers
    # First come, first served: the second answer starts after the first has finished.
    assert events.index(("second", "delta")) > events.index(("first", "usage"))
    assert "a request waits its turn (1 waiting, 1 of 1 instances busy)" in caplog.text
    assert "loaded tiny.gguf in" in caplog.text


def test_two_instances_are_two_processes_that_answer_at_once_and_share_the_weights(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> tuple[int, list[list[str | Usage]], list[int]]:
        both = asyncio.gather(collect(provider, HI), collect(provider, HI))
        most = 0
        while not both.done():
            most = max(most, int(provider.stats()["running"]))
            await asyncio.sleep(0.001)
        pids = provider.process_ids()
        for pid in pids:
            assert str(tiny) in maps_of(pid)  # mapped by each: one copy in the page cache
        return most, await both, pids

    most, answers, pids = with_provider(tiny, body, max_tokens=1000, instances=2)
    assert most == 2 and len(set(pids)) == 2
    assert [a[-1] for a in answers] == [Usage(HI_PROMPT_TOKENS, 1000)] * 2


def test_the_event_loop_keeps_ticking_while_an_answer_is_computed(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> tuple[list[float], int]:
        ticks: list[float] = []
        answer = asyncio.create_task(collect(provider, HI))
        while not answer.done():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)
        items = await answer
        return ticks, len(items)

    ticks, n_items = with_provider(tiny, body, max_tokens=2500)
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert len(ticks) > 20  # the answer took a while ...
    assert max(gaps) < 0.1, max(gaps)  # ... and the 10 ms ticker never stalled
    assert n_items > 2


def test_closing_the_provider_stops_answers_and_ends_its_processes(tiny: Path) -> None:
    async def main() -> tuple[list[str | Usage] | BaseException, list[str | Usage] | BaseException, int]:
        provider = LlamaCppProvider(name="tiny", path=tiny, threads=1, max_tokens=3000)
        running = asyncio.create_task(collect(provider, HI))
        await until(lambda: provider.stats()["running"] == 1)
        waiting = asyncio.create_task(collect(provider, HI))
        await until(lambda: provider.stats()["waiting"] == 1)
        pid = the_pid(provider)
        started = time.monotonic()
        await provider.close()
        assert time.monotonic() - started < 2
        assert provider.process_ids() == [] and provider.stats()["state"] == "stopped"
        first, second = await asyncio.gather(running, waiting, return_exceptions=True)
        return first, second, pid

    running, waiting, pid = asyncio.run(main())
    assert isinstance(waiting, ProviderError) and "shutting down" in waiting.message
    # The running answer was stopped short: it ends early, with the usage of what it wrote.
    assert isinstance(running, list) and isinstance(running[-1], Usage)
    assert running[-1].completion_tokens is not None and running[-1].completion_tokens < 3000
    assert gone(pid)


# -- processes that die --------------------------------------------------------------------------------


def test_a_killed_process_fails_only_its_answer_and_the_next_request_gets_a_fresh_one(
    tiny: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async def body(provider: LlamaCppProvider) -> None:
        stream = await provider.open(HI)
        pid = the_pid(provider)
        received = ""
        with pytest.raises(ProviderError) as failed:
            async for item in stream:
                assert isinstance(item, str)
                received += item
                if len(received) >= 10 and not gone(pid):
                    os.kill(pid, signal.SIGKILL)
        assert failed.value.message == KILLED  # user-safe: no path, no traceback
        assert 10 <= len(received) < 3000  # the text before the crash was all delivered
        await until(lambda: gone(pid))
        stats = provider.stats()
        assert (stats["state"], stats["processes"], stats["crashes"], stats["running"]) == (
            "restarting",
            0,
            1,
            0,
        )
        assert stats["problem"] == "its process stopped unexpectedly (signal 9, SIGKILL)"
        assert stats["next_start_in_s"] == 0  # one crash: no pause

        *deltas, usage = await collect(provider, HI)
        assert usage == Usage(HI_PROMPT_TOKENS, 3000) and len("".join(map(str, deltas))) == 3000
        stats = provider.stats()
        assert (stats["state"], stats["processes"], stats["restarts"]) == ("ready", 1, 1)
        assert the_pid(provider) != pid

    with_provider(tiny, body, max_tokens=3000)
    assert "stopped unexpectedly (signal 9, SIGKILL) while writing an answer" in caplog.text


def test_answers_waiting_for_a_process_that_dies_are_answered_by_a_fresh_one(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> tuple[BaseException | list[str | Usage], ...]:
        first = asyncio.create_task(collect(provider, HI))
        await until(lambda: provider.stats()["running"] == 1)
        second = asyncio.create_task(collect(provider, HI))
        await until(lambda: provider.stats()["waiting"] == 1)
        os.kill(the_pid(provider), signal.SIGKILL)
        return tuple(await asyncio.gather(first, second, return_exceptions=True))

    first, second = with_provider(tiny, body, max_tokens=3000)
    assert isinstance(first, ProviderError) and first.message == KILLED
    assert isinstance(second, list) and second[-1] == Usage(HI_PROMPT_TOKENS, 3000)


def test_a_process_that_keeps_dying_is_restarted_after_a_growing_pause(tiny: Path) -> None:
    async def start_and_kill(provider: LlamaCppProvider) -> None:
        await provider.open(HI)
        pid = the_pid(provider)
        os.kill(pid, signal.SIGKILL)
        await until(lambda: provider.stats()["processes"] == 0)

    async def body(provider: LlamaCppProvider) -> None:
        await start_and_kill(provider)  # one crash: the next request starts a fresh one at once
        await start_and_kill(provider)  # two in a row: a pause of 1 s before the next
        stats = provider.stats()
        assert (stats["state"], stats["failures_in_a_row"], stats["next_start_in_s"]) == ("restarting", 2, 1)
        with pytest.raises(ProviderError) as paused:
            await provider.open(HI)  # refused at once, not left hanging
        assert "keeps stopping unexpectedly (2 times in a row)" in paused.value.message
        await until(lambda: provider.stats()["next_start_in_s"] == 0, within=3)
        await start_and_kill(provider)  # three in a row: 2 s
        assert provider.stats()["next_start_in_s"] == 2
        await until(lambda: provider.stats()["next_start_in_s"] == 0, within=4)
        *_, usage = await collect(provider, HI)  # a finished answer: healthy again
        stats = provider.stats()
        assert usage == Usage(HI_PROMPT_TOKENS, 20)
        assert (stats["state"], stats["failures_in_a_row"], stats["crashes"], stats["restarts"]) == (
            "ready",
            0,
            3,
            3,
        )

    with_provider(tiny, body, max_tokens=20)


def test_a_process_that_dies_while_loading_is_a_clear_error_and_the_next_request_retries(
    tiny: Path,
) -> None:
    async def body(provider: LlamaCppProvider) -> None:
        opening = asyncio.create_task(provider.open(HI))
        await until(lambda: bool(loading_children()))  # spawned, not yet loaded: Python is starting
        assert provider.stats()["state"] == "starting"
        [pid] = loading_children()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ProviderError) as failed:
            await opening
        assert failed.value.message == "the local model's process stopped while loading (signal 9, SIGKILL)"
        stats = provider.stats()
        assert (stats["state"], stats["failures_in_a_row"], stats["processes"]) == ("failed", 1, 0)
        *_, usage = await collect(provider, HI)  # one failure: no pause
        assert usage == Usage(HI_PROMPT_TOKENS, 5) and provider.stats()["state"] == "ready"

    with_provider(tiny, body, max_tokens=5)


def loading_children() -> list[int]:
    """This test process's model processes."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                is_model = b"llamacpp_child" in (entry / "cmdline").read_bytes()
                if is_model and parent_of(int(entry.name)) == os.getpid() and not gone(int(entry.name)):
                    found.append(int(entry.name))
            except (OSError, IndexError):  # ended meanwhile
                continue
    return found


def test_a_process_only_keeps_its_socket_and_stdio(tiny: Path) -> None:
    """Nothing the server holds (its listening socket, its files) stays open in a model process,
    even when it is inheritable and the loop is uvloop (which, unlike asyncio's, spawns without
    closing inherited descriptors)."""
    listening = socket.create_server(("127.0.0.1", 0))
    listening.set_inheritable(True)  # the worst case: e.g. a socket handed over by systemd

    async def main() -> dict[str, str]:
        provider = LlamaCppProvider(name="tiny", path=tiny, threads=1)
        try:
            await provider.open(HI)
            return open_fds(the_pid(provider))
        finally:
            await provider.close()

    try:
        fds = uvloop.run(main())
    finally:
        listening.close()
    others = {fd: target for fd, target in fds.items() if fd not in ("0", "1", "2")}
    assert len(others) == 1 and next(iter(others.values())).startswith("socket:"), fds


def open_fds(pid: int) -> dict[str, str]:
    return {fd.name: os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()}


def test_a_process_dies_with_the_server_even_on_sigkill(tiny: Path) -> None:
    server = textwrap.dedent(
        """
        import asyncio, sys
        from pathlib import Path
        from chatstream.providers.llamacpp import LlamaCppProvider

        async def main():
            provider = LlamaCppProvider(name="tiny", path=Path(sys.argv[1]), threads=1)
            await provider.open([{"role": "user", "content": "hi"}])
            print(provider.process_ids()[0], flush=True)
            await asyncio.sleep(60)

        asyncio.run(main())
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", server, str(tiny)], stdout=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        child = int(proc.stdout.readline())
        assert parent_of(child) == proc.pid
    finally:
        proc.kill()  # no shutdown code runs: only the kernel can tell the child
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    deadline = time.monotonic() + 5
    while not gone(child):
        assert time.monotonic() < deadline, f"process {child} outlived its server"
        time.sleep(0.01)
