"""What the model is sent: system prompt, as much recent history as fits, the question."""

from __future__ import annotations

from collections.abc import Sequence

from chatstream.providers.base import ChatMessage
from chatstream.stores.models import Message


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ~4 characters a token, one per CJK (or other wide) character."""
    wide = sum(1 for ch in text if ord(ch) >= 0x2E80)
    return wide + (len(text) - wide + 3) // 4 + 4  # +4: per-message overhead of chat templates


def build_context(
    *, system_prompt: str, history_newest_first: Sequence[Message], question: str, budget_tokens: int
) -> list[ChatMessage]:
    """Oldest turns are dropped first; the question is always sent."""
    used = estimate_tokens(question) + (estimate_tokens(system_prompt) if system_prompt else 0)
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
    return [*head, *kept, {"role": "user", "content": question}]
