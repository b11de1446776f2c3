"""What a stream route sends: a log's frames after a sequence number, then live ones.

Only visible frames are sent (`log.visible`: with a journal, those already in its file). Frames
that piled up while the reader was busy go out in one write. The heartbeat is not timed here
(a timer per reader per frame costs more than the frame): the answer service's ticker nudges
logs that have been quiet for the heartbeat interval.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from chatstream.streaming.frames import PING
from chatstream.streaming.log import AnswerLog


async def relay(log: AnswerLog, after: int = 0) -> AsyncIterator[bytes]:
    cursor = max(after, 0)
    frames = log.frames
    while True:
        end = log.visible
        if cursor < end:
            yield frames[cursor] if end - cursor == 1 else b"".join(frames[cursor:end])
            cursor = end
        elif log.closed:
            return
        else:
            await log.wait()
            if log.visible == cursor and not log.closed:
                yield PING
