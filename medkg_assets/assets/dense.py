"""Dense assets (per namespace × profile): `dense_embeddings` → `faiss_index`, with their checks."""

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetsDefinition,
    MaterializeResult,
    asset,
    asset_check,
)

from medkg_assets.assets.context import check_stage, code_version, run_stage
from medkg_assets.assets.sharded import ShardedStage, sharded_asset
from medkg_assets.orchestration.partitions import Partitions
from medkg_assets.resources.faiss_store import FaissIndexResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings
from medkg_assets.stages.dense import (
    DenseReport,
    check_dense_parity,
    embed_dense_shard,
    plan_dense,
    publish_dense,
)
from medkg_assets.stages.faiss import (
    build_faiss_index,
    check_dense_dimensions,
    check_index_counts,
    check_self_recall,
)
from medkg_assets.topology import DENSE_GROUP


def dense_assets(
    settings: Settings, partitions: Partitions
) -> list[AssetsDefinition | AssetChecksDefinition]:
    dense_embeddings = sharded_asset(
        settings,
        partitions,
        ShardedStage(
            asset="dense_embeddings",
            stage="dense",
            provider="sentence_transformers",
            resource="dense_encoder",
            gpu_tag="dense",
            report_type=DenseReport,
            plan=lambda ctx, encoders, _config: plan_dense(ctx, encoders),
            encode=embed_dense_shard,
            publish=publish_dense,
        ),
        group_name=DENSE_GROUP,
        kinds={"pytorch", "parquet"},
        code_version=code_version(settings, "dense-2"),
        description="Dense vectors per chunk for one namespace × profile, one step per chunk shard "
        "(finished shards survive a crash); unchanged chunks come from cache.",
    )

    @asset_check(
        asset=dense_embeddings,
        partitions_def=partitions.namespace_profile,
        blocking=True,
        description="Dense-only hash parity: vectors + ids equal "
        "the baseline for the same chunks and profile.",
    )
    def dense_hash_parity(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_dense_parity)

    @asset(
        partitions_def=partitions.namespace_profile,
        backfill_policy=partitions.backfill_policy,
        deps=[dense_embeddings],
        group_name=DENSE_GROUP,
        kinds={"faiss"},
        code_version=code_version(settings, "faiss-1"),
        description="FAISS index over the dense vectors, as the profile's "
        "index spec says (flat, HNSW, IVF-PQ).",
    )
    def faiss_index(
        context: AssetExecutionContext, telemetry: TelemetryResource, faiss_store: FaissIndexResource
    ) -> MaterializeResult:
        return run_stage(
            context,
            settings,
            telemetry,
            "faiss_index",
            "faiss",
            lambda ctx: build_faiss_index(ctx, faiss_store),
        )

    @asset_check(
        asset=faiss_index,
        additional_deps=[dense_embeddings],
        partitions_def=partitions.namespace_profile,
        blocking=True,
        description="Every dense vector and the FAISS index have "
        "the profile's dims (DimensionMismatchError).",
    )
    def dense_dimension_matches_profile(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_dense_dimensions)

    @asset_check(
        asset=faiss_index,
        additional_deps=[dense_embeddings],
        partitions_def=partitions.namespace_profile,
        blocking=True,
        description="Recall@10 against exact search on sampled stored vectors ≥ the profile's floor.",
    )
    def faiss_self_recall(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_self_recall)

    @asset_check(
        asset=faiss_index,
        additional_deps=[dense_embeddings],
        partitions_def=partitions.namespace_profile,
        blocking=True,
        description="Per-shard dense rows add up to the chunk count, which FAISS ntotal equals.",
    )
    def faiss_index_counts_match_chunks(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_index_counts)

    return [
        dense_embeddings,
        dense_hash_parity,
        faiss_index,
        dense_dimension_matches_profile,
        faiss_self_recall,
        faiss_index_counts_match_chunks,
    ]
