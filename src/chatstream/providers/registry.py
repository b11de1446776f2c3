"""Builds providers from settings and resolves the `modelType` a client sends."""

from __future__ import annotations

from dataclasses import dataclass

from chatstream.config import ModelConfig
from chatstream.errors import ServerBusy, UnknownModel
from chatstream.providers.base import ChatProvider
from chatstream.providers.llamacpp import STATES, LlamaCppProvider
from chatstream.providers.ollama import OllamaProvider
from chatstream.providers.openai_compat import OpenAICompatProvider

DEFAULT_ALIAS = "1"
# The seed's other numbers: "2" (documents) is the default model answering from the user's
# documents (services/answers.py); "3" (tools) is not served yet.
RESERVED_ALIASES = {"2": "chat over your documents", "3": "chat with tools"}


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    config: ModelConfig
    provider: ChatProvider


def build_provider(config: ModelConfig) -> ChatProvider:
    if config.provider == "llamacpp":
        assert config.path is not None  # ModelConfig checks it
        return LlamaCppProvider(
            name=config.id,
            path=config.path,
            threads=config.threads,
            context_size=config.context_size,
            max_tokens=config.max_tokens,
            instances=config.instances,
        )
    if config.provider == "openai":
        key = config.api_key.get_secret_value() if config.api_key else None
        return OpenAICompatProvider(
            base_url=config.base_url, model=config.model, api_key=key, read_timeout=config.read_timeout
        )
    return OllamaProvider(base_url=config.base_url, model=config.model, read_timeout=config.read_timeout)


LocalStats = dict[str, int | str | bool]


class ModelRegistry:
    local_states = STATES  # what a local model's `state` can be (/metrics has a gauge for each)

    def __init__(self, configs: list[ModelConfig]) -> None:
        ids = [c.id for c in configs]
        duplicates = {i for i in ids if ids.count(i) > 1}
        if duplicates:
            raise ValueError(f"model ids must be unique; repeated: {', '.join(sorted(duplicates))}")
        if DEFAULT_ALIAS in ids or set(ids) & RESERVED_ALIASES.keys():
            raise ValueError("model ids 1, 2 and 3 are the seed's aliases; give models other ids")
        self._models = {c.id: RegisteredModel(c, build_provider(c)) for c in configs}
        defaults = [c.id for c in configs if c.default]
        self.default_id = defaults[0] if defaults else (ids[0] if ids else None)

    @property
    def empty(self) -> bool:
        return not self._models

    def resolve(self, model_type: str) -> RegisteredModel:
        """The model for a client's modelType; "1" is the default model."""
        if self.default_id is None:
            raise ServerBusy(
                "no model is configured: set CHATSTREAM_OPENAI_BASE_URL and CHATSTREAM_OPENAI_MODEL "
                "(or CHATSTREAM_OLLAMA_URL and CHATSTREAM_OLLAMA_MODEL, or CHATSTREAM_GGUF_PATH) and restart",
                http_status=503,
            )
        model_id = self.default_id if model_type == DEFAULT_ALIAS else model_type
        model = self._models.get(model_id)
        if model is None:
            if model_type in RESERVED_ALIASES:
                raise UnknownModel(
                    f"modelType {model_type!r} ({RESERVED_ALIASES[model_type]}) is not enabled on this server"
                )
            known = ", ".join([DEFAULT_ALIAS, *self._models])
            raise UnknownModel(f"unknown modelType {model_type!r}; known: {known}")
        return model

    def listing(self) -> list[RegisteredModel]:
        return list(self._models.values())

    def local_stats(self) -> dict[str, LocalStats]:
        """Each local model's state, queue, processes and work so far, by model id."""
        return {
            model_id: model.provider.stats()
            for model_id, model in self._models.items()
            if isinstance(model.provider, LlamaCppProvider)
        }

    def local_states_described(self) -> dict[str, str]:
        """Each local model's state for a person: `ready`, or e.g. `restarting: its process
        stopped unexpectedly (signal 9, SIGKILL)`."""
        described = {}
        for model_id, stats in self.local_stats().items():
            state, problem = str(stats["state"]), stats["problem"]
            described[model_id] = (
                f"{state}: {problem}" if state in ("failed", "restarting") and problem else state
            )
        return described

    async def close(self) -> None:
        for model in self._models.values():
            await model.provider.close()
