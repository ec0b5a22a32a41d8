"""Fusion tuning: fit the fusion and rerank settings on train judgments, select the final stage on dev.

Everything here works on rankings already retrieved (chunk level, each system's top N per query)
and, for the rerank part, the CrossEncoder's scores of each query's pool, so a grid of a few
hundred settings costs seconds. The grid is walked in a fixed order with the defaults first and a
setting replaces the best only when strictly better, so the result depends on the data and the
sampling seed alone, and ties keep the robust defaults.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from statistics import fmean

from pydantic import BaseModel, ConfigDict, Field

from medkg_assets.evaluation.metrics import Qrels, mean_over_queries
from medkg_assets.search.fusion import (
    SYSTEMS,
    FinalStage,
    FusionConfig,
    blend_rerank,
    collapse_to_documents,
    reciprocal_rank_fusion,
)

Ranking = list[tuple[str, float]]  # chunk id, score; best first
OBJECTIVE = "ndcg@10"  # graded gains: what both MedQuAD and consumer-question sets are judged by
SINGLE_STAGES: tuple[FinalStage, ...] = ("dense", "sparse", "bm25")


class FusionGrid(BaseModel):
    """The settings tried on train; the first value of each list is the default."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rrf_k: list[int] = Field(default_factory=lambda: [60, 10, 30, 100])
    weights: list[float] = Field(default_factory=lambda: [1.0, 0.0, 0.5, 2.0])
    depth: list[int] = Field(default_factory=lambda: [100, 20])
    rerank_depth: list[int] = Field(default_factory=lambda: [20, 10, 40])
    rerank_weight: list[float] = Field(default_factory=lambda: [1.0, 0.75, 0.5, 0.25, 0.0])

    def weight_settings(self, systems: Sequence[str]) -> list[dict[str, float]]:
        """Per-system weights, each direction once ((2, 2, 2) is (1, 1, 1)), never all zero."""
        seen, out = set(), []
        for combo in itertools.product(self.weights, repeat=len(systems)):
            top = max(combo)
            if top <= 0:
                continue
            key = tuple(round(w / top, 6) for w in combo)
            if key not in seen:
                seen.add(key)
                out.append(dict(zip(systems, combo, strict=True)))
        return out


@dataclass
class JudgedRuns:
    """One judged query set's rankings: each system's chunk ranking per query (query order), the
    chunks' documents, and (for rerank tuning) each query's pool and its CrossEncoder scores."""

    name: str
    query_ids: list[str]
    qrels: Qrels
    runs: dict[str, list[Ranking]]
    chunk_to_doc: Mapping[str, str]
    pools: list[Ranking] = field(default_factory=list)
    pool_scores: list[list[float]] = field(default_factory=list)

    @property
    def systems(self) -> list[str]:
        return [s for s in SYSTEMS if s in self.runs]

    def score(self, rankings: Sequence[Ranking], metric: str = OBJECTIVE) -> float:
        """Mean `metric` of the chunk rankings (query order) as document rankings."""
        run = {
            q: [d for d, _ in collapse_to_documents(rankings[i], self.chunk_to_doc)]
            for i, q in enumerate(self.query_ids)
        }
        return mean_over_queries(run, self.qrels, [metric])[metric]

    def fused(self, fusion: FusionConfig) -> list[Ranking]:
        return [
            reciprocal_rank_fusion(
                {s: self.runs[s][i] for s in self.systems}, fusion.rrf_k, fusion.depth, fusion.weights
            )
            for i in range(len(self.query_ids))
        ]

    def reranked(self, fusion: FusionConfig) -> list[Ranking]:
        """Each query's pool cut to `rerank_depth` and blended with its CrossEncoder scores."""
        return [
            blend_rerank(pool[: fusion.rerank_depth], scores[: fusion.rerank_depth], fusion.rerank_weight)
            for pool, scores in zip(self.pools, self.pool_scores, strict=True)
        ]

    def stage(self, stage: FinalStage, fusion: FusionConfig) -> list[Ranking]:
        if stage == "hybrid":
            return self.fused(fusion)
        if stage == "reranked":
            return self.reranked(fusion)
        return self.runs[stage]


