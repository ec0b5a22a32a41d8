"""Ingest (per namespace): source documents → validated documents → token-aware chunk versions."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from functools import lru_cache
from pathlib import Path
from typing import Literal

from medkg_assets.config import EmbeddingProfile
from medkg_assets.encoders.errors import ModelLoadError
from medkg_assets.progress import Progress
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.reports import Metadata, Report, StageError, markdown_table, path_value
from medkg_assets.storage.atomic import atomic_write_jsonl, iter_jsonl
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.storage.shards import (
    MANIFEST_FILE,
    ShardEntry,
    ShardManifest,
    read_table,
    shard_name,
    shard_of,
)
from medkg_assets.text.chunk_shards import read_chunk_shard, write_chunk_shards
from medkg_assets.text.chunking import Chunk, chunk_document, load_tokenizer
from medkg_assets.text.documents import BadInputError, Document, read_documents
from medkg_assets.text.token_budget import BudgetResult, apply_token_budget

SKIPPED_SHOWN = 50


class SourceDocumentsReport(Report):
    documents: int
    source_files: int
    skipped: list[tuple[str, int | None, str]]  # (file, line, reason), the first SKIPPED_SHOWN
    skipped_records: int
    ignored: list[str]
    source: str
    tenant_id: str
    duration_s: float

    def to_metadata(self) -> Metadata:
        shown = self.ignored[:SKIPPED_SHOWN]
        more = len(self.ignored) - len(shown)
        return {
            "documents": self.documents,
            "source_files": self.source_files,
            "skipped_records": self.skipped_records,
            "skipped": markdown_table(
                ["file", "line", "reason"], [[f, line or "", r] for f, line, r in self.skipped]
            )
            if self.skipped
            else "none",
            "ignored_files": len(self.ignored),
            "ignored": "\n".join(shown) + (f"\n… and {more} more" if more else "") if shown else "none",
            "source": path_value(self.source),
            "tenant_id": self.tenant_id,
            "duration_s": self.duration_s,
        }


def read_source_documents(ctx: StageContext) -> SourceDocumentsReport:
    """Read and validate the namespace's source into `documents.jsonl`; bad records per its policy."""
    namespace = ctx.namespace
    started = time.perf_counter()
    try:
        result = read_documents(
            namespace.source_path, namespace.chunking.max_document_bytes, namespace.on_bad_record
        )
    except BadInputError as error:
        raise StageError(
            f"namespace {namespace.name}: {error}",
            {"bad_records": len(error.records), "source": str(namespace.source_path)},
        ) from error
    except FileNotFoundError as error:
        raise StageError(
            f"namespace {namespace.name}: {error}; fix source.path in {namespace.config_file}"
        ) from error
    for skipped in result.skipped:
        ctx.log.warning(f"skipped bad record {skipped}")
    if result.ignored:
        shown = ", ".join(result.ignored[:20]) + (" …" if len(result.ignored) > 20 else "")
        ctx.log.warning(
            f"namespace {namespace.name}: ignored {len(result.ignored)} file(s) in "
            f"{namespace.source_path} that are not .jsonl, .txt, .md or .markdown: {shown} — "
            "convert them to a supported format, or move them out of the source folder"
        )
    count = atomic_write_jsonl(
        ctx.layout.documents(namespace.name), (d.to_record() for d in result.documents)
    )
    ctx.log.info(f"{namespace.name}: {count} documents from {len(result.files)} file(s)")
    return SourceDocumentsReport(
        documents=count,
        source_files=len(result.files),
        skipped=[(str(r.file), r.line, r.reason) for r in result.skipped[:SKIPPED_SHOWN]],
        skipped_records=len(result.skipped),
        ignored=list(result.ignored),
        source=str(namespace.source_path),
        tenant_id=namespace.tenant_id,
        duration_s=round(time.perf_counter() - started, 3),
    )


class ChunksReport(Report):
    chunks: int
    documents: int
    token_counts: tuple[int, float, int]  # min, median, max
    window_tokens: int
    overlap_tokens: int
    tokenizer: str
    duration_s: float
    documents_per_s: float
    chunk_version: str
    path: str
    shards: int = 0  # shard files written (shards no document hashed to have none)
    shard_count: int = 0  # the namespace's shard plan (a power of two)
    largest_shard: int = 0

    def to_metadata(self) -> Metadata:
        low, median, high = self.token_counts
        return {
            "chunks": self.chunks,
            "documents": self.documents,
            "shards": self.shards,
            "shard_count": self.shard_count,
            "largest_shard": self.largest_shard,
            "chunks_per_document": round(self.chunks / self.documents, 2) if self.documents else 0.0,
            "tokens": markdown_table(
                ["min", "median", "max", "window", "overlap", "tokenizer"],
                [[low, median, high, self.window_tokens, self.overlap_tokens, self.tokenizer]],
            ),
            "duration_s": self.duration_s,
            "documents_per_s": self.documents_per_s,
            "chunk_version": self.chunk_version,
            "path": path_value(self.path),
        }


