"""The llamacpp provider on a tiny random-weight GGUF the tests write themselves.

The tiny model writes printable ASCII, one character per token, and never ends a turn by
itself, so every answer runs to its token limit: lengths and counts are exact.
"""

from __future__ import annotations

import asyncio
import atexit
import itertools
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

from chatstream.providers.base import ChatMessage, ProviderError, Usage
from chatstream.providers.llamacpp import LlamaCppProvider
from tests.support.tiny_gguf import write_tiny_gguf

T = TypeVar("T")
HI: list[ChatMessage] = [{"role": "user", "content": "hi"}]
# <|im_start|> "user\nhi" <|im_end|> "\n" <|im_start|> "assistant\n": one token per byte or marker
HI_PROMPT_TOKENS = 1 + 7 + 1 + 1 + 1 + 10


def _close_llama_cpp_devnull() -> None:
    """llama_cpp opens /dev/null twice at import (to silence llama.cpp while it loads) and
    never closes it: under filterwarnings=error that ends the test run on two "unclosed
    file" warnings. Closed at exit, when nothing loads models any more."""
    utils = sys.modules.get("llama_cpp._utils")
    if utils is not None:
        utils.outnull_file.close()
        utils.errnull_file.close()


atexit.register(_close_llama_cpp_devnull)


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


def test_the_tiny_model_is_small_and_loads_fast(tiny: Path) -> None:
    size = tiny.stat().st_size
    assert 100_000 < size < 1_000_000

    async def body(provider: LlamaCppProvider) -> None:
        assert provider.stats()["loaded"] is False  # lazily, on the first request
        started = time.monotonic()
        await provider.open(HI)  # loads; the stream is never started, so nothing runs
        assert time.monotonic() - started < 2
        assert provider.stats()["loaded"] is True
        assert provider.is_local and provider.size_bytes == size

    with_provider(tiny, body)


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
        await until(lambda: provider.stats()["running"] == 0)  # the worker has returned
        return seen, provider.stats()

    seen, stats = with_provider(tiny, body, max_tokens=3000)
    assert 10 <= seen < 3000
    assert stats["tokens_after_stop"] <= 1  # the token being computed at the stop, no more
    assert stats["tokens"] < 3000


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
        await until(lambda: provider.stats()["running"] == 0)  # the worker returns just after its last item
        return results, [queued, provider.stats()]

    with caplog.at_level(logging.INFO, logger="chatstream.llamacpp"):
        (first, second), (queued, after) = with_provider(tiny, body, max_tokens=300)
    assert first[-1] == second[-1] == Usage(HI_PROMPT_TOKENS, 300)
    assert queued["running"] == 1 and queued["waiting"] == 1
    assert after["running"] == 0 and after["waiting"] == 0 and after["answers"] == 2
    # First come, first served: the second answer starts after the first has finished.
    assert events.index(("second", "delta")) > events.index(("first", "usage"))
    assert "a request waits its turn (1 waiting, 1 of 1 instances busy)" in caplog.text


def test_two_instances_answer_at_once(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> tuple[int, list[list[str | Usage]]]:
        both = asyncio.gather(collect(provider, HI), collect(provider, HI))
        most = 0
        while not both.done():
            most = max(most, int(provider.stats()["running"]))
            await asyncio.sleep(0.001)
        return most, await both

    most, answers = with_provider(tiny, body, max_tokens=1000, instances=2)
    assert most == 2
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


def test_a_question_too_long_for_the_context_is_refused(tiny: Path) -> None:
    async def body(provider: LlamaCppProvider) -> str:
        with pytest.raises(ProviderError) as refused:
            await provider.open([{"role": "user", "content": "y" * 500}])
        return refused.value.message

    message = with_provider(tiny, body, context_size=256)
    assert "too long for this model" in message and "256" in message


def test_a_missing_file_is_a_clear_error(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    async def body(provider: LlamaCppProvider) -> str:
        assert provider.size_bytes is None
        with pytest.raises(ProviderError) as refused:
            await provider.open(HI)
        return refused.value.message

    missing = tmp_path / "nowhere.gguf"
    assert with_provider(missing, body) == f"the model file {missing} does not exist"
    assert "no file at" in caplog.text


def test_a_file_that_is_not_a_model_is_a_clear_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"not a gguf file" * 100)

    async def body(provider: LlamaCppProvider) -> str:
        with pytest.raises(ProviderError) as refused:
            await provider.open(HI)
        return refused.value.message

    message = with_provider(bad, body)
    assert message.startswith("could not load the model bad.gguf")
    assert "could not load the model bad.gguf" in caplog.text


def test_closing_the_provider_stops_running_and_waiting_answers(tiny: Path) -> None:
    async def main() -> tuple[list[str | Usage] | BaseException, ...]:
        provider = LlamaCppProvider(name="tiny", path=tiny, threads=1, max_tokens=3000)
        running = asyncio.create_task(collect(provider, HI))
        await until(lambda: provider.stats()["running"] == 1)
        waiting = asyncio.create_task(collect(provider, HI))
        await until(lambda: provider.stats()["waiting"] == 1)
        started = time.monotonic()
        await provider.close()
        assert time.monotonic() - started < 2
        return tuple(await asyncio.gather(running, waiting, return_exceptions=True))

    running, waiting = asyncio.run(main())
    assert isinstance(waiting, ProviderError) and "shutting down" in waiting.message
    # The running answer was stopped short: it ends early, with the usage of what it wrote.
    assert isinstance(running, list) and isinstance(running[-1], Usage)
    assert running[-1].completion_tokens is not None and running[-1].completion_tokens < 3000
