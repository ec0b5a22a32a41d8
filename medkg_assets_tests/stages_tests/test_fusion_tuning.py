"""`fusion_config` on a tiny namespace with two named eval sets, one with train judgments: tuned on
train only, final stage selected on both dev sets, reproducible, and every set reported."""

import json

import pytest

from medkg_assets.stages.context import StageContext
from medkg_assets.stages.fusion_tuning import TuningOptions, load_fusion, tune_fusion
from medkg_assets.stages.rerank import check_recall
from medkg_assets_tests import pipeline
from medkg_assets_tests.conftest import current_settings

pytestmark = pytest.mark.slow


def test_fusion_is_tuned_on_train_selected_on_every_dev_set_and_reproducible(config_dir, instance):
    pipeline.add_judged_sets(config_dir)
    pipeline.ingest(instance, "tiny")
    result = pipeline.index(instance, "tiny", "minilm_cpu")
    tuned = pipeline.metadata(result, "fusion_config")
    assert tuned["tuned_on"] == {"medquad": 6}  # train judgments only
    assert tuned["selected_on"] == {"medquad": 3, "consumer": 3}
    ctx = StageContext.build(current_settings(), "tiny", "minilm_cpu")
    stored = json.loads(ctx.layout.fusion_config("tiny", "minilm_cpu").read_text())
    report = stored["report"]
    for name, per_stage in report["dev"].items():
        best_single = max(per_stage[s] for s in ("dense", "sparse", "bm25"))
        chosen = per_stage[report["fusion"]["final_stage"]]
        assert chosen >= best_single or name in report["below_best_single"]
    # the manifest and the Recall check report both sets, under the tuned final stage
    manifest = json.loads(ctx.layout.rerank_manifest("tiny", "minilm_cpu").read_text())
    assert set(manifest["quality_by_set"]) == {"medquad", "consumer"}
    assert manifest["final_stage"] == load_fusion(ctx).final_stage
    assert {e["eval_set"] for e in manifest["entries"]} == {"medquad", "consumer"}
    check = check_recall(ctx)
    assert check.metadata["eval_set"] == "medquad" and "consumer_ndcg@10" in check.metadata
    # same inputs, same seed: the same settings, recomputed from scratch
    ctx.layout.fusion_config("tiny", "minilm_cpu").unlink()
    again = pipeline.run_reader_stage(tune_fusion, ctx, TuningOptions())
    assert again.rebuilt and again.fusion.model_dump() == stored["fusion"]
