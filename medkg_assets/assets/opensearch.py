"""Stage 3b: the OpenSearch index template for a partition, published when a cluster is configured."""

import json

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from medkg_assets.assets.chunks import profile_chunks
from medkg_assets.assets.context import check_each_partition, for_each_partition, layout, telemetry_metadata
from medkg_assets.assets.dense import dense_embeddings, manifest_code_version, per_namespace_chunks
from medkg_assets.assets.sparse import sparse_vectors
from medkg_assets.partitions import backfill_policy, namespace_profile_partitions, split_partition_key
from medkg_assets.resources.opensearch import OpenSearchResource, PublishError
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.rollout.serving import ServingState
from medkg_assets.search.opensearch_mapping import (
    DEFAULT_SPARSE_FIELD,
    build_index_template,
    chunk_document,
    index_name,
    read_alias,
    template_name,
    template_problems,
)
from medkg_assets.settings import get_config
from medkg_assets.storage.atomic import atomic_write_json
from medkg_assets.storage.pinning import ArtefactSetError, pin_chunk_version
from medkg_assets.tenancy import EMBED_SCOPE, PUBLISH_SCOPE
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact

PUBLISHED_STAGES = ("dense_embeddings", "sparse_vectors")


@asset(
    partitions_def=namespace_profile_partitions,
    backfill_policy=backfill_policy,
    deps=[per_namespace_chunks, sparse_vectors, dense_embeddings],
    group_name="sparse",
    kinds={"opensearch", "json"},
    code_version=manifest_code_version("opensearch-1"),
    description="OpenSearch index template (rank_features + knn_vector), published if OPENSEARCH_URL is set.",
)
def opensearch_mapping(
    context: AssetExecutionContext, telemetry: TelemetryResource, opensearch: OpenSearchResource
) -> MaterializeResult:
    return for_each_partition(
        context,
        telemetry,
        "opensearch",
        "opensearch",
        lambda partition_key: _opensearch_mapping(context, opensearch, partition_key),
        scope=PUBLISH_SCOPE if opensearch.url else EMBED_SCOPE,
    )


def _opensearch_mapping(
    context: AssetExecutionContext, opensearch: OpenSearchResource, partition_key: str
) -> MaterializeResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    profile = settings.profiles.get(profile_name)
    paths = layout(settings)
    try:  # published documents are one chunk version, with that version's vectors
        stages = PUBLISHED_STAGES if opensearch.configured else ("sparse_vectors",)
        pinned = pin_chunk_version(paths, namespace_name, profile_name, stages)
    except ArtefactSetError as error:
        raise Failure(description=f"opensearch mapping not written: {error}") from error
    template = build_index_template(namespace_name, profile, DEFAULT_SPARSE_FIELD)
    target = paths.opensearch_mapping(namespace_name, profile_name)
    atomic_write_json(target, template)
    index, alias = index_name(namespace_name, profile), read_alias(namespace_name)
    sparse = SparseArtifact.load(pinned.directories["sparse_vectors"])
    warnings = [] if sparse.enabled else [f"rank_features left empty: {sparse.disabled_reason}"]
    metadata = {
        "index": index,
        "read_alias": alias,
        "template_name": template_name(namespace_name, profile),
        "dense_dims": profile.dense.dims,
        "sparse_field": DEFAULT_SPARSE_FIELD,
        "template": MetadataValue.json(template),
        "path": MetadataValue.path(str(target)),
        "warnings": MetadataValue.json(warnings),
        **telemetry_metadata(settings),
    }
    if not opensearch.configured:
        context.log.info(
            f"{namespace_name}|{profile_name}: OPENSEARCH_URL not set; template written, not published"
        )
        return MaterializeResult(
            metadata={
                **metadata,
                "published": False,
                "publish_status": "not published: OPENSEARCH_URL is not set",
            }
        )
    chunks = [
        c.to_record() for c in profile_chunks(settings, namespace_name, profile, pinned.chunk_version).chunks
    ]
    dense = DenseArtifact.load(pinned.directories["dense_embeddings"])
    sparse_by_id = dict(zip(sparse.chunk_ids, sparse.vectors, strict=True)) if sparse.enabled else {}
    dense_row = {chunk_id: row for row, chunk_id in enumerate(dense.chunk_ids)}
    documents = (
        chunk_document(
            c,
            profile,
            sparse_by_id.get(c["chunk_id"]),
            dense.vectors[dense_row[c["chunk_id"]]].tolist() if c["chunk_id"] in dense_row else None,
        )
        for c in chunks
    )
    try:
        live = ServingState.load(paths.serving_state(namespace_name), namespace_name).live
        report = opensearch.publish(
            template_name(namespace_name, profile),
            template,
            index,
            alias,
            documents,
            move_alias=live is None or live.profile == profile_name,
        )
    except PublishError as error:
        raise Failure(description=f"namespace {namespace_name}, profile {profile_name}: {error}") from error
    return MaterializeResult(
        metadata={
            **metadata,
            "published": True,
            "publish_status": f"published {report.documents} documents",
            "documents": report.documents,
            "previous_indices": MetadataValue.json(report.previous_indices),
        }
    )


@asset_check(
    asset=opensearch_mapping,
    additional_deps=[sparse_vectors],
    partitions_def=namespace_profile_partitions,
    blocking=True,
    description="The written index template: knn_vector dims = the profile's, rank_features present "
    "when sparse is on, valid OpenSearch index/alias/template/field names.",
)
def opensearch_mapping_matches_profile(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return check_each_partition(
        context, lambda partition_key: _opensearch_mapping_matches_profile(partition_key)
    )


def _opensearch_mapping_matches_profile(partition_key: str) -> AssetCheckResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    profile = settings.profiles.get(profile_name)
    paths = layout(settings)
    target = paths.opensearch_mapping(namespace_name, profile_name)
    sparse = SparseArtifact.load(paths.sparse(namespace_name, profile_name).require_current("sparse_vectors"))
    try:
        template = json.loads(target.read_text())
    except (OSError, ValueError) as error:
        problems = [f"index template {target} unreadable: {type(error).__name__}: {error}"]
    else:
        problems = template_problems(template, namespace_name, profile, sparse.enabled, DEFAULT_SPARSE_FIELD)
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(problems)
        if problems
        else f"template fits {profile_name}: {profile.dense.dims}-d knn_vector, "
        + (f"rank_features '{DEFAULT_SPARSE_FIELD}'" if sparse.enabled else "sparse disabled")
        + ", valid names",
        metadata={
            "problems": len(problems),
            "expected_dims": profile.dense.dims,
            "sparse_enabled": sparse.enabled,
            "index": index_name(namespace_name, profile),
            "read_alias": read_alias(namespace_name),
            "path": MetadataValue.path(str(target)),
        },
    )
