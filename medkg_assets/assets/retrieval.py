"""Stage 4: judged retrieval over the eval set — dense, SPLADE, BM25, fusion, CrossEncoder rerank —
written as the rerank manifest, guarded by the blocking Recall@10 check."""

import hashlib
import json
import statistics
import time
from datetime import UTC, datetime

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    Failure,
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
from medkg_assets.config import EmbeddingProfile
from medkg_assets.encoders.batching import encode_in_batches
from medkg_assets.encoders.devices import peak_memory_bytes
from medkg_assets.encoders.rerank import RerankerUnavailableError
from medkg_assets.evaluation.eval_set import EvalSet, load_eval_set
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
from medkg_assets.storage.atomic import atomic_write_json, canonical_json, read_json_or
from medkg_assets.storage.pinning import RETRIEVAL_STAGES, ArtefactSetError, pin_chunk_version
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact

GROUP = "retrieval"
RERANK_CODE_VERSION = "rerank-2"
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
    """A retriever over the partition's published artefacts, with query encoders of the profile.

    The FAISS and Lucene indexes and the chunks are one pinned chunk version (storage/pinning.py):
    a set built from different chunk versions is refused with the stages to rebuild.
    """
    pinned = pin_chunk_version(layout(settings), namespace, profile_name, RETRIEVAL_STAGES)
    profile = settings.profiles.get(profile_name)
    faiss_artifact = FaissArtifact.load(pinned.directories["faiss_index"])
    sparse = SparseArtifact.load(pinned.directories["sparse_vectors"])
    lucene_dir = pinned.directories["sparse_index"]
    dense_model = dense_encoder.open(profile, settings.models_dir)
    sparse_model = sparse_encoder.open(profile, settings.models_dir) if sparse.enabled else None
    return Retriever(
        namespace=namespace,
        profile=profile_name,
        chunks=profile_chunks(settings, namespace, profile, pinned.chunk_version).chunks,
        faiss_index=faiss_artifact.index,
        faiss_ids=faiss_artifact.chunk_ids,
        encode_dense_queries=dense_model.encode,
        lucene=lucene.open(lucene_dir / "impact" if sparse.enabled else None, lucene_dir / "bm25"),
        encode_sparse_queries=sparse_model.encode_queries if sparse_model else None,
        quantization_scale=profile.sparse.quantization_scale,
        rrf_k=rrf_k,
        chunk_version=pinned.chunk_version,
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
    code_version=manifest_code_version(RERANK_CODE_VERSION),
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
    try:
        retriever = open_retriever(
            settings, namespace_name, profile_name, dense_encoder, sparse_encoder, lucene, config.rrf_k
        )
    except ArtefactSetError as error:
        raise Failure(description=f"rerank manifest not written: {error}") from error
    if not retriever.has_sparse:
        warnings.append("sparse retrieval skipped: sparse stage disabled")
    enable_rerank = settings.enable_rerank if config.enable_rerank is None else config.enable_rerank
    target = paths.rerank_manifest(namespace_name, profile_name)
    inputs = manifest_inputs_digest(settings, namespace_name, profile, retriever, config, enable_rerank)
    previous = read_json_or(target, None)
    # Kept when nothing it reads changed, unless a rerank that should have run did not (retry it).
    if (
        previous is not None
        and previous.get("inputs_digest") == inputs
        and previous["rerank_ran"] == (enable_rerank and previous["queries"] > 0)
    ):
        context.log.info(
            f"{namespace_name}|{profile_name}: inputs unchanged since run {previous['run_id']}; manifest kept"
        )
        return _manifest_result(settings, previous, target, rebuilt=False)
    if namespace.eval is None:
        warnings.append(
            f"no eval set: quality not measured; add `eval:` to {namespace.config_file} to score it"
        )
        eval_set = EvalSet(queries={}, qrels={})
    else:
        eval_set = load_eval_set(
            namespace.resolve(namespace.eval.queries),
            namespace.resolve(namespace.eval.qrels),
            {c.doc_id for c in retriever.chunks.values()},
        )
    query_ids = list(eval_set.queries)
    texts = [eval_set.queries[q] for q in query_ids]
    started = time.perf_counter()
    runs = retriever.first_stage(texts, config.first_stage_k) if texts else {}
    first_stage_s = time.perf_counter() - started
    chunk_to_doc = {cid: c.doc_id for cid, c in retriever.chunks.items()}
    doc_runs = {
        stage: {
            q: [d for d, _ in collapse_to_documents(runs[stage][i], chunk_to_doc)]
            for i, q in enumerate(query_ids)
        }
        for stage in runs
    }
    model = None
    if not enable_rerank:
        warnings.append(RERANK_DISABLED_WARNING)
    elif query_ids:  # nothing to rerank without judged queries
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
    quality = (
        {stage: evaluate(doc_runs[stage], eval_set.qrels) for stage in STAGES if stage in doc_runs}
        if query_ids
        else {}
    )
    final_stage = "reranked" if model is not None else "hybrid"
    manifest = {
        "namespace": namespace_name,
        "profile": profile_name,
        "chunk_version": retriever.chunk_version,
        "inputs_digest": inputs,
        "eval_set": namespace.eval is not None,
        "first_stage_seconds": round(first_stage_s, 2),
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
        "rerank_batch_sizes": sorted(batch_sizes, reverse=True),
        "entries": entries,
    }
    atomic_write_json(target, manifest)
    return _manifest_result(settings, manifest, target, rebuilt=True)


def _manifest_result(settings: ProjectConfig, manifest: dict, target, rebuilt: bool) -> MaterializeResult:
    """The UI's view of a manifest, whether it was just computed or kept from an earlier run."""
    quality, final_stage = manifest["quality"], manifest["final_stage"]
    latencies = [e["latency_ms"] for e in manifest["entries"] if e["latency_ms"] is not None]
    rows = [
        [stage, *(quality[stage][m] for m in ("recall@10", "ndcg@10", "mrr@10", "recall@100"))]
        for stage in STAGES
        if stage in quality
    ]
    latency = (
        {"p50": statistics.median(latencies), "p95": sorted(latencies)[int(0.95 * (len(latencies) - 1))]}
        if latencies
        else {}
    )
    floor = expected_floor(
        settings.config_dir / "expected_scores.yaml", manifest["namespace"], manifest["profile"]
    )
    return MaterializeResult(
        metadata={
            "queries": manifest["queries"],
            "final_stage": final_stage,
            "recall_at_10": quality[final_stage]["recall@10"] if quality else "no eval set",
            "recall_floor": floor or "none",
            "quality": markdown_table(["stage", "Recall@10", "nDCG@10", "MRR@10", "Recall@100"], rows)
            if rows
            else MetadataValue.text("no eval set"),
            "rerank_ran": manifest["rerank_ran"],
            "rerank_latency_ms": MetadataValue.json(latency),
            "rerank_batch_sizes": MetadataValue.json(manifest.get("rerank_batch_sizes", [])),
            "first_stage_seconds": manifest["first_stage_seconds"],
            "chunk_version": manifest["chunk_version"],
            "rebuilt": rebuilt,
            "computed_in_run": manifest["run_id"],
            "warnings": MetadataValue.json(manifest["warnings"]),
            "path": MetadataValue.path(str(target)),
            **telemetry_metadata(settings),
        }
    )


def manifest_inputs_digest(
    settings: ProjectConfig,
    namespace_name: str,
    profile: EmbeddingProfile,
    retriever: Retriever,
    config: RetrievalConfig,
    enable_rerank: bool,
) -> str:
    """Everything the manifest is computed from: equal digest → the stored manifest still holds."""
    paths = layout(settings)
    namespace = settings.namespace(namespace_name)
    digest = hashlib.sha256(
        canonical_json(
            {
                "code": RERANK_CODE_VERSION,
                "chunk_version": retriever.chunk_version,
                "faiss": paths.faiss(namespace_name, profile.name).current.name,
                "sparse": paths.sparse(namespace_name, profile.name).current.name,
                "lucene": paths.lucene(namespace_name, profile.name).current.name,
                "profile": profile.model_dump(mode="json"),
                "config": config.model_dump(),
                "enable_rerank": enable_rerank,
                "models_dir": str(settings.models_dir),
            }
        ).encode()
    )
    if namespace.eval is not None:
        for location in (namespace.eval.queries, namespace.eval.qrels):
            digest.update(namespace.resolve(location).read_bytes())
    return digest.hexdigest()[:16]


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
    if namespace.eval is None:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=f"no eval set: Recall@10 not measured; add `eval:` to {namespace.config_file}",
            metadata={"recall@10": "no eval set", "final_stage": manifest["final_stage"]},
        )
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
