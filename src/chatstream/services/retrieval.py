"""Retrieval for document answers: the passages of a user's documents that match a question.

Two rankings, fused: the nearest vectors (the question embedded like the passages) and full text
over terms (words and CJK bigrams). A passage is kept only if it is relevant by meaning or shares
enough of the question's words; none left means a note saying so, never an invented source.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from chatstream.config import Settings
from chatstream.errors import ServerBusy
from chatstream.rag.embeddings import EmbeddingError
from chatstream.rag.fusion import reciprocal_rank_fusion
from chatstream.rag.terms import cjk_share, search_terms
from chatstream.services.documents import DocumentService
from chatstream.stores import documents as store

SNIPPET_CHARS = 240
NOTHING_FOUND = "No passage in your documents matches this question."
NO_DOCUMENTS = "You have no documents ready to search."
SearchMode = Literal["hybrid", "vector", "text"]


@dataclass(frozen=True, slots=True)
class Source:
    """A passage given to the model, as the `sources` frame and history show it."""

    n: int
    document_id: str
    title: str
    section: str
    chunk: int
    snippet: str
    text: str
    score: float

    def wire(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "documentId": self.document_id,
            "title": self.title,
            "section": self.section,
            "chunk": self.chunk,
            "snippet": self.snippet,
            "text": self.text,
            "score": self.score,
        }


@dataclass(slots=True)
class Retrieved:
    sources: list[Source] = field(default_factory=list)
    note: str | None = None  # why there are none

    def frame(self) -> dict[str, object]:
        """The `sources` frame that opens a document answer's stream."""
        frame: dict[str, object] = {"type": "sources", "sources": [s.wire() for s in self.sources]}
        if self.note:
            frame["note"] = self.note
        return frame

    def history_json(self) -> str:
        """What the answer's row keeps of its sources, for history."""
        return orjson.dumps({"sources": [s.wire() for s in self.sources], "note": self.note}).decode()


def snippet(text: str, terms: Sequence[str]) -> str:
    """About SNIPPET_CHARS of the passage, around the first query word it contains."""
    flat = " ".join(text.split())
    if len(flat) <= SNIPPET_CHARS:
        return flat
    lowered = flat.lower()
    at = min((i for t in terms if (i := lowered.find(t)) >= 0), default=0)
    start = max(0, min(at - SNIPPET_CHARS // 3, len(flat) - SNIPPET_CHARS))
    piece = flat[start : start + SNIPPET_CHARS].strip()
    return ("…" if start else "") + piece + ("…" if start + SNIPPET_CHARS < len(flat) else "")


class RetrievalService:
    def __init__(
        self, *, settings: Settings, sessions: async_sessionmaker[AsyncSession], documents: DocumentService
    ) -> None:
        self._settings = settings
        self._sessions = sessions
        self._documents = documents  # the embedder and the index, prepared once

    async def retrieve(
        self, user_id: int, session_id: str | None, query: str, *, k: int, mode: SearchMode = "hybrid"
    ) -> Retrieved:
        """The passages most relevant to `query`, best first; none (with a note) when nothing is."""
        await self._documents.prepare()
        embedder, index = self._documents.embedder, self._documents.index
        terms = search_terms(query)
        try:
            vector = (await embedder.embed([query]))[0]
        except EmbeddingError as exc:
            raise ServerBusy(f"the embedding model failed: {exc}") from exc
        wide = max(4 * k, 20)  # each list goes deeper than k: fusion reorders them
        # How far the vectors are trusted: an English-only model's ranking of Chinese is near noise.
        trust = 1.0 if embedder.multilingual or mode == "vector" else 1.0 - cjk_share(query)
        async with self._sessions.begin() as db:
            nearest = (
                await index.nearest(db, user_id, session_id, vector, wide)
                if mode != "text" and trust > 0
                else []
            )
            matching = await index.matching(db, user_id, session_id, terms, wide) if mode != "vector" else []
            if not nearest and not matching:
                searchable = await store.has_chunks(db, user_id, session_id)
                return Retrieved(note=NOTHING_FOUND if searchable else NO_DOCUMENTS)
            fused = reciprocal_rank_fusion(
                [[c for c, _ in nearest], [c for c, _ in matching]], weights=[trust, 1.0]
            )
            similarity = dict(nearest)
            missing = [c for c, _ in fused[: 2 * k] if c not in similarity]
            similarity.update(await index.similarity(db, missing, vector))
            hits = await store.chunk_hits(db, [c for c, _ in fused[: 2 * k]])
        floor = self._settings.rag_min_similarity
        wanted = set(terms)
        needed = min(2, len(wanted))
        sources: list[Source] = []
        for chunk_id, _ in fused:
            hit = hits.get(chunk_id)
            if hit is None:
                continue
            score = similarity.get(chunk_id, 0.0)
            # Relevant by meaning (a trusted vector) or by words: sharing two of the question's terms
            # (one, for a one-term question). Stop words are not terms, so "the" never counts.
            shared = len(wanted.intersection(hit.terms.split())) if wanted else 0
            by_meaning = score >= floor and trust >= 0.5
            if not by_meaning and (needed == 0 or shared < needed):
                continue
            sources.append(
                Source(
                    n=len(sources) + 1,
                    document_id=hit.document_id,
                    title=hit.title,
                    section=hit.section,
                    chunk=chunk_id,
                    snippet=snippet(hit.text, [t for t in terms if t.isascii()]),
                    text=hit.text,
                    score=round(max(score, 0.0), 3),
                )
            )
            if len(sources) == k:
                break
        return Retrieved(sources=sources, note=None if sources else NOTHING_FOUND)
