"""Every stage batch of a real run leaves CloudEvents and Prometheus metrics under the data dir."""

import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import index, ingest

pytestmark = pytest.mark.slow


def events():
    path = current_settings().data_dir / "events" / "embedding-events.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def samples(stage, profile="minilm_cpu"):
    text = (current_settings().data_dir / "metrics" / f"tiny__{profile}__{stage}.prom").read_text()
    return {
        (s.name, s.labels.get("error_type", "")): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_run_emits_started_and_completed_events_and_metrics_per_stage(config_dir, instance):
    ingest(instance, "tiny")
    result = index(instance, "tiny", "minilm_cpu")
    dense = [e for e in events() if e["data"]["stage"] == "dense"]
    assert [e["type"] for e in dense] == [
        "com.medical-kg.embedding.started",
        "com.medical-kg.embedding.completed",
    ]
    completed = dense[-1]
    assert completed["correlationid"] == result.run_id and completed["subject"] == "tiny"
    assert completed["data"]["tenant_id"] == "tenant-a" and completed["data"]["embeddings_generated"] > 0
    figures = samples("dense")
    generated = figures[("medicalkg_embeddings_generated_total", "")]
    assert generated == completed["data"]["embeddings_generated"]
    assert figures[("medicalkg_embedding_duration_seconds_count", "")] == 1
    rerank = samples("rerank")
    assert 0 < rerank[("medicalkg_retrieval_recall_at_10", "")] <= 1
    stages = {e["data"]["stage"] for e in events()}
    assert {
        "ingest",
        "chunking",
        "dense",
        "faiss_index",
        "sparse",
        "sparse_index",
        "rerank",
        "summary",
    } <= stages


def test_a_failed_stage_emits_a_failed_event_and_counts_its_error_type(config_dir, instance):
    ingest(instance, "tiny")
    index(instance, "tiny", "bge_m3", raise_on_error=False)
    [failed] = [e for e in events() if e["type"].endswith(".failed") and e["data"]["stage"] == "dense"]
    assert failed["data"]["error"]["type"] == "GpuNotAvailableError"
    assert samples("dense", "bge_m3")[("medicalkg_embedding_failures_total", "GpuNotAvailableError")] == 1
