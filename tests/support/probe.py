"""A /healthz prober in a process of its own: `python -m tests.support.probe URL [INTERVAL_S]`.

One line per probe on stdout, `<seconds> <status>` (or `error <what>`), until it is terminated.
Apart from the test process, so that what it measures is the server's latency, not the wait for
the test's own GIL (the stand-in model and the test's streaming readers run in the test process).
`HealthProbe` runs it around a block of a test.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from types import TracebackType

import httpx


class HealthProbe:
    """`with HealthProbe(url) as probe:` probes /healthz every `interval_s` until the block ends;
    then `latencies` holds the seconds each 200 took, `failures` the other lines."""

    def __init__(self, url: str, interval_s: float = 0.05) -> None:
        self.url, self.interval_s = url, interval_s
        self.latencies: list[float] = []
        self.failures: list[str] = []
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> HealthProbe:
        return self.start()

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.stop()

    def start(self) -> HealthProbe:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.probe", self.url, str(self.interval_s)],
            stdout=subprocess.PIPE,
            text=True,
        )
        return self

    def stop(self) -> None:
        assert self._process is not None
        self._process.terminate()
        out, _ = self._process.communicate(timeout=30)
        for line in out.splitlines():
            seconds, _, status = line.partition(" ")
            if seconds == "error" or status != "200":
                self.failures.append(line)
            else:
                self.latencies.append(float(seconds))


def main() -> None:
    url, interval = sys.argv[1], float(sys.argv[2]) if len(sys.argv) > 2 else 0.05
    running = True

    def stop(*_: object) -> None:
        nonlocal running
        running = False

    signal.signal(signal.SIGTERM, stop)
    with httpx.Client(timeout=5) as client:
        while running:
            began = time.monotonic()
            try:
                status = client.get(url + "/healthz").status_code
            except httpx.HTTPError as exc:
                sys.stdout.write(f"error {exc!r}\n")
            else:
                sys.stdout.write(f"{time.monotonic() - began:.4f} {status}\n")
            sys.stdout.flush()
            time.sleep(interval)


if __name__ == "__main__":
    main()
