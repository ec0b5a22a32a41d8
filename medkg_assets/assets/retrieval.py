"""Retrieval assets (per namespace × profile): `adapted_reranker` (the CrossEncoder fine-tuned on
train judgments, used only if the blocking `adapted_reranker_vs_base` comparison on every dev set
allows) → `fusion_config` (fusion and rerank settings tuned on train judgments, final stage
selected on dev) → `rerank_manifest` (guarded by the blocking
`recall_at_10` check) → `processing_summary`."""

from typing import Any

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
from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets.resources.lucene import LuceneResource
from medkg_assets.resources.reranker import RerankerResource
from medkg_assets.resources.sparse_encoder import SparseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import Settings
from medkg_assets.stages.adaptation import (
    ADAPTATION_CODE_VERSION,
    AdaptationOptions,
    adapt_reranker,
    check_adaptation,
)
from medkg_assets.stages.fusion_tuning import FUSION_CODE_VERSION, TuningOptions, tune_fusion
from medkg_assets.stages.rerank import (
    RERANK_CODE_VERSION,
    RetrievalOptions,
    build_rerank_manifest,
    check_recall,
)
from medkg_assets.stages.summary import write_processing_summary
from medkg_assets.topology import GPU_POOL, GPU_STAGE_TAG, RETRIEVAL_GROUP, SUMMARY_GROUP


class RetrievalConfig(Config, RetrievalOptions):
    """Run config of `rerank_manifest`: the stage's `RetrievalOptions` (first-stage depth, rerank toggle)."""


class AdaptationConfig(Config, AdaptationOptions):
    """Run config of `adapted_reranker`: mining, the training budget (steps, seconds), the tie margin."""


class TuningConfig(Config, TuningOptions):
    """Run config of `fusion_config`: train sample size, seed, the grid of settings tried."""


def retrieval_assets(
    settings: Settings, partitions: Partitions
) -> list[AssetsDefinition | AssetChecksDefinition]:
    multi = partitions.namespace_profile
    # What the three readers of a built partition share: partitions, backfills, the GPU pool and tag.
    gpu_reader: dict[str, Any] = {
        "partitions_def": multi,
        "backfill_policy": partitions.backfill_policy,
        "group_name": RETRIEVAL_GROUP,
        "pool": GPU_POOL,
        "op_tags": {GPU_STAGE_TAG: "rerank"},
    }

    @asset(
        **gpu_reader,
        deps=["faiss_index", "sparse_index", "sparse_vectors", per_namespace("chunks")],
        kinds={"pytorch"},
        code_version=code_version(settings, ADAPTATION_CODE_VERSION),
        description="The profile's CrossEncoder fine-tuned on the namespace's train judgments with "
        "hard negatives from its hybrid index (budgeted by steps/seconds), compared with its base "
        "on every dev set.",
    )
    def adapted_reranker(
        context: AssetExecutionContext,
        telemetry: TelemetryResource,
        config: AdaptationConfig,
        dense_encoder: DenseEncoderResource,
        sparse_encoder: SparseEncoderResource,
        reranker: RerankerResource,
        lucene: LuceneResource,
    ) -> MaterializeResult:
        return run_stage(
            context,
            settings,
            telemetry,
            "adaptation",
            "cross_encoder",
            lambda ctx: adapt_reranker(ctx, config, dense_encoder, sparse_encoder, reranker, lucene),
        )

    @asset_check(
        asset=adapted_reranker,
        partitions_def=multi,
        blocking=True,
        description="The adapted CrossEncoder wins or ties within noise against its base on every "
        "dev set, else it is refused (WARN: the profile keeps its base).",
    )
    def adapted_reranker_vs_base(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_adaptation)

    @asset(
        **gpu_reader,
        deps=["faiss_index", "sparse_index", "sparse_vectors", per_namespace("chunks"), adapted_reranker],
        kinds={"pytorch", "json"},
        code_version=code_version(settings, FUSION_CODE_VERSION),
        description="Fusion (RRF k, weights, depth) and rerank (depth, blend) settings tuned on the "
        "namespace's train judgments; final stage selected on its dev sets.",
    )
    def fusion_config(
        context: AssetExecutionContext,
        telemetry: TelemetryResource,
        config: TuningConfig,
        dense_encoder: DenseEncoderResource,
        sparse_encoder: SparseEncoderResource,
        reranker: RerankerResource,
        lucene: LuceneResource,
    ) -> MaterializeResult:
        return run_stage(
            context,
            settings,
            telemetry,
            "fusion",
            "cross_encoder",
            lambda ctx: tune_fusion(ctx, config, dense_encoder, sparse_encoder, reranker, lucene),
        )

    @asset(
        **gpu_reader,
        deps=["faiss_index", "sparse_index", "sparse_vectors", per_namespace("chunks"), fusion_config],
        kinds={"pytorch", "json"},
        code_version=code_version(settings, RERANK_CODE_VERSION),
        description="Eval-set retrieval per stage and the CrossEncoder rerank of the fused candidates.",
    )
    def rerank_manifest(
        context: AssetExecutionContext,
        telemetry: TelemetryResource,
        config: RetrievalConfig,
        dense_encoder: DenseEncoderResource,
        sparse_encoder: SparseEncoderResource,
        reranker: RerankerResource,
        lucene: LuceneResource,
    ) -> MaterializeResult:
        return run_stage(
            context,
            settings,
            telemetry,
            "rerank",
            "cross_encoder",
            lambda ctx: build_rerank_manifest(ctx, config, dense_encoder, sparse_encoder, reranker, lucene),
        )

    @asset_check(
        asset=rerank_manifest,
        partitions_def=multi,
        blocking=True,
        description="Recall@10 of the final ranking ≥ the floor in config/expected_scores.yaml "
        "and < 5 % below the last good run.",
    )
    def recall_at_10(context: AssetCheckExecutionContext) -> AssetCheckResult:
        return check_stage(context, settings, check_recall)

    @asset(
        partitions_def=multi,
        backfill_policy=partitions.backfill_policy,
        deps=[
            "dense_embeddings",
            "faiss_index",
            "sparse_vectors",
            "sparse_index",
            "opensearch_mapping",
            rerank_manifest,
        ],
        group_name=SUMMARY_GROUP,
        kinds={"json"},
        code_version=code_version(settings, "summary-1"),
        description="processing_summary.json v4.1: toggles, per-stage "
        "runs, warnings, counts, timings, quality.",
    )
    def processing_summary(context: AssetExecutionContext, telemetry: TelemetryResource) -> MaterializeResult:
        return run_stage(context, settings, telemetry, "summary", "python", write_processing_summary)

    return [
        adapted_reranker,
        adapted_reranker_vs_base,
        fusion_config,
        rerank_manifest,
        recall_at_10,
        processing_summary,
    ]
