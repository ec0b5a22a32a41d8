"""Rerank stage (per namespace × profile): judged retrieval over the eval set — dense, SPLADE, BM25,
fusion, CrossEncoder rerank — written as the rerank manifest, and the Recall@10 release check."""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from pydantic import BaseModel

from medkg_assets.config import EmbeddingProfile
from medkg_assets.config.env_names import EMBEDDER_ENABLE_RERANK
from medkg_assets.encoders.batching import encode_in_batches
from medkg_assets.encoders.devices import peak_memory_bytes
from medkg_assets.encoders.rerank import CrossEncoderReranker, RerankerUnavailableError
from medkg_assets.evaluation.eval_set import EvalSet, load_eval_set
from medkg_assets.evaluation.expected_scores import expected_floor, judge_quality
from medkg_assets.evaluation.metrics import evaluate
from medkg_assets.manifests.rerank import Candidate, ManifestEntry, ManifestModels, RerankManifest
from medkg_assets.progress import Progress
from medkg_assets.search.fusion import collapse_to_documents
from medkg_assets.search.retrieval import Ranking, Retriever
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import DenseEncoders
from medkg_assets.stages.ingest import documents_present
from medkg_assets.stages.lucene import LuceneIndexes
from medkg_assets.stages.reports import (
    CheckOutcome,
    JsonValue,
    Metadata,
    Report,
    StageError,
    StageFigures,
    markdown_table,
    path_value,
)
from medkg_assets.stages.sparse import SparseEncoders
from medkg_assets.storage.atomic import atomic_write_json, canonical_json, read_json_or
from medkg_assets.storage.pinning import RETRIEVAL_STAGES, ArtefactSetError, pin_chunk_version
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact

RERANK_CODE_VERSION = "rerank-2"
STAGES = ("dense", "sparse", "bm25", "hybrid", "reranked")
RERANK_DISABLED_WARNING = f"rerank disabled ({EMBEDDER_ENABLE_RERANK}=false or run config)"
METRICS_SHOWN = ("recall@10", "ndcg@10", "mrr@10", "recall@100")


class Rerankers(Protocol):
    """Opens the profile's CrossEncoder (RerankerResource in Dagster); batches capped by `batch_cap`."""

    batch_cap: int

    def open(self, profile: EmbeddingProfile, models_dir: Path | None) -> CrossEncoderReranker: ...


class RetrievalOptions(BaseModel):
    """`enable_rerank` unset follows EMBEDDER_ENABLE_RERANK (default on)."""

    enable_rerank: bool | None = None
    first_stage_k: int = 100
    rerank_candidates: int = 20
    rrf_k: int = 60


def open_retriever(
    ctx: StageContext,
    dense_encoder: DenseEncoders,
    sparse_encoder: SparseEncoders,
    lucene: LuceneIndexes,
    rrf_k: int = 60,
) -> Retriever:
    """A retriever over the partition's published artefacts, with query encoders of the profile.

    The FAISS and Lucene indexes and the chunks are one pinned chunk version (storage/pinning.py):
    a set built from different chunk versions is refused with the stages to rebuild.
    """
    profile = ctx.require_profile()
    pinned = pin_chunk_version(ctx.layout, ctx.namespace_name, profile.name, RETRIEVAL_STAGES)
    faiss_artifact = FaissArtifact.load(pinned.directories["faiss_index"])
    sparse = SparseArtifact.load(pinned.directories["sparse_vectors"])
    lucene_dir = pinned.directories["sparse_index"]
    dense_model = dense_encoder.open(profile, ctx.settings.models_dir)
    sparse_model = sparse_encoder.open(profile, ctx.settings.models_dir) if sparse.enabled else None
    return Retriever(
        namespace=ctx.namespace_name,
        profile=profile.name,
        faiss_index=faiss_artifact.index,
        faiss_ids=faiss_artifact.chunk_ids,
        encode_dense_queries=dense_model.encode,
        lucene=lucene.open(lucene_dir / "impact" if sparse.enabled else None, lucene_dir / "bm25"),
        encode_sparse_queries=sparse_model.encode_queries if sparse_model else None,
        quantization_scale=profile.sparse.quantization_scale,
        documents_present=lambda doc_ids: documents_present(ctx, pinned.chunk_version, doc_ids),
        rrf_k=rrf_k,
        chunk_version=pinned.chunk_version,
    )


