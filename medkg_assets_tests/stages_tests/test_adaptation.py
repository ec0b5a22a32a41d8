"""`adapted_reranker` on the tiny namespace with train judgments: fine-tuned for real within its
budget, compared with its base on both dev sets, used only when the comparison allows; a
deliberately worse model (trained on inverted labels) is refused by the check and never used."""

import json

import pytest
from dagster import AssetSelection

from medkg_assets.stages import adaptation
from medkg_assets.stages.adaptation import AdaptationOptions, adapt_reranker, check_adaptation
from medkg_assets.stages.adopted import adopted_reranker, load_record
from medkg_assets.stages.context import StageContext
from medkg_assets_tests import pipeline
from medkg_assets_tests.conftest import current_settings

pytestmark = pytest.mark.slow

BASE = "models:medkg-ce-minilm-medquad"


def _manifest_reranker(ctx):
    manifest = json.loads(ctx.layout.rerank_manifest("tiny", "minilm_cpu").read_text())
    return manifest["models"]["reranker"]


def test_adaptation_is_compared_on_every_dev_set_and_a_worse_model_is_refused(
    config_dir, instance, monkeypatch
):
    pipeline.add_judged_sets(config_dir)
    pipeline.ingest(instance, "tiny")
    result = pipeline.index(instance, "tiny", "minilm_cpu")
    shown = pipeline.metadata(result, "adapted_reranker")
    ctx = StageContext.build(current_settings(), "tiny", "minilm_cpu")
    record = load_record(ctx)
    assert record is not None and record.candidate is not None
    assert {c.name for c in record.comparisons} == {"medquad", "consumer"}
    assert record.training["train_queries"] == 6 and record.training["steps"] >= 1
    passed, _ = pipeline.check_results(result)["adapted_reranker_vs_base"]
    in_use = adopted_reranker(ctx)
    assert passed == (in_use is not None) == (record.adopted is not None)
    assert shown["reranker_in_use"] == (f"adapted {record.adopted}" if in_use else f"base {BASE}")
    assert _manifest_reranker(ctx) == (str(in_use) if in_use else BASE)
    # the same inputs: nothing is trained again
    again = pipeline.run_reader_stage(adapt_reranker, ctx, AdaptationOptions())
    assert not again.rebuilt and again.record == record

    # A deliberately worse candidate: the same mined pairs with their labels inverted, many passes.
    mine = adaptation.mine_training_pairs

    def inverted(*args, **kwargs):
        pairs, used = mine(*args, **kwargs)
        flipped = [adaptation.TrainingPair(p.query, p.passage, 1.0 - p.label) for p in pairs]
        return flipped * 8, used

    monkeypatch.setattr(adaptation, "mine_training_pairs", inverted)
    worse = pipeline.index(
        instance,
        "tiny",
        "minilm_cpu",
        selection=AssetSelection.assets("adapted_reranker", "rerank_manifest"),
        run_config={
            "ops": {"adapted_reranker": {"config": {"learning_rate": 2e-4, "batch_size": 8, "max_steps": 40}}}
        },
    )
    record = load_record(ctx)
    assert record.candidate is not None and record.adopted is None
    assert "loses on" in record.reason and any(c.verdict == "loses" for c in record.comparisons)
    passed, _ = pipeline.check_results(worse)["adapted_reranker_vs_base"]
    outcome = check_adaptation(ctx)
    assert not passed and not outcome.passed and outcome.severity == "warn"
    assert outcome.description.startswith("refused: loses on")
    assert adopted_reranker(ctx) is None and _manifest_reranker(ctx) == BASE  # the base reranks
    # A record that claims the refused model anyway is caught by the check and still not used.
    path = ctx.layout.adaptation_record("tiny", "minilm_cpu")
    path.write_text(record.model_copy(update={"adopted": record.candidate}).model_dump_json())
    forged = check_adaptation(ctx)
    assert not forged.passed and forged.severity == "error" and "says" in forged.description
    assert adopted_reranker(ctx) is None
