"""Assertions on the API's JSON envelope."""

from __future__ import annotations

from typing import Any

import httpx


def assert_error(response: httpx.Response, http_status: int, code: int) -> str:
    """The response is an error envelope with this HTTP status and code; returns its message."""
    assert response.status_code == http_status, response.text
    body = response.json()
    assert body["status_code"] == code, body
    assert isinstance(body["status_msg"], str) and body["status_msg"]
    return str(body["status_msg"])


def assert_ok(response: httpx.Response) -> dict[str, Any]:
    """The response is a success envelope; returns its body."""
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    assert body["status_code"] == 1000
    return body
