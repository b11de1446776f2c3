"""Request dependencies: the services container and the authenticated user."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from chatstream.errors import InvalidToken
from chatstream.security import TokenClaims
from chatstream.services.container import Services


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def current_user(request: Request) -> TokenClaims:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("missing token: send the header Authorization: Bearer <token>")
    return get_services(request).tokens.decode(token.strip())


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


ServicesDep = Annotated[Services, Depends(get_services)]
CurrentUser = Annotated[TokenClaims, Depends(current_user)]
ClientAddress = Annotated[str, Depends(client_address)]
