"""Stage 4: judged retrieval over the eval set — dense, SPLADE, BM25, fusion, CrossEncoder rerank —
written as the rerank manifest, guarded by the blocking Recall@10 check."""

import json
import statistics
import time
from datetime import UTC, datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from medkg_assets.assets.chunks import profile_chunks
from medkg_assets.assets.context import (
    check_each_partition,
    for_each_partition,
    layout,
    markdown_table,
    telemetry_metadata,
)
from medkg_assets.assets.dense import manifest_code_version, per_namespace_chunks
from medkg_assets.assets.dense_index import faiss_index
from medkg_assets.assets.sparse import sparse_index, sparse_vectors
from medkg_assets.automation.k8s import GPU_POOL, GPU_STAGE_TAG
from medkg_assets.encoders.batching import encode_in_batches
from medkg_assets.encoders.devices import peak_memory_bytes
from medkg_assets.encoders.rerank import RerankerUnavailableError
from medkg_assets.evaluation.eval_set import load_eval_set
from medkg_assets.evaluation.expected_scores import expected_floor, judge_quality
from medkg_assets.evaluation.metrics import evaluate
from medkg_assets.partitions import backfill_policy, namespace_profile_partitions, split_partition_key
from medkg_assets.progress import Progress
from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets.resources.lucene import LuceneResource
from medkg_assets.resources.reranker import RerankerResource
from medkg_assets.resources.sparse_encoder import SparseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.search.fusion import collapse_to_documents
from medkg_assets.search.retrieval import Retriever
from medkg_assets.settings import EMBEDDER_ENABLE_RERANK, ProjectConfig, get_config
from medkg_assets.storage.atomic import atomic_write_json, read_json_or
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact

GROUP = "retrieval"
STAGES = ("dense", "sparse", "bm25", "hybrid", "reranked")
RERANK_DISABLED_WARNING = f"rerank disabled ({EMBEDDER_ENABLE_RERANK}=false or run config)"


class RetrievalConfig(Config):
    """`enable_rerank` unset follows EMBEDDER_ENABLE_RERANK (default on)."""

    enable_rerank: bool | None = None
    first_stage_k: int = 100
    rerank_candidates: int = 20
    rrf_k: int = 60


def open_retriever(
    settings: ProjectConfig,
    namespace: str,
    profile_name: str,
    dense_encoder: DenseEncoderResource,
    sparse_encoder: SparseEncoderResource,
    lucene: LuceneResource,
    rrf_k: int = 60,
) -> Retriever:
    """A retriever over the partition's published artefacts, with query encoders of the profile."""
    paths = layout(settings)
    profile = settings.profiles.get(profile_name)
    faiss_artifact = FaissArtifact.load(paths.faiss(namespace, profile_name).require_current("faiss_index"))
    sparse = SparseArtifact.load(paths.sparse(namespace, profile_name).require_current("sparse_vectors"))
    lucene_dir = paths.lucene(namespace, profile_name).require_current("sparse_index")
    dense_model = dense_encoder.open(profile, settings.models_dir)
    sparse_model = sparse_encoder.open(profile, settings.models_dir) if sparse.enabled else None
    return Retriever(
        namespace=namespace,
        profile=profile_name,
        chunks=profile_chunks(settings, namespace, profile).chunks,
        faiss_index=faiss_artifact.index,
        faiss_ids=faiss_artifact.chunk_ids,
        encode_dense_queries=dense_model.encode,
        lucene=lucene.open(lucene_dir / "impact" if sparse.enabled else None, lucene_dir / "bm25"),
        encode_sparse_queries=sparse_model.encode_queries if sparse_model else None,
        quantization_scale=profile.sparse.quantization_scale,
        rrf_k=rrf_k,
    )


def _candidates(ranking, retriever):
    return [
        {"rank": h.rank, "chunk_id": h.chunk_id, "doc_id": h.doc_id, "score": h.score}
        for h in retriever.hits(ranking)
    ]


