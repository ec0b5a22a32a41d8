"""Whether an adapted model may replace its base: it must win, or tie within noise, on every dev set.

"Noise" is the standard error of the per-query differences (paired: both models rank the same
pools), floored at `min_noise`, so a small set cannot make a tiny gain or loss look decisive.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from statistics import fmean, stdev

from pydantic import BaseModel


class SetComparison(BaseModel):
    """One dev set: the mean metric of base and adapted, their paired difference and its noise."""

    name: str
    queries: int
    metric: str
    base: float
    adapted: float
    delta: float
    noise: float

    @property
    def verdict(self) -> str:
        if self.delta > self.noise:
            return "wins"
        return "ties" if self.delta >= -self.noise else "loses"


def compare_on_set(
    name: str,
    metric: str,
    base: Mapping[str, float],
    adapted: Mapping[str, float],
    min_noise: float,
) -> SetComparison:
    """Per-query metric values of both models on the same queries → their comparison."""
    queries = sorted(base)
    if set(adapted) != set(queries):
        raise ValueError(f"eval set {name}: base and adapted were scored on different queries")
    deltas = [adapted[q] - base[q] for q in queries]
    standard_error = stdev(deltas) / len(deltas) ** 0.5 if len(deltas) > 1 else 0.0
    return SetComparison(
        name=name,
        queries=len(queries),
        metric=metric,
        base=round(fmean(base.values()) if queries else 0.0, 4),
        adapted=round(fmean(adapted.values()) if queries else 0.0, 4),
        delta=round(fmean(deltas) if deltas else 0.0, 4),
        noise=round(max(min_noise, standard_error), 4),
    )


class AdaptationVerdict(BaseModel):
    adopted: bool
    reason: str


def judge_adaptation(comparisons: Sequence[SetComparison]) -> AdaptationVerdict:
    """Adopted only when no dev set loses; with no dev set there is nothing to show it is better."""
    if not comparisons:
        return AdaptationVerdict(adopted=False, reason="no dev set to compare on: the base is kept")
    losing = [c for c in comparisons if c.verdict == "loses"]
    shown = "; ".join(
        f"{c.name} {c.metric} {c.adapted:.4f} vs base {c.base:.4f} ({c.delta:+.4f}, noise ±{c.noise:.4f})"
        for c in (losing or comparisons)
    )
    if losing:
        return AdaptationVerdict(
            adopted=False, reason=f"loses on {len(losing)} dev set(s): {shown}; the base is kept"
        )
    return AdaptationVerdict(adopted=True, reason=f"wins or ties on every dev set: {shown}")
