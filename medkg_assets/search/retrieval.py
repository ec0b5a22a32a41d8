"""Hybrid retrieval over one namespace × profile: FAISS dense, Lucene SPLADE impact, BM25, fusion."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from medkg_assets.search.fusion import FusionConfig, reciprocal_rank_fusion
from medkg_assets.search.lucene import LuceneSearch, StoredChunk, quantise

if TYPE_CHECKING:
    import faiss

Ranking = list[tuple[str, float]]
MODES = ("dense", "sparse", "bm25", "hybrid")
# Chunks looked up recently (a query's hits over every stage); the rest stay on disk.
CHUNK_CACHE_SIZE = 100_000


@dataclass(frozen=True)
class Hit:
    rank: int
    chunk_id: str
    doc_id: str
    score: float
    namespace: str
    tenant_id: str
    profile: str
    title: str

    def to_record(self) -> dict[str, Any]:
        return asdict(self)


class Retriever:
    """First-stage retrieval; each method takes a batch of queries and returns one ranking each.

    It holds the indexes (FAISS and its id list live in memory; Lucene reads its files) but not the
    chunks: a hit's document, title and text come from the BM25 index's stored fields, so the
    memory does not grow with the namespace's texts.
    """

    def __init__(
        self,
        *,
        namespace: str,
        profile: str,
        faiss_index: faiss.Index,
        faiss_ids: Sequence[str],
        encode_dense_queries: Callable[[list[str]], NDArray[np.float32]],
        lucene: LuceneSearch,
        encode_sparse_queries: Callable[[list[str]], list[dict[str, float]]] | None,
        quantization_scale: int,
        documents_present: Callable[[set[str]], set[str]],
        chunk_version: str = "",
    ):
        self.namespace, self.profile = namespace, profile
        self.index, self.ids = faiss_index, list(faiss_ids)
        self.encode_dense_queries = encode_dense_queries
        self.lucene = lucene
        self.encode_sparse_queries = encode_sparse_queries
        self.scale = quantization_scale
        self.documents_present = documents_present  # which of these doc ids the namespace holds
        self.chunk_version = chunk_version  # the one version its chunks and indexes share
        self.chunk: Callable[[str], StoredChunk] = lru_cache(maxsize=CHUNK_CACHE_SIZE)(lucene.stored)

    def doc_ids(self, rankings: Iterable[Ranking]) -> dict[str, str]:
        """chunk id → doc id for every chunk the rankings name (what document rankings need)."""
        return {cid: self.chunk(cid).doc_id for ranking in rankings for cid, _ in ranking}

    @property
    def has_sparse(self) -> bool:
        return self.encode_sparse_queries is not None and self.lucene.has_impact

    def dense(self, queries: list[str], k: int) -> list[Ranking]:
        vectors = np.ascontiguousarray(self.encode_dense_queries(queries), dtype=np.float32)
        scores, rows = self.index.search(vectors, min(k, len(self.ids)))
        return [
            [(self.ids[r], float(s)) for r, s in zip(row_ids, row_scores, strict=True) if r >= 0]
            for row_ids, row_scores in zip(rows, scores, strict=True)
        ]

    def sparse(self, queries: list[str], k: int) -> list[Ranking]:
        if not self.has_sparse:
            return [[] for _ in queries]
        assert self.encode_sparse_queries is not None  # has_sparse says so
        weights = self.encode_sparse_queries(queries)
        return [self.lucene.impact(quantise(w, self.scale), k) for w in weights]

    def bm25(self, queries: list[str], k: int) -> list[Ranking]:
        return [self.lucene.bm25(q, k) for q in queries]

    def first_stage(
        self, queries: list[str], k: int, fusion: FusionConfig | None = None
    ) -> dict[str, list[Ranking]]:
        """Every available ranking for each query (top `k`, at least `fusion.depth` deep), plus their
        weighted RRF fusion under `hybrid` (each system's top `fusion.depth` fused)."""
        fusion = fusion or FusionConfig()
        depth = max(k, fusion.depth)
        runs = {"dense": self.dense(queries, depth), "bm25": self.bm25(queries, depth)}
        if self.has_sparse:
            runs["sparse"] = self.sparse(queries, depth)
        runs["hybrid"] = [
            reciprocal_rank_fusion(
                {name: runs[name][i] for name in runs}, fusion.rrf_k, fusion.depth, fusion.weights
            )[:depth]
            for i in range(len(queries))
        ]
        return runs

    def hits(self, ranking: Ranking) -> list[Hit]:
        out = []
        for rank, (chunk_id, score) in enumerate(ranking, start=1):
            chunk = self.chunk(chunk_id)
            out.append(
                Hit(
                    rank,
                    chunk_id,
                    chunk.doc_id,
                    round(score, 6),
                    self.namespace,
                    chunk.tenant_id,
                    self.profile,
                    chunk.title,
                )
            )
        return out
