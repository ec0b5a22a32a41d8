"""Sparse stage (per namespace × profile): chunks → SPLADE term weights, cached by content hash."""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from medkg_assets.config.env_names import EMBEDDER_ENABLE_SPARSE
from medkg_assets.encoders.errors import EncoderError
from medkg_assets.encoders.sparse import SpladeEncoder
from medkg_assets.stages.context import ProfileModels, StageContext
from medkg_assets.stages.ingest import current_chunk_version
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
from medkg_assets.storage.atomic import canonical_json
from medkg_assets.storage.shards import ShardError
from medkg_assets.text.chunking import Chunk
from medkg_assets.vectors.incremental import CachedRows, IncrementalResult, encode_incrementally
from medkg_assets.vectors.shard_outputs import META_FILE, ShardOutputs, previous_shard
from medkg_assets.vectors.sparse_artifact import SparseArtifact, sparse_table

STAGE = "sparse_vectors"
# Bump when the encoding or pruning logic changes: cached vectors are reused only under the same key.
ENCODING_VERSION = "2"
SPARSE_DISABLED_WARNING = f"sparse stage disabled ({EMBEDDER_ENABLE_SPARSE}=false or run config)"


# Opens the profile's SPLADE model (SparseEncoderResource in Dagster).
SparseEncoders = ProfileModels[SpladeEncoder]


class SparseReport(Report):
    version: str  # the sparse artefact version this report describes
    sparse_enabled: bool
    vectors: int
    embeddings_generated: int = 0
    cache_hits: int = 0
    cache_misses: int = 0
    cache_hit_ratio: float = 0.0
    duration_s: float = 0.0
    texts_per_s: float = 0.0
    batch_sizes_used: list[int] = []
    device: str = "none"
    model: str = ""
    terms_mean: float = 0.0
    terms_max: int = 0
    path: str = ""
    shards: int = 0
    shards_encoded: int = 0
    shards_kept: int = 0

    def figures(self) -> StageFigures:
        return StageFigures(
            generated=self.embeddings_generated, cache_hits=self.cache_hits, cache_misses=self.cache_misses
        )

    def to_metadata(self) -> Metadata:
        if not self.sparse_enabled:
            return {"sparse_enabled": False, "warning": SPARSE_DISABLED_WARNING, "vectors": 0}
        return {
            "sparse_enabled": True,
            "vectors": self.vectors,
            "embeddings_generated": self.embeddings_generated,
            "cache_hits": self.cache_hits,
            "cache_misses": self.cache_misses,
            "cache_hit_ratio": self.cache_hit_ratio,
            "duration_s": self.duration_s,
            "texts_per_s": self.texts_per_s,
            "batch_sizes_used": JsonValue(self.batch_sizes_used),
            "device": self.device,
            "model": self.model,
            "shards": self.shards,
            "shards_encoded": self.shards_encoded,
            "shards_kept": self.shards_kept,
            "summary": markdown_table(
                ["vectors", "encoded", "hit ratio", "terms/chunk (mean)", "max terms", "seconds"],
                [
                    [
                        self.vectors,
                        self.embeddings_generated,
                        f"{self.cache_hit_ratio:.1%}",
                        f"{self.terms_mean:.1f}",
                        self.terms_max,
                        f"{self.duration_s:.1f}",
                    ]
                ],
            ),
            "path": path_value(self.path),
        }


def sparse_outputs(ctx: StageContext) -> ShardOutputs:
    return ShardOutputs(ctx.layout.sparse(ctx.namespace_name, ctx.require_profile().name))


def write_sparse_disabled(ctx: StageContext) -> SparseReport:
    """The marker a disabled stage publishes: downstream stages warn instead of failing."""
    profile = ctx.require_profile()
    ctx.log.warning(f"{ctx.where}: {SPARSE_DISABLED_WARNING}; no sparse vectors produced")
    store = sparse_outputs(ctx).store
    with store.build() as scratch:
        (scratch / META_FILE).write_text(
            canonical_json(
                {
                    "chunk_version": current_chunk_version(ctx.layout, ctx.namespace_name),
                    "namespace": ctx.namespace_name,
                    "profile": profile.name,
                    "fingerprint": profile.fingerprint,
                    "model": profile.sparse.model,
                    "enabled": False,
                    "disabled_reason": SPARSE_DISABLED_WARNING,
                    "count": 0,
                }
            )
        )
    report = SparseReport(version=store.require_current(STAGE).name, sparse_enabled=False, vectors=0)
    save_report(ctx.layout.stage_report(ctx.namespace_name, profile.name, STAGE), report)
    return report


def plan_sparse(ctx: StageContext, encoders: SparseEncoders) -> ShardPlan:
    profile = ctx.require_profile()
    try:
        encoders.check_device(profile)
    except EncoderError as error:
        raise StageError.wrap(ctx.where, error) from error
    return plan_shards(ctx, sparse_outputs(ctx), f"{profile.fingerprint}:{ENCODING_VERSION}", STAGE)