def build_chunks(ctx: StageContext) -> ChunksReport:
    """Chunk every document into token windows and publish them, as shards, as a new chunk version.

    Documents stream from `documents.jsonl` into their shards' spool files, so memory holds one
    document while chunking and one shard while writing Parquet, whatever the namespace's size.
    """
    namespace = ctx.namespace
    documents_file = ctx.layout.documents(namespace.name)
    total = sum(1 for line in documents_file.open(encoding="utf-8") if line.strip())
    tokens = load_tokenizer(namespace.tokenizer, ctx.settings.models_dir)
    store = ctx.layout.chunk_store(namespace.name)
    previous = _previous_shard_count(store.current)
    progress = Progress(f"chunking {namespace.name}", total, ctx.log.info)
    token_counts: list[int] = []

    def chunked() -> Iterator[list[Chunk]]:
        for record in iter_jsonl(documents_file):
            chunks = chunk_document(
                Document.from_record(record),
                tokens,
                namespace.chunking.window_tokens,
                namespace.chunking.overlap_tokens,
                namespace.name,
                namespace.tenant_id,
            )
            token_counts.extend(c.token_count for c in chunks)
            progress.advance(1)
            yield chunks

    with store.build() as scratch:  # a new version; indexes built from older ones still read theirs
        manifest = write_chunk_shards(scratch, chunked(), previous, namespace.sharding.max_chunks_per_shard)
    progress.close()
    version = store.require_current(f"chunks of namespace {namespace.name}").name
    if previous is not None and manifest.shard_count != previous:
        ctx.log.warning(
            f"{namespace.name}: re-sharded from {previous} to {manifest.shard_count} shards (a shard "
            f"would exceed sharding.max_chunks_per_shard={namespace.sharding.max_chunks_per_shard}); "
            "every per-profile stage re-encodes this once"
        )
    token_counts = token_counts or [0]
    return ChunksReport(
        chunks=manifest.rows,
        documents=total,
        shards=len(manifest.shards),
        shard_count=manifest.shard_count,
        largest_shard=max((s.rows for s in manifest.shards), default=0),
        token_counts=(min(token_counts), statistics.median(token_counts), max(token_counts)),
        window_tokens=namespace.chunking.window_tokens,
        overlap_tokens=namespace.chunking.overlap_tokens,
        tokenizer=namespace.tokenizer,
        duration_s=round(progress.elapsed, 3),
        documents_per_s=round(progress.rate, 1),
        chunk_version=version,
        path=str(ctx.layout.chunks(namespace.name, version)),
    )


def _previous_shard_count(current: Path | None) -> int | None:
    """The shard count of the current chunk version: kept, so documents stay in their shards."""
    if current is None or not (current / MANIFEST_FILE).exists():
        return None
    return ShardManifest.load(current).shard_count


@lru_cache(maxsize=16)
def _budgeted(
    version_dir: Path,
    entry: ShardEntry,
    tokenizer: str,
    models_dir: Path,
    budget: int,
    policy: Literal["resplit", "reject"],
) -> BudgetResult:
    records = read_chunk_shard(version_dir, entry)
    try:
        tokens = load_tokenizer(tokenizer, models_dir)
    except Exception as error:  # tokenizers/hub/missing files: one error type for operators
        raise ModelLoadError(f"token budget: tokenizer {tokenizer!r} could not be loaded: {error}") from error
    return apply_token_budget(records, tokens, budget, policy)


def current_chunk_version(layout: ArtifactLayout, namespace: str) -> str:
    """The namespace's current chunk version (what a per-profile stage builds from)."""
    return layout.chunks(namespace).name


def chunk_shards(ctx: StageContext, chunk_version: str) -> ShardManifest:
    """The shards of one chunk version of the namespace."""
    return ShardManifest.load(ctx.layout.chunks(ctx.namespace_name, chunk_version))


def budget_key(ctx: StageContext, profile: EmbeddingProfile) -> str:
    """What the token budget depends on, beyond the profile: part of every shard output's key."""
    return f"{min(ctx.namespace.max_tokens, profile.dense.max_tokens)}:{ctx.namespace.over_budget}"


def shard_chunks(
    ctx: StageContext, chunk_version: str, entry: ShardEntry, profile: EmbeddingProfile | None = None
) -> BudgetResult:
    """One chunk shard as a profile encodes it: each chunk within the token budget.

    The budget is the namespace's `max_tokens` (capped by the model's), counted with the profile's
    tokenizer; every per-profile stage reads chunks through here, so all see the same chunk ids.
    The version is explicit: builders take the current one and record it, readers pass the one
    their index records (storage/pinning.py).
    """
    profile = profile or ctx.require_profile()
    return _budgeted(
        ctx.layout.chunks(ctx.namespace_name, chunk_version),
        entry,
        profile.dense.tokenizer or profile.dense.model,
        ctx.settings.models_dir,
        min(ctx.namespace.max_tokens, profile.dense.max_tokens),
        ctx.namespace.over_budget,
    )


def documents_present(ctx: StageContext, chunk_version: str, doc_ids: set[str]) -> set[str]:
    """Which of `doc_ids` the chunk version holds; reads only the doc id column of the shards those
    documents hash to (a document always lands in `shard_of(doc_id)`)."""
    directory = ctx.layout.chunks(ctx.namespace_name, chunk_version)
    manifest = ShardManifest.load(directory)
    wanted: dict[str, set[str]] = {}
    for doc_id in doc_ids:
        wanted.setdefault(shard_name(shard_of(doc_id, manifest.shard_count)), set()).add(doc_id)
    fix = f"rebuild the chunks (materialise `chunks` for the namespace): {directory} is damaged"
    present: set[str] = set()
    for entry in manifest.shards:
        if entry.name in wanted:
            column = read_table(directory / entry.file, entry.rows, fix, ["doc_id"]).column(0)
            present |= wanted[entry.name] & set(column.to_pylist())
    return present
