"""Rerank stage (per namespace × profile): judged retrieval over every dev set — dense, SPLADE,
BM25, fusion, CrossEncoder rerank, under the partition's tuned `FusionConfig` — written as the
rerank manifest, and the Recall@10 release check."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

from medkg_assets.encoders.rerank import CrossEncoderReranker
from medkg_assets.evaluation.expected_scores import expected_floor, judge_quality
from medkg_assets.evaluation.metrics import evaluate
from medkg_assets.manifests.rerank import Candidate, ManifestEntry, ManifestModels, RerankManifest
from medkg_assets.progress import Progress
from medkg_assets.search.fusion import FusionConfig
from medkg_assets.search.retrieval import Ranking, Retriever
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import DenseEncoders
from medkg_assets.stages.fusion_tuning import load_fusion
from medkg_assets.stages.judged_sets import JudgedSet, dev_sets
from medkg_assets.stages.lucene import LuceneIndexes
from medkg_assets.stages.reader import (
    STAGES,
    Rerankers,
    StageRankings,
    document_run,
    indexes_digest,
    open_reranker,
    open_retriever,
    rank_stages,
)
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
from medkg_assets.storage.pinning import ArtefactSetError

RERANK_CODE_VERSION = "rerank-3"
METRICS_SHOWN = ("recall@10", "ndcg@10", "mrr@10", "recall@100")
FINAL_DEPTH = 20  # documents of the final ranking kept per query


class RetrievalOptions(BaseModel):
    """`enable_rerank` unset follows EMBEDDER_ENABLE_RERANK (default on). Fusion and rerank depths
    come from the partition's `fusion_config`."""

    enable_rerank: bool | None = None
    first_stage_k: int = 100


class RerankReport(Report):
    """The UI's view of a manifest, whether it was just computed or kept from an earlier run."""

    queries: int
    final_stage: str
    quality: dict[str, dict[str, float]]  # the primary (first) eval set's
    quality_by_set: dict[str, dict[str, dict[str, float]]]
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
            [
                name,
                stage + (" (final)" if stage == self.final_stage else ""),
                *(q[stage][m] for m in METRICS_SHOWN),
            ]
            for name, q in self.quality_by_set.items()
            for stage in STAGES
            if stage in q
        ]
        return {
            "queries": self.queries,
            "final_stage": self.final_stage,
            "recall_at_10": self.recall_at_10 if self.recall_at_10 is not None else "no eval set",
            "recall_floor": self.recall_floor if self.recall_floor is not None else "none",
            "quality": markdown_table(
                ["eval set", "stage", "Recall@10", "nDCG@10", "MRR@10", "Recall@100"], rows
            )
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
        quality_by_set=manifest.quality_by_set,
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
    ctx: StageContext,
    retriever: Retriever,
    options: RetrievalOptions,
    fusion: FusionConfig,
    enable_rerank: bool,
) -> str:
    """Everything the manifest is computed from: equal digest → the stored manifest still holds."""
    payload = {
        "code": RERANK_CODE_VERSION,
        **indexes_digest(ctx, retriever),
        "config": options.model_dump(),
        "fusion": fusion.model_dump(),
        "enable_rerank": enable_rerank,
    }
    return hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:16]


def _candidates(ranking: Ranking, retriever: Retriever) -> list[Candidate]:
    return [
        Candidate(rank=h.rank, chunk_id=h.chunk_id, doc_id=h.doc_id, score=h.score)
        for h in retriever.hits(ranking)
    ]


def _final_documents(ranking: Ranking, retriever: Retriever) -> list[Candidate]:
    """The final ranking as documents (each at its best chunk), the top FINAL_DEPTH."""
    seen: dict[str, Candidate] = {}
    for chunk_id, score in ranking:
        doc_id = retriever.chunk(chunk_id).doc_id
        if doc_id not in seen:
            seen[doc_id] = Candidate(
                rank=len(seen) + 1, chunk_id=chunk_id, doc_id=doc_id, score=round(score, 6)
            )
        if len(seen) == FINAL_DEPTH:
            break
    return list(seen.values())


