"""Rank fusion: reciprocal rank fusion and weighted min-max-normalised score fusion."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Ranking = Sequence[tuple[str, float]]


def reciprocal_rank_fusion(
    rankings: Mapping[str, Ranking], k: int = 60, depth: int | None = None
) -> list[tuple[str, float]]:
    """score(d) = Σ 1 / (k + rank_i(d)), ranks from 1; ties broken by id for determinism."""
    scores: dict[str, float] = {}
    for ranking in rankings.values():
        for rank, (doc_id, _) in enumerate(ranking[:depth] if depth else ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def weighted_score_fusion(
    rankings: Mapping[str, Ranking], weights: Mapping[str, float]
) -> list[tuple[str, float]]:
    """Σ weight_i × min-max(score_i); a document missing from a ranking gets 0 there."""
    scores: dict[str, float] = {}
    for name, ranking in rankings.items():
        if not ranking:
            continue
        values = [score for _, score in ranking]
        low, high = min(values), max(values)
        span = high - low
        for doc_id, score in ranking:
            normalised = (score - low) / span if span > 0 else 1.0
            scores[doc_id] = scores.get(doc_id, 0.0) + weights.get(name, 1.0) * normalised
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def collapse_to_documents(ranking: Ranking, chunk_to_doc: Mapping[str, str]) -> list[tuple[str, float]]:
    """Chunk ranking → document ranking: each document at the rank of its best chunk."""
    seen: dict[str, float] = {}
    for chunk_id, score in ranking:
        doc_id = chunk_to_doc[chunk_id]
        if doc_id not in seen:
            seen[doc_id] = score
    return list(seen.items())
