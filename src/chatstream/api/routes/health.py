"""Liveness, readiness and the public configuration a client needs before logging in."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chatstream import __version__
from chatstream.api.deps import ServicesDep
from chatstream.api.envelope import failure, ok

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> JSONResponse:
    """The process is up."""
    return ok(status="up")


@router.get("/readyz")
async def readyz(services: ServicesDep) -> JSONResponse:
    """The database (and Redis, when configured) answer; says whether a model is configured."""
    state = await services.ready()
    down = [f"{name} {state[name]}" for name in ("database", "redis") if state.get(name, "ok") != "ok"]
    if down:
        return failure(4001, 503, "not ready: " + ", ".join(down), checks=state)
    return ok(status="ready", checks=state)


@router.get("/config")
async def config(services: ServicesDep) -> JSONResponse:
    """What a client needs before login: whether registration asks for an e-mail code."""
    return ok(version=__version__, emailVerification=services.settings.email_verification)
