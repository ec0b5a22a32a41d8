"""Stage 3b: the OpenSearch index template for a partition, published when a cluster is configured."""

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from medkg_assets.assets.chunks import profile_chunks
from medkg_assets.assets.context import for_each_partition, layout, telemetry_metadata
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
)
from medkg_assets.settings import get_config
from medkg_assets.storage.atomic import atomic_write_json
from medkg_assets.tenancy import EMBED_SCOPE, PUBLISH_SCOPE
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact


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
    template = build_index_template(namespace_name, profile, DEFAULT_SPARSE_FIELD)
    target = paths.opensearch_mapping(namespace_name, profile_name)
    atomic_write_json(target, template)
    index, alias = index_name(namespace_name, profile), read_alias(namespace_name)
    sparse = SparseArtifact.load(paths.sparse(namespace_name, profile_name).require_current("sparse_vectors"))
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
    chunks = [c.to_record() for c in profile_chunks(settings, namespace_name, profile).chunks]
    dense = DenseArtifact.load(paths.dense(namespace_name, profile_name).require_current("dense_embeddings"))
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
