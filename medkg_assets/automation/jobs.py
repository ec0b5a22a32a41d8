"""Asset jobs: per-namespace ingestion, then per namespace × profile indexing, serving, checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dagster import (
    AssetSelection,
    ExecutorDefinition,
    PartitionedConfig,
    define_asset_job,
    multiprocess_executor,
)

from medkg_assets.automation.k8s import EXECUTORS, index_run_config, profile_run_tags
from medkg_assets.config import ConfigError, EmbeddingProfile
from medkg_assets.config.env_names import MEDKG_EXECUTOR
from medkg_assets.orchestration.partitions import Partitions, split_partition_key
from medkg_assets.settings import Settings
from medkg_assets.topology import INGEST_GROUP, SERVING_GROUP

# What `define_asset_job` returns (Dagster does not export the class): resolved when Definitions load.
AssetJob = Any


def executor_kind(settings: Settings) -> str:
    """`k8s` (one pod per step, dagster-k8s) on Kubernetes, `multiprocess` everywhere else."""
    kind = settings.environ.get(MEDKG_EXECUTOR, "multiprocess")
    if kind not in EXECUTORS:
        raise ConfigError(f"{MEDKG_EXECUTOR}={kind!r}: use one of {', '.join(EXECUTORS)}")
    return kind


def executor_definition(kind: str) -> ExecutorDefinition:
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return multiprocess_executor


def index_job_for(
    settings: Settings, partitions: Partitions, kind: str, partitions_per_run: int = 1
) -> AssetJob:
    """The per-profile job for an executor kind; GPU placement follows the partition's profile.

    Placement is per partition (a PartitionedConfig), which Dagster cannot apply to runs that
    hold several partitions: on Kubernetes a backfill must keep one partition per run.
    """
    if partitions_per_run > 1 and kind == "k8s":
        raise ConfigError(
            f"{MEDKG_EXECUTOR}=k8s needs automation.backfill_partitions_per_run: 1 (it is "
            f"{partitions_per_run}): GPU placement is chosen per partition's profile"
        )

    def profile_of(partition_key: str) -> EmbeddingProfile:
        return settings.profiles.get(split_partition_key(partition_key)[1])

    placement: PartitionedConfig[Any] = PartitionedConfig(
        partitions_def=partitions.namespace_profile,
        run_config_for_partition_key_fn=lambda key: index_run_config(profile_of(key), kind),
        tags_for_partition_key_fn=lambda key: profile_run_tags(profile_of(key), kind),
    )
    return define_asset_job(
        "index_job",
        selection=AssetSelection.all() - AssetSelection.groups(INGEST_GROUP, SERVING_GROUP),
        partitions_def=partitions.namespace_profile,
        executor_def=executor_definition(kind),
        config=placement if partitions_per_run == 1 else None,
        description="Every per-profile stage for one namespace × profile.",
    )


@dataclass(frozen=True)
class Jobs:
    ingest: AssetJob
    index: AssetJob
    serving: AssetJob
    release_checks: AssetJob
    executor: str

    @property
    def all(self) -> list[AssetJob]:
        return [self.ingest, self.index, self.serving, self.release_checks]


def build_jobs(settings: Settings, partitions: Partitions) -> Jobs:
    kind = executor_kind(settings)
    return Jobs(
        ingest=define_asset_job(
            "ingest_job",
            selection=AssetSelection.groups(INGEST_GROUP),
            partitions_def=partitions.namespace,
            description="Source documents → chunks for one namespace (shared by every profile).",
        ),
        index=index_job_for(
            settings, partitions, kind, settings.environment.automation.backfill_partitions_per_run
        ),
        serving=define_asset_job(
            "serving_job",
            selection=AssetSelection.groups(SERVING_GROUP),
            partitions_def=partitions.namespace,
            description="Promote a namespace's profile (checks + Recall@10 "
            "gate) and point its readers at it.",
        ),
        release_checks=define_asset_job(
            "release_checks_job",
            selection=AssetSelection.all_asset_checks(),
            partitions_def=partitions.namespace_profile,
            description="Re-evaluate every release check of a partition without recomputing any asset.",
        ),
        executor=kind,
    )
