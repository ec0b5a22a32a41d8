"""Expected scores as data (`config/expected_scores.yaml`): floors per namespace × profile."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from medkg_assets.config.loading import read_yaml

# The runbook's rollback trigger: a relative drop of 5 % or more against the last good run.
MAX_RELATIVE_DROP = 0.05


def expected_floor(path: Path, namespace: str, profile: str, metric: str = "recall@10") -> float | None:
    """The floor for this partition, or None when none is recorded."""
    data = read_yaml(path) if path.exists() else {}
    floor: float | None = (data.get(namespace) or {}).get(profile, {}).get(metric)
    return floor


@dataclass(frozen=True)
class QualityVerdict:
    passed: bool
    reasons: list[str]


def judge_quality(value: float, floor: float | None, previous: float | None) -> QualityVerdict:
    """Fail below the floor, or on a ≥ 5 % relative drop against the previous good value."""
    reasons = []
    if floor is not None and value < floor:
        reasons.append(f"Recall@10 {value:.4f} is below the expected floor {floor:.4f}")
    if previous is not None and previous > 0 and (previous - value) / previous >= MAX_RELATIVE_DROP:
        reasons.append(
            f"Recall@10 {value:.4f} dropped {(previous - value) / previous:.1%} from the last good run "
            f"({previous:.4f}); ≥ {MAX_RELATIVE_DROP:.0%} is the rollback trigger"
        )
    return QualityVerdict(passed=not reasons, reasons=reasons)
