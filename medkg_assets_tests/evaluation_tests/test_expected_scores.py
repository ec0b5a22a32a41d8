"""Quality verdicts: floors are data; a ≥ 5 % relative drop is the rollback trigger."""

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
