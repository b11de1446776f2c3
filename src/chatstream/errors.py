"""The API's error codes (API.md's table); nothing else defines them."""

from __future__ import annotations


class AppError(Exception):
    """An error the client sees as {status_code, status_msg} with an HTTP status."""

    code = 4001
    http_status = 500
    default_msg = "server busy"

    def __init__(self, msg: str | None = None, *, http_status: int | None = None, **extra: object) -> None:
        self.msg = msg or self.default_msg
        if http_status is not None:
            self.http_status = http_status
        self.extra = extra
        super().__init__(self.msg)


class InvalidParams(AppError):
    code, http_status, default_msg = 2001, 422, "invalid parameters"


class UserExists(AppError):
    code, http_status, default_msg = 2002, 409, "user already exists"


class UserNotFound(AppError):
    code, http_status, default_msg = 2003, 404, "user does not exist"


class WrongCredentials(AppError):
    code, http_status, default_msg = 2004, 401, "wrong username or password"


class InvalidToken(AppError):
    code, http_status, default_msg = 2006, 401, "invalid or expired token"


class WrongCode(AppError):
    code, http_status, default_msg = 2008, 400, "wrong or expired verification code"


class SessionNotFound(AppError):
    code, http_status, default_msg = 2011, 404, "session does not exist"


class DocumentNotFound(AppError):
    code, http_status, default_msg = 2012, 404, "document does not exist"


class Forbidden(AppError):
    code, http_status, default_msg = 3001, 403, "forbidden"


class ServerBusy(AppError):
    code, http_status, default_msg = 4001, 503, "server busy"


class TooManyRequests(AppError):
    code, http_status, default_msg = 4029, 429, "too many requests"


class UnknownModel(AppError):
    code, http_status, default_msg = 5001, 400, "unknown model type"


class ModelFailed(AppError):
    code, http_status, default_msg = 5003, 502, "model failed"