@asset(
    partitions_def=namespace_profile_partitions,
    backfill_policy=backfill_policy,
    deps=[faiss_index, sparse_index, sparse_vectors, per_namespace_chunks],
    group_name=GROUP,
    pool=GPU_POOL,
    op_tags={GPU_STAGE_TAG: "rerank"},
    kinds={"pytorch", "json"},
    code_version=manifest_code_version("rerank-1"),
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
    return for_each_partition(
        context,
        telemetry,
        "rerank",
        "cross_encoder",
        lambda partition_key: _rerank_manifest(
            context, config, dense_encoder, sparse_encoder, reranker, lucene, partition_key
        ),
    )


def _rerank_manifest(
    context: AssetExecutionContext,
    config: RetrievalConfig,
    dense_encoder: DenseEncoderResource,
    sparse_encoder: SparseEncoderResource,
    reranker: RerankerResource,
    lucene: LuceneResource,
    partition_key: str,
) -> MaterializeResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    namespace, profile = settings.namespace(namespace_name), settings.profiles.get(profile_name)
    paths = layout(settings)
    warnings: list[str] = []
    retriever = open_retriever(
        settings, namespace_name, profile_name, dense_encoder, sparse_encoder, lucene, config.rrf_k
    )
    if not retriever.has_sparse:
        warnings.append("sparse retrieval skipped: sparse stage disabled")
    if namespace.eval is None:
        raise ValueError(
            f"namespace {namespace_name} has no eval set; add `eval:` to {namespace.config_file}"
        )
    doc_ids = {c.doc_id for c in retriever.chunks.values()}
    eval_set = load_eval_set(
        namespace.resolve(namespace.eval.queries), namespace.resolve(namespace.eval.qrels), doc_ids
    )
    query_ids = list(eval_set.queries)
    texts = [eval_set.queries[q] for q in query_ids]
    started = time.perf_counter()
    runs = retriever.first_stage(texts, config.first_stage_k)
    first_stage_s = time.perf_counter() - started
    chunk_to_doc = {cid: c.doc_id for cid, c in retriever.chunks.items()}
    doc_runs = {
        stage: {
            q: [d for d, _ in collapse_to_documents(runs[stage][i], chunk_to_doc)]
            for i, q in enumerate(query_ids)
        }
        for stage in runs
    }
    enable_rerank = settings.enable_rerank if config.enable_rerank is None else config.enable_rerank
    model = None
    if not enable_rerank:
        warnings.append(RERANK_DISABLED_WARNING)
    else:
        try:
            model = reranker.open(profile, settings.models_dir)
        except RerankerUnavailableError as error:
            warnings.append(f"rerank did not run: {error}")
    for warning in warnings:
        context.log.warning(f"{namespace_name}|{profile_name}: {warning}")
    entries, latencies, reranked_run, batch_sizes = [], [], {}, set()
    progress = Progress(f"rerank {namespace_name}|{profile_name}", len(query_ids), context.log.info)
    for i, query_id in enumerate(query_ids):
        candidates = runs["hybrid"][i][: config.rerank_candidates]
        entry = {
            "query_id": query_id,
            "query": texts[i],
            "candidates": _candidates(candidates, retriever),
            "reranked": None,
            "latency_ms": None,
            "gpu_peak_memory_bytes": None,
        }
        if model is not None:
            query_started = time.perf_counter()
            pairs = [(texts[i], retriever.chunks[cid].model_input) for cid, _ in candidates]
            scores, report = encode_in_batches(
                pairs,
                model.score,
                min(reranker.batch_cap, max(1, len(pairs))),
                release_memory=model.release_memory,
            )
            batch_sizes.update(report.sizes_used)
            order = sorted(
                zip((cid for cid, _ in candidates), scores, strict=True), key=lambda p: (-p[1], p[0])
            )
            entry["reranked"] = _candidates(order, retriever)
            entry["latency_ms"] = round(1000 * (time.perf_counter() - query_started), 2)
            entry["gpu_peak_memory_bytes"] = peak_memory_bytes(model.device)
            latencies.append(entry["latency_ms"])
            reranked_run[query_id] = [d for d, _ in collapse_to_documents(order, chunk_to_doc)]
        entries.append(entry)
        progress.advance(1)
    progress.close()
    if model is not None:
        doc_runs["reranked"] = reranked_run
    quality = {stage: evaluate(doc_runs[stage], eval_set.qrels) for stage in STAGES if stage in doc_runs}
    final_stage = "reranked" if "reranked" in quality else "hybrid"
    manifest = {
        "namespace": namespace_name,
        "profile": profile_name,
        "run_id": context.run.run_id,
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "models": {
            "dense": profile.dense.model,
            "sparse": profile.sparse.model if retriever.has_sparse else None,
            "reranker": profile.reranker.model if model else None,
        },
        "device": model.device if model else None,
        "rerank_enabled": enable_rerank,
        "rerank_ran": model is not None,
        "final_stage": final_stage,
        "queries": len(query_ids),
        "quality": quality,
        "warnings": warnings,
        "entries": entries,
    }
    target = paths.rerank_manifest(namespace_name, profile_name)
    atomic_write_json(target, manifest)
    rows = [
        [stage, *(quality[stage][m] for m in ("recall@10", "ndcg@10", "mrr@10", "recall@100"))]
        for stage in quality
    ]
    latency = (
        {"p50": statistics.median(latencies), "p95": sorted(latencies)[int(0.95 * (len(latencies) - 1))]}
        if latencies
        else {}
    )
    return MaterializeResult(
        metadata={
            "queries": len(query_ids),
            "final_stage": final_stage,
            "recall_at_10": quality[final_stage]["recall@10"],
            "recall_floor": expected_floor(
                settings.config_dir / "expected_scores.yaml", namespace_name, profile_name
            )
            or "none",
            "quality": markdown_table(["stage", "Recall@10", "nDCG@10", "MRR@10", "Recall@100"], rows),
            "rerank_ran": model is not None,
            "rerank_latency_ms": MetadataValue.json(latency),
            "rerank_batch_sizes": MetadataValue.json(sorted(batch_sizes, reverse=True)),
            "first_stage_seconds": round(first_stage_s, 2),
            "warnings": MetadataValue.json(warnings),
            "path": MetadataValue.path(str(target)),
            **telemetry_metadata(settings),
        }
    )


def final_ranking(manifest: dict) -> dict[str, list[str]]:
    """query id → document ids of the manifest's final ranking (reranked order when rerank ran)."""
    key = "reranked" if manifest["final_stage"] == "reranked" else "candidates"
    return {
        entry["query_id"]: list(dict.fromkeys(c["doc_id"] for c in entry[key] or []))
        for entry in manifest["entries"]
    }


@asset_check(
    asset=rerank_manifest,
    partitions_def=namespace_profile_partitions,
    blocking=True,
    description="Recall@10 of the final ranking ≥ the floor in config/expected_scores.yaml and < 5 % below "
    "the last good run.",
)
def recall_at_10(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return check_each_partition(context, lambda partition_key: _recall_at_10(context, partition_key))


def _recall_at_10(context: AssetCheckExecutionContext, partition_key: str) -> AssetCheckResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    paths = layout(settings)
    manifest = json.loads(paths.rerank_manifest(namespace_name, profile_name).read_text())
    namespace = settings.namespace(namespace_name)
    eval_set = load_eval_set(
        namespace.resolve(namespace.eval.queries), namespace.resolve(namespace.eval.qrels)
    )
    # Recompute from the manifest's final ranking rather than trusting its stored figures.
    final = evaluate(final_ranking(manifest), eval_set.qrels)
    history_path = paths.recall_history(namespace_name, profile_name)
    history = read_json_or(history_path, [])
    previous = history[-1]["recall@10"] if history else None
    floor = expected_floor(settings.config_dir / "expected_scores.yaml", namespace_name, profile_name)
    verdict = judge_quality(final["recall@10"], floor, previous)
    if verdict.passed:
        history.append(
            {"run_id": manifest["run_id"], "recall@10": final["recall@10"], "stage": manifest["final_stage"]}
        )
        atomic_write_json(history_path, history[-20:])
    per_stage = {
        f"{stage}_recall@10": MetadataValue.float(q["recall@10"]) for stage, q in manifest["quality"].items()
    }
    return AssetCheckResult(
        passed=verdict.passed,
        description="; ".join(verdict.reasons)
        or f"Recall@10 {final['recall@10']:.4f} ({manifest['final_stage']})",
        metadata={
            "recall@10": final["recall@10"],
            "ndcg@10": final["ndcg@10"],
            "mrr@10": final["mrr@10"],
            "floor": floor if floor is not None else "none",
            "previous": previous if previous is not None else "none",
            "final_stage": manifest["final_stage"],
            **per_stage,
        },
    )
