"""Which CrossEncoder a partition reranks with: the profile's base, or the adapted one recorded
by `adapted_reranker` (stages/adaptation.py) when its stored comparison with the base says adopt."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from medkg_assets.config import EmbeddingProfile
from medkg_assets.evaluation.adaptation import SetComparison, judge_adaptation
from medkg_assets.stages.context import StageContext
from medkg_assets.storage.atomic import read_json_or


class AdaptationRecord(BaseModel):
    """`adaptation.json`: the last candidate, how it was trained, how it compared, what is used."""

    base_model: str
    candidate: str | None  # version under rerank/adapted/versions/
    adopted: str | None  # the version in use, or None: the base
    reason: str
    training: dict[str, float | int | str]
    comparisons: list[SetComparison]
    inputs_digest: str


def load_record(ctx: StageContext) -> AdaptationRecord | None:
    stored = read_json_or(ctx.layout.adaptation_record(ctx.namespace_name, ctx.require_profile().name), None)
    return AdaptationRecord.model_validate(stored) if stored else None


def adopted_reranker(ctx: StageContext) -> Path | None:
    """The adapted CrossEncoder the partition uses, or None (the profile's base): only a record
    whose stored comparison still says adopt, and whose model is on disk."""
    record = load_record(ctx)
    if record is None or record.adopted is None or not judge_adaptation(record.comparisons).adopted:
        return None
    path = ctx.layout.adapted_rerankers(ctx.namespace_name, ctx.require_profile().name).version(
        record.adopted
    )
    return path if path.is_dir() else None


def with_reranker(profile: EmbeddingProfile, location: Path) -> EmbeddingProfile:
    """The profile with its CrossEncoder swapped for the one at `location` (same max_length)."""
    return profile.model_copy(
        update={"reranker": profile.reranker.model_copy(update={"model": str(location)})}
    )
