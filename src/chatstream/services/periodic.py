"""A background chore repeated at an interval, that survives its own failures."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable


async def every(
    seconds: float, chore: Callable[[], Awaitable[object]], log: logging.Logger, what: str
) -> None:
    """Runs `chore` every `seconds`, forever; a failed round is logged and the next one tried."""
    while True:
        await asyncio.sleep(seconds)
        try:
            await chore()
        except Exception:  # Redis or the database away for a moment: next round
            log.exception("%s failed", what)
