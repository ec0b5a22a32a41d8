"""Fusion: RRF and weighted normalised scores, and chunk → document collapse."""

import pytest

from medkg_assets.search.fusion import collapse_to_documents, reciprocal_rank_fusion, weighted_score_fusion


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
