"""Stage 2: chunks → dense embeddings (incremental cache), with dimension and parity checks."""

import hashlib
import time

import numpy as np
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetDep,
    AssetExecutionContext,
    DataVersion,
    MaterializeResult,
    MetadataValue,
    MultiToSingleDimensionPartitionMapping,
    asset,
    asset_check,
)

from medkg_assets.assets.chunks import chunks, current_chunk_version, profile_chunks
from medkg_assets.assets.context import (
    check_each_partition,
    for_each_partition,
    layout,
    markdown_table,
    stage_failure,
    telemetry_metadata,
)
from medkg_assets.automation.k8s import GPU_POOL, GPU_STAGE_TAG
from medkg_assets.encoders.errors import EncoderError
from medkg_assets.partitions import (
    NAMESPACE_DIMENSION,
    backfill_policy,
    namespace_profile_partitions,
    split_partition_key,
)
from medkg_assets.resources.encoders import DenseEncoderResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import get_config
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.hashing import chunks_digest, dense_artifact_hash
from medkg_assets.vectors.incremental import CachedRows, encode_incrementally
from medkg_assets.vectors.parity import evaluate_parity
from medkg_assets.vectors.validation import validate_vectors

GROUP = "dense"
CODE_VERSION = "dense-1"
# Bump when the encoding logic changes: cached vectors are reused only under the same key.
ENCODING_VERSION = "1"

per_namespace_chunks = AssetDep(
    chunks, partition_mapping=MultiToSingleDimensionPartitionMapping(NAMESPACE_DIMENSION)
)


def manifest_code_version(stage_version: str) -> str:
    """Code version = stage logic + every profile fingerprint, so a profile edit shows as stale."""
    fingerprints = ",".join(f"{p.name}:{p.fingerprint}" for p in get_config().profiles.profiles.values())
    return f"{stage_version}-{hashlib.sha256(fingerprints.encode()).hexdigest()[:12]}"


def _previous(store) -> DenseArtifact | None:
    current = store.current
    return DenseArtifact.load(current) if current is not None else None


@asset(
    partitions_def=namespace_profile_partitions,
    backfill_policy=backfill_policy,
    deps=[per_namespace_chunks],
    group_name=GROUP,
    pool=GPU_POOL,
    op_tags={GPU_STAGE_TAG: "dense"},
    kinds={"pytorch", "numpy"},
    code_version=manifest_code_version(CODE_VERSION),
    description="Dense vectors per chunk for one namespace × profile; unchanged chunks come from cache.",
)
def dense_embeddings(
    context: AssetExecutionContext, telemetry: TelemetryResource, dense_encoder: DenseEncoderResource
) -> MaterializeResult:
    return for_each_partition(
        context,
        telemetry,
        "dense",
        "sentence_transformers",
        lambda partition_key: _dense_embeddings(context, dense_encoder, partition_key),
    )


