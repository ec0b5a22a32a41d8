"""Re-ingestion sensor and schedule, evaluated through Dagster's own context builders."""

import json
from datetime import datetime

from dagster import (
    DagsterRunStatus,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)

from medkg_assets_tests.pipeline import definitions, index_requests_after_ingest


def namespace_source_sensor(context):
    return definitions().resolve_sensor_def("namespace_source_sensor")(context)


def full_reingest_schedule(context):
    return definitions().resolve_schedule_def("full_reingest_schedule")(context)


def tick(instance, cursor=None):
    context = build_sensor_context(instance=instance, cursor=cursor)
    return namespace_source_sensor(context)


def corpus(config_dir):
    return config_dir.parent / "data" / "tiny" / "corpus.jsonl"


def add_namespace(config_dir, name, source):
    (config_dir / "namespaces" / f"{name}.yaml").write_text(
        f"source: {{path: {source}}}\ntenant_id: tenant-b\ntokenizer: whitespace\nmax_tokens: 64\n"
        "chunking: {window_tokens: 32, overlap_tokens: 8}\n"
    )


def test_first_tick_requests_every_namespace_with_tags(config_dir, instance):
    result = tick(instance)
    assert isinstance(result, SensorResult)
    [request] = result.run_requests
    assert request.partition_key == "tiny" and request.run_key.startswith("tiny:")
    assert request.tags["medkg/profile"] == "minilm_cpu" and request.tags["medkg/tenant"] == "tenant-a"
    assert request.tags["medkg/namespace"] == "tiny"


def test_unchanged_sources_request_nothing_even_after_a_restart(config_dir, instance):
    cursor = tick(instance).cursor
    assert isinstance(tick(instance, cursor=cursor), SkipReason)
    # a restarted daemon gets the stored cursor back
    assert isinstance(
        namespace_source_sensor(build_sensor_context(instance=instance, cursor=cursor)), SkipReason
    )


def test_changed_document_requests_a_run_keyed_by_the_new_content(config_dir, instance):
    first = tick(instance)
    corpus(config_dir).write_text(corpus(config_dir).read_text().replace("the", "a", 1))
    second = tick(instance, cursor=first.cursor)
    [request] = second.run_requests
    assert request.run_key != first.run_requests[0].run_key
    assert json.loads(second.cursor)["tiny"] == request.tags["medkg/source_fingerprint"]


def test_deleted_document_requests_a_run(config_dir, instance):
    first = tick(instance)
    lines = corpus(config_dir).read_text().splitlines()
    corpus(config_dir).write_text("\n".join(lines[1:]) + "\n")
    assert len(tick(instance, cursor=first.cursor).run_requests) == 1


def test_new_namespace_folder_becomes_a_partition_and_gets_a_run(config_dir, instance):
    first = tick(instance)
    (config_dir.parent / "data" / "fresh").mkdir()
    (config_dir.parent / "data" / "fresh" / "note.md").write_text("# Gout\n\nUric acid crystals in joints.")
    add_namespace(config_dir, "fresh", "data/fresh")
    result = tick(instance, cursor=first.cursor)
    [request] = result.dynamic_partitions_requests
    assert request.partitions_def_name == "namespace" and list(request.partition_keys) == ["fresh"]
    assert [r.partition_key for r in result.run_requests] == ["fresh"]


def test_unreadable_namespace_is_logged_and_others_continue(config_dir, instance):
    add_namespace(config_dir, "broken", "data/does-not-exist")
    instance.add_dynamic_partitions("namespace", ["broken"])
    result = tick(instance)
    assert [r.partition_key for r in result.run_requests] == ["tiny"]
    assert "broken" not in json.loads(result.cursor)


def test_index_sensor_requests_the_profile_run_after_a_successful_ingest(config_dir, instance):
    result, [follow_up] = index_requests_after_ingest(instance, tick(instance).run_requests[0])
    assert follow_up.partition_key == "tiny|minilm_cpu"
    assert follow_up.run_key == f"{result.run_id}:minilm_cpu"
    assert follow_up.tags["medkg/tenant"] == "tenant-a"
    assert result.dagster_run.status == DagsterRunStatus.SUCCESS


def test_schedule_reingests_every_namespace_for_the_baseline_profile(config_dir):
    context = build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 3, 0))
    [request] = list(full_reingest_schedule(context))
    assert request.partition_key == "tiny" and request.tags["medkg/profile"] == "minilm_cpu"
    assert request.run_key == "tiny:2026-12-01T03:00:00"
