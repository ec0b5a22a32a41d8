"""Percentage rollout: deterministic, proportional, and only ever growing as the percentage rises."""

import pytest

from medkg_assets.config import ConfigError
from medkg_assets.rollout.selection import in_percentage, parse_percentage, rollout_bucket, rollout_set

NAMESPACES = [f"collection-{i:04d}" for i in range(2000)]


def test_bucket_is_deterministic_and_in_range():
    assert [rollout_bucket(n) for n in NAMESPACES[:50]] == [rollout_bucket(n) for n in NAMESPACES[:50]]
    assert all(0 <= rollout_bucket(n) < 100 for n in NAMESPACES)


@pytest.mark.parametrize("percentage", [0, 10, 50, 100])
def test_selection_is_proportional(percentage):
    share = len(rollout_set(NAMESPACES, [], percentage)) / len(NAMESPACES)
    assert abs(share - percentage / 100) < 0.03


def test_selection_only_grows_as_the_percentage_rises():
    chosen = [set(rollout_set(NAMESPACES, [], p)) for p in (0, 10, 50, 100)]
    assert chosen[0] == set() and chosen[-1] == set(NAMESPACES)
    assert chosen[0] <= chosen[1] <= chosen[2] <= chosen[3]


def test_canary_namespaces_are_in_even_at_zero_percent():
    outside = next(n for n in NAMESPACES if not in_percentage(n, 10))
    assert rollout_set([outside, "other"], [outside], 0) == [outside]


@pytest.mark.parametrize("raw", ["-1", "101", "ten", "12.5"])
def test_a_bad_percentage_is_refused_with_the_variable_name(raw):
    with pytest.raises(ConfigError, match="PROFILE_ROLLOUT_PERCENTAGE"):
        parse_percentage({"PROFILE_ROLLOUT_PERCENTAGE": raw})


def test_unset_percentage_means_only_the_canary():
    assert parse_percentage({}) == 0
