"""Stage 3: chunks → SPLADE term weights (incremental cache) → Lucene impact + BM25 indexes."""

import hashlib
import json
import shutil
import time

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    Config,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from medkg_assets.assets.chunks import current_chunk_version, profile_chunks
from medkg_assets.assets.context import (
    check_each_partition,
    for_each_partition,
    layout,
    markdown_table,
    stage_failure,
    telemetry_metadata,
)
from medkg_assets.assets.dense import manifest_code_version, per_namespace_chunks
from medkg_assets.automation.k8s import GPU_POOL, GPU_STAGE_TAG
from medkg_assets.encoders.errors import EncoderError
from medkg_assets.partitions import backfill_policy, namespace_profile_partitions, split_partition_key
from medkg_assets.resources.lucene import LuceneResource
from medkg_assets.resources.sparse_encoder import SparseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.search.jvm import JavaRuntimeMissingError
from medkg_assets.search.lucene import (
    LuceneIndexError,
    SparseInputError,
    write_impact_collection,
    write_text_collection,
)
from medkg_assets.settings import EMBEDDER_ENABLE_SPARSE, get_config
from medkg_assets.storage.atomic import canonical_json
from medkg_assets.storage.pinning import pin_chunk_version
from medkg_assets.text.chunking import Chunk
from medkg_assets.vectors.incremental import CachedRows, encode_incrementally
from medkg_assets.vectors.sparse_artifact import SparseArtifact

GROUP = "sparse"
# Bump when the encoding or pruning logic changes: cached vectors are reused only under the same key.
ENCODING_VERSION = "2"
LUCENE_BUILD_VERSION = "1"
SPARSE_DISABLED_WARNING = f"sparse stage disabled ({EMBEDDER_ENABLE_SPARSE}=false or run config)"


class SparseToggle(Config):
    """Run-config switch; unset follows EMBEDDER_ENABLE_SPARSE (default on)."""

    enable_sparse: bool | None = None


def sparse_enabled(toggle: SparseToggle) -> bool:
    return get_config().enable_sparse if toggle.enable_sparse is None else toggle.enable_sparse


@asset(
    partitions_def=namespace_profile_partitions,
    backfill_policy=backfill_policy,
    deps=[per_namespace_chunks],
    group_name=GROUP,
    pool=GPU_POOL,
    op_tags={GPU_STAGE_TAG: "sparse"},
    kinds={"pytorch", "jsonl"},
    code_version=manifest_code_version("sparse-1"),
    description="SPLADE term → weight maps per chunk (top-k terms, clipped weights), cached by content hash.",
)
def sparse_vectors(
    context: AssetExecutionContext,
    telemetry: TelemetryResource,
    config: SparseToggle,
    sparse_encoder: SparseEncoderResource,
) -> MaterializeResult:
    return for_each_partition(
        context,
        telemetry,
        "sparse",
        "splade",
        lambda partition_key: _sparse_vectors(context, config, sparse_encoder, partition_key),
    )


