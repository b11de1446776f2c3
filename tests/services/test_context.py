"""The model's context: system prompt, newest history that fits the budget, the question."""

from __future__ import annotations

from chatstream.services.context import build_context, estimate_tokens
from chatstream.stores.models import Message


def turn(n: int, size: int = 40) -> list[Message]:
    """Messages of turn n, newest first (answer, then question), as the store returns them."""
    return [
        Message(role="assistant", content=f"a{n} " + "x" * size),
        Message(role="user", content=f"q{n} " + "y" * size),
    ]


def test_all_history_when_it_fits_with_roles_in_order() -> None:
    history = turn(2) + turn(1)
    context = build_context(
        system_prompt="be brief", history_newest_first=history, question="q3", budget_tokens=1000
    )
    assert [m["role"] for m in context] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert context[0]["content"] == "be brief"
    assert [m["content"][:2] for m in context[1:]] == ["q1", "a1", "q2", "a2", "q3"]


def test_oldest_turns_dropped_first_and_context_starts_with_a_question() -> None:
    history = turn(3) + turn(2) + turn(1)
    per_message = estimate_tokens(history[0].content)
    # Room for the question plus three messages: a3, q3, a2 fit; a2 would start the context, so it goes.
    budget = estimate_tokens("now") + 3 * per_message
    context = build_context(
        system_prompt="", history_newest_first=history, question="now", budget_tokens=budget
    )
    assert [m["content"][:2] for m in context] == ["q3", "a3", "no"]
    assert context[0]["role"] == "user"


def test_question_is_always_sent_even_over_budget() -> None:
    context = build_context(
        system_prompt="", history_newest_first=turn(1), question="z" * 10_000, budget_tokens=64
    )
    assert context == [{"role": "user", "content": "z" * 10_000}]


def test_cjk_counts_per_character() -> None:
    assert estimate_tokens("中" * 100) > estimate_tokens("a" * 100) * 3


def test_empty_and_unknown_messages_are_skipped() -> None:
    history = [Message(role="assistant", content=""), Message(role="user", content="q1")]
    context = build_context(system_prompt="", history_newest_first=history, question="q2", budget_tokens=500)
    assert [m["content"] for m in context] == ["q1", "q2"]
