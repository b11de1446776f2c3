"""The JSON envelope every answer carries, and the handlers that turn errors into it."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException

from chatstream.errors import AppError

log = logging.getLogger("chatstream.api")


def ok(**fields: Any) -> JSONResponse:
    return JSONResponse({"status_code": 1000, "status_msg": "success", **fields})


def failure(code: int, http_status: int, msg: str, **extra: Any) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if http_status == 401 else None
    return JSONResponse(
        {"status_code": code, "status_msg": msg, **extra}, status_code=http_status, headers=headers
    )


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p != "body"]
    return ".".join(parts)


def describe_validation(exc: RequestValidationError, content_type: str | None = None) -> tuple[int, str]:
    """(HTTP status, message naming the field) for a request that failed validation."""
    problems = []
    for error in exc.errors():
        kind = error.get("type", "")
        if kind == "json_invalid":
            return 400, "invalid JSON body: " + str(error.get("ctx", {}).get("error", "cannot parse"))
        field = _field(tuple(error.get("loc", ())))
        if not field and isinstance(error.get("input"), bytes | bytearray):
            # The body was not parsed at all: it came without a JSON content type.
            got = f"got {content_type!r}" if content_type else "got none"
            problems.append(f"the body must be JSON sent with Content-Type: application/json ({got})")
        elif not field:
            problems.append("the body must be a JSON object")
        elif kind == "missing":
            problems.append(f"field '{field}' is required")
        else:
            problems.append(f"field '{field}': {error.get('msg', 'invalid')}")
    return 422, "invalid parameters: " + "; ".join(problems or ["invalid request"])


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AppError)
    async def _app_error(_request: Request, exc: AppError) -> Response:
        response = failure(exc.code, exc.http_status, exc.msg, **exc.extra)
        retry_after = exc.extra.get("retryAfter")
        if retry_after:
            response.headers["Retry-After"] = str(retry_after)
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        status, msg = describe_validation(exc, request.headers.get("content-type"))
        return failure(2001, status, msg)

    @app.exception_handler(HTTPException)
    async def _http(_request: Request, exc: HTTPException) -> Response:
        code = 4001 if exc.status_code >= 500 else 2001
        return failure(
            code,
            exc.status_code,
            str(exc.detail),
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = failure(4001, 500, "server busy: an unexpected error was logged")
        # Starlette re-raises after this answer and uvicorn then drops the connection: say so, or a
        # keep-alive client reuses it and its next request dies with a connection reset.
        response.headers["Connection"] = "close"
        return response
