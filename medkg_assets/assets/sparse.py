"""Sparse assets (per namespace × profile): `sparse_vectors` → `sparse_index` (Lucene) and
`opensearch_mapping`, with their checks."""

from typing import Any

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetsDefinition,
    ConfigMapping,
    Field,
    MaterializeResult,
    Noneable,
    asset,
    asset_check,
)

from medkg_assets.assets.context import check_stage, code_version, per_namespace, run_stage
from medkg_assets.assets.sharded import ShardedStage, sharded_asset
from medkg_assets.orchestration.partitions import Partitions
from medkg_assets.resources.lucene import LuceneResource
from medkg_assets.resources.opensearch import OpenSearchResource
from medkg_assets.resources.sparse_encoder import SparseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.lucene import build_lucene_indexes, check_document_counts
from medkg_assets.stages.opensearch import check_mapping, write_opensearch_mapping
from medkg_assets.stages.reports import Report
from medkg_assets.stages.sharded import ShardPlan
from medkg_assets.stages.sparse import (
    SparseReport,
    check_sparse_limits,
    encode_sparse_shard,
    plan_sparse,
    publish_sparse,
    write_sparse_disabled,
)
from medkg_assets.tenancy import EMBED_SCOPE, PUBLISH_SCOPE
from medkg_assets.topology import SPARSE_GROUP

# Run-config switch `ops: {sparse_vectors: {config: {enable_sparse: false}}}`; unset follows
# EMBEDDER_ENABLE_SPARSE (default on). Mapped onto the plan step, which writes the disabled marker.
SPARSE_TOGGLE = ConfigMapping(
    config_schema={"enable_sparse": Field(Noneable(bool), default_value=None, is_required=False)},
    config_fn=lambda config: {"sparse_vectors_plan": {"config": config}},
)


def sparse_assets(
    settings: Settings, partitions: Partitions
) -> list[AssetsDefinition | AssetChecksDefinition]:
    multi = partitions.namespace_profile

    def plan(
        ctx: StageContext, encoders: SparseEncoderResource, config: dict[str, Any]
    ) -> ShardPlan | Report:
        toggle = config.get("enable_sparse")
        enabled = settings.enable_sparse if toggle is None else toggle
        return plan_sparse(ctx, encoders) if enabled else write_sparse_disabled(ctx)

    sparse_vectors = sharded_asset(
        settings,
        partitions,
        ShardedStage(
            asset="sparse_vectors",
            stage="sparse",
            provider="splade",
            resource="sparse_encoder",
            gpu_tag="sparse",
            report_type=SparseReport,
            plan=plan,
            encode=encode_sparse_shard,
            publish=publish_sparse,
        ),
        group_name=SPARSE_GROUP,
        kinds={"pytorch", "parquet"},
        code_version=code_version(settings, "sparse-2"),
        description="SPLADE term → weight maps per chunk (top-k terms, clipped weights), one step per "
        "chunk shard, cached by content hash.",
        config=SPARSE_TOGGLE,
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
        code_version=code_version(settings, "lucene-2"),
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
