"""Request dependencies: the services container and the authenticated user.

All are `async def` although none awaits: FastAPI runs plain `def` dependencies in a
worker thread, a thread hop per request for nothing.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chatstream.errors import InvalidToken
from chatstream.security import TokenClaims
from chatstream.services.container import Services


async def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


async def current_user(request: Request) -> TokenClaims:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("missing token: send the header Authorization: Bearer <token>")
    services: Services = request.app.state.services
    claims = services.tokens.decode(token.strip())
    await services.accounts.require_user(claims.user_id, claims.username)
    return claims


async def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[TokenClaims, Depends(current_user)]
ClientAddress = Annotated[str, Depends(client_address)]