def _sparse_vectors(
    context: AssetExecutionContext,
    config: SparseToggle,
    sparse_encoder: SparseEncoderResource,
    partition_key: str,
) -> MaterializeResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    namespace, profile = settings.namespace(namespace_name), settings.profiles.get(profile_name)
    where = f"namespace {namespace_name}, profile {profile_name}"
    paths = layout(settings)
    store = paths.sparse(namespace_name, profile_name)
    chunk_version = current_chunk_version(settings, namespace_name)
    if not sparse_enabled(config):
        context.log.warning(f"{where}: {SPARSE_DISABLED_WARNING}; no sparse vectors produced")
        with store.build() as scratch:
            SparseArtifact(
                namespace_name,
                profile_name,
                profile.fingerprint,
                profile.sparse.model,
                False,
                disabled_reason=SPARSE_DISABLED_WARNING,
                chunk_version=chunk_version,
            ).write(scratch, namespace.tenant_id)
        return MaterializeResult(
            metadata={
                "sparse_enabled": False,
                "warning": SPARSE_DISABLED_WARNING,
                "vectors": 0,
                **telemetry_metadata(settings),
            }
        )
    try:
        sparse_encoder.check_device(profile)
        records = profile_chunks(settings, namespace_name, profile, chunk_version).chunks
    except EncoderError as error:
        raise stage_failure(where, error) from error
    previous = SparseArtifact.load(store.current) if store.current is not None else None
    if previous is not None and not previous.enabled:
        previous = None
    started = time.perf_counter()
    cache_key = f"{profile.fingerprint}:{ENCODING_VERSION}"
    try:
        result = encode_incrementally(
            records,
            cache_key,
            CachedRows(previous.cache_key, previous.content_hashes, previous.vectors) if previous else None,
            lambda: sparse_encoder.open(profile, settings.models_dir),
            lambda encoder: encoder.encode_documents,
            profile.dense.batch_size,
            context.log.info,
            f"sparse {where}",
        )
    except EncoderError as error:
        raise stage_failure(where, error) from error
    plan, vectors, batch_sizes, device = result.plan, result.items, result.batch_sizes, result.device
    content_hashes = [c.content_hash for c in records]
    artifact = SparseArtifact(
        namespace_name,
        profile_name,
        profile.fingerprint,
        profile.sparse.model,
        True,
        chunk_ids=[c.chunk_id for c in records],
        doc_ids=[c.doc_id for c in records],
        content_hashes=content_hashes,
        vectors=vectors,
        cache_key=cache_key,
        chunk_version=chunk_version,
    )
    with store.build() as scratch:
        artifact.write(scratch, namespace.tenant_id)
    duration = time.perf_counter() - started
    terms = [len(v) for v in vectors] or [0]
    generated = result.encoded
    return MaterializeResult(
        metadata={
            "sparse_enabled": True,
            "vectors": len(vectors),
            "embeddings_generated": generated,
            "cache_hits": plan.hits,
            "cache_misses": len(plan.misses),
            "cache_hit_ratio": round(plan.hit_ratio, 4),
            "duration_s": round(duration, 3),
            "texts_per_s": round(generated / duration, 1) if generated else 0.0,
            "batch_sizes_used": MetadataValue.json(batch_sizes),
            "device": device,
            "model": profile.sparse.model,
            "summary": markdown_table(
                ["vectors", "encoded", "hit ratio", "terms/chunk (mean)", "max terms", "seconds"],
                [
                    [
                        len(vectors),
                        generated,
                        f"{plan.hit_ratio:.1%}",
                        f"{sum(terms) / len(terms):.1f}",
                        max(terms),
                        f"{duration:.1f}",
                    ]
                ],
            ),
            "path": MetadataValue.path(str(store.current)),
            **telemetry_metadata(settings),
        }
    )


