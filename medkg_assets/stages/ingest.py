"""Ingest (per namespace): source documents → validated documents → token-aware chunk versions."""

from __future__ import annotations

import statistics
import time
from functools import lru_cache
from pathlib import Path
from typing import Literal

from medkg_assets.config import EmbeddingProfile
from medkg_assets.encoders.errors import ModelLoadError
from medkg_assets.progress import Progress
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.reports import Metadata, Report, StageError, markdown_table, path_value
from medkg_assets.storage.atomic import atomic_write_jsonl, read_jsonl
from medkg_assets.storage.layout import CHUNKS_FILE, ArtifactLayout
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

    def to_metadata(self) -> Metadata:
        low, median, high = self.token_counts
        return {
            "chunks": self.chunks,
            "documents": self.documents,
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
    """Chunk every document into token windows and publish them as a new chunk version."""
    namespace = ctx.namespace
    documents = [Document.from_record(r) for r in read_jsonl(ctx.layout.documents(namespace.name))]
    tokens = load_tokenizer(namespace.tokenizer, ctx.settings.models_dir)
    progress = Progress(f"chunking {namespace.name}", len(documents), ctx.log.info)
    records = []
    for document in documents:
        records += [
            c.to_record()
            for c in chunk_document(
                document,
                tokens,
                namespace.chunking.window_tokens,
                namespace.chunking.overlap_tokens,
                namespace.name,
                namespace.tenant_id,
            )
        ]
        progress.advance(1)
    progress.close()
    store = ctx.layout.chunk_store(namespace.name)
    with store.build() as scratch:  # a new version; indexes built from older ones still read theirs
        atomic_write_jsonl(scratch / CHUNKS_FILE, records)
    version = store.require_current(f"chunks of namespace {namespace.name}").name
    token_counts = [r["token_count"] for r in records] or [0]
    return ChunksReport(
        chunks=len(records),
        documents=len(documents),
        token_counts=(min(token_counts), statistics.median(token_counts), max(token_counts)),
        window_tokens=namespace.chunking.window_tokens,
        overlap_tokens=namespace.chunking.overlap_tokens,
        tokenizer=namespace.tokenizer,
        duration_s=round(progress.elapsed, 3),
        documents_per_s=round(progress.rate, 1),
        chunk_version=version,
        path=str(ctx.layout.chunks(namespace.name, version)),
    )


@lru_cache(maxsize=8)
def _budgeted(
    chunks_file: Path,
    stamp: tuple[int, int],
    tokenizer: str,
    models_dir: Path,
    budget: int,
    policy: Literal["resplit", "reject"],
) -> BudgetResult:
    records = [Chunk.from_record(r) for r in read_jsonl(chunks_file)]
    try:
        tokens = load_tokenizer(tokenizer, models_dir)
    except Exception as error:  # tokenizers/hub/missing files: one error type for operators
        raise ModelLoadError(f"token budget: tokenizer {tokenizer!r} could not be loaded: {error}") from error
    return apply_token_budget(records, tokens, budget, policy)


def current_chunk_version(layout: ArtifactLayout, namespace: str) -> str:
    """The namespace's current chunk version (what a per-profile stage builds from)."""
    return layout.chunks(namespace).parent.name


def profile_chunks(
    ctx: StageContext, chunk_version: str, profile: EmbeddingProfile | None = None
) -> BudgetResult:
    """One chunk version of the namespace as a profile encodes them: each within the token budget.

    The budget is the namespace's `max_tokens` (capped by the model's), counted with the profile's
    tokenizer; every per-profile stage reads chunks through here, so all see the same chunk ids.
    The version is explicit: builders take the current one and record it, readers pass the one
    their index records (storage/pinning.py).
    """
    profile = profile or ctx.require_profile()
    chunks_file = ctx.layout.chunks(ctx.namespace_name, chunk_version)
    stat = chunks_file.stat()
    return _budgeted(
        chunks_file,
        (stat.st_mtime_ns, stat.st_size),
        profile.dense.tokenizer or profile.dense.model,
        ctx.settings.models_dir,
        min(ctx.namespace.max_tokens, profile.dense.max_tokens),
        ctx.namespace.over_budget,
    )
