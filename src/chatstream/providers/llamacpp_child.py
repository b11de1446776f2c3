"""The program of one local-model process: a GGUF loaded by llama.cpp, answering its supervisor.

`providers/llamacpp_process.py` starts one per instance of a model
(`python -m chatstream.providers.llamacpp_child --channel-fd N ...`) and talks to it over a
Unix socket, one JSON object per line each way. This is the only module that imports
llama_cpp, so a crash in native code (an illegal instruction, an abort, the OOM killer) ends
this process and the answer it was writing, never the server.

Two threads: the main thread reads the socket and answers `prepare` itself (template,
tokenize, trim: milliseconds, beside a running answer), hands `generate` to the sampling
thread and turns `stop` into a flag that thread reads before each token. Messages:

    server -> here   {"op": "prepare", "id": n, "messages": [...], "max_tokens": m}
                     {"op": "generate", "id": n, "tokens": [...], "max_tokens": m}
                     {"op": "stop", "id": n}
    here -> server   {"ready": {"load_ms": .., "context": .., "threads": ..}}  or  {"failed": "why"} and exit
                     {"prepared": n, "tokens": [...], "max_tokens": m}  or  {"refused": n, "message": "why"}
                     {"d": "text"}, one per token of the answer being generated
                     {"done": n, "prompt": p, "completion": c, "computed": k, "after_stop": s}
                     {"broke": n, "message": "why"}  (llama.cpp raised mid-answer)

End of file on the socket (the server closed it, or died) ends the process at once.
"""

from __future__ import annotations

import argparse
import codecs
import ctypes
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import llama_cpp
import orjson
from llama_cpp import Llama
from llama_cpp.llama_chat_format import Jinja2ChatFormatter

# llama-cpp-python's chat-completion defaults, plus a mild repeat penalty: without it
# small models loop ("la France, la France, ...").
SAMPLING: dict[str, Any] = {"temp": 0.2, "top_p": 0.95, "top_k": 40, "min_p": 0.05, "repeat_penalty": 1.1}
# Used when a GGUF carries no chat template (ChatML, which many small models follow).
FALLBACK_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
PR_SET_PDEATHSIG = 1
NICENESS = 5  # os.nice() increment: the server, at 0, comes first


class Refused(Exception):
    """A prompt the model cannot take; the message is shown to the user."""


