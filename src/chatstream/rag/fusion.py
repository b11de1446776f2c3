"""Reciprocal-rank fusion: merges ranked lists by position, so scores on different scales combine.

Weights let one list count for less: an English-only embedding model ranks Chinese text close to
at random, so for a Chinese question its list should not push the full-text matches down.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)

RRF_K = 60  # the constant from Cormack et al. (2009): damps the weight of the very top ranks


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[T]], *, weights: Sequence[float] | None = None, k: int = RRF_K
) -> list[tuple[T, float]]:
    """Items of all rankings, best first, each scored by the sum of weight / (k + rank) over the rankings."""
    scores: dict[T, float] = {}
    for i, ranking in enumerate(rankings):
        weight = 1.0 if weights is None else weights[i]
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    # Ties keep the order of first appearance (dicts keep insertion order; sorted() is stable).
    return sorted(scores.items(), key=lambda pair: -pair[1])
