"""Stage 6: `serving_alias`, which profile's artefacts a namespace serves (per namespace).

Promotion needs the candidate's release checks passed for that namespace and a Recall@10 no more
than 5 % below the live profile's; the replaced record stays as the rollback target.
"""

from datetime import UTC, datetime

from dagster import (
    AssetCheckSeverity,
    AssetDep,
    AssetExecutionContext,
    Config,
    DagsterInstance,
    Failure,
    MaterializeResult,
    MultiToSingleDimensionPartitionMapping,
    asset,
)
from dagster._core.event_api import PartitionKeyFilter  # the storage API's partition filter
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from medkg_assets.assets.context import for_each_partition, layout, markdown_table, telemetry_metadata
from medkg_assets.assets.dense import dense_hash_parity
from medkg_assets.assets.dense_index import dense_dimension_matches_profile, faiss_self_recall
from medkg_assets.assets.opensearch import opensearch_mapping_matches_profile
from medkg_assets.assets.retrieval import recall_at_10
from medkg_assets.assets.sparse import sparse_index_document_counts, sparse_vectors_respect_profile_limits
from medkg_assets.assets.summary import processing_summary
from medkg_assets.automation.jobs import SERVING_GROUP
from medkg_assets.partitions import NAMESPACE_DIMENSION, backfill_policy, namespace_partitions
from medkg_assets.resources.opensearch import OpenSearchResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.rollout.serving import ServingRecord, ServingState, decide_promotion, promote
from medkg_assets.search.opensearch_mapping import index_name, read_alias
from medkg_assets.settings import ProjectConfig, get_config
from medkg_assets.storage.atomic import read_json_or
from medkg_assets.storage.pinning import ALL_STAGES, ArtefactSetError, pin_chunk_version
from medkg_assets.tenancy import PUBLISH_SCOPE

RELEASE_CHECKS = (
    dense_hash_parity,
    dense_dimension_matches_profile,
    faiss_self_recall,
    sparse_vectors_respect_profile_limits,
    sparse_index_document_counts,
    opensearch_mapping_matches_profile,
    recall_at_10,
)


class ServingAliasConfig(Config):
    """`profile` unset: the candidate for namespaces in the rollout set, the baseline otherwise."""

    profile: str | None = None


def failing_checks(instance: DagsterInstance, namespace: str, profile: str) -> list[str]:
    """Release checks whose latest evaluation for this namespace × profile did not pass (or never ran)."""
    keys = [key for check in RELEASE_CHECKS for key in check.check_keys]
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        keys, partition_filter=PartitionKeyFilter(key=f"{namespace}|{profile}")
    )
    failing = []
    for key in keys:
        record = latest.get(key)
        if record is None or record.status == AssetCheckExecutionRecordStatus.PLANNED:
            failing.append(f"{key.name} (not evaluated)")
        elif record.status == AssetCheckExecutionRecordStatus.FAILED:
            evaluation = record.event.dagster_event.event_specific_data if record.event else None
            if evaluation is None or evaluation.severity == AssetCheckSeverity.ERROR:
                failing.append(key.name)
    return failing


def passing_recall(settings: ProjectConfig, namespace: str, profile: str) -> float | None:
    """The last Recall@10 the blocking check accepted for this namespace × profile."""
    history = read_json_or(layout(settings).recall_history(namespace, profile), [])
    return float(history[-1]["recall@10"]) if history else None


_STORE_NAMES = {
    "dense_embeddings": "dense",
    "faiss_index": "faiss",
    "sparse_vectors": "sparse",
    "sparse_index": "lucene",
}


def artefact_versions(settings: ProjectConfig, namespace: str, profile: str) -> dict[str, str]:
    """The versions a promotion points readers at: one set of one chunk version, or ArtefactSetError."""
    pinned = pin_chunk_version(layout(settings), namespace, profile, ALL_STAGES)
    return {
        "chunks": pinned.chunk_version,
        **{_STORE_NAMES[stage]: path.name for stage, path in pinned.directories.items()},
    }


