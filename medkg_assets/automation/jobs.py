"""Asset jobs: per-namespace ingestion, then per namespace × profile indexing."""

from dagster import AssetSelection, PartitionedConfig, define_asset_job

from medkg_assets.automation.k8s import profile_run_tags
from medkg_assets.partitions import namespace_partitions, namespace_profile_partitions, split_partition_key
from medkg_assets.settings import get_config

INGEST_GROUP = "ingest"

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.groups(INGEST_GROUP),
    partitions_def=namespace_partitions,
    description="Source documents → chunks for one namespace (shared by every profile).",
)


def _profile_tags(partition_key: str) -> dict[str, str]:
    """Runs of a GPU profile carry its pod placement (`dagster-k8s/config`); CPU profiles none."""
    _, profile = split_partition_key(partition_key)
    return profile_run_tags(get_config().profiles.get(profile))


index_job = define_asset_job(
    "index_job",
    selection=AssetSelection.all() - AssetSelection.groups(INGEST_GROUP),
    partitions_def=namespace_profile_partitions,
    config=PartitionedConfig(
        partitions_def=namespace_profile_partitions,
        run_config_for_partition_key_fn=lambda _: {},
        tags_for_partition_key_fn=_profile_tags,
    ),
    description="Every per-profile stage for one namespace × profile.",
)

release_checks_job = define_asset_job(
    "release_checks_job",
    selection=AssetSelection.all_asset_checks(),
    partitions_def=namespace_profile_partitions,
    description="Re-evaluate every release check of a partition without recomputing any asset.",
)

JOBS = [ingest_job, index_job, release_checks_job]
