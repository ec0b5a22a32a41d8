"""The rerank manifest (`rerank/rerank_manifest.json`): eval-set retrieval per stage, the fused
candidates and their CrossEncoder rerank, per query. One typed schema for its writer and readers."""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict


class _Schema(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Candidate(_Schema):
    rank: int
    chunk_id: str
    doc_id: str
    score: float


class ManifestEntry(_Schema):
    eval_set: str
    query_id: str
    query: str
    candidates: list[Candidate]  # the fused top the CrossEncoder scores
    final: list[Candidate]  # documents of the final stage, best first
    reranked: list[Candidate] | None = None
    latency_ms: float | None = None
    gpu_peak_memory_bytes: int | None = None


class ManifestModels(_Schema):
    dense: str
    sparse: str | None
    reranker: str | None


class RerankManifest(_Schema):
    namespace: str
    profile: str
    chunk_version: str
    inputs_digest: str
    eval_set: bool
    eval_sets: list[str]  # names, the primary first
    fusion: dict[str, Any]  # the FusionConfig the rankings were made with
    first_stage_seconds: float
    run_id: str
    generated_at: str
    models: ManifestModels
    device: str | None
    rerank_enabled: bool
    rerank_ran: bool
    final_stage: str
    queries: int
    quality: dict[str, dict[str, float]]  # the primary eval set's stage → metric → value
    quality_by_set: dict[str, dict[str, dict[str, float]]]  # eval set → stage → metric → value
    warnings: list[str]
    rerank_batch_sizes: list[int]
    entries: list[ManifestEntry]

    @classmethod
    def load(cls, path: Path) -> RerankManifest:
        return cls.model_validate(json.loads(path.read_text()))

    @classmethod
    def load_or_none(cls, path: Path) -> RerankManifest | None:
        """The stored manifest, or None when there is none or it predates this schema."""
        try:
            return cls.load(path)
        except (OSError, ValueError):
            return None

    def final_ranking(self, eval_set: str | None = None) -> dict[str, list[str]]:
        """query id → document ids of the final ranking, for one eval set (default: the primary)."""
        name = eval_set or (self.eval_sets[0] if self.eval_sets else "")
        return {e.query_id: [c.doc_id for c in e.final] for e in self.entries if e.eval_set == name}

    def latency_ms(self) -> dict[str, float]:
        """p50 and p95 of the per-query rerank latency ({} when rerank did not run)."""
        latencies = [e.latency_ms for e in self.entries if e.latency_ms is not None]
        if not latencies:
            return {}
        return {
            "p50": statistics.median(latencies),
            "p95": sorted(latencies)[int(0.95 * (len(latencies) - 1))],
        }
