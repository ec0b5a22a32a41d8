"""Cache planning: hits by content hash, nothing reused across fingerprints."""

import numpy as np

from medkg_assets.vectors.cache import plan_from_cache

CACHED = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)


def test_hits_reuse_rows_and_misses_are_listed():
    plan = plan_from_cache(["b", "x", "a"], 2, "fp", "fp", ["a", "b"], CACHED)
    assert plan.misses == [1] and plan.hits == 2
    assert plan.vectors[0].tolist() == [0.0, 1.0] and plan.vectors[2].tolist() == [1.0, 0.0]
    assert round(plan.hit_ratio, 3) == 0.667


def test_other_fingerprint_reuses_nothing():
    plan = plan_from_cache(["a", "b"], 2, "new", "old", ["a", "b"], CACHED)
    assert plan.misses == [0, 1] and plan.hit_ratio == 0.0


def test_empty_cache_misses_everything():
    assert plan_from_cache(["a"], 2, "fp", None, [], None).misses == [0]
