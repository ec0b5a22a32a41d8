"""Stage 1: source documents → validated documents → token-aware chunks (per namespace)."""

import statistics
import time
from functools import lru_cache
from pathlib import Path

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from medkg_assets.assets.context import for_each_partition, layout, markdown_table, telemetry_metadata
from medkg_assets.automation.jobs import INGEST_GROUP as GROUP
from medkg_assets.config import EmbeddingProfile
from medkg_assets.encoders.errors import ModelLoadError
from medkg_assets.partitions import backfill_policy, namespace_partitions
from medkg_assets.progress import Progress
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import ProjectConfig, get_config
from medkg_assets.storage.atomic import atomic_write_jsonl, read_jsonl
from medkg_assets.storage.layout import CHUNKS_FILE
from medkg_assets.text.chunking import Chunk, chunk_document, load_tokenizer
from medkg_assets.text.documents import BadInputError, Document, read_documents
from medkg_assets.text.token_budget import BudgetResult, apply_token_budget


@asset(
    partitions_def=namespace_partitions,
    backfill_policy=backfill_policy,
    group_name=GROUP,
    kinds={"python", "jsonl"},
    description="The namespace's source documents, validated and hashed (BEIR JSONL, .txt, .md).",
)
def source_documents(context: AssetExecutionContext, telemetry: TelemetryResource) -> MaterializeResult:
    return for_each_partition(
        context, telemetry, "ingest", "python", lambda name: _source_documents(context, name)
    )


def _source_documents(context: AssetExecutionContext, namespace_name: str) -> MaterializeResult:
    config = get_config()
    namespace = config.namespace(namespace_name)
    started = time.perf_counter()
    try:
        result = read_documents(
            namespace.source_path, namespace.chunking.max_document_bytes, namespace.on_bad_record
        )
    except BadInputError as error:
        raise Failure(
            description=f"namespace {namespace.name}: {error}",
            metadata={"bad_records": len(error.records), "source": str(namespace.source_path)},
        ) from error
    except FileNotFoundError as error:
        raise Failure(
            description=f"namespace {namespace.name}: {error}; fix source.path in {namespace.config_file}"
        ) from error
    for skipped in result.skipped:
        context.log.warning(f"skipped bad record {skipped}")
    if result.ignored:
        shown = ", ".join(result.ignored[:20]) + (" …" if len(result.ignored) > 20 else "")
        context.log.warning(
            f"namespace {namespace.name}: ignored {len(result.ignored)} file(s) in "
            f"{namespace.source_path} that are not .jsonl, .txt, .md or .markdown: {shown} — "
            "convert them to a supported format, or move them out of the source folder"
        )
    count = atomic_write_jsonl(
        layout(config).documents(namespace.name), (d.to_record() for d in result.documents)
    )
    context.log.info(f"{namespace.name}: {count} documents from {len(result.files)} file(s)")
    skipped_rows = [[r.file, r.line or "", r.reason] for r in result.skipped[:50]]
    ignored_shown = result.ignored[:50]
    more_ignored = len(result.ignored) - len(ignored_shown)
    return MaterializeResult(
        metadata={
            "documents": count,
            "source_files": len(result.files),
            "skipped_records": len(result.skipped),
            "skipped": markdown_table(["file", "line", "reason"], skipped_rows)
            if skipped_rows
            else MetadataValue.text("none"),
            "ignored_files": len(result.ignored),
            "ignored": MetadataValue.text(
                "\n".join(ignored_shown) + (f"\n… and {more_ignored} more" if more_ignored else "")
            )
            if ignored_shown
            else MetadataValue.text("none"),
            "source": MetadataValue.path(str(namespace.source_path)),
            "tenant_id": namespace.tenant_id,
            "duration_s": round(time.perf_counter() - started, 3),
            **telemetry_metadata(config),
        }
    )


@asset(
    partitions_def=namespace_partitions,
    backfill_policy=backfill_policy,
    group_name=GROUP,
    deps=[source_documents],
    kinds={"python", "jsonl"},
    description="Token windows with overlap over each document; shared by every profile.",
)
def chunks(context: AssetExecutionContext, telemetry: TelemetryResource) -> MaterializeResult:
    return for_each_partition(
        context, telemetry, "chunking", "tokenizers", lambda name: _chunks(context, name)
    )


def _chunks(context: AssetExecutionContext, namespace_name: str) -> MaterializeResult:
    config = get_config()
    namespace = config.namespace(namespace_name)
    paths = layout(config)
    documents = [Document.from_record(r) for r in read_jsonl(paths.documents(namespace.name))]
    tokens = load_tokenizer(namespace.tokenizer, config.models_dir)
    progress = Progress(f"chunking {namespace.name}", len(documents), context.log.info)
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
    store = paths.chunk_store(namespace.name)
    with store.build() as scratch:  # a new version; indexes built from older ones still read theirs
        atomic_write_jsonl(scratch / CHUNKS_FILE, records)
    version = store.current.name
    token_counts = [r["token_count"] for r in records] or [0]
    per_doc = len(records) / len(documents) if documents else 0.0
    return MaterializeResult(
        metadata={
            "chunks": len(records),
            "documents": len(documents),
            "chunks_per_document": round(per_doc, 2),
            "tokens": markdown_table(
                ["min", "median", "max", "window", "overlap", "tokenizer"],
                [
                    [
                        min(token_counts),
                        statistics.median(token_counts),
                        max(token_counts),
                        namespace.chunking.window_tokens,
                        namespace.chunking.overlap_tokens,
                        namespace.tokenizer,
                    ]
                ],
            ),
            "duration_s": round(progress.elapsed, 3),
            "documents_per_s": round(progress.rate, 1),
            "chunk_version": version,
            "path": MetadataValue.path(str(paths.chunks(namespace.name, version))),
            **telemetry_metadata(config),
        }
    )


@lru_cache(maxsize=8)
def _budgeted(
    chunks_file: Path, stamp: tuple[int, int], tokenizer: str, models_dir: Path, budget: int, policy: str
):
    records = [Chunk.from_record(r) for r in read_jsonl(chunks_file)]
    try:
        tokens = load_tokenizer(tokenizer, models_dir)
    except Exception as error:  # tokenizers/hub/missing files: one error type for operators
        raise ModelLoadError(f"token budget: tokenizer {tokenizer!r} could not be loaded: {error}") from error
    return apply_token_budget(records, tokens, budget, policy)


def current_chunk_version(config: ProjectConfig, namespace_name: str) -> str:
    """The namespace's current chunk version (what a per-profile stage builds from)."""
    return layout(config).chunks(namespace_name).parent.name


def profile_chunks(
    config: ProjectConfig, namespace_name: str, profile: EmbeddingProfile, chunk_version: str
) -> BudgetResult:
    """One chunk version of the namespace as a profile encodes them: each within the token budget.

    The budget is the namespace's `max_tokens` (capped by the model's), counted with the profile's
    tokenizer; every per-profile stage reads chunks through here, so all see the same chunk ids.
    The version is explicit: builders take the current one and record it, readers pass the one
    their index records (storage/pinning.py).
    """
    namespace = config.namespace(namespace_name)
    chunks_file = layout(config).chunks(namespace_name, chunk_version)
    stat = chunks_file.stat()
    return _budgeted(
        chunks_file,
        (stat.st_mtime_ns, stat.st_size),
        profile.dense.tokenizer or profile.dense.model,
        config.models_dir,
        min(namespace.max_tokens, profile.dense.max_tokens),
        namespace.over_budget,
    )
