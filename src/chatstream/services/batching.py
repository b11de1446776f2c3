"""Group commit: many concurrent callers' writes go to the database as one transaction.

Hundreds of answers start and end each second under load; one transaction per answer
queues them behind each other (SQLite has a single writer, and every statement is a
round trip). Here whatever arrives while a batch is being written is written next, in
one go, so the number of transactions stays flat however many answers are in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(Generic[Item, Result]):
    def __init__(self, write: Callable[[list[Item]], Awaitable[Sequence[Result]]]) -> None:
        self._write = write
        self._pending: list[tuple[Item, asyncio.Future[Result]]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: Item) -> Result:
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        self._pending.append((item, future))
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())
        return await future

    async def _drain(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                results = await self._write([item for item, _ in batch])
            except Exception as exc:
                if len(batch) == 1:
                    _settle(batch[0][1], exc)
                    continue
                # One bad item must not fail the others: write them one by one.
                for item, future in batch:
                    try:
                        (result,) = await self._write([item])
                    except Exception as item_exc:
                        _settle(future, item_exc)
                    else:
                        _settle(future, None, result)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                _settle(future, None, result)


def _settle(future: asyncio.Future[Result], exc: BaseException | None, result: Result | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)  # type: ignore[arg-type]
