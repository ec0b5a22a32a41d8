"""Fusion: RRF and weighted normalised scores, and chunk → document collapse."""

import pytest

from medkg_assets.search.fusion import (
    blend_rerank,
    collapse_to_documents,
    reciprocal_rank_fusion,
    weighted_score_fusion,
)


def test_rrf_sums_reciprocal_ranks_with_k():
    fused = dict(reciprocal_rank_fusion({"a": [("x", 9), ("y", 1)], "b": [("y", 5), ("z", 4)]}, k=60))
    assert fused["y"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["x"] == pytest.approx(1 / 61) and fused["z"] == pytest.approx(1 / 62)
    assert list(reciprocal_rank_fusion({"a": [("x", 9), ("y", 1)], "b": [("y", 5), ("z", 4)]}))[0][0] == "y"


def test_weighted_fusion_normalises_each_ranking():
    fused = dict(
        weighted_score_fusion(
            {"dense": [("x", 0.9), ("y", 0.5)], "bm25": [("y", 30.0), ("x", 10.0)]},
            {"dense": 0.7, "bm25": 0.3},
        )
    )
    assert fused == pytest.approx({"x": 0.7, "y": 0.3})


def test_collapse_keeps_each_document_at_its_best_chunk():
    ranking = [("c2", 3.0), ("c1", 2.0), ("c3", 1.0)]
    assert collapse_to_documents(ranking, {"c1": "d1", "c2": "d1", "c3": "d2"}) == [("d1", 3.0), ("d2", 1.0)]


def test_weighted_rrf_scales_each_ranking_and_drops_weight_zero():
    rankings = {"a": [("x", 9), ("y", 1)], "b": [("y", 5), ("z", 4)]}
    fused = dict(reciprocal_rank_fusion(rankings, k=10, weights={"a": 2.0, "b": 0.0}))
    assert fused == pytest.approx({"x": 2 / 11, "y": 2 / 12})  # z only in the weight-0 ranking


def test_blend_goes_from_the_fused_order_to_the_rerankers():
    pool = [("a", 0.9), ("b", 0.5), ("c", 0.1)]
    scores = [0.0, 1.0, 0.2]  # the reranker prefers b, then c
    assert [c for c, _ in blend_rerank(pool, scores, 1.0)] == ["b", "c", "a"]
    assert [c for c, _ in blend_rerank(pool, scores, 0.0)] == ["a", "b", "c"]
    assert [c for c, _ in blend_rerank(pool, scores, 0.5)] == ["b", "a", "c"]  # 0.5+0.25 > 0.5 > 0.1
