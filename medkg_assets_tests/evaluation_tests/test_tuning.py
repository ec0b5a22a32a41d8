"""Fusion tuning: fitted on train only, reproducible, and the final stage chosen on dev is never
below the best single stage there."""

import random

from medkg_assets.evaluation.tuning import (
    FusionGrid,
    JudgedRuns,
    select_final_stage,
    tune_fusion_settings,
    tune_rerank_settings,
)
from medkg_assets.search.fusion import FusionConfig


def _judged(name, queries, good, bad, seed, pool_scores=None):
    """Each query has one relevant document; `good` systems rank it first, `bad` ones 8th."""
    rng = random.Random(seed)
    ids = [f"{name}-q{i}" for i in range(queries)]
    runs = {system: [] for system in good + bad}
    chunk_to_doc = {}
    for q in ids:
        docs = [f"{q}-d{j}" for j in range(10)]
        chunk_to_doc.update({f"c-{d}": d for d in docs})
        others = docs[1:]
        for system in good + bad:
            rng.shuffle(others)
            order = [docs[0], *others] if system in good else [*others[:7], docs[0], *others[7:]]
            runs[system].append([(f"c-{d}", 10.0 - r) for r, d in enumerate(order)])
    judged = JudgedRuns(name, ids, {q: {f"{q}-d0": 2} for q in ids}, runs, chunk_to_doc)
    return judged


def test_fusion_tuning_moves_weight_to_the_system_that_finds_the_answers():
    train = [_judged("train", 30, good=["dense"], bad=["bm25", "sparse"], seed=1)]
    grid = FusionGrid()
    tuned = tune_fusion_settings(train, grid, FusionConfig())
    assert tuned.train_score > tuned.default_score
    assert tuned.fusion.weights["dense"] > max(tuned.fusion.weights["bm25"], tuned.fusion.weights["sparse"])
    again = tune_fusion_settings(
        [_judged("train", 30, ["dense"], ["bm25", "sparse"], seed=1)], grid, FusionConfig()
    )
    assert again.fusion == tuned.fusion and again.settings_tried == tuned.settings_tried


def test_ties_keep_the_defaults():
    train = [_judged("train", 10, good=["dense", "bm25", "sparse"], bad=[], seed=2)]
    assert tune_fusion_settings(train, FusionGrid(), FusionConfig()).fusion == FusionConfig()


def test_rerank_blend_follows_the_reranker_only_when_it_helps():
    def with_pools(judged, helpful):
        judged.pools = judged.fused(FusionConfig())
        judged.pool_scores = [
            [
                (1.0 if judged.chunk_to_doc[c].endswith("-d0") else 0.0) * (1 if helpful else -1)
                for c, _ in pool
            ]
            for pool in judged.pools
        ]
        return judged

    grid = FusionGrid()
    weak_first_stage = _judged("train", 20, good=[], bad=["dense", "bm25"], seed=3)
    helpful = tune_rerank_settings([with_pools(weak_first_stage, True)], grid, FusionConfig())
    assert helpful.fusion.rerank_weight > 0 and helpful.train_score > 0.9
    strong_first_stage = _judged("train", 20, good=["dense", "bm25"], bad=[], seed=3)
    harmful = tune_rerank_settings([with_pools(strong_first_stage, False)], grid, FusionConfig())
    assert harmful.fusion.rerank_weight == 0.0  # the fused order is kept


def test_the_final_stage_is_never_below_the_best_single_stage_on_dev():
    # dense alone finds everything; fusing in two bad systems loses to it
    dev = [_judged("dev", 20, good=["dense"], bad=["bm25", "sparse"], seed=4)]
    chosen = select_final_stage(dev, FusionConfig(), ["dense", "sparse", "bm25", "hybrid"])
    per_set = chosen.dev_scores["dev"]
    assert per_set[chosen.final_stage] >= max(per_set["dense"], per_set["sparse"], per_set["bm25"])
    # two dev sets each won by another single system: hybrid reaches neither, the best mean is kept
    both = [
        _judged("a", 20, good=["dense"], bad=["bm25"], seed=5),
        _judged("b", 20, good=["bm25"], bad=["dense"], seed=6),
    ]
    chosen = select_final_stage(both, FusionConfig(), ["dense", "bm25", "hybrid"])
    means = {
        st: (chosen.dev_scores["a"][st] + chosen.dev_scores["b"][st]) / 2
        for st in ("dense", "bm25", "hybrid")
    }
    assert means[chosen.final_stage] == max(means.values())
    assert set(chosen.below_best_single) <= {"a", "b"}
