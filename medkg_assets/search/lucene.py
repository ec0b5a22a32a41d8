"""Lucene indexes through Pyserini: an impact index for SPLADE terms and a BM25 index.

Anserini truncates impact weights to integers, so weights are quantised as round(w * scale)
on both sides; a query's score is then exactly the integer dot product with the document.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from medkg_assets.search.jvm import jvm_environment, start_jvm
from medkg_assets.text.chunking import Chunk

if TYPE_CHECKING:
    from pyserini.analysis import Analyzer

logger = logging.getLogger("medkg_assets")
# Lucene's default BooleanQuery.maxClauseCount: one clause per distinct query term.
MAX_QUERY_CLAUSES = 1024


class LuceneIndexError(RuntimeError):
    """An index could not be built or opened."""


class SparseInputError(ValueError):
    """Sparse vectors that cannot be indexed as they are."""


def quantise(weights: dict[str, float], scale: int) -> dict[str, int]:
    """Integer impacts; terms whose weight rounds to zero are dropped (they would score nothing)."""
    quantised = {term: int(round(weight * scale)) for term, weight in weights.items()}
    return {term: impact for term, impact in quantised.items() if impact > 0}


def _check_term(term: str, chunk_id: str) -> None:
    if not term or any(ch.isspace() for ch in term):
        raise SparseInputError(
            f"chunk {chunk_id}: term {term!r} contains whitespace (or is empty); the pretokenized "
            "impact index would split it into other terms — fix the sparse model's vocabulary"
        )


@dataclass
class CollectionStats:
    documents: int = 0
    postings: int = 0
    terms_dropped_at_zero: int = 0
    empty_after_quantisation: list[str] = field(default_factory=list)


def write_impact_collection(
    path: Path, vectors: list[tuple[str, dict[str, float]]], scale: int, stats: CollectionStats | None = None
) -> CollectionStats:
    """JsonVectorCollection file: one `{"id", "contents", "vector"}` per chunk, integer impacts
    (one file per shard; `stats` adds up over the files)."""
    stats = stats or CollectionStats()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for chunk_id, weights in vectors:
            for term in weights:
                _check_term(term, chunk_id)
            impacts = quantise(weights, scale)
            stats.terms_dropped_at_zero += len(weights) - len(impacts)
            if not impacts:
                stats.empty_after_quantisation.append(chunk_id)
                continue
            stats.documents += 1
            stats.postings += len(impacts)
            out.write(json.dumps({"id": chunk_id, "contents": "", "vector": impacts}) + "\n")
    if stats.empty_after_quantisation:
        sample = ", ".join(stats.empty_after_quantisation[:5])
        raise SparseInputError(
            f"{len(stats.empty_after_quantisation)} sparse vector(s) have no weight left after quantisation "
            f"at scale {scale} (chunks {sample}); raise sparse.quantization_scale or check those chunks"
        )
    return stats


@dataclass(frozen=True)
class StoredChunk:
    """What a hit needs of its chunk, kept in the BM25 index's stored raw document (Lucene's
    docstore, on disk): the retriever looks chunks up by id instead of holding the namespace."""

    chunk_id: str
    doc_id: str
    tenant_id: str
    title: str
    model_input: str

    @classmethod
    def of(cls, chunk: Chunk) -> StoredChunk:
        return cls(chunk.chunk_id, chunk.doc_id, chunk.tenant_id, chunk.title, chunk.model_input)

    @classmethod
    def from_raw(cls, raw: str) -> StoredChunk:
        record = json.loads(raw)
        return cls(record["id"], record["doc_id"], record["tenant_id"], record["title"], record["contents"])


def write_text_collection(path: Path, chunks: Iterable[StoredChunk]) -> int:
    """JsonCollection file for BM25: `{"id", "contents"}` per chunk (the text BM25 scores) plus the
    stored-only fields of `StoredChunk`; returns the number of documents written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    written = 0
    with path.open("w", encoding="utf-8") as out:
        for chunk in chunks:
            record = {
                "id": chunk.chunk_id,
                "contents": chunk.model_input,
                "doc_id": chunk.doc_id,
                "tenant_id": chunk.tenant_id,
                "title": chunk.title,
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return written


def build_index(
    kind: str, collection_dir: Path, index_dir: Path, threads: int = 1, timeout_s: int = 3600
) -> None:
    """Run Anserini's indexer in a subprocess (never in a process that might fork)."""
    common = [
        "-input",
        str(collection_dir),
        "-index",
        str(index_dir),
        "-threads",
        str(threads),
        "-generator",
        "DefaultLuceneDocumentGenerator",
    ]
    if kind == "impact":
        args = ["-collection", "JsonVectorCollection", *common, "-impact", "-pretokenized"]
    elif kind == "bm25":
        args = ["-collection", "JsonCollection", *common, "-storePositions", "-storeDocvectors", "-storeRaw"]
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    env = {**os.environ, **jvm_environment()}
    result = subprocess.run(
        [sys.executable, "-m", "medkg_assets.search.lucene_build", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0 or not any(index_dir.glob("segments_*")):
        tail = (result.stderr or result.stdout)[-1500:]
        raise LuceneIndexError(
            f"building the {kind} index in {index_dir} failed (exit {result.returncode}):\n{tail}"
        )


# Hits fetched past k so that equal scores are ordered by chunk id, not by Lucene's document
# numbers, which depend on which indexing thread took which shard file.
TIE_MARGIN = 10


def _stable(hits: Iterable[tuple[str, float]], k: int) -> list[tuple[str, float]]:
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))[:k]


class _GivenWeights:
    """A Pyserini query encoder that hands over already quantised term weights."""

    def encode(self, weights: dict[str, int]) -> dict[str, int]:
        return weights


class LuceneSearch:
    """Search an impact index with term weights and a BM25 index with text; (chunk id, score) hits."""

    def __init__(self, impact_dir: Path | None = None, bm25_dir: Path | None = None):
        start_jvm()
        from pyserini.search.lucene import LuceneImpactSearcher, LuceneSearcher

        self._impact = self._bm25 = None
        try:
            if impact_dir is not None:
                # min_idf=-1: Pyserini drops query terms with idf <= min_idf, and a term present in
                # every document has idf 0; the score must stay the full dot product.
                self._impact = LuceneImpactSearcher(
                    str(impact_dir), query_encoder=_GivenWeights(), min_idf=-1
                )
            if bm25_dir is not None:
                self._bm25 = LuceneSearcher(str(bm25_dir))
        except Exception as error:  # jnius raises JavaException subclasses
            raise LuceneIndexError(
                f"cannot open Lucene index ({impact_dir or ''} {bm25_dir or ''}): {error}; "
                "the index directory is missing or corrupt — rematerialise sparse_index"
            ) from error

    def impact(self, weights: dict[str, int], k: int = 10) -> list[tuple[str, float]]:
        if self._impact is None:
            raise LuceneIndexError("no impact index was opened")
        if len(weights) > MAX_QUERY_CLAUSES:  # the strongest terms carry the score
            kept = sorted(weights.items(), key=lambda item: (-item[1], item[0]))[:MAX_QUERY_CLAUSES]
            logger.warning(
                f"impact query has {len(weights)} terms; kept the {MAX_QUERY_CLAUSES} heaviest "
                "(Lucene's clause limit)"
            )
            weights = dict(kept)
        return _stable(
            ((hit.docid, float(hit.score)) for hit in self._impact.search(weights, k=k + TIE_MARGIN)), k
        )

    def bm25(self, text: str, k: int = 10) -> list[tuple[str, float]]:
        if self._bm25 is None:
            raise LuceneIndexError("no BM25 index was opened")
        text = self._fit_clause_limit(text)
        return _stable(
            ((hit.docid, float(hit.score)) for hit in self._bm25.search(text, k=k + TIE_MARGIN)), k
        )

    def stored(self, chunk_id: str) -> StoredChunk:
        """The chunk's stored fields from the BM25 index (a disk read, ~0.3 ms)."""
        if self._bm25 is None:
            raise LuceneIndexError("no BM25 index was opened")
        document = self._bm25.doc(chunk_id)
        if document is None:
            raise LuceneIndexError(f"chunk {chunk_id} is not in the BM25 index; rematerialise sparse_index")
        try:
            return StoredChunk.from_raw(document.raw())
        except (KeyError, ValueError) as error:
            raise LuceneIndexError(
                f"chunk {chunk_id}: the BM25 index has no stored {error} (built by an older version); "
                "rematerialise sparse_index"
            ) from error

    def _fit_clause_limit(self, text: str) -> str:
        """The longest prefix of `text` (whole words) whose analysed terms fit Lucene's clause limit.

        A BM25 query is one clause per distinct analysed term; past 1,024 Lucene throws
        TooManyClauses. Long messages keep their opening words, which usually carry the question.
        """
        if len(set(self._analyzer.analyze(text))) <= MAX_QUERY_CLAUSES:
            return text
        seen: set[str] = set()
        words = text.split()
        for position, word in enumerate(words):
            terms = set(self._analyzer.analyze(word))
            if len(seen | terms) > MAX_QUERY_CLAUSES:
                logger.warning(
                    f"BM25 query cut to its first {position} of {len(words)} words: it had more than "
                    f"{MAX_QUERY_CLAUSES} distinct terms (Lucene's clause limit)"
                )
                return " ".join(words[:position])
            seen |= terms
        return text

    @cached_property
    def _analyzer(self) -> Analyzer:
        """The analyser LuceneSearcher applies to BM25 queries (English, Porter, stop words)."""
        from pyserini.analysis import Analyzer, get_lucene_analyzer

        return Analyzer(get_lucene_analyzer())

    @property
    def has_impact(self) -> bool:
        return self._impact is not None

    @property
    def impact_documents(self) -> int:
        return int(self._impact.num_docs) if self._impact is not None else 0

    @property
    def bm25_documents(self) -> int:
        return int(self._bm25.num_docs) if self._bm25 is not None else 0
