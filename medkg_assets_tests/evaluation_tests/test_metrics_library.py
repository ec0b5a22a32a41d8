"""The library-backed metrics (ir-measures: trec_eval, MS MARCO MRR@k) against a hand computation with
trec_eval's semantics: nDCG's gain is the grade, MRR / P / Recall count grade ≥ 1 as relevant."""

import math

import pytest

from medkg_assets.evaluation.metrics import (
    evaluate,
    mrr_at_k,
    ndcg_at_k,
    per_query,
    precision_at_k,
    recall_at_k,
)

# q1 graded; q2 judged but absent from the run (scores 0); q3 has no relevant document (skipped);
# q4 has a negative grade (not relevant, no negative gain).
QRELS = {
    "q1": {"a": 2, "b": 1, "c": 0, "e": 3},
    "q2": {"y": 1},
    "q3": {"z": 0},
    "q4": {"u": -1, "v": 1},
}
RUN = {"q1": ["c", "a", "x", "b", "d"], "q3": ["z"], "q4": ["u", "v"]}

Q1_NDCG10 = (2 / math.log2(3) + 1 / math.log2(5)) / (3 + 2 / math.log2(3) + 1 / math.log2(4))
Q4_NDCG10 = (1 / math.log2(3)) / 1


def test_per_query_values_match_the_hand_computation():
    scores = per_query(RUN, QRELS, ["ndcg@10", "mrr@10", "p@10", "recall@10", "recall@2", "mrr@1"])
    assert set(scores) == {"q1", "q2", "q4"}
    assert scores["q1"] == pytest.approx(
        {
            "ndcg@10": Q1_NDCG10,
            "mrr@10": 1 / 2,
            "p@10": 2 / 10,
            "recall@10": 2 / 3,
            "recall@2": 1 / 3,
            "mrr@1": 0,
        }
    )
    assert set(scores["q2"].values()) == {0.0}
    assert scores["q4"] == pytest.approx(
        {"ndcg@10": Q4_NDCG10, "mrr@10": 1 / 2, "p@10": 1 / 10, "recall@10": 1, "recall@2": 1, "mrr@1": 0}
    )


def test_means_are_over_judged_queries():
    assert ndcg_at_k(RUN, QRELS, 10) == pytest.approx((Q1_NDCG10 + 0 + Q4_NDCG10) / 3)
    assert mrr_at_k(RUN, QRELS, 10) == pytest.approx((1 / 2 + 0 + 1 / 2) / 3)
    assert mrr_at_k(RUN, QRELS, 1) == 0.0  # the cutoff is honoured (trec_eval's recip_rank has none)
    assert precision_at_k(RUN, QRELS, 10) == pytest.approx((0.2 + 0 + 0.1) / 3)
    assert precision_at_k(RUN, QRELS, 2) == pytest.approx((0.5 + 0 + 0.5) / 3)
    assert recall_at_k(RUN, QRELS, 10) == pytest.approx((2 / 3 + 0 + 1) / 3)
    assert evaluate(RUN, QRELS)["ndcg@10"] == round((Q1_NDCG10 + Q4_NDCG10) / 3, 4)


def test_the_given_order_is_kept_not_the_ids():
    # trec_eval sorts by score; ranks become scores, so b before a is not re-sorted
    qrels = {"q": {"a": 2, "b": 1}}
    ideal = 2 + 1 / math.log2(3)
    assert ndcg_at_k({"q": ["b", "a"]}, qrels, 10) == pytest.approx((1 + 2 / math.log2(3)) / ideal)
    assert ndcg_at_k({"q": ["a", "b"]}, qrels, 10) == pytest.approx(1.0)


def test_a_document_listed_twice_keeps_its_first_rank():
    assert mrr_at_k({"q": ["x", "a", "x", "a"]}, {"q": {"a": 1}}, 10) == pytest.approx(1 / 2)


def test_unknown_metric_is_refused():
    with pytest.raises(ValueError, match="unknown metric"):
        per_query(RUN, QRELS, ["map@10"])
