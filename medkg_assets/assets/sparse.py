"""Sparse assets (per namespace × profile): `sparse_vectors` → `sparse_index` (Lucene) and
`opensearch_mapping`, with their checks."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    MaterializeResult,
    asset,
    asset_check,
)

from medkg_assets.assets.context import check_stage, code_version, per_namespace, run_stage
from medkg_assets.orchestration.partitions import Partitions
from medkg_assets.resources.lucene import LuceneResource
from medkg_assets.resources.opensearch import OpenSearchResource
from medkg_assets.resources.sparse_encoder import SparseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings
from medkg_assets.stages.lucene import build_lucene_indexes, check_document_counts
from medkg_assets.stages.opensearch import check_mapping, write_opensearch_mapping
from medkg_assets.stages.sparse import check_sparse_limits, encode_sparse
from medkg_assets.tenancy import EMBED_SCOPE, PUBLISH_SCOPE
from medkg_assets.topology import GPU_POOL, GPU_STAGE_TAG, SPARSE_GROUP


class SparseToggle(Config):
    """Run-config switch; unset follows EMBEDDER_ENABLE_SPARSE (default on)."""

    enable_sparse: bool | None = None


def sparse_assets(
    settings: Settings, partitions: Partitions
) -> list[AssetsDefinition | AssetChecksDefinition]:
    multi = partitions.namespace_profile

    @asset(
        partitions_def=multi,
        backfill_policy=partitions.backfill_policy,
        deps=[per_namespace("chunks")],
        group_name=SPARSE_GROUP,
        pool=GPU_POOL,
        op_tags={GPU_STAGE_TAG: "sparse"},
        kinds={"pytorch", "jsonl"},
        code_version=code_version(settings, "sparse-1"),
        description="SPLADE term → weight maps per chunk (top-k terms, "
        "clipped weights), cached by content hash.",
    )
    def sparse_vectors(
        context: AssetExecutionContext,
        telemetry: TelemetryResource,
        config: SparseToggle,
        sparse_encoder: SparseEncoderResource,
    ) -> MaterializeResult:
        enabled = settings.enable_sparse if config.enable_sparse is None else config.enable_sparse
        return run_stage(
            context,
            settings,
            telemetry,
            "sparse",
            "splade",
            lambda ctx: encode_sparse(ctx, sparse_encoder, enabled),
        )

    @asset_check(
        asset=sparse_vectors,
        partitions_def=multi,
        blocking=True,
        description="Each sparse vector keeps ≤ top_k_terms positive terms with weights ≤ max_weight.",
    )
    def sparse_vectors_respect_profile_limits(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_sparse_limits)

    @asset(
        partitions_def=multi,
        backfill_policy=partitions.backfill_policy,
        deps=[sparse_vectors, per_namespace("chunks")],
        group_name=SPARSE_GROUP,
        kinds={"lucene"},
        code_version=code_version(settings, "lucene-1"),
        description="Lucene impact index of the SPLADE terms (quantised) and a BM25 index of the chunk text.",
    )
    def sparse_index(
        context: AssetExecutionContext, telemetry: TelemetryResource, lucene: LuceneResource
    ) -> MaterializeResult:
        return run_stage(
            context,
            settings,
            telemetry,
            "sparse_index",
            "lucene",
            lambda ctx: build_lucene_indexes(ctx, lucene),
        )

    @asset_check(
        asset=sparse_index,
        partitions_def=multi,
        blocking=True,
        description="The Lucene indexes open and hold one document per sparse vector / chunk.",
    )
    def sparse_index_document_counts(
        context: AssetCheckExecutionContext, lucene: LuceneResource
    ) -> AssetCheckResult:
        return check_stage(context, settings, lambda ctx: check_document_counts(ctx, lucene))

    @asset(
        partitions_def=multi,
        backfill_policy=partitions.backfill_policy,
        deps=[per_namespace("chunks"), sparse_vectors, "dense_embeddings"],
        group_name=SPARSE_GROUP,
        kinds={"opensearch", "json"},
        code_version=code_version(settings, "opensearch-1"),
        description="OpenSearch index template (rank_features + knn_vector), "
        "published if OPENSEARCH_URL is set.",
    )
    def opensearch_mapping(
        context: AssetExecutionContext, telemetry: TelemetryResource, opensearch: OpenSearchResource
    ) -> MaterializeResult:
        return run_stage(
            context,
            settings,
            telemetry,
            "opensearch",
            "opensearch",
            lambda ctx: write_opensearch_mapping(ctx, opensearch),
            scope=PUBLISH_SCOPE if opensearch.url else EMBED_SCOPE,
        )

    @asset_check(
        asset=opensearch_mapping,
        additional_deps=[sparse_vectors],
        partitions_def=multi,
        blocking=True,
        description="The written index template: knn_vector dims = the profile's, rank_features present "
        "when sparse is on, valid OpenSearch index/alias/template/field names.",
    )
    def opensearch_mapping_matches_profile(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_mapping)

    return [
        sparse_vectors,
        sparse_vectors_respect_profile_limits,
        sparse_index,
        sparse_index_document_counts,
        opensearch_mapping,
        opensearch_mapping_matches_profile,
    ]
