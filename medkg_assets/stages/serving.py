"""Serving stage (per namespace): which profile's artefacts a namespace serves, promotion through the
checks + Recall@10 gate and the expected scores (measured value ± tolerance per eval set), and
rollback (a pointer move: nothing is recomputed)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Protocol

from medkg_assets.evaluation.expected_scores import (
    ScoreCheck,
    check_expected,
    expected_scores,
    promotion_blockers,
)
from medkg_assets.manifests.rerank import RerankManifest
from medkg_assets.rollout.serving import (
    NothingToRollBackError,
    ServingRecord,
    ServingState,
    decide_promotion,
    promote,
    roll_back,
)
from medkg_assets.search.opensearch_mapping import index_name, read_alias
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.reports import Metadata, Report, StageError, markdown_table
from medkg_assets.storage.atomic import read_json_or
from medkg_assets.storage.layout import ArtifactLayout
from medkg_assets.storage.pinning import ALL_STAGES, ArtefactSetError, pin_chunk_version

_STORE_NAMES = {
    "dense_embeddings": "dense",
    "faiss_index": "faiss",
    "sparse_vectors": "sparse",
    "sparse_index": "lucene",
}


class AliasPointer(Protocol):
    """Moves a read alias (OpenSearchResource in Dagster); `configured` False means local only."""

    @property
    def configured(self) -> bool: ...

    def point_alias(self, alias: str, index: str) -> list[str]: ...


class ServingReport(Report):
    live_profile: str
    previous_profile: str
    outcome: str
    readers: str
    history: list[tuple[str, str, float | None, str]]  # (role, profile, Recall@10, since)
    rollback_seconds: float | None = None

    def to_metadata(self) -> Metadata:
        metadata: Metadata = {
            "live_profile": self.live_profile,
            "previous_profile": self.previous_profile,
            "outcome": self.outcome,
            "readers": self.readers,
            "history": markdown_table(["", "profile", "Recall@10", "since"], self.history),
        }
        if self.rollback_seconds is not None:
            metadata["rollback_seconds"] = self.rollback_seconds
        return metadata


def serving_report(
    state: ServingState, outcome: str, readers: str, rollback_seconds: float | None = None
) -> ServingReport:
    rows = (
        [("live", state.live.profile, state.live.recall_at_10, state.live.promoted_at)] if state.live else []
    )
    rows += [("previous", r.profile, r.recall_at_10, r.promoted_at) for r in reversed(state.previous)]
    return ServingReport(
        live_profile=state.live.profile if state.live else "none",
        previous_profile=state.previous[-1].profile if state.previous else "none",
        outcome=outcome,
        readers=readers,
        history=rows,
        rollback_seconds=rollback_seconds,
    )


def live_profile(layout: ArtifactLayout, namespace: str) -> str | None:
    """The profile `namespace` serves, if one was promoted."""
    state = ServingState.load(layout.serving_state(namespace), namespace)
    return state.live.profile if state.live else None


def passing_recall(layout: ArtifactLayout, namespace: str, profile: str) -> float | None:
    """The last Recall@10 the blocking check accepted for this namespace × profile."""
    history = read_json_or(layout.recall_history(namespace, profile), [])
    return float(history[-1]["recall@10"]) if history else None


def expected_checks(ctx: StageContext, profile: str, manifest: RerankManifest | None) -> list[ScoreCheck]:
    """The profile's final-ranking figures on each eval set (from its rerank manifest, None when not
    built) against the expected scores recorded for it; [] when none are recorded."""
    try:
        expected = expected_scores(
            ctx.settings.config_dir / "expected_scores.yaml", ctx.namespace_name, profile
        )
    except ValueError as error:
        raise StageError(str(error)) from error
    if not expected:
        return []
    measured = (
        {
            name: per[manifest.final_stage]
            for name, per in manifest.quality_by_set.items()
            if manifest.final_stage in per
        }
        if manifest
        else {}
    )
    return check_expected(expected, measured)


def artefact_versions(layout: ArtifactLayout, namespace: str, profile: str) -> dict[str, str]:
    """The versions a promotion points readers at: one set of one chunk version, or ArtefactSetError."""
    pinned = pin_chunk_version(layout, namespace, profile, ALL_STAGES)
    return {
        "chunks": pinned.chunk_version,
        **{_STORE_NAMES[stage]: path.name for stage, path in pinned.directories.items()},
    }


def point_readers(opensearch: AliasPointer, namespace: str, record: ServingRecord) -> str:
    """Flip the namespace's read alias to the record's index when OpenSearch is configured."""
    if not opensearch.configured or record.index is None:
        return "local only (OPENSEARCH_URL not set)"
    left = opensearch.point_alias(read_alias(namespace), record.index)
    return f"alias {read_alias(namespace)} → {record.index} (left: {', '.join(left) or 'none'})"


def promote_profile(
    ctx: StageContext, target: str, failing_checks: Callable[[], list[str]], opensearch: AliasPointer
) -> ServingReport:
    """Make `target` live when its set is whole, its release checks passed and its Recall@10 holds."""
    namespace = ctx.namespace_name
    target_profile = ctx.settings.profiles.get(target)
    target = target_profile.name
    path = ctx.layout.serving_state(namespace)
    state = ServingState.load(path, namespace)
    if state.live is not None and state.live.profile == target:
        ctx.log.info(f"{namespace}: {target} is already live")
        return serving_report(state, "unchanged", "unchanged")
    try:  # readers must find one consistent set behind the alias
        versions = artefact_versions(ctx.layout, namespace, target)
    except ArtefactSetError as error:
        raise StageError(f"namespace {namespace}: promotion of {target} refused: {error}") from error
    recall = passing_recall(ctx.layout, namespace, target)
    decision = decide_promotion(state.live, target, recall, failing_checks())
    if not decision.allowed:
        raise StageError(
            f"namespace {namespace}: promotion of {target} refused: {decision.reason}",
            {"live_profile": state.live.profile if state.live else "none", "candidate": target},
        )
    manifest = RerankManifest.load_or_none(ctx.layout.rerank_manifest(namespace, target))
    blockers = promotion_blockers(expected_checks(ctx, target, manifest))
    if blockers:
        raise StageError(
            f"namespace {namespace}: promotion of {target} refused: below its expected scores "
            f"(config/expected_scores.yaml): {'; '.join(blockers)}",
            {"live_profile": state.live.profile if state.live else "none", "candidate": target},
        )
    record = ServingRecord(
        profile=target,
        recall_at_10=recall,
        run_id=ctx.run_id,
        promoted_at=datetime.now(UTC).isoformat(timespec="seconds"),
        index=index_name(namespace, target_profile),
        versions=versions,
    )
    readers = point_readers(opensearch, namespace, record)
    state = promote(state, record)
    state.save(path)
    ctx.log.info(f"{namespace}: {target} is live ({decision.reason}); {readers}")
    return serving_report(state, f"promoted: {decision.reason}", readers)


def roll_back_profile(ctx: StageContext, opensearch: AliasPointer) -> ServingReport:
    """Make the previous live profile live again and flip its readers (under a second: a pointer)."""
    started = time.perf_counter()
    namespace = ctx.namespace_name
    path = ctx.layout.serving_state(namespace)
    state = ServingState.load(path, namespace)
    try:
        restored = roll_back(state)
    except NothingToRollBackError as error:
        raise StageError(str(error)) from error
    assert restored.live is not None and state.live is not None  # roll_back returns to a live record
    readers = point_readers(opensearch, namespace, restored.live)
    restored.save(path)
    elapsed = time.perf_counter() - started
    outcome = f"rolled back from {state.live.profile} to {restored.live.profile}"
    ctx.log.info(f"{namespace}: {outcome} in {elapsed:.2f}s; {readers}")
    return serving_report(restored, outcome, readers, rollback_seconds=round(elapsed, 3))
