"""Hybrid retrieval over one namespace × profile: FAISS dense, Lucene SPLADE impact, BM25, fusion."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from medkg_assets.search.fusion import reciprocal_rank_fusion
from medkg_assets.search.lucene import LuceneSearch, quantise
from medkg_assets.text.chunking import Chunk

if TYPE_CHECKING:
    import faiss

Ranking = list[tuple[str, float]]
MODES = ("dense", "sparse", "bm25", "hybrid")


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
    """First-stage retrieval; each method takes a batch of queries and returns one ranking each."""

    def __init__(
        self,
        *,
        namespace: str,
        profile: str,
        chunks: Sequence[Chunk],
        faiss_index: faiss.Index,
        faiss_ids: Sequence[str],
        encode_dense_queries: Callable[[list[str]], NDArray[np.float32]],
        lucene: LuceneSearch | None,
        encode_sparse_queries: Callable[[list[str]], list[dict[str, float]]] | None,
        quantization_scale: int,
        rrf_k: int = 60,
        chunk_version: str = "",
    ):
        self.namespace, self.profile = namespace, profile
        self.chunks = {c.chunk_id: c for c in chunks}
        self.index, self.ids = faiss_index, list(faiss_ids)
        self.encode_dense_queries = encode_dense_queries
        self.lucene = lucene
        self.encode_sparse_queries = encode_sparse_queries
        self.scale, self.rrf_k = quantization_scale, rrf_k
        self.chunk_version = chunk_version  # the one version its chunks and indexes share

    @property
    def has_sparse(self) -> bool:
        return self.encode_sparse_queries is not None and self.lucene is not None and self.lucene.has_impact

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
        assert self.encode_sparse_queries is not None and self.lucene is not None  # has_sparse says so
        weights = self.encode_sparse_queries(queries)
        return [self.lucene.impact(quantise(w, self.scale), k) for w in weights]

    def bm25(self, queries: list[str], k: int) -> list[Ranking]:
        if self.lucene is None:
            return [[] for _ in queries]
        return [self.lucene.bm25(q, k) for q in queries]

    def first_stage(self, queries: list[str], k: int) -> dict[str, list[Ranking]]:
        """Every available ranking for each query, plus their RRF fusion under `hybrid`."""
        runs = {"dense": self.dense(queries, k), "bm25": self.bm25(queries, k)}
        if self.has_sparse:
            runs["sparse"] = self.sparse(queries, k)
        runs["hybrid"] = [
            reciprocal_rank_fusion({name: runs[name][i] for name in runs}, k=self.rrf_k)[:k]
            for i in range(len(queries))
        ]
        return runs

    def hits(self, ranking: Ranking) -> list[Hit]:
        out = []
        for rank, (chunk_id, score) in enumerate(ranking, start=1):
            chunk = self.chunks[chunk_id]
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
