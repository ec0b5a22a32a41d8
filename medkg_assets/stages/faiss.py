"""FAISS stage (per namespace × profile): dense vectors → the profile's FAISS index, and its checks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import faiss
import numpy as np

from medkg_assets.config import EmbeddingProfile
from medkg_assets.config.profiles import FlatIndexSpec, IndexSpec, IvfPqIndexSpec
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.ingest import chunk_shards, shard_chunks
from medkg_assets.stages.reports import (
    CheckOutcome,
    Metadata,
    Report,
    StageError,
    markdown_table,
    path_value,
    save_report,
)
from medkg_assets.storage.shards import ShardError
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.faiss_artifact import FaissArtifact
from medkg_assets.vectors.faiss_indexes import BuiltIndex, self_recall_from_blocks

STAGE = "faiss_index"


class FaissBuilder(Protocol):
    """Builds an index for a spec (FaissIndexResource in Dagster: GPU when there is one)."""

    def build(
        self, blocks: Callable[[], Iterator[np.ndarray]], n: int, dims: int, spec: IndexSpec
    ) -> BuiltIndex: ...


class FaissReport(Report):
    version: str  # the FAISS artefact version this report describes
    type: str
    ntotal: int
    dims: int
    build_seconds: float
    file_size_bytes: int
    built_on_gpu: bool
    path: str

    def to_metadata(self) -> Metadata:
        return {
            "type": self.type,
            "ntotal": self.ntotal,
            "dims": self.dims,
            "build_seconds": self.build_seconds,
            "file_size_bytes": self.file_size_bytes,
            "built_on_gpu": self.built_on_gpu,
            "index": markdown_table(
                ["type", "vectors", "dims", "build s", "MiB", "GPU"],
                [
                    [
                        self.type,
                        self.ntotal,
                        self.dims,
                        f"{self.build_seconds:.2f}",
                        f"{self.file_size_bytes / 2**20:.1f}",
                        self.built_on_gpu,
                    ]
                ],
            ),
            "path": path_value(self.path),
        }


def build_faiss_index(ctx: StageContext, builder: FaissBuilder) -> FaissReport:
    """Index the current dense vectors as the profile's index spec says (flat, HNSW, IVF-PQ)."""
    profile = ctx.require_profile()
    dense = DenseArtifact.load(
        ctx.layout.dense(ctx.namespace_name, profile.name).require_current("dense_embeddings")
    )
    started = time.perf_counter()
    chunk_ids: list[str] = []

    def blocks() -> Iterator[np.ndarray]:  # one dense shard in memory at a time
        chunk_ids.clear()
        for shard in dense.shards():
            chunk_ids.extend(shard.chunk_ids)
            yield shard.vectors

    try:
        built = builder.build(blocks, dense.count, dense.dims, profile.index)
    except (ValueError, ShardError) as error:  # over the memory budget, too small, a damaged shard
        raise StageError(f"{ctx.where}: {error}") from error
    build_s = time.perf_counter() - started
    info: dict[str, Any] = {
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
    if built.kind == "ivf_pq" and isinstance(profile.index, IvfPqIndexSpec):
        info["nprobe"] = min(profile.index.nprobe, faiss.extract_index_ivf(built.index).nlist)
    store = ctx.layout.faiss(ctx.namespace_name, profile.name)
    with store.build() as scratch:
        FaissArtifact(built.index, chunk_ids, info).write(scratch)
    current = store.require_current(STAGE)
    for note in built.notes:
        ctx.log.warning(note)
    report = FaissReport(
        version=current.name,
        type=built.kind,
        ntotal=info["ntotal"],
        dims=info["dims"],
        build_seconds=round(build_s, 3),
        file_size_bytes=(current / "index.faiss").stat().st_size,
        built_on_gpu=built.on_gpu,
        path=str(current),
    )
    save_report(ctx.layout.stage_report(ctx.namespace_name, profile.name, STAGE), report)
    return report


def _load_pair(ctx: StageContext) -> tuple[EmbeddingProfile, DenseArtifact, FaissArtifact]:
    profile = ctx.require_profile()
    dense = DenseArtifact.load(
        ctx.layout.dense(ctx.namespace_name, profile.name).require_current("dense_embeddings")
    )
    index = FaissArtifact.load(ctx.layout.faiss(ctx.namespace_name, profile.name).require_current(STAGE))
    return profile, dense, index


def dims_problems(vector_dims: set[int], index_dims: int | None, expected: int) -> list[str]:
    problems = []
    if vector_dims - {expected}:
        problems.append(f"vectors are {', '.join(str(d) for d in sorted(vector_dims))}-d")
    if index_dims is not None and index_dims != expected:
        problems.append(f"FAISS index is {index_dims}-d")
    return problems


def check_dense_dimensions(ctx: StageContext) -> CheckOutcome:
    """Every dense vector and the FAISS index have the profile's dims (DimensionMismatchError);
    the vectors' dims are read off each shard file's schema, no vector is loaded."""
    profile, dense, faiss_artifact = _load_pair(ctx)
    vector_dims = dense.stored_dims()
    problems = dims_problems(vector_dims, faiss_artifact.index.d, profile.dense.dims)
    return CheckOutcome(
        passed=not problems,
        description="; ".join(problems) + f"; profile {profile.name} says dims={profile.dense.dims}"
        if problems
        else f"vectors and index are {profile.dense.dims}-d",
        metadata={
            "expected_dims": profile.dense.dims,
            "vector_dims": min(vector_dims) if len(vector_dims) == 1 else -1,
            "index_dims": int(faiss_artifact.index.d),
            "error_type": "DimensionMismatchError" if problems else "none",
        },
    )


def check_self_recall(ctx: StageContext) -> CheckOutcome:
    """Recall@10 against exact search on sampled stored vectors ≥ the profile's floor."""
    profile, dense, faiss_artifact = _load_pair(ctx)
    floor = 1.0 if isinstance(profile.index, FlatIndexSpec) else profile.index.self_recall_floor
    recall = self_recall_from_blocks(
        faiss_artifact.index, lambda: (s.vectors for s in dense.shards()), dense.count, k=10
    )
    return CheckOutcome(
        passed=recall >= floor - 1e-9,
        description=f"self-recall@10 {recall:.4f} (floor {floor:.2f}, {faiss_artifact.info['type']})",
        metadata={
            "self_recall_at_10": round(recall, 4),
            "floor": floor,
            "index_type": faiss_artifact.info["type"],
        },
    )


def check_index_counts(ctx: StageContext) -> CheckOutcome:
    """Per-shard dense rows equal the shard's chunks (as the profile encodes them) and add up to
    the chunk count, which FAISS `ntotal` equals: no shard is silently short."""
    profile, dense, faiss_artifact = _load_pair(ctx)
    short = []
    expected_total = 0
    for entry in chunk_shards(ctx, dense.chunk_version).shards:
        expected = len(shard_chunks(ctx, dense.chunk_version, entry, profile).chunks)
        expected_total += expected
        found = next((s.rows for s in dense.manifest.shards if s.name == entry.name), 0)
        if found != expected:
            short.append(f"{entry.name}: {found} vectors for {expected} chunks")
    ntotal = int(faiss_artifact.index.ntotal)
    problems = short + (
        [f"FAISS ntotal {ntotal} ≠ {expected_total} chunks"] if ntotal != expected_total else []
    )
    return CheckOutcome(
        passed=not problems,
        description="; ".join(problems) + "; rebuild dense_embeddings and faiss_index"
        if problems
        else f"{len(dense.manifest.shards)} shards, {expected_total} chunks = dense rows = FAISS ntotal",
        metadata={
            "chunks": expected_total,
            "dense_vectors": dense.count,
            "faiss_ntotal": ntotal,
            "shards": len(dense.manifest.shards),
            "short_shards": len(short),
        },
    )