@asset_check(
    asset=sparse_vectors,
    partitions_def=namespace_profile_partitions,
    blocking=True,
    description="Each sparse vector keeps ≤ top_k_terms positive terms with weights ≤ max_weight.",
)
def sparse_vectors_respect_profile_limits(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return check_each_partition(
        context, lambda partition_key: _sparse_vectors_respect_profile_limits(context, partition_key)
    )


def _sparse_vectors_respect_profile_limits(
    context: AssetCheckExecutionContext, partition_key: str
) -> AssetCheckResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    profile = settings.profiles.get(profile_name)
    artifact = SparseArtifact.load(
        layout(settings).sparse(namespace_name, profile_name).require_current("sparse_vectors")
    )
    if not artifact.enabled:
        return AssetCheckResult(
            passed=True,
            severity=AssetCheckSeverity.WARN,
            description=f"skipped: {artifact.disabled_reason}",
            metadata={"skipped": True},
        )
    too_many = sum(len(v) > profile.sparse.top_k_terms for v in artifact.vectors)
    out_of_range = sum(
        any(not 0 < w <= profile.sparse.max_weight for w in v.values()) for v in artifact.vectors
    )
    empty = sum(not v for v in artifact.vectors)
    return AssetCheckResult(
        passed=not (too_many or out_of_range or empty),
        metadata={
            "over_top_k": too_many,
            "weights_out_of_range": out_of_range,
            "empty_vectors": empty,
            "top_k_terms": profile.sparse.top_k_terms,
            "max_weight": profile.sparse.max_weight,
        },
    )


@asset(
    partitions_def=namespace_profile_partitions,
    backfill_policy=backfill_policy,
    deps=[sparse_vectors, per_namespace_chunks],
    group_name=GROUP,
    kinds={"lucene"},
    code_version=manifest_code_version("lucene-1"),
    description="Lucene impact index of the SPLADE terms (quantised) and a BM25 index of the chunk text.",
)
def sparse_index(
    context: AssetExecutionContext, telemetry: TelemetryResource, lucene: LuceneResource
) -> MaterializeResult:
    return for_each_partition(
        context,
        telemetry,
        "sparse_index",
        "lucene",
        lambda partition_key: _sparse_index(context, lucene, partition_key),
    )


def _sparse_index(
    context: AssetExecutionContext, lucene: LuceneResource, partition_key: str
) -> MaterializeResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    profile = settings.profiles.get(profile_name)
    where = f"namespace {namespace_name}, profile {profile_name}"
    paths = layout(settings)
    sparse = SparseArtifact.load(paths.sparse(namespace_name, profile_name).require_current("sparse_vectors"))
    # BM25 indexes the chunks the sparse vectors were built from, so both indexes share one version.
    records = profile_chunks(settings, namespace_name, profile, sparse.chunk_version).chunks
    scale = profile.sparse.quantization_scale
    inputs = inputs_digest(sparse, records, scale)
    store = paths.lucene(namespace_name, profile_name)
    if store.current is not None and lucene_info(store.current).get("inputs_digest") == inputs:
        info = lucene_info(store.current)
        context.log.info(f"{where}: inputs unchanged since the last build; indexes kept")
        return MaterializeResult(
            metadata={
                "impact_enabled": info["impact_enabled"],
                "impact_documents": info.get("impact_documents", 0),
                "bm25_documents": info["bm25_documents"],
                "quantization_scale": scale,
                "rebuilt": False,
                "warnings": MetadataValue.json(info.get("warnings", [])),
                "path": MetadataValue.path(str(store.current)),
                **telemetry_metadata(settings),
            }
        )
    timings, warnings = {}, []
    info = {
        "quantization_scale": scale,
        "fingerprint": profile.fingerprint,
        "inputs_digest": inputs,
        "chunk_version": sparse.chunk_version,
    }
    try:
        with store.build() as scratch:
            collections = scratch / ".collections"
            if sparse.enabled:
                stats = write_impact_collection(
                    collections / "impact" / "docs.jsonl",
                    list(zip(sparse.chunk_ids, sparse.vectors, strict=True)),
                    scale,
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
                context.log.warning(f"{where}: {warnings[-1]}")
            write_text_collection(
                collections / "bm25" / "docs.jsonl", [(c.chunk_id, c.model_input) for c in records]
            )
            started = time.perf_counter()
            lucene.build("bm25", collections / "bm25", scratch / "bm25")
            timings["bm25"] = time.perf_counter() - started
            info.update(bm25_documents=len(records), impact_enabled=sparse.enabled, warnings=warnings)
            shutil.rmtree(collections)  # the collections are inputs, not part of the published index
            (scratch / "info.json").write_text(canonical_json(info))
    except (SparseInputError, LuceneIndexError, JavaRuntimeMissingError) as error:
        raise stage_failure(where, error) from error
    return MaterializeResult(
        metadata={
            "impact_enabled": sparse.enabled,
            "impact_documents": info.get("impact_documents", 0),
            "bm25_documents": len(records),
            "quantization_scale": scale,
            "rebuilt": True,
            "warnings": MetadataValue.json(warnings),
            "build_seconds": markdown_table(
                ["index", "seconds"], [[k, f"{v:.2f}"] for k, v in timings.items()]
            ),
            "path": MetadataValue.path(str(store.current)),
            **telemetry_metadata(settings),
        }
    )


def lucene_info(directory) -> dict:
    """What the last build of the Lucene indexes recorded (counts, scale, warnings, inputs digest)."""
    return json.loads((directory / "info.json").read_text())


def inputs_digest(sparse: SparseArtifact, records: list[Chunk], scale: int) -> str:
    """What the Lucene indexes are built from: unchanged digest → nothing to rebuild."""
    header = f"{LUCENE_BUILD_VERSION}:{scale}:{sparse.enabled}:{sparse.cache_key}:{sparse.chunk_version}"
    digest = hashlib.sha256(header.encode())
    for chunk_id, content_hash in zip(sparse.chunk_ids, sparse.content_hashes, strict=True):
        digest.update(f"s:{chunk_id}:{content_hash}\n".encode())
    for chunk in records:
        digest.update(f"c:{chunk.chunk_id}:{chunk.content_hash}\n".encode())
    return digest.hexdigest()


@asset_check(
    asset=sparse_index,
    partitions_def=namespace_profile_partitions,
    blocking=True,
    description="The Lucene indexes open and hold one document per sparse vector / chunk.",
)
def sparse_index_document_counts(
    context: AssetCheckExecutionContext, lucene: LuceneResource
) -> AssetCheckResult:
    return check_each_partition(
        context, lambda partition_key: _sparse_index_document_counts(context, lucene, partition_key)
    )


def _sparse_index_document_counts(
    context: AssetCheckExecutionContext, lucene: LuceneResource, partition_key: str
) -> AssetCheckResult:
    settings = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    paths = layout(settings)
    pinned = pin_chunk_version(paths, namespace_name, profile_name, ("sparse_vectors", "sparse_index"))
    current = pinned.directories["sparse_index"]
    sparse = SparseArtifact.load(pinned.directories["sparse_vectors"])
    profile = settings.profiles.get(profile_name)
    chunk_total = len(profile_chunks(settings, namespace_name, profile, pinned.chunk_version).chunks)
    search = lucene.open(current / "impact" if sparse.enabled else None, current / "bm25")
    expected = {"impact": len(sparse.chunk_ids) if sparse.enabled else 0, "bm25": chunk_total}
    found = {"impact": search.impact_documents, "bm25": search.bm25_documents}
    return AssetCheckResult(
        passed=expected == found,
        metadata={"expected": MetadataValue.json(expected), "found": MetadataValue.json(found)},
    )