def _mean_score(sets: Sequence[JudgedRuns], rankings_of: Callable[[JudgedRuns], Sequence[Ranking]]) -> float:
    return fmean(s.score(rankings_of(s)) for s in sets)


@dataclass(frozen=True)
class Tuned:
    fusion: FusionConfig
    train_score: float  # mean over the train sets of OBJECTIVE
    default_score: float  # the defaults' score on the same queries
    settings_tried: int


def tune_fusion_settings(train: Sequence[JudgedRuns], grid: FusionGrid, base: FusionConfig) -> Tuned:
    """RRF k, per-system weights and depth that maximise the mean train OBJECTIVE."""
    systems = train[0].systems
    best, best_score, tried = base, _mean_score(train, lambda s: s.fused(base)), 0
    default_score = best_score
    for rrf_k, depth, weights in itertools.product(grid.rrf_k, grid.depth, grid.weight_settings(systems)):
        candidate = base.model_copy(update={"rrf_k": rrf_k, "depth": depth, "weights": weights})
        score = _mean_score(train, partial(JudgedRuns.fused, fusion=candidate))
        tried += 1
        if score > best_score:
            best, best_score = candidate, score
    return Tuned(best, best_score, default_score, tried)


def tune_rerank_settings(train: Sequence[JudgedRuns], grid: FusionGrid, base: FusionConfig) -> Tuned:
    """Rerank depth and the reranker/fused blend that maximise the mean train OBJECTIVE (the pools
    must be the top max(grid.rerank_depth) of `base`'s fusion)."""
    default_score = _mean_score(train, lambda s: s.reranked(base))
    best, best_score, tried = base, default_score, 0
    for depth, weight in itertools.product(grid.rerank_depth, grid.rerank_weight):
        candidate = base.model_copy(update={"rerank_depth": depth, "rerank_weight": weight})
        score = _mean_score(train, partial(JudgedRuns.reranked, fusion=candidate))
        tried += 1
        if score > best_score:
            best, best_score = candidate, score
    return Tuned(best, best_score, default_score, tried)


@dataclass(frozen=True)
class Selection:
    final_stage: FinalStage
    dev_scores: dict[str, dict[str, float]]  # dev set → stage → OBJECTIVE
    reason: str
    below_best_single: list[str]  # dev sets where the chosen stage is below the best single stage


def select_final_stage(
    dev: Sequence[JudgedRuns], fusion: FusionConfig, stages: Sequence[FinalStage]
) -> Selection:
    """The final stage, chosen on dev among `stages`: the fused stage (hybrid or reranked) with the
    best mean that is at least the best single stage on every dev set; if none is, the stage with
    the best mean over all (which may be a single stage), and the sets it trails are named."""
    scores: dict[str, dict[str, float]] = {
        s.name: {stage: s.score(s.stage(stage, fusion)) for stage in stages} for s in dev
    }

    def mean(stage: FinalStage) -> float:
        return fmean(scores[name][stage] for name in scores)

    def trails(stage: FinalStage) -> list[str]:
        singles = [st for st in stages if st in SINGLE_STAGES]
        return [n for n, per in scores.items() if singles and per[stage] < max(per[st] for st in singles)]

    fused = [st for st in stages if st not in SINGLE_STAGES]
    safe = [st for st in fused if not trails(st)]
    if safe:
        chosen = max(safe, key=lambda st: (mean(st), st == "reranked"))
        reason = (
            f"{chosen}: best mean {OBJECTIVE} of the fused stages that reach the best single stage "
            "on every dev set"
        )
    else:
        chosen = max(stages, key=lambda st: (mean(st), st == "reranked"))
        reason = (
            f"{chosen}: best mean {OBJECTIVE}; no fused stage reaches the best single stage on every dev set"
        )
    return Selection(chosen, scores, reason, trails(chosen))
