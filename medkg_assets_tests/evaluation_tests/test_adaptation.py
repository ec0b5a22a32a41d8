"""Adopting an adapted model: paired comparison per dev set, wins/ties/loses against noise."""

import pytest

from medkg_assets.evaluation.adaptation import compare_on_set, judge_adaptation


def test_a_paired_gain_beyond_its_standard_error_wins():
    comparison = compare_on_set(
        "mediqa", "ndcg@10", {"q1": 1.0, "q2": 0.5, "q3": 0.0}, {"q1": 1.0, "q2": 1.0, "q3": 0.5}, 0.005
    )
    # deltas 0, .5, .5: mean 1/3, standard error stdev/√3 = 0.2887/1.732
    assert (comparison.delta, comparison.noise) == (0.3333, 0.1667)
    assert comparison.verdict == "wins" and (comparison.base, comparison.adapted) == (0.5, 0.8333)


def test_a_change_inside_the_noise_floor_ties_and_a_drop_beyond_it_loses():
    same = {"q1": 0.8, "q2": 0.6}
    tie = compare_on_set("medquad", "ndcg@10", same, {"q1": 0.804, "q2": 0.6}, 0.005)
    assert tie.verdict == "ties" and tie.noise == 0.005
    loss = compare_on_set("medquad", "ndcg@10", same, {"q1": 0.5, "q2": 0.3}, 0.005)
    assert loss.verdict == "loses" and loss.delta == -0.3


def test_adopted_only_when_no_dev_set_loses():
    win = compare_on_set("medquad", "ndcg@10", {"a": 0.2, "b": 0.4}, {"a": 0.9, "b": 0.9}, 0.005)
    loss = compare_on_set("mediqa", "ndcg@10", {"a": 0.9, "b": 0.9}, {"a": 0.2, "b": 0.4}, 0.005)
    assert judge_adaptation([win]).adopted
    refused = judge_adaptation([win, loss])
    assert not refused.adopted
    assert "loses on 1 dev set(s): mediqa ndcg@10 0.3000 vs base 0.9000" in refused.reason
    assert not judge_adaptation([]).adopted  # nothing shows it is better


def test_base_and_adapted_must_be_scored_on_the_same_queries():
    with pytest.raises(ValueError, match="eval set mediqa: base and adapted were scored on different"):
        compare_on_set("mediqa", "ndcg@10", {"a": 1.0}, {"b": 1.0}, 0.005)