class RerankReport(Report):
    """The UI's view of a manifest, whether it was just computed or kept from an earlier run."""

    queries: int
    final_stage: str
    quality: dict[str, dict[str, float]]
    recall_floor: float | None
    rerank_ran: bool
    rerank_latency_ms: dict[str, float]
    rerank_batch_sizes: list[int]
    first_stage_seconds: float
    chunk_version: str
    rebuilt: bool
    computed_in_run: str
    warnings: list[str]
    path: str

    @property
    def recall_at_10(self) -> float | None:
        return self.quality[self.final_stage]["recall@10"] if self.quality else None

    def figures(self) -> StageFigures:
        return StageFigures(recall_at_10=self.recall_at_10, recall_floor=self.recall_floor)

    def to_metadata(self) -> Metadata:
        rows = [
            [stage, *(self.quality[stage][m] for m in METRICS_SHOWN)]
            for stage in STAGES
            if stage in self.quality
        ]
        return {
            "queries": self.queries,
            "final_stage": self.final_stage,
            "recall_at_10": self.recall_at_10 if self.recall_at_10 is not None else "no eval set",
            "recall_floor": self.recall_floor if self.recall_floor is not None else "none",
            "quality": markdown_table(["stage", "Recall@10", "nDCG@10", "MRR@10", "Recall@100"], rows)
            if rows
            else "no eval set",
            "rerank_ran": self.rerank_ran,
            "rerank_latency_ms": JsonValue(self.rerank_latency_ms),
            "rerank_batch_sizes": JsonValue(self.rerank_batch_sizes),
            "first_stage_seconds": self.first_stage_seconds,
            "chunk_version": self.chunk_version,
            "rebuilt": self.rebuilt,
            "computed_in_run": self.computed_in_run,
            "warnings": JsonValue(self.warnings),
            "path": path_value(self.path),
        }


def _report(ctx: StageContext, manifest: RerankManifest, target: Path, rebuilt: bool) -> RerankReport:
    return RerankReport(
        queries=manifest.queries,
        final_stage=manifest.final_stage,
        quality=manifest.quality,
        recall_floor=expected_floor(
            ctx.settings.config_dir / "expected_scores.yaml", manifest.namespace, manifest.profile
        ),
        rerank_ran=manifest.rerank_ran,
        rerank_latency_ms=manifest.latency_ms(),
        rerank_batch_sizes=manifest.rerank_batch_sizes,
        first_stage_seconds=manifest.first_stage_seconds,
        chunk_version=manifest.chunk_version,
        rebuilt=rebuilt,
        computed_in_run=manifest.run_id,
        warnings=manifest.warnings,
        path=str(target),
    )


def manifest_inputs_digest(
    ctx: StageContext, retriever: Retriever, options: RetrievalOptions, enable_rerank: bool
) -> str:
    """Everything the manifest is computed from: equal digest → the stored manifest still holds."""
    profile, namespace = ctx.require_profile(), ctx.namespace
    layout = ctx.layout
    digest = hashlib.sha256(
        canonical_json(
            {
                "code": RERANK_CODE_VERSION,
                "chunk_version": retriever.chunk_version,
                "faiss": layout.faiss(namespace.name, profile.name).require_current("faiss_index").name,
                "sparse": layout.sparse(namespace.name, profile.name).require_current("sparse_vectors").name,
                "lucene": layout.lucene(namespace.name, profile.name).require_current("sparse_index").name,
                "profile": profile.model_dump(mode="json"),
                "config": options.model_dump(),
                "enable_rerank": enable_rerank,
                "models_dir": str(ctx.settings.models_dir),
            }
        ).encode()
    )
    if namespace.eval is not None:
        for location in (namespace.eval.queries, namespace.eval.qrels):
            digest.update(namespace.resolve(location).read_bytes())
    return digest.hexdigest()[:16]


def _candidates(ranking: Ranking, retriever: Retriever) -> list[Candidate]:
    return [
        Candidate(rank=h.rank, chunk_id=h.chunk_id, doc_id=h.doc_id, score=h.score)
        for h in retriever.hits(ranking)
    ]


def rerank_pool(runs: dict[str, list[Ranking]], index: int, options: RetrievalOptions) -> Ranking:
    """The chunks the CrossEncoder scores for query `index`: the top of its fused (hybrid) ranking."""
    return runs["hybrid"][index][: options.rerank_candidates]


