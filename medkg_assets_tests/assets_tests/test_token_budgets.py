"""Token budgets in the pipeline: a budget lowered after chunking re-splits (or rejects) chunks
before embedding, every stage sees the same chunks, and the outcomes are counted."""

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import check_results, index, ingest, metadata

pytestmark = pytest.mark.slow


def lower_budget(config_dir, policy):
    """Chunks were cut 64 tokens wide; the namespace now allows 32."""
    path = config_dir / "namespaces" / "tiny.yaml"
    body = yaml.safe_load(path.read_text())
    body.update(max_tokens=32, over_budget=policy, chunking={"window_tokens": 32, "overlap_tokens": 8})
    path.write_text(yaml.safe_dump(body))


def budget_counts():
    text = (current_settings().data_dir / "metrics" / "tiny__minilm_cpu__dense.prom").read_text()
    return {
        s.labels["outcome"]: s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == "medicalkg_token_budget_chunks_total"
    }


def test_over_budget_chunks_are_resplit_and_every_stage_agrees(config_dir, instance):
    ingest(instance, "tiny")
    lower_budget(config_dir, "resplit")
    result = index(instance, "tiny", "minilm_cpu")
    dense = metadata(result, "dense_embeddings")
    assert dense["chunks_resplit"] > 0 and dense["chunks_rejected"] == 0
    assert metadata(result, "sparse_vectors")["vectors"] == dense["vectors"]
    assert check_results(result)["sparse_index_document_counts"][0]
    assert budget_counts() == {"resplit": dense["chunks_resplit"]}


def test_reject_policy_drops_over_budget_chunks_and_counts_them(config_dir, instance):
    ingest(instance, "tiny")
    lower_budget(config_dir, "reject")
    from medkg_assets_tests.pipeline import AssetSelection

    result = index(instance, "tiny", "minilm_cpu", selection=AssetSelection.assets("dense_embeddings"))
    dense = metadata(result, "dense_embeddings")
    assert dense["chunks_rejected"] == dense["chunks_over_budget"] > 0
    assert budget_counts() == {"rejected": dense["chunks_rejected"]}
