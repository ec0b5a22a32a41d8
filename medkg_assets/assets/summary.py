"""Stage 5: `processing_summary.json` (schema v4.1), written last, from every stage's artefacts."""

import json
from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetRecordsFilter,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from medkg_assets.assets.context import (
    for_each_partition,
    layout,
    markdown_table,
    partition_metadata,
    telemetry_metadata,
)
from medkg_assets.assets.dense import dense_embeddings, manifest_code_version
from medkg_assets.assets.dense_index import faiss_index
from medkg_assets.assets.opensearch import opensearch_mapping
from medkg_assets.assets.retrieval import rerank_manifest
from medkg_assets.assets.sparse import lucene_info, sparse_index, sparse_vectors
from medkg_assets.manifests.summary import build_summary, validate_summary
from medkg_assets.partitions import backfill_policy, namespace_profile_partitions, split_partition_key
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import get_config
from medkg_assets.storage.atomic import atomic_write_json
from medkg_assets.storage.pinning import ALL_STAGES, ArtefactSetError, pin_chunk_version, rebuild_hint
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact

UPSTREAM = (dense_embeddings, faiss_index, sparse_vectors, sparse_index, opensearch_mapping, rerank_manifest)


def latest_metadata(context: AssetExecutionContext, asset_name: str, partition_key: str) -> dict:
    """The metadata of the latest materialisation of `asset_name` for this partition."""
    result = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=AssetKey(asset_name), asset_partitions=[partition_key]), limit=1
    )
    if not result.records:
        return {}
    metadata = result.records[0].asset_materialization.metadata
    return partition_metadata({key: value.value for key, value in metadata.items()}, partition_key)


@asset(
    partitions_def=namespace_profile_partitions,
    backfill_policy=backfill_policy,
    deps=list(UPSTREAM),
    group_name="summary",
    kinds={"json"},
    code_version=manifest_code_version("summary-1"),
    description="processing_summary.json v4.1: toggles, per-stage runs, warnings, counts, timings, quality.",
)
def processing_summary(context: AssetExecutionContext, telemetry: TelemetryResource) -> MaterializeResult:
    return for_each_partition(
        context,
        telemetry,
        "summary",
        "python",
        lambda partition_key: _processing_summary(context, partition_key),
    )


def _processing_summary(context: AssetExecutionContext, partition_key: str) -> MaterializeResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    namespace, profile = settings.namespace(namespace_name), settings.profiles.get(profile_name)
    paths = layout(settings)
    try:  # every stage it reports on must exist, built from one chunk version, before anything is written
        pinned = pin_chunk_version(paths, namespace_name, profile_name, ALL_STAGES)
        manifest = json.loads(paths.rerank_manifest(namespace_name, profile_name).read_text())
        if manifest.get("chunk_version") != pinned.chunk_version:
            raise ArtefactSetError(
                f"{namespace_name}|{profile_name}: rerank_manifest was built from chunks "
                f"{manifest.get('chunk_version')}, the indexes from {pinned.chunk_version}; "
                + rebuild_hint(namespace_name, profile_name, ["rerank_manifest"])
            )
    except (FileNotFoundError, ArtefactSetError) as error:
        raise Failure(description=f"{namespace_name}|{profile_name}: summary not written, {error}") from error
    dense = DenseArtifact.load(pinned.directories["dense_embeddings"])
    faiss_artifact = FaissArtifact.load(pinned.directories["faiss_index"])
    sparse = SparseArtifact.load(pinned.directories["sparse_vectors"])
    lucene_dir = pinned.directories["sparse_index"]
    lucene = lucene_info(lucene_dir)
    stage_meta = {a.key.path[-1]: latest_metadata(context, a.key.path[-1], partition_key) for a in UPSTREAM}
    warnings = list(
        dict.fromkeys(
            ([] if sparse.enabled else [f"sparse disabled: {sparse.disabled_reason}"])
            + list(lucene.get("warnings", []))
            + list(manifest["warnings"])
        )
    )
    dense_meta, sparse_meta = stage_meta["dense_embeddings"], stage_meta["sparse_vectors"]
    summary = build_summary(
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        run_id=context.run.run_id,
        namespace=namespace_name,
        profile=profile_name,
        tenant_id=namespace.tenant_id,
        enable_sparse=sparse.enabled,
        enable_rerank=bool(manifest["rerank_enabled"]),
        sparse_models=[profile.sparse.model] if sparse.enabled else [],
        sources=[str(namespace.source_path)],
        dense_run={
            "model": dense.model,
            "provider": dense_meta.get("provider"),
            "dims": dense.dims,
            "vectors": len(dense.chunk_ids),
            "fingerprint": dense.fingerprint,
            "dense_hash": dense_meta.get("dense_hash"),
            "index": {k: faiss_artifact.info[k] for k in ("type", "ntotal", "dims")},
        },
        sparse_payload={
            "model": profile.sparse.model,
            "vectors": len(sparse.chunk_ids),
            "top_k_terms": profile.sparse.top_k_terms,
            "max_weight": profile.sparse.max_weight,
            "impact_documents": lucene.get("impact_documents"),
            "quantization_scale": lucene["quantization_scale"],
        }
        if sparse.enabled
        else None,
        rerank_payload={
            "model": manifest["models"]["reranker"],
            "device": manifest["device"],
            "queries": manifest["queries"],
            "candidates_per_query": len(manifest["entries"][0]["candidates"]) if manifest["entries"] else 0,
            "latency_ms": stage_meta["rerank_manifest"].get("rerank_latency_ms"),
        }
        if manifest["rerank_ran"]
        else None,
        warnings=warnings,
        metrics={
            "counts": {
                "chunks": len(dense.chunk_ids),
                "documents": len(set(dense.doc_ids)),
                "embeddings_generated": dense_meta.get("embeddings_generated"),
                "sparse_generated": sparse_meta.get("embeddings_generated"),
                "bm25_documents": lucene.get("bm25_documents"),
            },
            "durations_s": {
                "dense": dense_meta.get("duration_s"),
                "sparse": sparse_meta.get("duration_s"),
                "faiss_build": stage_meta["faiss_index"].get("build_seconds"),
                "first_stage_retrieval": stage_meta["rerank_manifest"].get("first_stage_seconds"),
            },
            "cache_hit_ratio": {
                "dense": dense_meta.get("cache_hit_ratio"),
                "sparse": sparse_meta.get("cache_hit_ratio"),
            },
            "quality": manifest["quality"],
            "final_stage": manifest["final_stage"],
        },
        telemetry=settings.telemetry_labels,
    )
    validate_summary(summary)
    target = paths.processing_summary(namespace_name, profile_name)
    atomic_write_json(target, summary)
    rows = [[stage, q["recall@10"], q["ndcg@10"], q["mrr@10"]] for stage, q in manifest["quality"].items()]
    return MaterializeResult(
        metadata={
            "schema_version": summary["schema_version"],
            "warnings": MetadataValue.json(warnings),
            "quality": markdown_table(["stage", "Recall@10", "nDCG@10", "MRR@10"], rows),
            "path": MetadataValue.path(str(target)),
            **telemetry_metadata(settings),
        }
    )