def rerank_candidates(
    query: str, candidates: Ranking, model: CrossEncoderReranker, batch_cap: int, retriever: Retriever
) -> tuple[Ranking, list[int]]:
    """One query's candidates scored by the CrossEncoder, best first (ties by chunk id), and the
    batch sizes used (they shrink on out-of-memory)."""
    pairs = [(query, retriever.chunk(cid).model_input) for cid, _ in candidates]
    scores, batches = encode_in_batches(
        pairs, model.score, min(batch_cap, max(1, len(pairs))), release_memory=model.release_memory
    )
    order = sorted(zip((cid for cid, _ in candidates), scores, strict=True), key=lambda p: (-p[1], p[0]))
    return order, list(batches.sizes_used)


def document_run(
    query_ids: list[str], rankings: list[Ranking], chunk_to_doc: dict[str, str]
) -> dict[str, list[tuple[str, float]]]:
    """Chunk rankings (in query order) → query id → document ranking, each document at the rank and
    score of its best chunk: what the eval set's per-document judgments score."""
    return {q: collapse_to_documents(rankings[i], chunk_to_doc) for i, q in enumerate(query_ids)}


def _rerank_entry(
    entry: ManifestEntry,
    candidates: Ranking,
    model: CrossEncoderReranker,
    batch_cap: int,
    retriever: Retriever,
) -> tuple[Ranking, list[int]]:
    """Score one query's candidates with the CrossEncoder into `entry`; returns the reranked
    order and the batch sizes used (they shrink on out-of-memory)."""
    started = time.perf_counter()
    order, sizes = rerank_candidates(entry.query, candidates, model, batch_cap, retriever)
    entry.reranked = _candidates(order, retriever)
    entry.latency_ms = round(1000 * (time.perf_counter() - started), 2)
    entry.gpu_peak_memory_bytes = peak_memory_bytes(model.device)
    return order, sizes


def _eval_set(ctx: StageContext, retriever: Retriever, warnings: list[str]) -> EvalSet:
    namespace = ctx.namespace
    if namespace.eval is None:
        warnings.append(
            f"no eval set: quality not measured; add `eval:` to {namespace.config_file} to score it"
        )
        return EvalSet(queries={}, qrels={})
    return load_eval_set(
        namespace.resolve(namespace.eval.queries),
        namespace.resolve(namespace.eval.qrels),
        retriever.documents_present,
    )


