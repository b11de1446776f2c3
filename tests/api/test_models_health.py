"""Models list, health and readiness, and a server with no model configured."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import Api, register
from tests.support.server import ServerProcess
from tests.support.upstream import StandInUpstream


def test_models_list_names_the_configured_models(user: Api) -> None:
    models = user.get("/AI/chat/models").json()["models"]
    assert [(m["type"], m["label"], m["isDefault"], m["available"]) for m in models] == [
        ("openai", "stand-in", True, True),
        ("ollama", "stand-in-ollama", False, True),
    ]


def test_models_list_needs_a_token(anonymous: Api) -> None:
    response = anonymous.get("/AI/chat/models")
    assert response.status_code == 401 and response.json()["status_code"] == 2006


def test_health_and_readiness(server: ServerProcess) -> None:
    assert httpx.get(server.url + "/healthz").json()["status"] == "up"
    ready = httpx.get(server.url + "/readyz").json()
    assert ready["status_code"] == 1000 and ready["checks"] == {"database": "ok", "models": "ok"}
    assert httpx.get(server.api + "/readyz").status_code == 200


def test_the_api_key_is_sent_to_the_upstream(user: Api, upstream: StandInUpstream) -> None:
    user.ask_new("/echo key check")
    assert upstream.requests[-1]["authorization"] == "Bearer sk-test-key"


@pytest.fixture(scope="module")
def modelless(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = ServerProcess(
        tmp_path_factory.mktemp("modelless"),
        # Without this the server offers the bundled local model (tests/api/test_local_model.py).
        {"CHATSTREAM_EMAIL_VERIFICATION": "off", "CHATSTREAM_DEFAULT_LOCAL_MODEL": "off"},
    ).start()
    yield proc
    proc.stop()


def test_without_a_model_the_server_starts_and_says_so(modelless: ServerProcess) -> None:
    assert "no model is configured" in modelless.log()
    ready = httpx.get(modelless.url + "/readyz").json()
    assert ready["checks"]["models"] == "none configured"
    member = register(modelless)
    response = member.post("/AI/chat/send-stream-new-session", {"question": "hello", "modelType": "1"})
    assert response.status_code == 503
    assert response.json()["status_code"] == 4001
    assert "CHATSTREAM_OPENAI_BASE_URL" in response.json()["status_msg"]
    assert member.get("/AI/chat/sessions").json()["sessions"] == []
    assert member.get("/AI/chat/models").json()["models"] == []


def test_models_from_a_toml_file(tmp_path: Path, upstream: StandInUpstream) -> None:
    models_file = tmp_path / "models.toml"
    models_file.write_text(
        f"""
[[models]]
id = "fast"
label = "Fast model"
provider = "openai"
base_url = "{upstream.base_url}"
model = "small"

[[models]]
id = "local-llama"
label = "Llama via Ollama"
provider = "ollama"
base_url = "{upstream.ollama_url}"
model = "llama3"
default = true
"""
    )
    env = {"CHATSTREAM_MODELS_FILE": str(models_file), "CHATSTREAM_EMAIL_VERIFICATION": "off"}
    proc = ServerProcess(tmp_path / "data", env).start()
    try:
        member = register(proc)
        models = member.get("/AI/chat/models").json()["models"]
        assert [(m["type"], m["isDefault"]) for m in models] == [("fast", False), ("local-llama", True)]
        member.ask_new("/echo via alias one")
        assert upstream.requests[-1]["path"] == "/api/chat"
        assert upstream.requests[-1]["body"]["model"] == "llama3"
        member.ask_new("/echo by id", model="fast")
        assert upstream.requests[-1]["body"]["model"] == "small"
    finally:
        proc.stop()


def test_env_configured_server_uses_the_default_for_alias_one(user: Api, upstream: StandInUpstream) -> None:
    user.ask_new("/echo hi")
    assert upstream.requests[-1]["path"] == "/v1/chat/completions"
    assert upstream.requests[-1]["body"]["model"] == "stand-in"
    assert upstream.requests[-1]["body"]["stream"] is True
