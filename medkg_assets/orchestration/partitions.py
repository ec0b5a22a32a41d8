"""Partitions: `namespace` (dynamic, one per collection) × `profile` (static, from the manifest).

The profile dimension and the backfill policy come from settings, so they are built by
`build_partitions` when the definitions are built; the dynamic namespace dimension is only a
name (its keys live in the instance, added by the source sensor and the CLI).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from dagster import (
    BackfillPolicy,
    DagsterInstance,
    DynamicPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
)

from medkg_assets.settings import Settings

NAMESPACE_DIMENSION = "namespace"
PROFILE_DIMENSION = "profile"

namespace_partitions = DynamicPartitionsDefinition(name=NAMESPACE_DIMENSION)


@dataclass(frozen=True)
class Partitions:
    """The partitions definitions of one code location, built from its settings."""

    namespace: DynamicPartitionsDefinition
    profile: StaticPartitionsDefinition
    namespace_profile: MultiPartitionsDefinition
    # Backfills launch one run per `backfill_partitions_per_run` partitions (config/<env>.yaml).
    backfill_policy: BackfillPolicy


def build_partitions(settings: Settings) -> Partitions:
    profile = StaticPartitionsDefinition(settings.profiles.names)
    return Partitions(
        namespace=namespace_partitions,
        profile=profile,
        namespace_profile=MultiPartitionsDefinition(
            {NAMESPACE_DIMENSION: namespace_partitions, PROFILE_DIMENSION: profile}
        ),
        backfill_policy=BackfillPolicy.multi_run(
            max_partitions_per_run=settings.environment.automation.backfill_partitions_per_run
        ),
    )


def namespace_profile_key(namespace: str, profile: str) -> MultiPartitionKey:
    return MultiPartitionKey({NAMESPACE_DIMENSION: namespace, PROFILE_DIMENSION: profile})


def split_partition_key(partition_key: str | MultiPartitionKey) -> tuple[str, str]:
    """(namespace, profile) from a multi-partition key or its `namespace|profile` string form."""
    if isinstance(partition_key, MultiPartitionKey):
        dims = partition_key.keys_by_dimension
        return dims[NAMESPACE_DIMENSION], dims[PROFILE_DIMENSION]
    namespace, _, profile = str(partition_key).partition("|")
    if not profile:
        raise ValueError(f"expected a 'namespace|profile' partition key, got {partition_key!r}")
    return namespace, profile


def register_namespaces(instance: DagsterInstance, names: Iterable[str]) -> list[str]:
    """Add the namespaces the instance does not know yet (idempotent); returns the added ones."""
    known = set(instance.get_dynamic_partitions(NAMESPACE_DIMENSION))
    missing = sorted(set(names) - known)
    if missing:
        instance.add_dynamic_partitions(NAMESPACE_DIMENSION, missing)
    return missing
