"""`processing_summary.json` schema v4.1, and the reader that lifts v4.0 summaries to it.

v4.0 (the previous layout, as downstream tools still hold it): `feature_toggles` used the keys
`sparse`/`rerank`, `sparse_run` and `rerank_run` held their figures directly, `warnings` was a
single string, and there was no `compatibility` block. v4.1 wraps stage figures in `payload`,
adds `compatibility`, `sparse_models`/`sources`, telemetry labels, and lists warnings.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

SCHEMA_VERSION = "v4.1"
COMPATIBILITY = {"current": "v4.1", "legacy": ["v4.0"]}
REQUIRED_KEYS = (
    "schema_version",
    "generated_at",
    "run_id",
    "namespace",
    "profile",
    "feature_toggles",
    "compatibility",
    "dense_run",
    "sparse_run",
    "rerank_run",
    "warnings",
    "metrics",
    "telemetry",
)


class SummarySchemaError(ValueError):
    """A summary that is not v4.0 or v4.1 as documented."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FaissIndexFigures(_Strict):
    type: str
    ntotal: int
    dims: int


class DenseRun(_Strict):
    """`dense_run`, as the processing summary stage writes it."""

    model: str
    provider: str | None
    dims: int
    vectors: int
    fingerprint: str
    dense_hash: str | None
    index: FaissIndexFigures


class SparsePayload(_Strict):
    model: str
    vectors: int
    top_k_terms: int
    max_weight: float
    impact_documents: int | None
    quantization_scale: int


class RerankPayload(_Strict):
    model: str | None
    device: str | None
    queries: int
    candidates_per_query: int
    latency_ms: dict[str, float] | None


class SummaryCounts(_Strict):
    chunks: int
    documents: int
    embeddings_generated: int | None
    sparse_generated: int | None
    bm25_documents: int | None


class SummaryDurations(_Strict):
    dense: float | None
    sparse: float | None
    faiss_build: float | None
    first_stage_retrieval: float | None


class CacheHitRatios(_Strict):
    dense: float | None
    sparse: float | None


class SummaryMetrics(_Strict):
    counts: SummaryCounts
    durations_s: SummaryDurations
    cache_hit_ratio: CacheHitRatios
    quality: dict[str, dict[str, float]]
    final_stage: str


class StageRun(BaseModel):
    status: Literal["completed", "skipped"]
    payload: dict[str, Any] | None


class ProcessingSummary(BaseModel):
    """The v4.1 envelope every reader may rely on. Payloads stay open here so that summaries
    lifted from v4.0 (whose stage blocks had other keys) validate too; what this project writes
    into them is typed by `DenseRun`, `SparsePayload`, `RerankPayload` and `SummaryMetrics`."""

    schema_version: Literal["v4.1"]
    generated_at: str
    run_id: str
    namespace: str
    profile: str
    tenant_id: str | None = None
    feature_toggles: dict[str, Any]
    compatibility: dict[str, Any]
    dense_run: dict[str, Any]
    sparse_run: StageRun
    rerank_run: StageRun
    warnings: list[str]
    metrics: dict[str, Any]
    telemetry: dict[str, str]


def build_summary(
    *,
    generated_at: str,
    run_id: str,
    namespace: str,
    profile: str,
    tenant_id: str,
    enable_sparse: bool,
    enable_rerank: bool,
    sparse_models: list[str],
    sources: list[str],
    dense_run: dict[str, Any],
    sparse_payload: dict[str, Any] | None,
    rerank_payload: dict[str, Any] | None,
    warnings: list[str],
    metrics: dict[str, Any],
    telemetry: dict[str, str],
) -> dict[str, Any]:
    """Assemble a v4.1 summary; a disabled stage has `payload: null` and a status saying why."""
    return {
        "schema_version": SCHEMA_VERSION,
        "generated_at": generated_at,
        "run_id": run_id,
        "namespace": namespace,
        "profile": profile,
        "tenant_id": tenant_id,
        "feature_toggles": {
            "enable_sparse": enable_sparse,
            "enable_rerank": enable_rerank,
            "sparse_models": sparse_models,
            "sources": sources,
        },
        "compatibility": dict(COMPATIBILITY),
        "dense_run": dense_run,
        "sparse_run": {"status": "completed" if sparse_payload else "skipped", "payload": sparse_payload},
        "rerank_run": {"status": "completed" if rerank_payload else "skipped", "payload": rerank_payload},
        "warnings": list(warnings),
        "metrics": metrics,
        "telemetry": telemetry,
    }


def validate_summary(summary: dict[str, Any]) -> None:
    """Raise when a v4.1 summary misses a key or a stage block, or a value has the wrong type."""
    missing = [key for key in REQUIRED_KEYS if key not in summary]
    if missing or summary.get("schema_version") != SCHEMA_VERSION:
        raise SummarySchemaError(
            f"not a v4.1 summary: missing {missing}, version {summary.get('schema_version')!r}"
        )
    for stage in ("sparse_run", "rerank_run"):
        if "payload" not in summary[stage]:
            raise SummarySchemaError(f"{stage} has no payload key")
    try:
        ProcessingSummary.model_validate(summary)
    except ValidationError as error:
        raise SummarySchemaError(f"not a v4.1 summary: {error}") from error


def normalise_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Return a v4.1 summary for a v4.0 or v4.1 input (v4.1 passes through validated)."""
    version = summary.get("schema_version")
    if version == SCHEMA_VERSION:
        validate_summary(summary)
        return summary
    if version != "v4.0":
        raise SummarySchemaError(f"unsupported schema_version {version!r}; readable: v4.1, v4.0")
    toggles = summary.get("feature_toggles", {})
    enable_sparse = bool(toggles.get("sparse", toggles.get("enable_sparse", False)))
    enable_rerank = bool(toggles.get("rerank", toggles.get("enable_rerank", False)))
    warnings = summary.get("warnings") or []
    if isinstance(warnings, str):
        warnings = [warnings] if warnings else []
    sparse_run, rerank_run = summary.get("sparse_run"), summary.get("rerank_run")
    upgraded = build_summary(
        generated_at=summary.get("generated_at", ""),
        run_id=summary.get("run_id", ""),
        namespace=summary.get("namespace", ""),
        profile=summary.get("profile", ""),
        tenant_id=summary.get("tenant_id", ""),
        enable_sparse=enable_sparse,
        enable_rerank=enable_rerank,
        sparse_models=[sparse_run["model"]] if sparse_run and sparse_run.get("model") else [],
        sources=list(toggles.get("sources", [])),
        dense_run=summary.get("dense_run", {}),
        sparse_payload=sparse_run or None,
        rerank_payload=rerank_run or None,
        warnings=warnings,
        metrics=summary.get("metrics", {}),
        telemetry=summary.get("telemetry", {}),
    )
    upgraded["compatibility"]["upgraded_from"] = "v4.0"
    return upgraded
