"""Metrics against hand-computed values (trec_eval definitions)."""

import math

import pytest

from medkg_assets.evaluation.metrics import evaluate, mrr_at_k, ndcg_at_k, recall_at_k

QRELS = {"q1": {"a": 1, "b": 1}, "q2": {"x": 1}, "q3": {"z": 0}}
RUN = {"q1": ["c", "a", "d", "b"], "q2": ["y", "w"]}


def test_recall_averages_over_judged_queries_only():
    # q1: 1 of 2 relevant in top 2, 2 of 2 in top 4; q2: none; q3 has no relevant → skipped
    assert recall_at_k(RUN, QRELS, 2) == pytest.approx((0.5 + 0.0) / 2)
    assert recall_at_k(RUN, QRELS, 4) == pytest.approx((1.0 + 0.0) / 2)


def test_mrr_uses_the_first_relevant_rank_within_k():
    assert mrr_at_k(RUN, QRELS, 10) == pytest.approx((1 / 2 + 0) / 2)
    assert mrr_at_k(RUN, QRELS, 1) == 0.0


def test_ndcg_matches_the_hand_computation():
    dcg = 1 / math.log2(3) + 1 / math.log2(5)
    idcg = 1 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k(RUN, QRELS, 10) == pytest.approx((dcg / idcg + 0) / 2)


def test_graded_relevance_uses_grades_as_gain():
    qrels = {"q": {"a": 2, "b": 1}}
    ideal = 2 / math.log2(2) + 1 / math.log2(3)
    assert ndcg_at_k({"q": ["b", "a"]}, qrels, 2) == pytest.approx((1 + 2 / math.log2(3)) / ideal)


def test_perfect_run_scores_one_everywhere():
    assert set(evaluate({"q1": ["a", "b"], "q2": ["x"]}, QRELS).values()) == {1.0}


def test_missing_query_in_run_counts_as_zero():
    assert recall_at_k({}, {"q": {"a": 1}}, 10) == 0.0