def encode_sparse_shard(ctx: StageContext, encoders: SparseEncoders, task: ShardTask) -> ShardOutcome:
    """SPLADE term → weight maps for one shard (unchanged rows from the previous version's shard)."""
    profile = ctx.require_profile()
    outputs = sparse_outputs(ctx)
    cache_key = f"{profile.fingerprint}:{ENCODING_VERSION}"
    where = f"{ctx.where} {task.name}"

    def encode(task: ShardTask, chunks: list[Chunk]) -> tuple[pa.Table, IncrementalResult]:
        previous = previous_shard(outputs.store, task.name, SparseArtifact.load)
        try:
            result = encode_incrementally(
                chunks,
                cache_key,
                CachedRows(previous[0], previous[1].content_hashes, previous[1].vectors)
                if previous
                else None,
                lambda: encoders.open(profile, ctx.settings.models_dir),
                lambda encoder: encoder.encode_documents,
                profile.dense.batch_size,
                ctx.log.info,
                f"sparse {where}",
            )
        except EncoderError as error:
            raise StageError.wrap(where, error) from error
        table = sparse_table(
            [c.chunk_id for c in chunks],
            [c.doc_id for c in chunks],
            [c.content_hash for c in chunks],
            result.items,
        )
        return table, result

    return run_shard(ctx, outputs, task, encode, profile, STAGE)


def publish_sparse(ctx: StageContext, plan: ShardPlan, outcomes: Sequence[ShardOutcome]) -> SparseReport:
    profile = ctx.require_profile()
    outputs = sparse_outputs(ctx)
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
                "model": profile.sparse.model,
                "enabled": True,
                "disabled_reason": "",
                "cache_key": plan.cache_key,
            },
        )
    except ShardError as error:
        raise StageError(f"{ctx.where}: {error}") from error
    current = outputs.store.require_current(STAGE)
    totals = summed(outcomes)
    encoded = [o for o in outcomes if not o.kept]
    seconds = sum(o.seconds for o in encoded)
    fresh_rows = sum(o.rows for o in encoded)
    terms = [len(v) for shard in SparseArtifact.load(current).shards() for v in shard.vectors] or [0]
    devices = [o for o in encoded if o.encoded]
    report = SparseReport(
        version=current.name,
        sparse_enabled=True,
        vectors=totals["rows"],
        embeddings_generated=totals["encoded"],
        cache_hits=totals["cache_hits"],
        cache_misses=fresh_rows - totals["cache_hits"],
        cache_hit_ratio=round(totals["cache_hits"] / fresh_rows, 4) if fresh_rows else 1.0,
        duration_s=round(seconds, 3),
        texts_per_s=round(totals["encoded"] / seconds, 1) if totals["encoded"] and seconds > 0 else 0.0,
        batch_sizes_used=sorted({b for o in encoded for b in o.batch_sizes}, reverse=True),
        device=devices[0].device if devices else "none",
        model=profile.sparse.model,
        terms_mean=sum(terms) / len(terms),
        terms_max=max(terms),
        shards=len(outcomes),
        shards_encoded=len(encoded),
        shards_kept=totals["kept"],
        path=str(current),
    )
    save_report(ctx.layout.stage_report(ctx.namespace_name, profile.name, STAGE), report)
    return report


def encode_sparse(ctx: StageContext, encoders: SparseEncoders, enabled: bool) -> SparseReport:
    """Every shard in this process, then publish; `enabled=False` publishes the disabled marker."""
    if not enabled:
        return write_sparse_disabled(ctx)
    plan = plan_sparse(ctx, encoders)
    outcomes = run_pending(ctx, plan, lambda task: encode_sparse_shard(ctx, encoders, task), STAGE)
    return publish_sparse(ctx, plan, outcomes)


def check_sparse_limits(ctx: StageContext) -> CheckOutcome:
    """Each sparse vector keeps ≤ top_k_terms positive terms with weights ≤ max_weight."""
    profile = ctx.require_profile()
    artifact = SparseArtifact.load(ctx.layout.sparse(ctx.namespace_name, profile.name).require_current(STAGE))
    if not artifact.enabled:
        return CheckOutcome(
            passed=True,
            severity="warn",
            description=f"skipped: {artifact.disabled_reason}",
            metadata={"skipped": True},
        )
    too_many = out_of_range = empty = 0
    for shard in artifact.shards():  # one shard in memory at a time
        too_many += sum(len(v) > profile.sparse.top_k_terms for v in shard.vectors)
        out_of_range += sum(
            any(not 0 < w <= profile.sparse.max_weight for w in v.values()) for v in shard.vectors
        )
        empty += sum(not v for v in shard.vectors)
    return CheckOutcome(
        passed=not (too_many or out_of_range or empty),
        metadata={
            "over_top_k": too_many,
            "weights_out_of_range": out_of_range,
            "empty_vectors": empty,
            "top_k_terms": profile.sparse.top_k_terms,
            "max_weight": profile.sparse.max_weight,
        },
    )
