"""Asset jobs: per-namespace ingestion, then per namespace × profile indexing."""

from dagster import AssetSelection, define_asset_job

from medkg_assets.partitions import namespace_partitions, namespace_profile_partitions

INGEST_GROUP = "ingest"

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.groups(INGEST_GROUP),
    partitions_def=namespace_partitions,
    description="Source documents → chunks for one namespace (shared by every profile).",
)

index_job = define_asset_job(
    "index_job",
    selection=AssetSelection.all() - AssetSelection.groups(INGEST_GROUP),
    partitions_def=namespace_profile_partitions,
    description="Every per-profile stage for one namespace × profile.",
)

release_checks_job = define_asset_job(
    "release_checks_job",
    selection=AssetSelection.all_asset_checks(),
    partitions_def=namespace_profile_partitions,
    description="Re-evaluate every release check of a partition without recomputing any asset.",
)

JOBS = [ingest_job, index_job, release_checks_job]
