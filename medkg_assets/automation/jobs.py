"""Asset jobs: per-namespace ingestion, then per namespace × profile indexing."""

import os

from dagster import AssetSelection, PartitionedConfig, define_asset_job, multiprocess_executor

from medkg_assets.automation.k8s import EXECUTORS, index_run_config, profile_run_tags
from medkg_assets.config import ConfigError
from medkg_assets.partitions import namespace_partitions, namespace_profile_partitions, split_partition_key
from medkg_assets.settings import get_config

INGEST_GROUP = "ingest"
SERVING_GROUP = "serving"
MEDKG_EXECUTOR = "MEDKG_EXECUTOR"


def executor_kind() -> str:
    """`k8s` (one pod per step, dagster-k8s) on Kubernetes, `multiprocess` everywhere else."""
    kind = os.environ.get(MEDKG_EXECUTOR, "multiprocess")
    if kind not in EXECUTORS:
        raise ValueError(f"{MEDKG_EXECUTOR}={kind!r}: use one of {', '.join(EXECUTORS)}")
    return kind


def executor_definition(kind: str):
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return multiprocess_executor


ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.groups(INGEST_GROUP),
    partitions_def=namespace_partitions,
    description="Source documents → chunks for one namespace (shared by every profile).",
)


def _profile(partition_key: str):
    return get_config().profiles.get(split_partition_key(partition_key)[1])


def index_job_for(kind: str, partitions_per_run: int = 1):
    """The per-profile job for an executor kind; GPU placement follows the partition's profile.

    Placement is per partition (a PartitionedConfig), which Dagster cannot apply to runs that
    hold several partitions: on Kubernetes a backfill must keep one partition per run.
    """
    if partitions_per_run > 1 and kind == "k8s":
        raise ConfigError(
            f"{MEDKG_EXECUTOR}=k8s needs automation.backfill_partitions_per_run: 1 (it is "
            f"{partitions_per_run}): GPU placement is chosen per partition's profile"
        )
    placement = PartitionedConfig(
        partitions_def=namespace_profile_partitions,
        run_config_for_partition_key_fn=lambda key: index_run_config(_profile(key), kind),
        tags_for_partition_key_fn=lambda key: profile_run_tags(_profile(key), kind),
    )
    return define_asset_job(
        "index_job",
        selection=AssetSelection.all() - AssetSelection.groups(INGEST_GROUP, SERVING_GROUP),
        partitions_def=namespace_profile_partitions,
        executor_def=executor_definition(kind),
        config=placement if partitions_per_run == 1 else None,
        description="Every per-profile stage for one namespace × profile.",
    )


index_job = index_job_for(executor_kind(), get_config().environment.automation.backfill_partitions_per_run)

serving_job = define_asset_job(
    "serving_job",
    selection=AssetSelection.groups(SERVING_GROUP),
    partitions_def=namespace_partitions,
    description="Promote a namespace's profile (checks + Recall@10 gate) and point its readers at it.",
)

release_checks_job = define_asset_job(
    "release_checks_job",
    selection=AssetSelection.all_asset_checks(),
    partitions_def=namespace_profile_partitions,
    description="Re-evaluate every release check of a partition without recomputing any asset.",
)

JOBS = [ingest_job, index_job, serving_job, release_checks_job]
