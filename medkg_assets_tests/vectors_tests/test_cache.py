"""Cache planning: hits by content hash, nothing reused across fingerprints."""

from medkg_assets.vectors.cache import assemble, plan_cache


def test_hits_reuse_rows_and_misses_are_listed():
    plan = plan_cache(["b", "x", "a"], "fp", "fp", ["a", "b"])
    assert plan.reuse == {0: 1, 2: 0} and plan.misses == [1]
    assert round(plan.hit_ratio, 3) == 0.667


def test_other_fingerprint_reuses_nothing():
    plan = plan_cache(["a", "b"], "new", "old", ["a", "b"])
    assert plan.misses == [0, 1] and plan.hit_ratio == 0.0


def test_empty_cache_misses_everything():
    assert plan_cache(["a"], "fp", None, []).misses == [0]


def test_each_distinct_missing_text_is_encoded_once():
    plan = plan_cache(["x", "y", "x"], "fp", None, [])
    assert plan.texts_to_encode(["x", "y", "x"]) == {"x": 0, "y": 1}


def test_assemble_keeps_chunk_order():
    hashes = ["b", "x", "a", "x"]
    plan = plan_cache(hashes, "fp", "fp", ["a", "b"])
    assert assemble(plan, hashes, ["A", "B"], {"x": "X"}) == ["B", "X", "A", "X"]
