"""Everything a running server holds, built once at start and closed at stop."""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.providers.registry import ModelRegistry
from chatstream.rag.embeddings import Embedder, LocalMiniLM, OpenAIEmbeddings
from chatstream.rag.parsing import PARSER_MODULES
from chatstream.security import PasswordHasher, TokenCodec
from chatstream.services.accounts import AccountService
from chatstream.services.answers import AnswerService
from chatstream.services.chats import ChatService
from chatstream.services.documents import DocumentService
from chatstream.services.ingestion import IngestionService
from chatstream.services.mailer import ConsoleMailer, Mailer, SmtpMailer
from chatstream.services.retrieval import RetrievalService
from chatstream.services.sandbox import Sandbox
from chatstream.stores.answer_bus_redis import RedisAnswerBus
from chatstream.stores.data_dir import make_private
from chatstream.stores.db import create_engine, migrate, session_factory
from chatstream.stores.search_index import SearchIndex
from chatstream.streaming import frames
from chatstream.streaming.journal import open_journal

log = logging.getLogger("chatstream")


def jwt_secret(settings: Settings) -> str:
    """CHATSTREAM_JWT_SECRET, or one generated on first start and kept in the data dir."""
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    path: Path = settings.data_dir / "jwt-secret"
    if path.exists():
        return path.read_text().strip()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(48)
    path.touch(mode=0o600)
    path.write_text(secret + "\n")
    log.info("generated a JWT secret in %s", path)
    return secret


def make_mailer(settings: Settings) -> Mailer | None:
    if settings.email_verification == "smtp":
        return SmtpMailer(settings)
    if settings.email_verification == "console":
        return ConsoleMailer()
    return None


def make_embedder(settings: Settings) -> Embedder:
    if settings.embedder == "openai":
        key = settings.embedding_api_key.get_secret_value() if settings.embedding_api_key else None
        return OpenAIEmbeddings(
            base_url=settings.embedding_base_url, api_key=key, model=settings.embedding_model
        )
    return LocalMiniLM(threads=settings.embedding_threads, precision=settings.embedding_precision)


@dataclass(slots=True)
class Services:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: TokenCodec
    models: ModelRegistry
    accounts: AccountService
    chats: ChatService
    answers: AnswerService
    documents: DocumentService
    ingestion: IngestionService
    retrieval: RetrievalService
    bus: RedisAnswerBus | None

    @classmethod
    async def start(cls, settings: Settings, *, serving: bool = True) -> Services:
        """Connects, migrates and builds the services; `serving=False` (the CLI) leaves answers alone."""
        make_private(settings.data_dir)
        engine = create_engine(settings.resolved_database_url())
        await migrate(engine)
        if not settings.database_url:
            make_private(settings.data_dir)  # the database file SQLite just created, with the umask's mode
        sessions = session_factory(engine)
        tokens = TokenCodec(jwt_secret(settings), settings.jwt_ttl_hours * 3600)
        hasher = PasswordHasher(time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib)
        models = ModelRegistry(settings.configured_models())
        if serving and models.empty:
            log.warning(
                "no model is configured: chat requests will be refused until CHATSTREAM_OPENAI_BASE_URL "
                "and CHATSTREAM_OPENAI_MODEL (or CHATSTREAM_OLLAMA_URL and CHATSTREAM_OLLAMA_MODEL, or "
                "CHATSTREAM_GGUF_PATH) are set"
            )
        instance_id = uuid.uuid4().hex
        bus = None
        if settings.redis_url:
            bus = RedisAnswerBus(
                settings.redis_url,
                instance_id=instance_id,
                retention_s=settings.answer_log_retention_s,
                max_entries=settings.answer_log_max_frames,
                heartbeat_s=settings.heartbeat_s,
                instance_ttl_s=settings.instance_ttl_s,
                ping=frames.PING,
            )
        # Parsers of uploaded files run in sandboxed children, forked from a fork server that has them
        # loaded (and what the `chatstream` console script imports, which children run again).
        sandbox = Sandbox(
            preload=[
                "chatstream.cli",
                "chatstream.services.sandbox",
                "chatstream.rag.parsing",
                *PARSER_MODULES,
            ]
        )
        documents = DocumentService(
            settings=settings,
            sessions=sessions,
            embedder=make_embedder(settings),
            index=SearchIndex.for_dialect(engine.dialect.name),
            sandbox=sandbox,
            instance_id=instance_id,
        )
        ingestion = IngestionService(
            settings=settings, sessions=sessions, documents=documents, sandbox=sandbox
        )
        retrieval = RetrievalService(settings=settings, sessions=sessions, documents=documents)
        answers = AnswerService(
            settings=settings,
            sessions=sessions,
            models=models,
            bus=bus,
            instance_id=instance_id,
            journal=open_journal(settings, instance_id) if serving else None,
            retrieval=retrieval,
        )
        if bus is not None and serving:
            await bus.start(on_stop=answers.stop_local)
        elif bus is not None:  # the CLI: its document jobs must not look abandoned to the servers
            await bus.start_liveness()
        if serving:
            await answers.start_tickers()
            await ingestion.start(bus.live_instances if bus is not None else None)
        return cls(
            settings=settings,
            engine=engine,
            sessions=sessions,
            tokens=tokens,
            models=models,
            accounts=AccountService(
                settings=settings,
                sessions=sessions,
                hasher=hasher,
                tokens=tokens,
                mailer=make_mailer(settings),
            ),
            chats=ChatService(sessions),
            answers=answers,
            documents=documents,
            ingestion=ingestion,
            retrieval=retrieval,
            bus=bus,
        )

    async def ready(self) -> dict[str, str]:
        """What /readyz reports: each dependency's state."""
        state = {"database": "ok", "models": "ok" if not self.models.empty else "none configured"}
        try:
            async with self.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception as exc:
            state["database"] = f"unreachable: {type(exc).__name__}"
        if self.bus is not None:
            state["redis"] = "ok" if await self.bus.ping() else "unreachable"
        return state

    async def close(self) -> None:
        await self.answers.shutdown()
        await self.ingestion.close()
        await self.documents.close()
        if self.bus is not None:
            await self.bus.close()
        await self.models.close()
        await self.engine.dispose()
