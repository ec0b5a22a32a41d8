"""Profile A/B report (per namespace): the live profile and the candidate side by side on every
eval set (quality per stage), with their rerank latency, index bytes and cache ratios, and each
one's final-ranking figures against its expected scores (`config/expected_scores.yaml`, measured
value ± tolerance). The same expected-score comparison gates `serving_alias`."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from medkg_assets.evaluation.expected_scores import (
    promotion_blockers,
)
from medkg_assets.manifests.rerank import RerankManifest
from medkg_assets.stages.context import StageContext
from medkg_assets.stages.reader import STAGES
from medkg_assets.stages.reports import JsonValue, Metadata, Report, markdown_table, path_value
from medkg_assets.stages.serving import expected_checks, live_profile
from medkg_assets.storage.atomic import atomic_write_json, read_json_or

SHOWN = ("ndcg@10", "recall@10", "mrr@10")


def _tree_bytes(path: Path | None) -> int | None:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path is not None else None


class ExpectedRow(BaseModel):
    eval_set: str
    metric: str
    expected: float
    tolerance: float
    measured: float | None
    status: str


class ProfileFigures(BaseModel):
    profile: str
    role: str  # "live", "baseline (nothing live yet)" or "candidate"
    built: bool
    final_stage: str | None = None
    quality_by_set: dict[str, dict[str, dict[str, float]]] = {}
    rerank_latency_ms: dict[str, float] = {}
    index_bytes: dict[str, int | None] = {}
    cache_hit_ratio: dict[str, float | None] = {}
    expected: list[ExpectedRow] = []
    blockers: list[str] = []


def profile_figures(ctx: StageContext, profile: str, role: str) -> ProfileFigures:
    layout, namespace = ctx.layout, ctx.namespace_name
    manifest = RerankManifest.load_or_none(layout.rerank_manifest(namespace, profile))
    if manifest is None:
        return ProfileFigures(
            profile=profile, role=role, built=False, blockers=["not built (no rerank manifest)"]
        )
    summary = read_json_or(layout.processing_summary(namespace, profile), {})
    checks = expected_checks(ctx, profile, manifest)
    return ProfileFigures(
        profile=profile,
        role=role,
        built=True,
        final_stage=manifest.final_stage,
        quality_by_set=manifest.quality_by_set,
        rerank_latency_ms=manifest.latency_ms(),
        index_bytes={
            "faiss": _tree_bytes(layout.faiss(namespace, profile).current),
            "lucene": _tree_bytes(layout.lucene(namespace, profile).current),
        },
        cache_hit_ratio=(summary.get("metrics") or {}).get("cache_hit_ratio") or {},
        expected=[
            ExpectedRow(
                eval_set=c.eval_set,
                metric=c.metric,
                expected=c.expected.value,
                tolerance=c.expected.tolerance,
                measured=c.measured,
                status=c.status,
            )
            for c in checks
        ],
        blockers=promotion_blockers(checks),
    )


def _cell(value: float | int | None, digits: int = 4) -> str:
    if value is None:
        return "–"
    return f"{value:.{digits}f}" if isinstance(value, float) else f"{value:,}"


class ABReport(Report):
    namespace: str
    profiles: list[ProfileFigures]
    note: str
    path: str

    def _quality_rows(self) -> list[list[str]]:
        sets = sorted({n for p in self.profiles for n in p.quality_by_set}, key=str)
        rows = []
        for name in sets:
            for stage in STAGES:
                if not any(stage in p.quality_by_set.get(name, {}) for p in self.profiles):
                    continue
                cells = [name, stage]
                for p in self.profiles:
                    figures = p.quality_by_set.get(name, {}).get(stage, {})
                    mark = " (final)" if stage == p.final_stage else ""
                    cells.append(" / ".join(_cell(figures.get(m)) for m in SHOWN) + mark)
                rows.append(cells)
        return rows

    def to_metadata(self) -> Metadata:
        headers = [f"{p.profile} ({p.role})" for p in self.profiles]
        cost = [
            ["built", *("yes" if p.built else "no" for p in self.profiles)],
            ["rerank p50 ms", *(_cell(p.rerank_latency_ms.get("p50"), 1) for p in self.profiles)],
            ["rerank p95 ms", *(_cell(p.rerank_latency_ms.get("p95"), 1) for p in self.profiles)],
            ["FAISS bytes", *(_cell(p.index_bytes.get("faiss")) for p in self.profiles)],
            ["Lucene bytes", *(_cell(p.index_bytes.get("lucene")) for p in self.profiles)],
            ["dense cache hit", *(_cell(p.cache_hit_ratio.get("dense"), 3) for p in self.profiles)],
            ["sparse cache hit", *(_cell(p.cache_hit_ratio.get("sparse"), 3) for p in self.profiles)],
            ["promotion blockers", *("; ".join(p.blockers) or "none" for p in self.profiles)],
        ]
        expected_rows = [
            [p.profile, e.eval_set, e.metric, e.expected, e.tolerance, _cell(e.measured), e.status]
            for p in self.profiles
            for e in p.expected
        ]
        return {
            "profiles": JsonValue({p.role: p.profile for p in self.profiles}),
            "quality": markdown_table(
                ["eval set", "stage", *[f"{h} nDCG@10 / R@10 / MRR@10" for h in headers]],
                self._quality_rows(),
            ),
            "cost": markdown_table(["", *headers], cost),
            "expected_scores": markdown_table(
                ["profile", "eval set", "metric", "expected", "tolerance", "measured", "status"],
                expected_rows,
            )
            if expected_rows
            else "no expected scores recorded",
            "note": self.note,
            "path": path_value(self.path),
        }


def build_ab_report(ctx: StageContext) -> ABReport:
    """Live vs candidate for the namespace, written as `ab_report.json` beside its serving state."""
    namespace = ctx.namespace_name
    live = live_profile(ctx.layout, namespace)
    first = live or ctx.settings.resolution.baseline
    roles = [(first, "live" if live else "baseline (nothing live yet)")]
    candidate = ctx.settings.candidate_profile or ctx.settings.serving_target(namespace)
    if candidate != first:
        roles.append((candidate, "candidate"))
        note = f"{candidate} against {first}"
    else:
        note = f"no candidate profile (EMBEDDING_PROFILE_EXPERIMENT unset or equal to {first}): {first} alone"
    report = ABReport(
        namespace=namespace,
        profiles=[profile_figures(ctx, profile, role) for profile, role in roles],
        note=note,
        path=str(ctx.layout.ab_report(namespace)),
    )
    atomic_write_json(ctx.layout.ab_report(namespace), report.model_dump(mode="json"))
    return report
