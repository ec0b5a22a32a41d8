"""Dense stage (per namespace × profile): chunks → dense vectors, unchanged chunks from the cache."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from medkg_assets.encoders.dense import DenseEncoder
from medkg_assets.encoders.errors import EncoderError
from medkg_assets.stages.context import ProfileModels, StageContext
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
from medkg_assets.stages.sharded import (
    ShardOutcome,
    ShardPlan,
    ShardTask,
    plan_shards,
    publish_shards,
    run_pending,
    run_shard,
    summed,
    with_kept_shards,
)
from medkg_assets.storage.shards import ShardError
from medkg_assets.text.chunking import Chunk
from medkg_assets.vectors.dense_artifact import DenseArtifact, dense_table
from medkg_assets.vectors.hashing import ChunksDigest, DenseDigest, dense_artifact_hash
from medkg_assets.vectors.incremental import CachedRows, IncrementalResult, encode_incrementally
from medkg_assets.vectors.parity import evaluate_parity
from medkg_assets.vectors.shard_outputs import ShardOutputs, previous_shard
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
    shards: int = 0
    shards_encoded: int = 0  # shards this run encoded
    # shards whose output was on disk: unchanged since the last build, or finished before a crash
    shards_kept: int = 0

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
            "shards": self.shards,
            "shards_encoded": self.shards_encoded,
            "shards_kept": self.shards_kept,
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


def dense_outputs(ctx: StageContext) -> ShardOutputs:
    return ShardOutputs(ctx.layout.dense(ctx.namespace_name, ctx.require_profile().name))


def plan_dense(ctx: StageContext, encoders: DenseEncoders) -> ShardPlan:
    """The shards to encode; fails first (GpuNotAvailableError) on a GPU profile without a GPU."""
    profile = ctx.require_profile()
    try:
        encoders.check_device(profile)
    except EncoderError as error:
        raise StageError.wrap(ctx.where, error) from error
    return plan_shards(ctx, dense_outputs(ctx), f"{profile.fingerprint}:{ENCODING_VERSION}", STAGE)


def embed_dense_shard(ctx: StageContext, encoders: DenseEncoders, task: ShardTask) -> ShardOutcome:
    """Encode one shard (unchanged rows from the previous version's shard of the same name)."""
    profile = ctx.require_profile()
    outputs = dense_outputs(ctx)
    dims = profile.dense.dims
    cache_key = f"{profile.fingerprint}:{ENCODING_VERSION}"
    where = f"{ctx.where} {task.name}"

    def validate(rows: Sequence[Any], chunk_ids: list[str]) -> None:
        matrix = np.asarray(rows, dtype=np.float32).reshape(len(rows), -1)
        validate_vectors(matrix, dims, profile.dense.normalize, chunk_ids, where)

    def encode(task: ShardTask, chunks: list[Chunk]) -> tuple[pa.Table, IncrementalResult]:
        previous = previous_shard(outputs.store, task.name, DenseArtifact.load)
        try:
            result = encode_incrementally(
                chunks,
                cache_key,
                CachedRows(previous[0], previous[1].content_hashes, previous[1].vectors)
                if previous
                else None,
                lambda: encoders.open(profile, ctx.settings.models_dir),
                lambda encoder: encoder.encode,
                profile.dense.batch_size,
                ctx.log.info,
                f"dense {where}",
                validate,
            )
        except EncoderError as error:
            raise StageError.wrap(where, error) from error
        vectors = np.asarray(result.items, dtype=np.float32).reshape(len(chunks), dims)
        ids = [c.chunk_id for c in chunks]
        table = dense_table(ids, [c.doc_id for c in chunks], [c.content_hash for c in chunks], vectors)
        return table, result

    return run_shard(ctx, outputs, task, encode, profile, STAGE)


def publish_dense(ctx: StageContext, plan: ShardPlan, outcomes: Sequence[ShardOutcome]) -> DenseReport:
    """Publish the finished shards as one dense version and report on the whole stage."""
    profile = ctx.require_profile()
    outputs = dense_outputs(ctx)
    try:
        outcomes = with_kept_shards(outputs, plan, outcomes)
        publish_shards(
            outputs,
            plan,
            outcomes,
            {
                "namespace": ctx.namespace_name,
                "tenant_id": ctx.namespace.tenant_id,
                "profile": profile.name,
                "fingerprint": profile.fingerprint,
                "model": profile.dense.model,
                "dims": profile.dense.dims,
                "normalized": profile.dense.normalize,
                "cache_key": plan.cache_key,
            },
        )
    except ShardError as error:
        raise StageError(f"{ctx.where}: {error}") from error
    current = outputs.store.require_current(STAGE)
    artifact = DenseArtifact.load(current)
    totals = summed(outcomes)
    encoded = [o for o in outcomes if not o.kept]
    encode_s = sum(o.seconds for o in encoded)
    fresh_rows = sum(o.rows for o in encoded)
    hit_ratio = totals["cache_hits"] / fresh_rows if fresh_rows else 1.0
    devices = [o for o in encoded if o.encoded]
    ctx.log.info(
        f"{ctx.where}: {totals['rows']} vectors in {len(outcomes)} shard(s): {len(encoded)} encoded "
        f"({totals['encoded']} texts, {totals['cache_hits']} rows from cache), {totals['kept']} kept"
    )
    report = DenseReport(
        version=current.name,
        vectors=totals["rows"],
        dims=profile.dense.dims,
        embeddings_generated=totals["encoded"],
        cache_hits=totals["cache_hits"],
        cache_misses=fresh_rows - totals["cache_hits"],
        cache_hit_ratio=round(hit_ratio, 4),
        duration_s=round(encode_s, 3),
        embeddings_per_s=round(totals["encoded"] / encode_s, 1)
        if totals["encoded"] and encode_s > 0
        else 0.0,
        batch_sizes_used=sorted({b for o in encoded for b in o.batch_sizes}, reverse=True),
        device=devices[0].device if devices else "none",
        provider=devices[0].provider if devices else "cache",
        model=profile.dense.model,
        fingerprint=profile.fingerprint,
        dense_hash=dense_artifact_hash((shard.chunk_ids, shard.vectors) for shard in artifact.shards()),
        chunk_version=plan.chunk_version,
        chunks_over_budget=totals["over_budget"],
        chunks_resplit=totals["resplit"],
        chunks_rejected=totals["rejected"],
        shards=len(outcomes),
        shards_encoded=len(encoded),
        shards_kept=totals["kept"],
        path=str(current),
    )
    save_report(ctx.layout.stage_report(ctx.namespace_name, profile.name, STAGE), report)
    return report


def embed_dense(ctx: StageContext, encoders: DenseEncoders) -> DenseReport:
    """Every shard in this process, then publish (the CLI and benchmarks; Dagster fans out)."""
    plan = plan_dense(ctx, encoders)
    outcomes = run_pending(ctx, plan, lambda task: embed_dense_shard(ctx, encoders, task), STAGE)
    return publish_dense(ctx, plan, outcomes)


def check_dense_parity(ctx: StageContext) -> CheckOutcome:
    """Dense-only hash parity: vectors + ids equal the baseline for the same chunks and profile."""
    profile = ctx.require_profile()
    artifact = DenseArtifact.load(ctx.layout.dense(ctx.namespace_name, profile.name).require_current(STAGE))
    chunks, dense = ChunksDigest(), DenseDigest()
    for shard in artifact.shards():  # one shard in memory at a time
        chunks.update(zip(shard.chunk_ids, shard.content_hashes, strict=True))
        dense.update(shard.chunk_ids, shard.vectors)
    result = evaluate_parity(
        ctx.layout.dense_parity_baseline(ctx.namespace_name, profile.name),
        chunks.hexdigest(),
        artifact.fingerprint,
        dense.hexdigest(),
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
