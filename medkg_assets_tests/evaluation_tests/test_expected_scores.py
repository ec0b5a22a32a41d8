"""Quality verdicts: floors are data; a ≥ 5 % relative drop is the rollback trigger."""

import pytest

from medkg_assets.evaluation.expected_scores import expected_floor, judge_quality
from medkg_assets.settings import PROJECT_ROOT


def test_floor_is_read_from_the_yaml():
    path = PROJECT_ROOT / "config" / "expected_scores.yaml"
    assert expected_floor(path, "medquad_sample", "minilm_cpu") == 0.95
    assert expected_floor(path, "medquad_sample", "nope") is None


def test_below_floor_fails():
    verdict = judge_quality(0.80, floor=0.85, previous=None)
    assert not verdict.passed and "below the expected floor" in verdict.reasons[0]


def test_five_percent_drop_fails_and_smaller_passes():
    assert not judge_quality(0.95, floor=None, previous=1.0).passed
    assert judge_quality(0.951, floor=None, previous=1.0).passed


def test_first_run_without_history_or_floor_passes():
    assert judge_quality(0.1, floor=None, previous=None).passed


def test_expected_scores_are_value_and_tolerance_per_eval_set_as_in_pyserini_2cr(tmp_path):
    from medkg_assets.evaluation.expected_scores import ExpectedScore, expected_scores

    path = PROJECT_ROOT / "config" / "expected_scores.yaml"
    assert expected_scores(path, "medquad_sample", "minilm_cpu")["dev"]["ndcg@10"] == ExpectedScore(
        0.9564, 0.02
    )
    assert expected_scores(path, "medquad_full", "minilm_cpu") == {}  # a floor only
    broken = tmp_path / "expected_scores.yaml"
    broken.write_text("ns:\n  p:\n    expected:\n      dev:\n        ndcg@10: 0.9\n")
    with pytest.raises(ValueError, match=r"ns\.p\.expected: each metric needs \{value: x, tolerance: y\}"):
        expected_scores(broken, "ns", "p")


def test_below_tolerance_or_unmeasured_blocks_promotion_and_above_only_says_stale():
    from medkg_assets.evaluation.expected_scores import ExpectedScore, check_expected, promotion_blockers

    expected = {
        "medquad": {"ndcg@10": ExpectedScore(0.90, 0.02), "mrr@10": ExpectedScore(0.80, 0.02)},
        "mediqa": {"ndcg@10": ExpectedScore(0.85, 0.02)},
    }
    measured = {"medquad": {"ndcg@10": 0.8801, "mrr@10": 0.8300}}
    checks = check_expected(expected, measured)
    assert [(c.eval_set, c.metric, c.status) for c in checks] == [
        ("medquad", "ndcg@10", "ok"),  # 0.8801 ≥ 0.90 − 0.02
        ("medquad", "mrr@10", "above"),
        ("mediqa", "ndcg@10", "missing"),
    ]
    assert promotion_blockers(checks) == ["mediqa ndcg@10 not measured (expected 0.8500)"]
    lower = check_expected(expected, {**measured, "mediqa": {"ndcg@10": 0.8299}})
    assert promotion_blockers(lower) == ["mediqa ndcg@10 0.8299 < expected 0.8500 − 0.02"]
