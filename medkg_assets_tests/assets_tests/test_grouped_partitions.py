"""A run that holds several partitions (BackfillPolicy with `backfill_partitions_per_run` > 1): every
stage builds each partition, checks cover all of them, and each summary reads its own figures."""

import json

import pytest
from dagster import AssetKey, AssetRecordsFilter

from medkg_assets.orchestration.check_status import failing_checks
from medkg_assets.orchestration.partitions import build_partitions
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.conftest import current_settings
from medkg_assets_tests.pipeline import check_results, definitions, ingest, partition_tags

pytestmark = pytest.mark.slow
PROFILES = ("minilm_cpu", "minilm_hnsw_cpu")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": f"tiny|{PROFILES[0]}",
    "dagster/asset_partition_range_end": f"tiny|{PROFILES[1]}",
}
KEYS = [f"tiny|{p}" for p in PROFILES]


def check_keys():
    return [key for check in definitions().asset_checks for key in check.check_keys]


def evaluations_by_partition(instance, run_id):
    """{check name: {partition: evaluation}} the instance holds for the run's check executions."""
    out = {}
    for key in check_keys():
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=20):
            if record.run_id == run_id:
                evaluation = record.event.dagster_event.event_specific_data if record.event else None
                out.setdefault(key.name, {})[record.partition] = (record.status.value, evaluation)
    return out


def latest_materialization(instance, asset_key, partition):
    [record] = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]), limit=1
    ).records
    return record


def assert_each_partition_has_its_own_check_evaluations(instance, result):
    CHECK_KEYS = check_keys()
    held = evaluations_by_partition(instance, result.run_id)
    assert set(held) == {key.name for key in CHECK_KEYS}
    for key in CHECK_KEYS:
        # one finished evaluation per partition of the run, none left "planned", none partition-less
        assert set(held[key.name]) == set(KEYS), (key.name, held[key.name])
        for partition, (status, evaluation) in held[key.name].items():
            assert status == "SUCCEEDED", (key.name, partition, status)
            assert evaluation.partition == partition and evaluation.blocking
            target = latest_materialization(instance, key.asset_key, partition)
            assert evaluation.target_materialization_data is not None, (key.name, partition)
            assert evaluation.target_materialization_data.storage_id == target.storage_id
            assert evaluation.target_materialization_data.run_id == result.run_id
    # the UI's per-partition check status: each partition's result is current for its own materialisation
    infos = instance.event_log_storage.get_asset_check_partition_info(CHECK_KEYS, partition_keys=KEYS)
    assert {(i.check_key.name, i.partition_key) for i in infos} == {
        (k.name, p) for k in CHECK_KEYS for p in KEYS
    }
    assert all(i.latest_execution_status.value == "SUCCEEDED" and i.is_current for i in infos), infos
    # the promotion gate reads each partition's own result
    for profile in PROFILES:
        assert failing_checks(instance, "tiny", profile) == [], profile


def test_every_asset_carries_the_configured_backfill_policy():
    settings = current_settings()
    per_run = settings.environment.automation.backfill_partitions_per_run
    backfill_policy = build_partitions(settings).backfill_policy
    for asset in definitions().assets:
        assert asset.backfill_policy == backfill_policy, asset.key
        assert asset.backfill_policy.max_partitions_per_run == per_run


def test_a_range_run_builds_and_checks_each_partition(config_dir, instance):
    ingest(instance, "tiny")
    result = definitions().resolve_job_def("index_job").execute_in_process(instance=instance, tags=RANGE_TAGS)
    assert result.success
    paths = ArtifactLayout(current_settings().data_dir)
    summaries = {p: json.loads(paths.processing_summary("tiny", p).read_text()) for p in PROFILES}
    for profile, summary in summaries.items():
        assert summary["profile"] == profile
        # each summary's dense figures are its own partition's, not the grouped run's table
        assert summary["dense_run"]["dense_hash"] and summary["dense_run"]["provider"]
    checks = check_results(result)
    assert all(passed for passed, _ in checks.values()), checks
    assert_each_partition_has_its_own_check_evaluations(instance, result)
    materialized = instance.get_materialized_partitions(AssetKey("processing_summary"))
    assert {f"tiny|{p}" for p in PROFILES} <= set(materialized)
    [dense] = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["dense_embeddings"]
    ][:1]
    per_partition = dense.materialization.metadata["per_partition"].value
    assert set(per_partition) == {f"tiny|{p}" for p in PROFILES}
    assert all(figures["vectors"] > 0 for figures in per_partition.values())


def test_a_grouped_check_run_records_a_failure_only_for_the_partition_that_fails(config_dir, instance):
    ingest(instance, "tiny")
    assert (
        definitions()
        .resolve_job_def("index_job")
        .execute_in_process(instance=instance, tags=RANGE_TAGS)
        .success
    )
    paths = ArtifactLayout(current_settings().data_dir)
    template_path = paths.opensearch_mapping("tiny", PROFILES[0])
    template = json.loads(template_path.read_text())
    template["template"]["mappings"]["properties"]["dense_vector"]["dimension"] = 12
    template_path.write_text(json.dumps(template))

    rerun = (
        definitions()
        .resolve_job_def("release_checks_job")
        .execute_in_process(instance=instance, tags=RANGE_TAGS, raise_on_error=False)
    )
    assert not rerun.success  # the blocking check failed for one partition of the run
    held = evaluations_by_partition(instance, rerun.run_id)
    mapping = held["opensearch_mapping_matches_profile"]
    assert set(mapping) == set(KEYS)
    failed_status, failed = mapping[KEYS[0]]
    passed_status, passed = mapping[KEYS[1]]
    assert (failed_status, passed_status) == ("FAILED", "SUCCEEDED")
    assert "dimension 12" in failed.description and PROFILES[0] in failed.description
    assert "dimension" not in passed.description and PROFILES[1] in passed.description
    for name, by_partition in held.items():
        if name != "opensearch_mapping_matches_profile":
            statuses = {p: status for p, (status, _) in by_partition.items()}
            assert statuses == dict.fromkeys(KEYS, "SUCCEEDED"), name
    # a single-partition re-check after fixing the file clears that partition alone
    template["template"]["mappings"]["properties"]["dense_vector"]["dimension"] = 384
    template_path.write_text(json.dumps(template))
    single = (
        definitions()
        .resolve_job_def("release_checks_job")
        .execute_in_process(instance=instance, tags=partition_tags("tiny", PROFILES[0]), raise_on_error=False)
    )
    assert single.success
    rechecked = evaluations_by_partition(instance, single.run_id)["opensearch_mapping_matches_profile"]
    assert {p: status for p, (status, _) in rechecked.items()} == {KEYS[0]: "SUCCEEDED"}
