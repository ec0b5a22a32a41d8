"""Lucene stage (per namespace × profile): SPLADE terms → impact index, chunk text → BM25 index."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Protocol

from medkg_assets.search.jvm import JavaRuntimeMissingError
from medkg_assets.search.lucene import (
    CollectionStats,
    LuceneIndexError,
    LuceneSearch,
    SparseInputError,
    StoredChunk,
    write_impact_collection,
    write_text_collection,
)
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.ingest import budget_key, chunk_shards, shard_chunks
from medkg_assets.stages.reports import (
    CheckOutcome,
    JsonValue,
    Metadata,
    Report,
    StageError,
    markdown_table,
    path_value,
)
from medkg_assets.storage.atomic import canonical_json
from medkg_assets.storage.pinning import pin_chunk_version
from medkg_assets.storage.shards import ShardError, ShardManifest
from medkg_assets.vectors.sparse_artifact import SparseArtifact

STAGE = "sparse_index"
LUCENE_BUILD_VERSION = "2"  # 2: the BM25 documents store doc id, tenant and title


class LuceneIndexes(Protocol):
    """Builds and opens Lucene indexes (LuceneResource in Dagster: Pyserini/Anserini)."""

    def build(self, kind: str, collection_dir: Path, index_dir: Path) -> None: ...

    def open(self, impact_dir: Path | None, bm25_dir: Path | None) -> LuceneSearch: ...


class LuceneReport(Report):
    impact_enabled: bool
    impact_documents: int
    bm25_documents: int
    quantization_scale: int
    rebuilt: bool
    warnings: list[str]
    build_seconds: dict[str, float]
    path: str

    def to_metadata(self) -> Metadata:
        metadata: Metadata = {
            "impact_enabled": self.impact_enabled,
            "impact_documents": self.impact_documents,
            "bm25_documents": self.bm25_documents,
            "quantization_scale": self.quantization_scale,
            "rebuilt": self.rebuilt,
            "warnings": JsonValue(self.warnings),
        }
        if self.rebuilt:
            metadata["build_seconds"] = markdown_table(
                ["index", "seconds"], [[k, f"{v:.2f}"] for k, v in self.build_seconds.items()]
            )
        metadata["path"] = path_value(self.path)
        return metadata


def lucene_info(directory: Path) -> dict[str, Any]:
    """What the last build of the Lucene indexes recorded (counts, scale, warnings, inputs digest)."""
    info: dict[str, Any] = json.loads((directory / "info.json").read_text())
    return info


def inputs_digest(ctx: StageContext, sparse: SparseArtifact, chunks: ShardManifest, scale: int) -> str:
    """What the Lucene indexes are built from (shard keys and digests, never the rows themselves):
    unchanged digest → nothing to rebuild."""
    profile = ctx.require_profile()
    header = (
        f"{LUCENE_BUILD_VERSION}:{scale}:{sparse.enabled}:{sparse.cache_key}:{sparse.chunk_version}:"
        f"{budget_key(ctx, profile)}:{profile.dense.tokenizer or profile.dense.model}"
    )
    digest = hashlib.sha256(header.encode())
    for entry in sparse.manifest.shards:
        digest.update(f"s:{entry.name}:{entry.key}:{entry.rows}\n".encode())
    for entry in chunks.shards:
        digest.update(f"c:{entry.name}:{entry.digest}:{entry.rows}\n".encode())
    return digest.hexdigest()


def build_lucene_indexes(ctx: StageContext, lucene: LuceneIndexes) -> LuceneReport:
    """Build both indexes from the current sparse vectors' chunk version; unchanged inputs keep them.

    Each shard becomes one collection file, written one shard at a time; Anserini's indexing
    threads then take the files in parallel.
    """
    profile = ctx.require_profile()
    sparse = SparseArtifact.load(
        ctx.layout.sparse(ctx.namespace_name, profile.name).require_current("sparse_vectors")
    )
    # BM25 indexes the chunks the sparse vectors were built from, so both indexes share one version.
    chunks = chunk_shards(ctx, sparse.chunk_version)
    scale = profile.sparse.quantization_scale
    inputs = inputs_digest(ctx, sparse, chunks, scale)
    store = ctx.layout.lucene(ctx.namespace_name, profile.name)
    kept = lucene_info(store.current) if store.current is not None else None
    if kept is not None and kept.get("inputs_digest") == inputs:
        ctx.log.info(f"{ctx.where}: inputs unchanged since the last build; indexes kept")
        return LuceneReport(
            impact_enabled=kept["impact_enabled"],
            impact_documents=kept.get("impact_documents", 0),
            bm25_documents=kept["bm25_documents"],
            quantization_scale=scale,
            rebuilt=False,
            warnings=kept.get("warnings", []),
            build_seconds={},
            path=str(store.current),
        )
    timings: dict[str, float] = {}
    warnings: list[str] = []
    info: dict[str, Any] = {
        "quantization_scale": scale,
        "fingerprint": profile.fingerprint,
        "inputs_digest": inputs,
        "chunk_version": sparse.chunk_version,
        "shards": len(chunks.shards),
    }
    bm25_documents = 0
    try:
        with store.build() as scratch:
            collections = scratch / ".collections"
            if sparse.enabled:
                stats = CollectionStats()
                for shard in sparse.shards():
                    write_impact_collection(
                        collections / "impact" / f"{shard.entry.name}.jsonl",
                        list(zip(shard.chunk_ids, shard.vectors, strict=True)),
                        scale,
                        stats,
                    )
                started = time.perf_counter()
                lucene.build("impact", collections / "impact", scratch / "impact")
                timings["impact"] = time.perf_counter() - started
                info.update(
                    impact_documents=stats.documents,
                    impact_postings=stats.postings,
                    terms_dropped_at_zero=stats.terms_dropped_at_zero,
                )
            else:
                warnings.append(f"impact index not built: {sparse.disabled_reason}")
                ctx.log.warning(f"{ctx.where}: {warnings[-1]}")
            for entry in chunks.shards:
                records = shard_chunks(ctx, sparse.chunk_version, entry).chunks
                bm25_documents += write_text_collection(
                    collections / "bm25" / f"{entry.name}.jsonl",
                    (StoredChunk.of(c) for c in records),
                )
            started = time.perf_counter()
            lucene.build("bm25", collections / "bm25", scratch / "bm25")
            timings["bm25"] = time.perf_counter() - started
            info.update(bm25_documents=bm25_documents, impact_enabled=sparse.enabled, warnings=warnings)
            shutil.rmtree(collections)  # the collections are inputs, not part of the published index
            (scratch / "info.json").write_text(canonical_json(info))
    except (SparseInputError, LuceneIndexError, JavaRuntimeMissingError, ShardError) as error:
        raise StageError.wrap(ctx.where, error) from error
    return LuceneReport(
        impact_enabled=sparse.enabled,
        impact_documents=info.get("impact_documents", 0),
        bm25_documents=bm25_documents,
        quantization_scale=scale,
        rebuilt=True,
        warnings=warnings,
        build_seconds=timings,
        path=str(store.require_current(STAGE)),
    )


def check_document_counts(ctx: StageContext, lucene: LuceneIndexes) -> CheckOutcome:
    """The Lucene indexes open and hold one document per sparse vector / chunk."""
    profile = ctx.require_profile()
    pinned = pin_chunk_version(ctx.layout, ctx.namespace_name, profile.name, ("sparse_vectors", STAGE))
    current = pinned.directories[STAGE]
    sparse = SparseArtifact.load(pinned.directories["sparse_vectors"])
    chunk_total = sum(
        len(shard_chunks(ctx, pinned.chunk_version, entry).chunks)
        for entry in chunk_shards(ctx, pinned.chunk_version).shards
    )
    search = lucene.open(current / "impact" if sparse.enabled else None, current / "bm25")
    # Every chunk has a sparse vector and a document in both indexes: per-shard counts add up.
    expected = {"impact": chunk_total if sparse.enabled else 0, "bm25": chunk_total}
    found = {"impact": search.impact_documents, "bm25": search.bm25_documents}
    if sparse.enabled:
        expected["sparse_vectors"], found["sparse_vectors"] = chunk_total, sparse.count
    return CheckOutcome(
        passed=expected == found, metadata={"expected": JsonValue(expected), "found": JsonValue(found)}
    )