def _dense_embeddings(
    context: AssetExecutionContext, dense_encoder: DenseEncoderResource, partition_key: str
) -> MaterializeResult:
    config = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    namespace, profile = config.namespace(namespace_name), config.profiles.get(profile_name)
    where = f"namespace {namespace_name}, profile {profile_name}"
    paths = layout(config)
    try:  # device first: a GPU profile on a CPU host fails with its own error type, before any work
        dense_encoder.check_device(profile)
        chunk_version = current_chunk_version(config, namespace_name)
        budget = profile_chunks(config, namespace_name, profile, chunk_version)
    except EncoderError as error:
        raise stage_failure(where, error) from error
    records = budget.chunks
    store = paths.dense(namespace_name, profile_name)
    previous = _previous(store)
    started = time.perf_counter()
    dims = profile.dense.dims

    def validate(rows, chunk_ids):
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        validate_vectors(matrix, dims, profile.dense.normalize, chunk_ids, where)

    try:
        result = encode_incrementally(
            records,
            f"{profile.fingerprint}:{ENCODING_VERSION}",
            CachedRows(previous.cache_key, previous.content_hashes, previous.vectors) if previous else None,
            lambda: dense_encoder.open(profile, config.models_dir),
            lambda encoder: encoder.encode,
            profile.dense.batch_size,
            context.log.info,
            f"dense {where}",
            validate,
        )
    except EncoderError as error:
        raise stage_failure(where, error) from error
    plan, generated = result.plan, result.encoded
    batch_sizes, device, provider = result.batch_sizes, result.device, result.provider
    vectors = np.asarray(result.items, dtype=np.float32).reshape(len(records), dims)
    encode_s = time.perf_counter() - started
    artifact = DenseArtifact(
        vectors=vectors,
        chunk_ids=[c.chunk_id for c in records],
        doc_ids=[c.doc_id for c in records],
        content_hashes=[c.content_hash for c in records],
        namespace=namespace_name,
        profile=profile_name,
        fingerprint=profile.fingerprint,
        model=profile.dense.model,
        dims=profile.dense.dims,
        normalized=profile.dense.normalize,
        cache_key=f"{profile.fingerprint}:{ENCODING_VERSION}",
        chunk_version=chunk_version,
    )
    with store.build() as scratch:
        artifact.write(scratch, namespace.tenant_id)
    duration = time.perf_counter() - started
    dense_hash = dense_artifact_hash(artifact.chunk_ids, artifact.vectors)
    context.log.info(
        f"{where}: {len(records)} vectors, {generated} encoded, {plan.hits} from cache "
        f"({plan.hit_ratio:.1%}) in {duration:.1f}s"
    )
    return MaterializeResult(
        data_version=DataVersion(dense_hash[:16]),
        metadata={
            "vectors": len(records),
            "dims": profile.dense.dims,
            "embeddings_generated": generated,
            "cache_hits": plan.hits,
            "cache_misses": len(plan.misses),
            "cache_hit_ratio": round(plan.hit_ratio, 4),
            "duration_s": round(duration, 3),
            "embeddings_per_s": round(generated / encode_s, 1) if generated and encode_s > 0 else 0.0,
            "batch_sizes_used": MetadataValue.json(batch_sizes),
            "device": device,
            "provider": provider,
            "model": profile.dense.model,
            "fingerprint": profile.fingerprint,
            "dense_hash": dense_hash,
            "chunk_version": chunk_version,
            "chunks_over_budget": budget.over_budget,
            "chunks_resplit": budget.resplit,
            "chunks_rejected": len(budget.rejected),
            "summary": markdown_table(
                ["vectors", "encoded", "cache hits", "hit ratio", "seconds", "device", "batch sizes"],
                [
                    [
                        len(records),
                        generated,
                        plan.hits,
                        f"{plan.hit_ratio:.1%}",
                        f"{duration:.1f}",
                        device,
                        batch_sizes or "-",
                    ]
                ],
            ),
            "path": MetadataValue.path(str(store.current)),
            **telemetry_metadata(config),
        },
    )


@asset_check(
    asset=dense_embeddings,
    partitions_def=namespace_profile_partitions,
    blocking=True,
    description="Dense-only hash parity: vectors + ids equal the baseline for the same chunks and profile.",
)
def dense_hash_parity(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return check_each_partition(context, lambda partition_key: _dense_hash_parity(context, partition_key))


def _dense_hash_parity(context: AssetCheckExecutionContext, partition_key: str) -> AssetCheckResult:
    config = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    paths = layout(config)
    artifact = DenseArtifact.load(
        paths.dense(namespace_name, profile_name).require_current("dense_embeddings")
    )
    result = evaluate_parity(
        paths.dense_parity_baseline(namespace_name, profile_name),
        chunks_digest(zip(artifact.chunk_ids, artifact.content_hashes, strict=True)),
        artifact.fingerprint,
        dense_artifact_hash(artifact.chunk_ids, artifact.vectors),
    )
    return AssetCheckResult(
        passed=result.passed,
        description=result.reason,
        metadata={
            "dense_hash": result.dense_hash,
            "baseline_hash": result.baseline_hash,
            "baseline_recorded": result.recorded,
            "sparse_enabled": config.enable_sparse,
            "rerank_enabled": config.enable_rerank,
        },
    )


def dims_problems(vectors: np.ndarray, index_dims: int | None, expected: int) -> list[str]:
    problems = []
    if vectors.ndim != 2 or vectors.shape[1] != expected:
        problems.append(f"vectors are {vectors.shape[1] if vectors.ndim == 2 else vectors.shape}-d")
    if index_dims is not None and index_dims != expected:
        problems.append(f"FAISS index is {index_dims}-d")
    return problems
