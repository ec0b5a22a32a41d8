"""Dense stage (per namespace × profile): chunks → dense vectors, unchanged chunks from the cache."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from medkg_assets.encoders.dense import DenseEncoder
from medkg_assets.encoders.errors import EncoderError
from medkg_assets.stages.context import ProfileModels, StageContext
from medkg_assets.stages.ingest import current_chunk_version, profile_chunks
from medkg_assets.stages.reports import (
    CheckOutcome,
    JsonValue,
    Metadata,
    Report,
    StageError,
    StageFigures,
    markdown_table,
    path_value,
    save_report,
)
from medkg_assets.vectors.dense_artifact import DenseArtifact
from medkg_assets.vectors.hashing import chunks_digest, dense_artifact_hash
from medkg_assets.vectors.incremental import CachedRows, encode_incrementally
from medkg_assets.vectors.parity import evaluate_parity
from medkg_assets.vectors.validation import validate_vectors

STAGE = "dense_embeddings"
# Bump when the encoding logic changes: cached vectors are reused only under the same key.
ENCODING_VERSION = "1"


# Opens the profile's dense backend (DenseEncoderResource in Dagster).
DenseEncoders = ProfileModels[DenseEncoder]


class DenseReport(Report):
    version: str  # the dense artefact version this report describes
    vectors: int
    dims: int
    embeddings_generated: int
    cache_hits: int
    cache_misses: int
    cache_hit_ratio: float
    duration_s: float
    embeddings_per_s: float
    batch_sizes_used: list[int]
    device: str
    provider: str
    model: str
    fingerprint: str
    dense_hash: str
    chunk_version: str
    chunks_over_budget: int
    chunks_resplit: int
    chunks_rejected: int
    path: str

    @property
    def data_version(self) -> str | None:
        return self.dense_hash[:16]

    def figures(self) -> StageFigures:
        return StageFigures(
            provider=self.provider,
            generated=self.embeddings_generated,
            cache_hits=self.cache_hits,
            cache_misses=self.cache_misses,
            token_budget={"resplit": self.chunks_resplit, "rejected": self.chunks_rejected},
        )

    def to_metadata(self) -> Metadata:
        return {
            "vectors": self.vectors,
            "dims": self.dims,
            "embeddings_generated": self.embeddings_generated,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_ratio": self.cache_hit_ratio,
            "duration_s": self.duration_s,
            "embeddings_per_s": self.embeddings_per_s,
            "batch_sizes_used": JsonValue(self.batch_sizes_used),
            "device": self.device,
            "provider": self.provider,
            "model": self.model,
            "fingerprint": self.fingerprint,
            "dense_hash": self.dense_hash,
            "chunk_version": self.chunk_version,
            "chunks_over_budget": self.chunks_over_budget,
            "chunks_resplit": self.chunks_resplit,
            "chunks_rejected": self.chunks_rejected,
            "summary": markdown_table(
                ["vectors", "encoded", "cache hits", "hit ratio", "seconds", "device", "batch sizes"],
                [
                    [
                        self.vectors,
                        self.embeddings_generated,
                        self.cache_hits,
                        f"{self.cache_hit_ratio:.1%}",
                        f"{self.duration_s:.1f}",
                        self.device,
                        self.batch_sizes_used or "-",
                    ]
                ],
            ),
            "path": path_value(self.path),
        }


def embed_dense(ctx: StageContext, encoders: DenseEncoders) -> DenseReport:
    """Encode the current chunk version with the profile's dense model, reusing cached rows."""
    profile = ctx.require_profile()
    where = ctx.where
    try:  # device first: a GPU profile on a CPU host fails with its own error type, before any work
        encoders.check_device(profile)
        chunk_version = current_chunk_version(ctx.layout, ctx.namespace_name)
        budget = profile_chunks(ctx, chunk_version)
    except EncoderError as error:
        raise StageError.wrap(where, error) from error
    records = budget.chunks
    store = ctx.layout.dense(ctx.namespace_name, profile.name)
    previous = DenseArtifact.load(store.current) if store.current is not None else None
    started = time.perf_counter()
    dims = profile.dense.dims
    cache_key = f"{profile.fingerprint}:{ENCODING_VERSION}"

    def validate(rows: Sequence[Any], chunk_ids: list[str]) -> None:
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        validate_vectors(matrix, dims, profile.dense.normalize, chunk_ids, where)

    try:
        result = encode_incrementally(
            records,
            cache_key,
            CachedRows(previous.cache_key, previous.content_hashes, previous.vectors) if previous else None,
            lambda: encoders.open(profile, ctx.settings.models_dir),
            lambda encoder: encoder.encode,
            profile.dense.batch_size,
            ctx.log.info,
            f"dense {where}",
            validate,
        )
    except EncoderError as error:
        raise StageError.wrap(where, error) from error
    plan, generated = result.plan, result.encoded
    vectors = np.asarray(result.items, dtype=np.float32).reshape(len(records), dims)
    encode_s = time.perf_counter() - started
    artifact = DenseArtifact(
        vectors=vectors,
        chunk_ids=[c.chunk_id for c in records],
        doc_ids=[c.doc_id for c in records],
        content_hashes=[c.content_hash for c in records],
        namespace=ctx.namespace_name,
        profile=profile.name,
        fingerprint=profile.fingerprint,
        model=profile.dense.model,
        dims=profile.dense.dims,
        normalized=profile.dense.normalize,
        cache_key=cache_key,
        chunk_version=chunk_version,
    )
    with store.build() as scratch:
        artifact.write(scratch, ctx.namespace.tenant_id)
    duration = time.perf_counter() - started
    current = store.require_current(STAGE)
    dense_hash = dense_artifact_hash(artifact.chunk_ids, artifact.vectors)
    ctx.log.info(
        f"{where}: {len(records)} vectors, {generated} encoded, {plan.hits} from cache "
        f"({plan.hit_ratio:.1%}) in {duration:.1f}s"
    )
    report = DenseReport(
        version=current.name,
        vectors=len(records),
        dims=profile.dense.dims,
        embeddings_generated=generated,
        cache_hits=plan.hits,
        cache_misses=len(plan.misses),
        cache_hit_ratio=round(plan.hit_ratio, 4),
        duration_s=round(duration, 3),
        embeddings_per_s=round(generated / encode_s, 1) if generated and encode_s > 0 else 0.0,
        batch_sizes_used=list(result.batch_sizes),
        device=result.device,
        provider=result.provider,
        model=profile.dense.model,
        fingerprint=profile.fingerprint,
        dense_hash=dense_hash,
        chunk_version=chunk_version,
        chunks_over_budget=budget.over_budget,
        chunks_resplit=budget.resplit,
        chunks_rejected=len(budget.rejected),
        path=str(current),
    )
    save_report(ctx.layout.stage_report(ctx.namespace_name, profile.name, STAGE), report)
    return report


def check_dense_parity(ctx: StageContext) -> CheckOutcome:
    """Dense-only hash parity: vectors + ids equal the baseline for the same chunks and profile."""
    profile = ctx.require_profile()
    artifact = DenseArtifact.load(ctx.layout.dense(ctx.namespace_name, profile.name).require_current(STAGE))
    result = evaluate_parity(
        ctx.layout.dense_parity_baseline(ctx.namespace_name, profile.name),
        chunks_digest(zip(artifact.chunk_ids, artifact.content_hashes, strict=True)),
        artifact.fingerprint,
        dense_artifact_hash(artifact.chunk_ids, artifact.vectors),
    )
    return CheckOutcome(
        passed=result.passed,
        description=result.reason,
        metadata={
            "dense_hash": result.dense_hash,
            "baseline_hash": result.baseline_hash,
            "baseline_recorded": result.recorded,
            "sparse_enabled": ctx.settings.enable_sparse,
            "rerank_enabled": ctx.settings.enable_rerank,
        },
    )
