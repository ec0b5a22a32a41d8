"""What every reader of a built namespace × profile shares (rerank manifest, fusion tuning,
`medkg eval`, `medkg search`): the retriever over the pinned artefacts, the CrossEncoder scores of a
query's pool, the ranking pipeline under one FusionConfig, and chunk → document rankings."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from medkg_assets.config import EmbeddingProfile
from medkg_assets.config.env_names import EMBEDDER_ENABLE_RERANK
from medkg_assets.encoders.batching import encode_in_batches
from medkg_assets.encoders.devices import peak_memory_bytes
from medkg_assets.encoders.rerank import CrossEncoderReranker, RerankerUnavailableError
from medkg_assets.search.fusion import FusionConfig, blend_rerank, collapse_to_documents
from medkg_assets.search.retrieval import Ranking, Retriever
from medkg_assets.stages.adopted import adopted_reranker, with_reranker
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.dense import DenseEncoders
from medkg_assets.stages.ingest import documents_present
from medkg_assets.stages.judged_sets import eval_files_digest
from medkg_assets.stages.lucene import LuceneIndexes
from medkg_assets.stages.sparse import SparseEncoders
from medkg_assets.storage.atomic import canonical_json
from medkg_assets.storage.pinning import RETRIEVAL_STAGES, pin_chunk_version
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.sparse_artifact import SparseArtifact

STAGES = ("dense", "sparse", "bm25", "hybrid", "reranked")
RERANK_DISABLED_WARNING = f"rerank disabled ({EMBEDDER_ENABLE_RERANK}=false or run config)"


class Rerankers(Protocol):
    """Opens the profile's CrossEncoder (RerankerResource in Dagster); batches capped by `batch_cap`."""

    batch_cap: int

    def open(self, profile: EmbeddingProfile, models_dir: Path | None) -> CrossEncoderReranker: ...


def open_retriever(
    ctx: StageContext, dense_encoder: DenseEncoders, sparse_encoder: SparseEncoders, lucene: LuceneIndexes
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
        chunk_version=pinned.chunk_version,
    )


def indexes_digest(ctx: StageContext, retriever: Retriever) -> dict[str, str]:
    """The artefact versions a reader of the partition scores (part of every inputs digest)."""
    profile, layout, name = ctx.require_profile(), ctx.layout, ctx.namespace_name
    return {
        "chunk_version": retriever.chunk_version,
        "faiss": layout.faiss(name, profile.name).require_current("faiss_index").name,
        "sparse": layout.sparse(name, profile.name).require_current("sparse_vectors").name,
        "lucene": layout.lucene(name, profile.name).require_current("sparse_index").name,
        "profile": canonical_json(profile.model_dump(mode="json")),
        "models_dir": str(ctx.settings.models_dir),
        "eval": eval_files_digest(ctx),
        "reranker": adopted.name if (adopted := adopted_reranker(ctx)) else "base",
    }


def open_reranker(
    ctx: StageContext, reranker: Rerankers, enable_rerank: bool, wanted: bool, warnings: list[str]
) -> CrossEncoderReranker | None:
    """The partition's CrossEncoder (the adopted adaptation, else the profile's base) when rerank is
    on and there is something to rerank; why not in `warnings` otherwise."""
    if not enable_rerank:
        warnings.append(RERANK_DISABLED_WARNING)
        return None
    if not wanted:
        return None
    profile = ctx.require_profile()
    adopted = adopted_reranker(ctx)
    try:
        return reranker.open(with_reranker(profile, adopted) if adopted else profile, ctx.settings.models_dir)
    except RerankerUnavailableError as error:
        warnings.append(f"rerank did not run: {error}")
        return None


def reranker_scores(
    query: str,
    pool: Sequence[tuple[str, float]],
    model: CrossEncoderReranker,
    batch_cap: int,
    retriever: Retriever,
) -> tuple[list[float], list[int]]:
    """The CrossEncoder's score of each pool chunk (pool order) and the batch sizes used (they
    shrink on out-of-memory)."""
    pairs = [(query, retriever.chunk(cid).model_input) for cid, _ in pool]
    scores, batches = encode_in_batches(
        pairs, model.score, min(batch_cap, max(1, len(pairs))), release_memory=model.release_memory
    )
    return [float(s) for s in scores], list(batches.sizes_used)


def rerank_candidates(
    query: str,
    pool: Ranking,
    model: CrossEncoderReranker,
    batch_cap: int,
    retriever: Retriever,
    weight: float = 1.0,
) -> tuple[Ranking, list[int]]:
    """One query's pool reordered (ties by chunk id): by the CrossEncoder's own scores at weight 1,
    else by its blend with the fused scores (search/fusion.py); and the batch sizes used."""
    scores, sizes = reranker_scores(query, pool, model, batch_cap, retriever)
    if weight >= 1.0:
        order = sorted(zip((cid for cid, _ in pool), scores, strict=True), key=lambda p: (-p[1], p[0]))
    else:
        order = blend_rerank(pool, scores, weight)
    return order, sizes


@dataclass
class StageRankings:
    """Chunk rankings per stage for a batch of queries (query order), and the rerank's cost per
    query (latency, peak GPU memory) when it ran."""

    runs: dict[str, list[Ranking]]
    first_stage_s: float = 0.0
    latency_ms: list[float] = field(default_factory=list)
    peak_memory: list[int | None] = field(default_factory=list)
    batch_sizes: set[int] = field(default_factory=set)


def rerank_pool(runs: Mapping[str, list[Ranking]], index: int, fusion: FusionConfig) -> Ranking:
    """The chunks the CrossEncoder scores for query `index`: the top of its fused (hybrid) ranking."""
    return runs["hybrid"][index][: fusion.rerank_depth]


def rank_stages(
    retriever: Retriever,
    texts: list[str],
    fusion: FusionConfig,
    k: int,
    model: CrossEncoderReranker | None = None,
    batch_cap: int = 64,
    on_query: Callable[[], None] | None = None,
) -> StageRankings:
    """Every first-stage ranking (top `k`), their fusion under `fusion`, and with `model` the rerank
    of each fused top: the one pipeline the manifest, the tuning and `medkg eval` score."""
    started = time.perf_counter()
    result = StageRankings(retriever.first_stage(texts, k, fusion) if texts else {})
    result.first_stage_s = time.perf_counter() - started
    if model is None:
        return result
    reranked = []
    for i, text in enumerate(texts):
        started = time.perf_counter()
        pool = rerank_pool(result.runs, i, fusion)
        order, sizes = rerank_candidates(text, pool, model, batch_cap, retriever, fusion.rerank_weight)
        reranked.append(order)
        result.latency_ms.append(round(1000 * (time.perf_counter() - started), 2))
        result.peak_memory.append(peak_memory_bytes(model.device))
        result.batch_sizes.update(sizes)
        if on_query is not None:
            on_query()
    result.runs["reranked"] = reranked
    return result


def document_run(
    query_ids: list[str], rankings: list[Ranking], chunk_to_doc: Mapping[str, str]
) -> dict[str, list[tuple[str, float]]]:
    """Chunk rankings (in query order) → query id → document ranking, each document at the rank and
    score of its best chunk: what the eval set's per-document judgments score."""
    return {q: collapse_to_documents(rankings[i], chunk_to_doc) for i, q in enumerate(query_ids)}
