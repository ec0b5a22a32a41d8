"""The promotion gate and the serving history (pure logic)."""

import pytest

from medkg_assets.rollout.serving import (
    NothingToRollBackError,
    ServingRecord,
    ServingState,
    decide_promotion,
    promote,
    roll_back,
)


def record(profile, recall):
    return ServingRecord(
        profile=profile, recall_at_10=recall, run_id="r", promoted_at="2026-11-30T00:00:00+00:00"
    )


def test_candidate_within_five_percent_of_live_is_promoted():
    assert decide_promotion(record("base", 0.90), "cand", 0.856, []).allowed


def test_candidate_more_than_five_percent_below_live_is_refused():
    decision = decide_promotion(record("base", 0.90), "cand", 0.85, [])
    assert not decision.allowed and "more than 5% below" in decision.reason and "0.8550" in decision.reason


def test_failing_or_missing_checks_refuse_promotion_whatever_the_recall():
    assert not decide_promotion(record("base", 0.5), "cand", 0.99, ["recall_at_10"]).allowed
    assert not decide_promotion(None, "cand", None, []).allowed


def test_first_profile_needs_only_its_checks():
    assert decide_promotion(None, "base", 0.7, []).allowed


def test_promote_then_roll_back_returns_to_the_previous_record(tmp_path):
    state = promote(promote(ServingState(namespace="ns"), record("base", 0.9)), record("cand", 0.91))
    assert state.live.profile == "cand" and [r.profile for r in state.previous] == ["base"]
    state.save(tmp_path / "serving.json")
    restored = roll_back(ServingState.load(tmp_path / "serving.json", "ns"))
    assert restored.live == record("base", 0.9) and restored.previous == []


def test_rollback_without_history_says_what_is_live():
    with pytest.raises(NothingToRollBackError, match="live: base"):
        roll_back(promote(ServingState(namespace="ns"), record("base", 0.9)))