def _score_set(
    ctx: StageContext,
    judged: JudgedSet,
    retriever: Retriever,
    fusion: FusionConfig,
    options: RetrievalOptions,
    model: CrossEncoderReranker | None,
    batch_cap: int,
    final_stage: str,
) -> tuple[list[ManifestEntry], dict[str, dict[str, float]], StageRankings]:
    """One dev set: its entries (pool, rerank, final ranking per query), quality per stage."""
    progress = Progress(f"rerank {ctx.key} {judged.name}", len(judged.query_ids), ctx.log.info)
    ranked = rank_stages(
        retriever, judged.texts, fusion, options.first_stage_k, model, batch_cap, lambda: progress.advance(1)
    )
    progress.close()
    runs = ranked.runs
    chunk_to_doc = retriever.doc_ids(r for rankings in runs.values() for r in rankings)
    entries = []
    for i, query_id in enumerate(judged.query_ids):
        entry = ManifestEntry(
            eval_set=judged.name,
            query_id=query_id,
            query=judged.texts[i],
            candidates=_candidates(runs["hybrid"][i][: fusion.rerank_depth], retriever),
            final=_final_documents(runs[final_stage][i], retriever),
        )
        if model is not None:
            entry.reranked = _candidates(runs["reranked"][i], retriever)
            entry.latency_ms = ranked.latency_ms[i]
            entry.gpu_peak_memory_bytes = ranked.peak_memory[i]
        entries.append(entry)
    quality = {
        stage: evaluate(
            {
                q: [d for d, _ in r]
                for q, r in document_run(judged.query_ids, runs[stage], chunk_to_doc).items()
            },
            judged.judged.qrels,
        )
        for stage in STAGES
        if stage in runs
    }
    return entries, quality, ranked


