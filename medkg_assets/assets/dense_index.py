"""Stage 2b: dense embeddings → FAISS index, with dimension and self-recall checks."""

import time

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetExecutionContext,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from medkg_assets.assets.context import (
    check_each_partition,
    for_each_partition,
    layout,
    markdown_table,
    telemetry_metadata,
)
from medkg_assets.assets.dense import GROUP, dense_embeddings, dims_problems, manifest_code_version
from medkg_assets.config.profiles import FlatIndexSpec
from medkg_assets.partitions import backfill_policy, namespace_profile_partitions, split_partition_key
from medkg_assets.resources.faiss_store import FaissIndexResource
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets.settings import get_config
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.faiss_indexes import self_recall_at_k

CODE_VERSION = "faiss-1"


@asset(
    partitions_def=namespace_profile_partitions,
    backfill_policy=backfill_policy,
    deps=[dense_embeddings],
    group_name=GROUP,
    kinds={"faiss"},
    code_version=manifest_code_version(CODE_VERSION),
    description="FAISS index over the dense vectors, as the profile's index spec says (flat, HNSW, IVF-PQ).",
)
def faiss_index(
    context: AssetExecutionContext, telemetry: TelemetryResource, faiss_store: FaissIndexResource
) -> MaterializeResult:
    return for_each_partition(
        context,
        telemetry,
        "faiss_index",
        "faiss",
        lambda partition_key: _faiss_index(context, faiss_store, partition_key),
    )


def _faiss_index(
    context: AssetExecutionContext, faiss_store: FaissIndexResource, partition_key: str
) -> MaterializeResult:
    config = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    profile = config.profiles.get(profile_name)
    paths = layout(config)
    dense = DenseArtifact.load(paths.dense(namespace_name, profile_name).require_current("dense_embeddings"))
    started = time.perf_counter()
    try:
        built = faiss_store.build(dense.vectors, profile.index)
    except ValueError as error:
        raise Failure(description=f"namespace {namespace_name}, profile {profile_name}: {error}") from error
    build_s = time.perf_counter() - started
    info = {
        "type": built.kind,
        "spec": profile.index.model_dump(),
        "ntotal": int(built.index.ntotal),
        "dims": int(built.index.d),
        "metric": "inner_product",
        "fingerprint": profile.fingerprint,
        "chunk_version": dense.chunk_version,
        "built_on_gpu": built.on_gpu,
        "notes": built.notes,
    }
    if built.kind == "ivf_pq":
        info["nprobe"] = min(profile.index.nprobe, built.index.nlist)
    store = paths.faiss(namespace_name, profile_name)
    with store.build() as scratch:
        FaissArtifact(built.index, dense.chunk_ids, info).write(scratch)
    size = (store.current / "index.faiss").stat().st_size
    for note in built.notes:
        context.log.warning(note)
    return MaterializeResult(
        metadata={
            "type": built.kind,
            "ntotal": info["ntotal"],
            "dims": info["dims"],
            "build_seconds": round(build_s, 3),
            "file_size_bytes": size,
            "built_on_gpu": built.on_gpu,
            "index": markdown_table(
                ["type", "vectors", "dims", "build s", "MiB", "GPU"],
                [
                    [
                        built.kind,
                        info["ntotal"],
                        info["dims"],
                        f"{build_s:.2f}",
                        f"{size / 2**20:.1f}",
                        built.on_gpu,
                    ]
                ],
            ),
            "path": MetadataValue.path(str(store.current)),
            **telemetry_metadata(config),
        }
    )


def _load_pair(partition_key):
    config = get_config()
    namespace_name, profile_name = split_partition_key(partition_key)
    paths = layout(config)
    dense = DenseArtifact.load(paths.dense(namespace_name, profile_name).require_current("dense_embeddings"))
    index = FaissArtifact.load(paths.faiss(namespace_name, profile_name).require_current("faiss_index"))
    return config.profiles.get(profile_name), dense, index


@asset_check(
    asset=faiss_index,
    additional_deps=[dense_embeddings],
    partitions_def=namespace_profile_partitions,
    blocking=True,
    description="Every dense vector and the FAISS index have the profile's dims (DimensionMismatchError).",
)
def dense_dimension_matches_profile(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return check_each_partition(
        context, lambda partition_key: _dense_dimension_matches_profile(context, partition_key)
    )


def _dense_dimension_matches_profile(
    context: AssetCheckExecutionContext, partition_key: str
) -> AssetCheckResult:
    profile, dense, faiss_artifact = _load_pair(partition_key)
    problems = dims_problems(dense.vectors, faiss_artifact.index.d, profile.dense.dims)
    return AssetCheckResult(
        passed=not problems,
        description="; ".join(problems) + f"; profile {profile.name} says dims={profile.dense.dims}"
        if problems
        else f"vectors and index are {profile.dense.dims}-d",
        metadata={
            "expected_dims": profile.dense.dims,
            "vector_dims": int(dense.vectors.shape[1]) if dense.vectors.ndim == 2 else -1,
            "index_dims": int(faiss_artifact.index.d),
            "error_type": "DimensionMismatchError" if problems else "none",
        },
    )


@asset_check(
    asset=faiss_index,
    additional_deps=[dense_embeddings],
    partitions_def=namespace_profile_partitions,
    blocking=True,
    description="Recall@10 against exact search on sampled stored vectors ≥ the profile's floor.",
)
def faiss_self_recall(context: AssetCheckExecutionContext) -> AssetCheckResult:
    return check_each_partition(context, lambda partition_key: _faiss_self_recall(context, partition_key))


def _faiss_self_recall(context: AssetCheckExecutionContext, partition_key: str) -> AssetCheckResult:
    profile, dense, faiss_artifact = _load_pair(partition_key)
    exact = isinstance(profile.index, FlatIndexSpec)
    floor = 1.0 if exact else profile.index.self_recall_floor
    recall = self_recall_at_k(faiss_artifact.index, dense.vectors, k=10)
    return AssetCheckResult(
        passed=recall >= floor - 1e-9,
        description=f"self-recall@10 {recall:.4f} (floor {floor:.2f}, {faiss_artifact.info['type']})",
        metadata={
            "self_recall_at_10": round(recall, 4),
            "floor": floor,
            "index_type": faiss_artifact.info["type"],
        },
    )