def build_rerank_manifest(
    ctx: StageContext,
    options: RetrievalOptions,
    dense_encoder: DenseEncoders,
    sparse_encoder: SparseEncoders,
    reranker: Rerankers,
    lucene: LuceneIndexes,
) -> RerankReport:
    """Retrieve every judged query per stage, rerank the fused candidates, score, write the manifest."""
    profile = ctx.require_profile()
    warnings: list[str] = []
    try:
        retriever = open_retriever(ctx, dense_encoder, sparse_encoder, lucene, options.rrf_k)
    except ArtefactSetError as error:
        raise StageError(f"rerank manifest not written: {error}") from error
    if not retriever.has_sparse:
        warnings.append("sparse retrieval skipped: sparse stage disabled")
    enable_rerank = ctx.settings.enable_rerank if options.enable_rerank is None else options.enable_rerank
    target = ctx.layout.rerank_manifest(ctx.namespace_name, profile.name)
    inputs = manifest_inputs_digest(ctx, retriever, options, enable_rerank)
    previous = RerankManifest.load_or_none(target)
    # Kept when nothing it reads changed, unless a rerank that should have run did not (retry it).
    if (
        previous is not None
        and previous.inputs_digest == inputs
        and previous.rerank_ran == (enable_rerank and previous.queries > 0)
    ):
        ctx.log.info(f"{ctx.key}: inputs unchanged since run {previous.run_id}; manifest kept")
        return _report(ctx, previous, target, rebuilt=False)
    eval_set = _eval_set(ctx, retriever, warnings)
    query_ids = list(eval_set.queries)
    texts = [eval_set.queries[q] for q in query_ids]
    started = time.perf_counter()
    runs = retriever.first_stage(texts, options.first_stage_k) if texts else {}
    first_stage_s = time.perf_counter() - started
    chunk_to_doc = retriever.doc_ids(ranking for rankings in runs.values() for ranking in rankings)
    doc_runs = {
        stage: {
            q: [d for d, _ in ranking]
            for q, ranking in document_run(query_ids, runs[stage], chunk_to_doc).items()
        }
        for stage in runs
    }
    model = None
    if not enable_rerank:
        warnings.append(RERANK_DISABLED_WARNING)
    elif query_ids:  # nothing to rerank without judged queries
        try:
            model = reranker.open(profile, ctx.settings.models_dir)
        except RerankerUnavailableError as error:
            warnings.append(f"rerank did not run: {error}")
    for warning in warnings:
        ctx.log.warning(f"{ctx.key}: {warning}")
    entries, reranked_run, batch_sizes = [], {}, set()
    progress = Progress(f"rerank {ctx.key}", len(query_ids), ctx.log.info)
    for i, query_id in enumerate(query_ids):
        candidates = rerank_pool(runs, i, options)
        entry = ManifestEntry(
            query_id=query_id, query=texts[i], candidates=_candidates(candidates, retriever)
        )
        if model is not None:
            order, sizes = _rerank_entry(entry, candidates, model, reranker.batch_cap, retriever)
            batch_sizes.update(sizes)
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
    manifest = RerankManifest(
        namespace=ctx.namespace_name,
        profile=profile.name,
        chunk_version=retriever.chunk_version,
        inputs_digest=inputs,
        eval_set=ctx.namespace.eval is not None,
        first_stage_seconds=round(first_stage_s, 2),
        run_id=ctx.run_id,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        models=ManifestModels(
            dense=profile.dense.model,
            sparse=profile.sparse.model if retriever.has_sparse else None,
            reranker=profile.reranker.model if model else None,
        ),
        device=model.device if model else None,
        rerank_enabled=enable_rerank,
        rerank_ran=model is not None,
        final_stage="reranked" if model is not None else "hybrid",
        queries=len(query_ids),
        quality=quality,
        warnings=warnings,
        rerank_batch_sizes=sorted(batch_sizes, reverse=True),
        entries=entries,
    )
    atomic_write_json(target, manifest.model_dump(mode="json"))
    return _report(ctx, manifest, target, rebuilt=True)


def check_recall(ctx: StageContext) -> CheckOutcome:
    """Recall@10 of the final ranking ≥ the floor in config/expected_scores.yaml and < 5 % below the
    last good run; recomputed from the manifest's final ranking rather than its stored figures."""
    profile, namespace = ctx.require_profile(), ctx.namespace
    manifest = RerankManifest.load(ctx.layout.rerank_manifest(namespace.name, profile.name))
    if namespace.eval is None:
        return CheckOutcome(
            passed=False,
            severity="warn",
            description=f"no eval set: Recall@10 not measured; add `eval:` to {namespace.config_file}",
            metadata={"recall@10": "no eval set", "final_stage": manifest.final_stage},
        )
    eval_set = load_eval_set(
        namespace.resolve(namespace.eval.queries), namespace.resolve(namespace.eval.qrels)
    )
    final = evaluate(manifest.final_ranking(), eval_set.qrels)
    history_path = ctx.layout.recall_history(namespace.name, profile.name)
    history = read_json_or(history_path, [])
    previous = history[-1]["recall@10"] if history else None
    floor = expected_floor(ctx.settings.config_dir / "expected_scores.yaml", namespace.name, profile.name)
    verdict = judge_quality(final["recall@10"], floor, previous)
    if verdict.passed:
        history.append(
            {"run_id": manifest.run_id, "recall@10": final["recall@10"], "stage": manifest.final_stage}
        )
        atomic_write_json(history_path, history[-20:])
    per_stage: Metadata = {f"{stage}_recall@10": q["recall@10"] for stage, q in manifest.quality.items()}
    return CheckOutcome(
        passed=verdict.passed,
        description="; ".join(verdict.reasons)
        or f"Recall@10 {final['recall@10']:.4f} ({manifest.final_stage})",
        metadata={
            "recall@10": final["recall@10"],
            "ndcg@10": final["ndcg@10"],
            "mrr@10": final["mrr@10"],
            "floor": floor if floor is not None else "none",
            "previous": previous if previous is not None else "none",
            "final_stage": manifest.final_stage,
            **per_stage,
        },
    )
