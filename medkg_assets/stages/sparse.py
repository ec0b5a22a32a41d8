"""Sparse stage (per namespace × profile): chunks → SPLADE term weights, cached by content hash."""

from __future__ import annotations

import time

from medkg_assets.config.env_names import EMBEDDER_ENABLE_SPARSE
from medkg_assets.encoders.errors import EncoderError
from medkg_assets.encoders.sparse import SpladeEncoder
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
from medkg_assets.vectors.incremental import CachedRows, encode_incrementally
from medkg_assets.vectors.sparse_artifact import SparseArtifact

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


def encode_sparse(ctx: StageContext, encoders: SparseEncoders, enabled: bool) -> SparseReport:
    """SPLADE term → weight maps for the current chunk version; `enabled=False` writes a marker."""
    profile = ctx.require_profile()
    store = ctx.layout.sparse(ctx.namespace_name, profile.name)
    chunk_version = current_chunk_version(ctx.layout, ctx.namespace_name)
    report_path = ctx.layout.stage_report(ctx.namespace_name, profile.name, STAGE)
    if not enabled:
        ctx.log.warning(f"{ctx.where}: {SPARSE_DISABLED_WARNING}; no sparse vectors produced")
        with store.build() as scratch:
            SparseArtifact(
                ctx.namespace_name,
                profile.name,
                profile.fingerprint,
                profile.sparse.model,
                False,
                disabled_reason=SPARSE_DISABLED_WARNING,
                chunk_version=chunk_version,
            ).write(scratch, ctx.namespace.tenant_id)
        report = SparseReport(version=store.require_current(STAGE).name, sparse_enabled=False, vectors=0)
        save_report(report_path, report)
        return report
    try:
        encoders.check_device(profile)
        records = profile_chunks(ctx, chunk_version).chunks
    except EncoderError as error:
        raise StageError.wrap(ctx.where, error) from error
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
            lambda: encoders.open(profile, ctx.settings.models_dir),
            lambda encoder: encoder.encode_documents,
            profile.dense.batch_size,
            ctx.log.info,
            f"sparse {ctx.where}",
        )
    except EncoderError as error:
        raise StageError.wrap(ctx.where, error) from error
    plan, vectors = result.plan, result.items
    artifact = SparseArtifact(
        ctx.namespace_name,
        profile.name,
        profile.fingerprint,
        profile.sparse.model,
        True,
        chunk_ids=[c.chunk_id for c in records],
        doc_ids=[c.doc_id for c in records],
        content_hashes=[c.content_hash for c in records],
        vectors=vectors,
        cache_key=cache_key,
        chunk_version=chunk_version,
    )
    with store.build() as scratch:
        artifact.write(scratch, ctx.namespace.tenant_id)
    duration = time.perf_counter() - started
    terms = [len(v) for v in vectors] or [0]
    current = store.require_current(STAGE)
    report = SparseReport(
        version=current.name,
        sparse_enabled=True,
        vectors=len(vectors),
        embeddings_generated=result.encoded,
        cache_hits=plan.hits,
        cache_misses=len(plan.misses),
        cache_hit_ratio=round(plan.hit_ratio, 4),
        duration_s=round(duration, 3),
        texts_per_s=round(result.encoded / duration, 1) if result.encoded else 0.0,
        batch_sizes_used=list(result.batch_sizes),
        device=result.device,
        model=profile.sparse.model,
        terms_mean=sum(terms) / len(terms),
        terms_max=max(terms),
        path=str(current),
    )
    save_report(report_path, report)
    return report


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
    too_many = sum(len(v) > profile.sparse.top_k_terms for v in artifact.vectors)
    out_of_range = sum(
        any(not 0 < w <= profile.sparse.max_weight for w in v.values()) for v in artifact.vectors
    )
    empty = sum(not v for v in artifact.vectors)
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
