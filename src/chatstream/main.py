"""The application factory: settings in, a FastAPI app out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from chatstream import __version__
from chatstream.api import web
from chatstream.api.body_limit import BodyLimitMiddleware
from chatstream.api.envelope import install_error_handlers
from chatstream.api.routes import chat, documents, health, stream, users
from chatstream.config import Settings, get_settings
from chatstream.services.container import Services

API_PREFIXES = ("/api/v1", "/api")  # the seed's production client calls /api/AI/...


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await Services.start(settings)
        app.state.services = services
        try:
            yield
        finally:
            await services.close()

    app = FastAPI(title="chatstream", version=__version__, lifespan=lifespan)
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.max_body_bytes,
        upload_paths=documents.UPLOAD_PATHS,
        # The file's limit is checked (with a clearer message) by the service; this bounds the whole body.
        upload_max_bytes=settings.document_max_bytes + 64 * 1024,
    )
    app.include_router(health.router)
    for prefix in API_PREFIXES:
        for router in (users.router, chat.router, stream.router, documents.router, health.router):
            app.include_router(router, prefix=prefix, include_in_schema=prefix == API_PREFIXES[0])
    app.include_router(web.router)  # the web UI at /, after the API so it never shadows it
    return app