def build_rerank_manifest(
    ctx: StageContext,
    options: RetrievalOptions,
    dense_encoder: DenseEncoders,
    sparse_encoder: SparseEncoders,
    reranker: Rerankers,
    lucene: LuceneIndexes,
) -> RerankReport:
    """Retrieve every judged dev query per stage, rerank the fused candidates, score, write the manifest."""
    profile = ctx.require_profile()
    warnings: list[str] = []
    try:
        retriever = open_retriever(ctx, dense_encoder, sparse_encoder, lucene)
    except ArtefactSetError as error:
        raise StageError(f"rerank manifest not written: {error}") from error
    if not retriever.has_sparse:
        warnings.append("sparse retrieval skipped: sparse stage disabled")
    fusion = load_fusion(ctx)
    enable_rerank = ctx.settings.enable_rerank if options.enable_rerank is None else options.enable_rerank
    target = ctx.layout.rerank_manifest(ctx.namespace_name, profile.name)
    inputs = manifest_inputs_digest(ctx, retriever, options, fusion, enable_rerank)
    previous = RerankManifest.load_or_none(target)
    # Kept when nothing it reads changed, unless a rerank that should have run did not (retry it).
    if (
        previous is not None
        and previous.inputs_digest == inputs
        and previous.rerank_ran == (enable_rerank and previous.queries > 0)
    ):
        ctx.log.info(f"{ctx.key}: inputs unchanged since run {previous.run_id}; manifest kept")
        return _report(ctx, previous, target, rebuilt=False)
    try:
        judged_sets = dev_sets(ctx, retriever.documents_present)
    except ValueError as error:
        raise StageError(f"{ctx.where}: {error}") from error
    if not judged_sets:
        warnings.append(
            f"no eval set: quality not measured; add `eval:` to {ctx.namespace.config_file} to score it"
        )
    queries = sum(len(s.query_ids) for s in judged_sets)
    model = open_reranker(ctx, reranker, enable_rerank, queries > 0, warnings)
    final_stage = fusion.final_stage
    if final_stage == "reranked" and model is None:
        final_stage = "hybrid"
    elif final_stage == "sparse" and not retriever.has_sparse:
        final_stage = "hybrid"
        warnings.append("the tuned final stage is sparse, which is disabled: hybrid instead")
    for warning in warnings:
        ctx.log.warning(f"{ctx.key}: {warning}")
    first_stage_s = 0.0
    entries: list[ManifestEntry] = []
    quality_by_set: dict[str, dict[str, dict[str, float]]] = {}
    batch_sizes: set[int] = set()
    for judged in judged_sets:
        set_entries, quality, ranked = _score_set(
            ctx, judged, retriever, fusion, options, model, reranker.batch_cap, final_stage
        )
        entries += set_entries
        quality_by_set[judged.name] = quality
        batch_sizes |= ranked.batch_sizes
        first_stage_s += ranked.first_stage_s
    manifest = RerankManifest(
        namespace=ctx.namespace_name,
        profile=profile.name,
        chunk_version=retriever.chunk_version,
        inputs_digest=inputs,
        eval_set=bool(judged_sets),
        eval_sets=[s.name for s in judged_sets],
        fusion=fusion.model_dump(mode="json"),
        first_stage_seconds=round(first_stage_s, 2),
        run_id=ctx.run_id,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        models=ManifestModels(
            dense=profile.dense.model,
            sparse=profile.sparse.model if retriever.has_sparse else None,
            reranker=model.reference if model else None,
        ),
        device=model.device if model else None,
        rerank_enabled=enable_rerank,
        rerank_ran=model is not None,
        final_stage=final_stage,
        queries=queries,
        quality=next(iter(quality_by_set.values()), {}),
        quality_by_set=quality_by_set,
        warnings=warnings,
        rerank_batch_sizes=sorted(batch_sizes, reverse=True),
        entries=entries,
    )
    atomic_write_json(target, manifest.model_dump(mode="json"))
    return _report(ctx, manifest, target, rebuilt=True)


def check_recall(ctx: StageContext) -> CheckOutcome:
    """Recall@10 of the final ranking on the primary (first) eval set ≥ the floor in
    config/expected_scores.yaml and < 5 % below the last good run; recomputed from the manifest's
    final rankings rather than its stored figures, and reported for every eval set."""
    profile, namespace = ctx.require_profile(), ctx.namespace
    manifest = RerankManifest.load(ctx.layout.rerank_manifest(namespace.name, profile.name))
    if not namespace.eval:
        return CheckOutcome(
            passed=False,
            severity="warn",
            description=f"no eval set: Recall@10 not measured; add `eval:` to {namespace.config_file}",
            metadata={"recall@10": "no eval set", "final_stage": manifest.final_stage},
        )
    try:
        judged_sets = dev_sets(ctx)
    except ValueError as error:
        return CheckOutcome(
            passed=False, description=str(error), metadata={"final_stage": manifest.final_stage}
        )
    finals = {s.name: evaluate(manifest.final_ranking(s.name), s.judged.qrels) for s in judged_sets}
    primary = judged_sets[0].name
    final = finals[primary]
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
    other_sets: Metadata = {
        f"{name}_{metric}": figures[metric]
        for name, figures in finals.items()
        if name != primary
        for metric in ("recall@10", "ndcg@10", "mrr@10")
    }
    return CheckOutcome(
        passed=verdict.passed,
        description="; ".join(verdict.reasons)
        or f"Recall@10 {final['recall@10']:.4f} ({manifest.final_stage}, {primary})",
        metadata={
            "eval_set": primary,
            "recall@10": final["recall@10"],
            "ndcg@10": final["ndcg@10"],
            "mrr@10": final["mrr@10"],
            "floor": floor if floor is not None else "none",
            "previous": previous if previous is not None else "none",
            "final_stage": manifest.final_stage,
            **per_stage,
            **other_sets,
        },
    )
