"""Following answers from tests: one read frame by frame, resumes by id, waiting for a state."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.conftest import Api
from tests.support.sse import Frame, parse, parse_bytes


class LiveAnswer:
    def __init__(self, api: Api, question: str, model: str = "1") -> None:
        self.client = httpx.Client(base_url=api.server.api, headers=api.http.headers, timeout=30)
        request = self.client.build_request(
            "POST", "/AI/chat/send-stream-new-session", json={"question": question, "modelType": model}
        )
        self.response = self.client.send(request, stream=True)
        assert self.response.status_code == 200, self.response.read()
        self.frames = parse(self.response.iter_lines())  # one iterator: dropping it would close the stream
        self.session_id: str = next(self.frames).json()["sessionId"]

    def rest(self) -> list[Frame]:
        """The frames still to come, to the end of the answer."""
        return list(self.frames)

    def close(self) -> None:
        self.response.close()
        self.client.close()


def follow(
    api: Api, session_id: str, *, after: int | None = None, last_event_id: int | None = None
) -> tuple[httpx.Response, list[Frame]]:
    """GET /AI/chat/stream to the end: the response and its frames (none unless 200)."""
    params: dict[str, str | int] = {"sessionId": session_id}
    if after is not None:
        params["after"] = after
    headers = {"Last-Event-ID": str(last_event_id)} if last_event_id is not None else {}
    with api.http.stream("GET", "/AI/chat/stream", params=params, headers=headers) as response:
        body = response.read()
    return response, (parse_bytes(body) if response.status_code == 200 else [])


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)
