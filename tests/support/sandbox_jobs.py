"""Jobs for the sandbox tests: module-level, so a sandboxed child can import them by name."""

from __future__ import annotations

import ctypes
import os
import time


def add(a: int, b: int, *, times: int = 1) -> int:
    return (a + b) * times


def refuse(message: str) -> None:
    raise ValueError(message)


def sleep(seconds: float) -> None:
    time.sleep(seconds)


def spin() -> None:
    while True:
        pass


def hog(megabytes: int) -> int:
    held = [bytearray(1 << 20) for _ in range(megabytes)]
    return len(held)


def abort() -> None:
    os.abort()


def segfault() -> None:
    ctypes.string_at(0)


def blob(megabytes: int) -> bytes:
    return b"x" * (megabytes << 20)


def pid() -> int:
    return os.getpid()
