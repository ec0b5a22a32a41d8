"""Summary stage (per namespace × profile): `processing_summary.json` v4.1, written last, from every
stage's artefacts and kept reports (never from another asset's UI metadata)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from medkg_assets.manifests.rerank import RerankManifest
from medkg_assets.manifests.summary import (
    CacheHitRatios,
    DenseRun,
    FaissIndexFigures,
    RerankPayload,
    SparsePayload,
    SummaryCounts,
    SummaryDurations,
    SummaryMetrics,
    build_summary,
    validate_summary,
)
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import STAGE as DENSE_STAGE
from medkg_assets.stages.dense import DenseReport
from medkg_assets.stages.faiss import STAGE as FAISS_STAGE
from medkg_assets.stages.faiss import FaissReport
from medkg_assets.stages.lucene import lucene_info
from medkg_assets.stages.reports import (
    JsonValue,
    Metadata,
    Report,
    StageError,
    load_report,
    markdown_table,
    path_value,
)
from medkg_assets.stages.sparse import STAGE as SPARSE_STAGE
from medkg_assets.stages.sparse import SparseReport
from medkg_assets.storage.atomic import atomic_write_json
from medkg_assets.storage.pinning import ALL_STAGES, ArtefactSetError, pin_chunk_version, rebuild_hint
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact


class SummaryReport(Report):
    schema_version: str
    warnings: list[str]
    quality: dict[str, dict[str, float]]
    path: str

    def to_metadata(self) -> Metadata:
        rows = [[stage, q["recall@10"], q["ndcg@10"], q["mrr@10"]] for stage, q in self.quality.items()]
        return {
            "schema_version": self.schema_version,
            "warnings": JsonValue(self.warnings),
            "quality": markdown_table(["stage", "Recall@10", "nDCG@10", "MRR@10"], rows),
            "path": path_value(self.path),
        }


def _pinned_manifest(ctx: StageContext) -> tuple[dict[str, Path], RerankManifest]:
    """Every stage the summary reports on, built from one chunk version, with the manifest of it."""
    profile = ctx.require_profile()
    where = ctx.key
    try:
        pinned = pin_chunk_version(ctx.layout, ctx.namespace_name, profile.name, ALL_STAGES)
        manifest = RerankManifest.load(ctx.layout.rerank_manifest(ctx.namespace_name, profile.name))
        if manifest.chunk_version != pinned.chunk_version:
            raise ArtefactSetError(
                f"{where}: rerank_manifest was built from chunks {manifest.chunk_version}, the indexes from "
                f"{pinned.chunk_version}; "
                + rebuild_hint(ctx.namespace_name, profile.name, ["rerank_manifest"])
            )
    except (FileNotFoundError, ArtefactSetError) as error:
        raise StageError(f"{where}: summary not written, {error}") from error
    return pinned.directories, manifest


def write_processing_summary(ctx: StageContext) -> SummaryReport:
    """Validate and write the v4.1 summary; refuses (nothing written) unless the set is whole."""
    profile, namespace = ctx.require_profile(), ctx.namespace
    directories, manifest = _pinned_manifest(ctx)
    dense_dir, faiss_dir = directories["dense_embeddings"], directories["faiss_index"]
    sparse_dir = directories["sparse_vectors"]
    dense = DenseArtifact.load(dense_dir)
    faiss_artifact = FaissArtifact.load(faiss_dir)
    sparse = SparseArtifact.load(sparse_dir)
    lucene = lucene_info(directories["sparse_index"])

    def report_path(stage: str) -> Path:
        return ctx.layout.stage_report(namespace.name, profile.name, stage)

    dense_report = load_report(report_path(DENSE_STAGE), DenseReport, dense_dir.name)
    sparse_report = load_report(report_path(SPARSE_STAGE), SparseReport, sparse_dir.name)
    faiss_report = load_report(report_path(FAISS_STAGE), FaissReport, faiss_dir.name)
    warnings = list(
        dict.fromkeys(
            ([] if sparse.enabled else [f"sparse disabled: {sparse.disabled_reason}"])
            + list(lucene.get("warnings", []))
            + list(manifest.warnings)
        )
    )
    dense_run = DenseRun(
        model=dense.model,
        provider=dense_report.provider if dense_report else None,
        dims=dense.dims,
        vectors=dense.count,
        fingerprint=dense.fingerprint,
        dense_hash=dense_report.dense_hash if dense_report else None,
        index=FaissIndexFigures(**{k: faiss_artifact.info[k] for k in ("type", "ntotal", "dims")}),
    )
    sparse_payload = (
        SparsePayload(
            model=profile.sparse.model,
            vectors=sparse.count,
            top_k_terms=profile.sparse.top_k_terms,
            max_weight=profile.sparse.max_weight,
            impact_documents=lucene.get("impact_documents"),
            quantization_scale=lucene["quantization_scale"],
        )
        if sparse.enabled
        else None
    )
    rerank_payload = (
        RerankPayload(
            model=manifest.models.reranker,
            device=manifest.device,
            queries=manifest.queries,
            candidates_per_query=len(manifest.entries[0].candidates) if manifest.entries else 0,
            latency_ms=manifest.latency_ms(),
        )
        if manifest.rerank_ran
        else None
    )
    metrics = SummaryMetrics(
        counts=SummaryCounts(
            chunks=dense.count,
            documents=dense.documents(),
            embeddings_generated=dense_report.embeddings_generated if dense_report else None,
            sparse_generated=sparse_report.embeddings_generated if sparse_report else None,
            bm25_documents=lucene.get("bm25_documents"),
        ),
        durations_s=SummaryDurations(
            dense=dense_report.duration_s if dense_report else None,
            sparse=sparse_report.duration_s if sparse_report else None,
            faiss_build=faiss_report.build_seconds if faiss_report else None,
            first_stage_retrieval=manifest.first_stage_seconds,
        ),
        cache_hit_ratio=CacheHitRatios(
            dense=dense_report.cache_hit_ratio if dense_report else None,
            sparse=sparse_report.cache_hit_ratio if sparse_report else None,
        ),
        quality=manifest.quality,
        final_stage=manifest.final_stage,
    )
    summary = build_summary(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        run_id=ctx.run_id,
        namespace=namespace.name,
        profile=profile.name,
        tenant_id=namespace.tenant_id,
        enable_sparse=sparse.enabled,
        enable_rerank=manifest.rerank_enabled,
        sparse_models=[profile.sparse.model] if sparse.enabled else [],
        sources=[str(namespace.source_path)],
        dense_run=dense_run.model_dump(),
        sparse_payload=sparse_payload.model_dump() if sparse_payload else None,
        rerank_payload=rerank_payload.model_dump() if rerank_payload else None,
        warnings=warnings,
        metrics=metrics.model_dump(),
        telemetry=ctx.settings.telemetry_labels,
    )
    validate_summary(summary)
    target = ctx.layout.processing_summary(namespace.name, profile.name)
    atomic_write_json(target, summary)
    return SummaryReport(
        schema_version=summary["schema_version"],
        warnings=warnings,
        quality=manifest.quality,
        path=str(target),
    )
