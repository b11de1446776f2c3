"""A /healthz prober in a process of its own: `python -m tests.support.probe URL [INTERVAL_S]`.

One line per probe on stdout, `<seconds> <status>` (or `error <what>`), until it is terminated.
Apart from the test process, so that what it measures is the server's latency, not the wait for
the test's own GIL (the stand-in model and the other probes run in the test process).
"""

from __future__ import annotations

import signal
import sys
import time

import httpx


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