class Channel:
    """The socket to the server: lines of JSON; sends from both threads, one at a time."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = orjson.dumps(message) + b"\n"
        try:
            with self._lock:
                self._sock.sendall(data)
        except OSError:  # the server is gone: nobody to write for
            os._exit(0)

    def messages(self) -> Iterator[dict[str, Any]]:
        """What the server sends, until it closes the socket."""
        with self._sock.makefile("rb") as reader:
            for line in reader:
                yield orjson.loads(line)


class Job:
    """One answer: the prompt, its room, and the stop flag the sampling loop reads."""

    __slots__ = ("computed", "computed_at_stop", "id", "lock", "max_tokens", "stopped", "tokens")

    def __init__(self, job_id: int, tokens: list[int], max_tokens: int) -> None:
        self.id = job_id
        self.tokens = tokens
        self.max_tokens = max_tokens
        self.lock = threading.Lock()
        self.stopped = False
        self.computed = 0  # tokens the model produced for this answer
        self.computed_at_stop = 0

    def stop(self) -> None:
        with self.lock:
            if not self.stopped:
                self.stopped = True
                self.computed_at_stop = self.computed


class Model:
    """The loaded GGUF: builds prompts and samples answers."""

    def __init__(self, path: Path, threads: int, context_size: int) -> None:
        started = time.monotonic()
        try:
            # Weights are memory-mapped (llama.cpp's default): every process of this model
            # shares one copy in the page cache. verbose=False silences llama.cpp's chatter.
            self.llm = Llama(
                str(path), n_ctx=context_size, n_threads=threads, n_threads_batch=threads, verbose=False
            )
        except Exception as exc:  # llama.cpp says little more than "failed to load"
            reason = str(exc).replace(str(path), path.name)  # no server paths in what users see
            raise Refused(f"could not load the model {path.name}: {reason}") from exc
        self.load_ms = (time.monotonic() - started) * 1000
        llm = self.llm
        template = llm.metadata.get("tokenizer.chat_template") or FALLBACK_TEMPLATE
        formatter = Jinja2ChatFormatter(
            template=template, eos_token=self._text(llm.token_eos()), bos_token=self._text(llm.token_bos())
        )
        self._render: Callable[[list[dict[str, str]]], str] = lambda m: formatter(messages=m).prompt  # type: ignore[arg-type]
        self._vocab = llama_cpp.llama_model_get_vocab(llm.model)

    def _text(self, token: int) -> str:
        return self.llm._model.token_get_text(token) if token >= 0 else ""

    def prepare(self, messages: list[dict[str, str]], max_tokens: int) -> tuple[list[int], int]:
        """The prompt's tokens and the answer's room. The oldest turns go first when the
        context is too small. Tokenizing reads the vocabulary only: safe beside generation."""
        n_ctx = self.llm.n_ctx()
        room = min(max_tokens, n_ctx // 2)
        system = [m for m in messages[:1] if m["role"] == "system"]
        turns = messages[len(system) :]
        while True:
            try:
                text = self._render([*system, *turns])
            except Exception as exc:  # a template that raises (e.g. on role order)
                raise Refused(f"the model's chat template failed: {exc}") from exc
            tokens = self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
            if len(tokens) <= n_ctx - room or len(turns) <= 1:
                break
            turns = turns[1:]
            while len(turns) > 1 and turns[0]["role"] != "user":  # templates may want a user turn first
                turns = turns[1:]
        if len(tokens) >= n_ctx - 1:
            raise Refused(
                f"the question is too long for this model: {len(tokens)} tokens, its context holds {n_ctx}"
            )
        return tokens, min(max_tokens, n_ctx - len(tokens))

    def generate(self, job: Job, channel: Channel) -> None:
        """Samples tokens until the end of the turn, the limit, or a stop; sends each one."""
        vocab, send = self._vocab, channel.send
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        piece = self._piece_reader()
        produced = 0
        tokens = self.llm.generate(job.tokens, **SAMPLING)
        try:
            for token in tokens:
                with job.lock:
                    job.computed += 1
                    if job.stopped:
                        break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    break
                produced += 1
                text = decoder.decode(piece(token))
                if text:
                    send({"d": text})
                if produced >= job.max_tokens or job.stopped:
                    break
            text = decoder.decode(b"", final=True)
            if text:
                send({"d": text})
        except Exception as exc:
            traceback.print_exc()  # to stderr: the server's log
            send({"broke": job.id, "message": f"the local model failed: {exc}"[:400]})
            return
        finally:
            tokens.close()  # never resumed, so no further token is computed
        with job.lock:
            after_stop = job.computed - job.computed_at_stop if job.stopped else 0
        send(
            {
                "done": job.id,
                "prompt": len(job.tokens),
                "completion": produced,
                "computed": job.computed,
                "after_stop": after_stop,
            }
        )

    def _piece_reader(self) -> Callable[[int], bytes]:
        """A token's bytes, with one buffer per answer (llama-cpp-python's own detokenize
        allocates per call and caps pieces at 32 bytes)."""
        vocab = self._vocab
        buffer = ctypes.create_string_buffer(64)

        def piece(token: int) -> bytes:
            n = llama_cpp.llama_token_to_piece(vocab, token, buffer, len(buffer), 0, False)
            if n >= 0:
                return buffer.raw[:n]
            bigger = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(vocab, token, bigger, len(bigger), 0, False)
            return bigger.raw[:n]

        return piece


def serve(model: Model, channel: Channel) -> None:
    """The control loop: answers `prepare`, queues `generate`, flags `stop`; returns at EOF."""
    jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
    current: Job | None = None

    def sample() -> None:
        try:
            while True:
                model.generate(jobs.get(), channel)
        except BaseException:  # a bug here would leave the answer hanging: end loudly instead
            traceback.print_exc()
            os._exit(70)

    threading.Thread(target=sample, name="sampling", daemon=True).start()
    for message in channel.messages():
        op, job_id = message["op"], message["id"]
        if op == "prepare":
            try:
                tokens, room = model.prepare(message["messages"], message["max_tokens"])
            except Refused as exc:
                channel.send({"refused": job_id, "message": str(exc)})
            except Exception as exc:  # a bug on one question must not end the answer being written
                traceback.print_exc()
                failure = f"the local model could not read the question: {exc}"[:400]
                channel.send({"refused": job_id, "message": failure})
            else:
                channel.send({"prepared": job_id, "tokens": tokens, "max_tokens": room})
        elif op == "generate":
            current = Job(job_id, message["tokens"], message["max_tokens"])
            jobs.put(current)
        elif op == "stop" and current is not None and current.id == job_id:
            current.stop()


def tie_to_the_server(parent_pid: int, channel_fd: int) -> None:
    """This process lives and dies with the server that started it."""
    # Ctrl-C in a terminal signals the whole process group: the server decides when we go
    # (it stops answers cleanly first), so SIGINT is not ours to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform == "linux":
        # Killed when the server dies, even by SIGKILL (then nobody would close our socket).
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent_pid:  # the server died before prctl took effect
        os._exit(0)
    # Keep only stdio and the channel: an event loop that spawns without closing inherited
    # descriptors (uvloop) must not leave us holding the server's files or sockets.
    os.closerange(3, channel_fd)
    os.closerange(channel_fd + 1, os.sysconf("SC_OPEN_MAX"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one local-model process (started by chatstream)")
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--context-size", type=int, required=True)
    args = parser.parse_args(argv)
    tie_to_the_server(args.parent_pid, args.channel_fd)
    # Below the server in the CPU's queue: sampling takes whole cores for seconds, while the
    # server's event loop needs a core for a moment at a time (to relay these tokens, answer
    # /healthz, other users' requests); with cores to spare, this costs the model nothing.
    os.nice(NICENESS)
    channel = Channel(socket.socket(fileno=args.channel_fd))
    try:
        model = Model(args.model, args.threads, args.context_size)
    except Refused as exc:
        channel.send({"failed": str(exc)})
        return 1
    channel.send({"ready": {"load_ms": model.load_ms, "context": model.llm.n_ctx(), "threads": args.threads}})
    serve(model, channel)
    # The server closed the socket (or died): mid-answer or not, there is nobody to write for.
    # os._exit skips freeing the model, which the kernel does faster.
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