def point_readers(opensearch: OpenSearchResource, namespace: str, record: ServingRecord) -> str:
    """Flip the namespace's read alias to the record's index when OpenSearch is configured."""
    if not opensearch.configured or record.index is None:
        return "local only (OPENSEARCH_URL not set)"
    left = opensearch.point_alias(read_alias(namespace), record.index)
    return f"alias {read_alias(namespace)} → {record.index} (left: {', '.join(left) or 'none'})"


def serving_metadata(state: ServingState, outcome: str, readers: str) -> dict:
    rows = (
        [["live", state.live.profile, state.live.recall_at_10, state.live.promoted_at]] if state.live else []
    )
    rows += [["previous", r.profile, r.recall_at_10, r.promoted_at] for r in reversed(state.previous)]
    return {
        "live_profile": state.live.profile if state.live else "none",
        "previous_profile": state.previous[-1].profile if state.previous else "none",
        "outcome": outcome,
        "readers": readers,
        "history": markdown_table(["", "profile", "Recall@10", "since"], rows),
    }


@asset(
    partitions_def=namespace_partitions,
    backfill_policy=backfill_policy,
    deps=[
        AssetDep(
            processing_summary, partition_mapping=MultiToSingleDimensionPartitionMapping(NAMESPACE_DIMENSION)
        )
    ],
    group_name=SERVING_GROUP,
    kinds={"json"},
    description="The profile a namespace serves; promotion gated on checks and Recall@10 (≤ 5 % drop).",
)
def serving_alias(
    context: AssetExecutionContext,
    config: ServingAliasConfig,
    telemetry: TelemetryResource,
    opensearch: OpenSearchResource,
) -> MaterializeResult:
    return for_each_partition(
        context,
        telemetry,
        "serving",
        "opensearch" if opensearch.configured else "local",
        lambda namespace: _serving_alias(context, config, opensearch, namespace),
        scope=PUBLISH_SCOPE,
    )


def _serving_alias(
    context: AssetExecutionContext, config: ServingAliasConfig, opensearch: OpenSearchResource, namespace: str
) -> MaterializeResult:
    settings = get_config()
    target = settings.profiles.get(config.profile or settings.serving_target(namespace)).name
    path = layout(settings).serving_state(namespace)
    state = ServingState.load(path, namespace)
    if state.live is not None and state.live.profile == target:
        context.log.info(f"{namespace}: {target} is already live")
        return MaterializeResult(
            metadata={**serving_metadata(state, "unchanged", "unchanged"), **telemetry_metadata(settings)}
        )
    try:  # readers must find one consistent set behind the alias
        versions = artefact_versions(settings, namespace, target)
    except ArtefactSetError as error:
        raise Failure(description=f"namespace {namespace}: promotion of {target} refused: {error}") from error
    recall = passing_recall(settings, namespace, target)
    decision = decide_promotion(
        state.live, target, recall, failing_checks(context.instance, namespace, target)
    )
    if not decision.allowed:
        raise Failure(
            description=f"namespace {namespace}: promotion of {target} refused: {decision.reason}",
            metadata={"live_profile": state.live.profile if state.live else "none", "candidate": target},
        )
    record = ServingRecord(
        profile=target,
        recall_at_10=recall,
        run_id=context.run.run_id,
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        index=index_name(namespace, settings.profiles.get(target)),
        versions=versions,
    )
    readers = point_readers(opensearch, namespace, record)
    state = promote(state, record)
    state.save(path)
    context.log.info(f"{namespace}: {target} is live ({decision.reason}); {readers}")
    return MaterializeResult(
        metadata={
            **serving_metadata(state, f"promoted: {decision.reason}", readers),
            **telemetry_metadata(settings),
        }
    )


def live_profile(settings: ProjectConfig, namespace: str) -> str | None:
    """The profile `namespace` serves, if one was promoted."""
    state = ServingState.load(layout(settings).serving_state(namespace), namespace)
    return state.live.profile if state.live else None
