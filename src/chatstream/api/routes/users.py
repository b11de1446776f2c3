"""Accounts: verification codes, registration, login."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from chatstream.api.deps import ClientAddress, ServicesDep
from chatstream.api.envelope import ok
from chatstream.schemas.users import CaptchaBody, LoginBody, RegisterBody

router = APIRouter(prefix="/user", tags=["users"])


@router.post("/captcha")
async def captcha(body: CaptchaBody, services: ServicesDep, client: ClientAddress) -> JSONResponse:
    """Send a 6-digit verification code to an e-mail address."""
    await services.accounts.send_code(body.email, client)
    return ok()


@router.post("/register")
async def register(body: RegisterBody, services: ServicesDep) -> JSONResponse:
    """Create an account; answers a token for it."""
    token, username = await services.accounts.register(
        email=body.email, password=body.password, captcha=body.captcha, username=body.username
    )
    return ok(token=token, username=username)


@router.post("/login")
async def login(body: LoginBody, services: ServicesDep, client: ClientAddress) -> JSONResponse:
    """Log in with a username or e-mail address."""
    token = await services.accounts.login(body.username, body.password, client)
    return ok(token=token)
