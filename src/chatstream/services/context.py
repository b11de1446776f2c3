"""What the model is sent: system prompt, as much recent history as fits, the question."""

from __future__ import annotations

from collections.abc import Sequence

from chatstream.providers.base import ChatMessage
from chatstream.services.retrieval import Source
from chatstream.stores.models import Message


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ~4 characters a token, one per CJK (or other wide) character."""
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return wide + (len(text) - wide + 3) // 4 + 4  # +4: per-message overhead of chat templates


def documents_prompt(sources: Sequence[Source], note: str | None) -> str:
    """The instructions and numbered passages a document answer is given, right before the question."""
    if not sources:
        return (
            "The user asked for an answer from their documents, but no passage in them matches this "
            f"question ({note or 'nothing was found'}). Say so plainly first. If you then answer from "
            "general knowledge, say that the answer does not come from their documents."
        )
    passages = "\n\n".join(
        f"[{s.n}] {s.title}" + (f" — {s.section}" if s.section else "") + f"\n{s.text}" for s in sources
    )
    return (
        "Answer from the passages below, taken from the user's documents. Cite the passages you use "
        "as [n], right after what they support. If the passages do not contain the answer, say that "
        "the documents do not cover it; do not make one up.\n\n" + passages
    )


def build_context(
    *,
    system_prompt: str,
    history_newest_first: Sequence[Message],
    question: str,
    budget_tokens: int,
    documents: str | None = None,
) -> list[ChatMessage]:
    """Oldest turns are dropped first; the question (and a document answer's passages) always go."""
    used = estimate_tokens(question) + (estimate_tokens(system_prompt) if system_prompt else 0)
    if documents:
        used += estimate_tokens(documents)
    kept: list[ChatMessage] = []
    for message in history_newest_first:
        if not message.content or message.role not in ("user", "assistant"):
            continue
        cost = estimate_tokens(message.content)
        if used + cost > budget_tokens:
            break
        used += cost
        kept.append({"role": "user" if message.role == "user" else "assistant", "content": message.content})
    kept.reverse()
    while kept and kept[0]["role"] == "assistant":
        kept.pop(0)  # a context starts with a question, not half a turn
    head: list[ChatMessage] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    passages: list[ChatMessage] = [{"role": "system", "content": documents}] if documents else []
    return [*head, *kept, *passages, {"role": "user", "content": question}]
