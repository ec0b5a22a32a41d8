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


@dataclass(frozen=True)
class ExpectedScore:
    """A figure as measured when it was recorded, and how far a rebuild may land from it."""

    value: float
    tolerance: float


@dataclass(frozen=True)
class ScoreCheck:
    eval_set: str
    metric: str
    expected: ExpectedScore
    measured: float | None

    @property
    def status(self) -> str:
        """`ok` within tolerance; `below` (refuses promotion); `above` (better than recorded: the
        entry is stale and should be re-measured, promotion goes on); `missing` (no such figure)."""
        if self.measured is None:
            return "missing"
        if self.measured < self.expected.value - self.expected.tolerance:
            return "below"
        return "above" if self.measured > self.expected.value + self.expected.tolerance else "ok"


def expected_scores(path: Path, namespace: str, profile: str) -> dict[str, dict[str, ExpectedScore]]:
    """`expected:` of the partition: eval set → metric → {value, tolerance} of the final ranking
    (Pyserini's 2CR style); empty when none is recorded."""
    data = read_yaml(path) if path.exists() else {}
    entries = ((data.get(namespace) or {}).get(profile) or {}).get("expected") or {}
    try:
        return {
            name: {m: ExpectedScore(float(e["value"]), float(e["tolerance"])) for m, e in metrics.items()}
            for name, metrics in entries.items()
        }
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise ValueError(
            f"{path}: {namespace}.{profile}.expected: each metric needs {{value: x, tolerance: y}} ({error})"
        ) from error


def check_expected(
    expected: dict[str, dict[str, ExpectedScore]], measured: dict[str, dict[str, float]]
) -> list[ScoreCheck]:
    """Every recorded figure against the measured final-ranking figures (eval set → metric → value)."""
    return [
        ScoreCheck(name, metric, score, measured.get(name, {}).get(metric))
        for name, metrics in expected.items()
        for metric, score in metrics.items()
    ]


def promotion_blockers(checks: list[ScoreCheck]) -> list[str]:
    """What refuses a promotion: figures below their tolerance, or recorded figures not measured."""
    return [
        f"{c.eval_set} {c.metric} {c.measured:.4f} < expected {c.expected.value:.4f} "
        f"− {c.expected.tolerance:g}"
        if c.measured is not None
        else f"{c.eval_set} {c.metric} not measured (expected {c.expected.value:.4f})"
        for c in checks
        if c.status in ("below", "missing")
    ]
