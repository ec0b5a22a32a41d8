"""Rank fusion: weighted reciprocal rank fusion, weighted min-max score fusion, the blend of a
reranker's scores with the fused ones, and the fusion settings a namespace × profile is tuned to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Ranking = Sequence[tuple[str, float]]
SYSTEMS = ("dense", "sparse", "bm25")
FinalStage = Literal["dense", "sparse", "bm25", "hybrid", "reranked"]


class FusionConfig(BaseModel):
    """How the first-stage rankings are fused and the fused top is reranked.

    The defaults are the robust ones for a namespace without training judgments (RRF k 60, equal
    weights, the fused top 20 in CrossEncoder order); `fusion_config` replaces them with values
    tuned on the namespace's train judgments and a final stage selected on its dev sets.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    rrf_k: int = Field(default=60, gt=0)
    weights: dict[str, float] = Field(default_factory=lambda: dict.fromkeys(SYSTEMS, 1.0))
    depth: int = Field(default=100, gt=0)  # each system's top `depth` enters the fusion
    rerank_depth: int = Field(default=20, gt=0)  # the fused top the CrossEncoder scores
    # final score = w × min-max(CrossEncoder) + (1 − w) × min-max(fused): 1 is the CrossEncoder's order
    rerank_weight: float = Field(default=1.0, ge=0.0, le=1.0)
    final_stage: FinalStage = "reranked"


def reciprocal_rank_fusion(
    rankings: Mapping[str, Ranking],
    k: int = 60,
    depth: int | None = None,
    weights: Mapping[str, float] | None = None,
) -> list[tuple[str, float]]:
    """score(d) = Σ w_i / (k + rank_i(d)), ranks from 1, w_i = 1 unless given; a ranking of weight 0
    is left out; ties broken by id for determinism."""
    scores: dict[str, float] = {}
    for name, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(name, 1.0)
        if weight <= 0:
            continue
        for rank, (doc_id, _) in enumerate(ranking[:depth] if depth else ranking, start=1):
            scores[doc_id] = scores.get(doc_id, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def _min_max(values: Sequence[float]) -> list[float]:
    low, high = (min(values), max(values)) if values else (0.0, 0.0)
    span = high - low
    return [(v - low) / span if span > 0 else 1.0 for v in values]


def weighted_score_fusion(
    rankings: Mapping[str, Ranking], weights: Mapping[str, float]
) -> list[tuple[str, float]]:
    """Σ weight_i × min-max(score_i); a document missing from a ranking gets 0 there."""
    scores: dict[str, float] = {}
    for name, ranking in rankings.items():
        for (doc_id, _), normalised in zip(ranking, _min_max([s for _, s in ranking]), strict=True):
            scores[doc_id] = scores.get(doc_id, 0.0) + weights.get(name, 1.0) * normalised
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def blend_rerank(pool: Ranking, reranker_scores: Sequence[float], weight: float) -> list[tuple[str, float]]:
    """The pool (fused top, best first) reordered by weight × min-max(reranker score) + (1 − weight)
    × min-max(fused score); weight 1 is the reranker's order, 0 the fused order; ties by id."""
    fused = _min_max([score for _, score in pool])
    reranked = _min_max(list(reranker_scores))
    blended = [
        (chunk_id, weight * r + (1.0 - weight) * f)
        for (chunk_id, _), f, r in zip(pool, fused, reranked, strict=True)
    ]
    return sorted(blended, key=lambda item: (-item[1], item[0]))


def collapse_to_documents(ranking: Ranking, chunk_to_doc: Mapping[str, str]) -> list[tuple[str, float]]:
    """Chunk ranking → document ranking: each document at the rank of its best chunk."""
    seen: dict[str, float] = {}
    for chunk_id, score in ranking:
        doc_id = chunk_to_doc[chunk_id]
        if doc_id not in seen:
            seen[doc_id] = score
    return list(seen.items())
