"""A run that holds several partitions (BackfillPolicy with `backfill_partitions_per_run` > 1): every
stage builds each partition, checks cover all of them, and each summary reads its own figures."""

import json

import pytest
from dagster import AssetKey

from medkg_assets.definitions import defs
from medkg_assets.partitions import backfill_policy
from medkg_assets.settings import get_config
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets_tests.pipeline import check_results, ingest

pytestmark = pytest.mark.slow
PROFILES = ("minilm_cpu", "minilm_hnsw_cpu")
RANGE_TAGS = {
    "dagster/asset_partition_range_start": f"tiny|{PROFILES[0]}",
    "dagster/asset_partition_range_end": f"tiny|{PROFILES[1]}",
}


def test_every_asset_carries_the_configured_backfill_policy():
    per_run = get_config().environment.automation.backfill_partitions_per_run
    for asset in defs.assets:
        assert asset.backfill_policy == backfill_policy, asset.key
        assert asset.backfill_policy.max_partitions_per_run == per_run


def test_a_range_run_builds_and_checks_each_partition(config_dir, instance):
    ingest(instance, "tiny")
    result = defs.resolve_job_def("index_job").execute_in_process(instance=instance, tags=RANGE_TAGS)
    assert result.success
    paths = ArtifactLayout(get_config().data_dir)
    summaries = {p: json.loads(paths.processing_summary("tiny", p).read_text()) for p in PROFILES}
    for profile, summary in summaries.items():
        assert summary["profile"] == profile
        # each summary's dense figures are its own partition's, not the grouped run's table
        assert summary["dense_run"]["dense_hash"] and summary["dense_run"]["provider"]
    checks = check_results(result)
    assert all(passed for passed, _ in checks.values()), checks
    assert checks["recall_at_10"][1]["partitions"] == 2
    materialized = instance.get_materialized_partitions(AssetKey("processing_summary"))
    assert {f"tiny|{p}" for p in PROFILES} <= set(materialized)
    [dense] = [
        e for e in result.get_asset_materialization_events() if e.asset_key.path == ["dense_embeddings"]
    ][:1]
    per_partition = dense.materialization.metadata["per_partition"].value
    assert set(per_partition) == {f"tiny|{p}" for p in PROFILES}
    assert all(figures["vectors"] > 0 for figures in per_partition.values())
