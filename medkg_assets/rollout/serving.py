"""Which profile's artefacts a namespace serves, the promotion rule, and rollback.

The state (`serving.json` beside the namespace's artefacts) keeps the live record and the records
it replaced, so a rollback only moves a pointer back: nothing is recomputed.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from medkg_assets.storage.atomic import atomic_write_json

# A candidate may score at most this fraction below the live profile's Recall@10 (the runbook's 5 %).
RECALL_TOLERANCE = 0.05


class NothingToRollBackError(RuntimeError):
    """The namespace has no earlier live profile to return to."""


class ServingRecord(BaseModel):
    """One profile made live: its quality evidence and the artefact versions it pointed at."""

    model_config = ConfigDict(frozen=True)
    profile: str
    recall_at_10: float | None
    run_id: str
    promoted_at: str
    index: str | None = None
    versions: dict[str, str] = Field(default_factory=dict)


class ServingState(BaseModel):
    namespace: str
    live: ServingRecord | None = None
    previous: list[ServingRecord] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path, namespace: str) -> ServingState:
        return cls.model_validate_json(path.read_text()) if path.exists() else cls(namespace=namespace)

    def save(self, path: Path) -> None:
        atomic_write_json(path, self.model_dump(mode="json"))


class PromotionDecision(BaseModel):
    allowed: bool
    reason: str


def decide_promotion(
    live: ServingRecord | None,
    candidate: str,
    candidate_recall: float | None,
    failing_checks: list[str],
    tolerance: float = RECALL_TOLERANCE,
) -> PromotionDecision:
    """Allow a candidate only with every check passed and Recall@10 within `tolerance` of the live one."""
    if failing_checks:
        return PromotionDecision(
            allowed=False,
            reason=f"{candidate}: checks not passed for this namespace: {', '.join(sorted(failing_checks))}",
        )
    if candidate_recall is None:
        return PromotionDecision(
            allowed=False, reason=f"{candidate}: no passing Recall@10 recorded; run its release checks first"
        )
    if live is None or live.recall_at_10 is None:
        return PromotionDecision(
            allowed=True, reason=f"{candidate}: first live profile (Recall@10 {candidate_recall:.4f})"
        )
    floor = live.recall_at_10 * (1 - tolerance)
    if candidate_recall < floor:
        return PromotionDecision(
            allowed=False,
            reason=(
                f"{candidate}: Recall@10 {candidate_recall:.4f} is more than {tolerance:.0%} below the live "
                f"profile {live.profile}'s {live.recall_at_10:.4f} (floor {floor:.4f})"
            ),
        )
    return PromotionDecision(
        allowed=True,
        reason=f"{candidate}: Recall@10 {candidate_recall:.4f}, live {live.profile}: {live.recall_at_10:.4f}",
    )


def promote(state: ServingState, record: ServingRecord) -> ServingState:
    """Make `record` live; the replaced live record becomes the rollback target."""
    previous = [*state.previous, state.live] if state.live is not None else list(state.previous)
    return ServingState(namespace=state.namespace, live=record, previous=previous[-10:])


def roll_back(state: ServingState) -> ServingState:
    """Return to the record the live one replaced."""
    if not state.previous:
        live = state.live.profile if state.live else "nothing"
        raise NothingToRollBackError(
            f"namespace {state.namespace}: no earlier live profile to roll back to (live: {live})"
        )
    return ServingState(namespace=state.namespace, live=state.previous[-1], previous=state.previous[:-1])
