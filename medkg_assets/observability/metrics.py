"""Prometheus metrics for short-lived pipeline runs: a text file always, a Pushgateway push when configured.

A run lives for seconds to an hour, far shorter than any scrape interval is worth relying on, so
nothing is served over HTTP: each run fills its own `CollectorRegistry` (never the process-global
one, so runs in one process cannot leak series into each other) and publishes it once at the end.
"""

from __future__ import annotations

import fcntl
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    pushadd_to_gateway,
    write_to_textfile,
)

from medkg_assets.storage.atomic import atomic_write_json, read_json_or

PUSHGATEWAY_URL_ENV = "PROMETHEUS_PUSHGATEWAY_URL"
DEFAULT_JOB = "medkg_assets"
PUSH_TIMEOUT_S = 10.0
METRICS_DIRNAME = "metrics"
TOKEN_BUDGET_OUTCOMES = ("resplit", "rejected")

# One observation is a whole batch: from a cached tenth of a second to an hour-long GPU encode.
DURATION_BUCKETS_S = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)

_STAGE_LABELS = ("namespace", "profile", "stage")
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_MAX_NAME_PART = 64


class MetricsPushError(RuntimeError):
    """The Pushgateway did not accept the metrics; the message names its URL."""

    def __init__(self, gateway_url: str, reason: object):
        super().__init__(f"Could not push metrics to the Pushgateway at {gateway_url}: {reason}")
        self.gateway_url = gateway_url


@dataclass(frozen=True)
class PublishResult:
    """What `publish` did, so the caller can log a failed push as a warning instead of failing the run."""

    textfile: Path
    pushed_to: str | None = None
    push_error: MetricsPushError | None = None


class PipelineMetrics:
    """The metric families of one pipeline run, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.embedding_duration = Histogram(
            "medicalkg_embedding_duration_seconds",
            "Wall time of one embedding batch.",
            [*_STAGE_LABELS, "provider"],
            buckets=DURATION_BUCKETS_S,
            registry=r,
        )
        self.embeddings_generated = Counter(
            "medicalkg_embeddings_generated_total",
            "Embeddings computed (not served from the cache).",
            [*_STAGE_LABELS, "provider"],
            registry=r,
        )
        self.cache_hits = Counter(
            "medicalkg_embedding_cache_hits_total",
            "Chunks whose embedding came from the cache.",
            list(_STAGE_LABELS),
            registry=r,
        )
        self.cache_misses = Counter(
            "medicalkg_embedding_cache_misses_total",
            "Chunks whose embedding was not in the cache.",
            list(_STAGE_LABELS),
            registry=r,
        )
        self.failures = Counter(
            "medicalkg_embedding_failures_total",
            "Embedding batches that failed, by exception class.",
            [*_STAGE_LABELS, "error_type"],
            registry=r,
        )
        self.cross_tenant_attempts = Counter(
            "medicalkg_cross_tenant_access_attempts_total",
            "Reads refused because the tenant is not allowed in the namespace.",
            ["namespace", "tenant"],
            registry=r,
        )
        self.token_budget_chunks = Counter(
            "medicalkg_token_budget_chunks_total",
            "Chunks over the model's token budget, by what was done with them.",
            ["namespace", "profile", "outcome"],
            registry=r,
        )
        # Pushed counters of short runs give no useful rate(), so alerts read this gauge instead.
        self.embeddings_per_second = Gauge(
            "medicalkg_embeddings_per_second",
            "Throughput of the last embedding batch.",
            [*_STAGE_LABELS, "provider"],
            registry=r,
        )
        self.recall_at_10 = Gauge(
            "medicalkg_retrieval_recall_at_10",
            "Recall@10 of the last evaluation.",
            ["namespace", "profile"],
            registry=r,
        )
        self.recall_at_10_floor = Gauge(
            "medicalkg_retrieval_recall_at_10_floor",
            "The expected-scores floor Recall@10 is checked against.",
            ["namespace", "profile"],
            registry=r,
        )

    def observe_stage(
        self,
        namespace: str,
        profile: str,
        stage: str,
        provider: str,
        duration_s: float,
        generated: int,
        cache_hits: int = 0,
        cache_misses: int = 0,
    ) -> None:
        """Record one embedding batch; sets the throughput gauge when it computed anything."""
        if duration_s < 0:
            raise ValueError(f"duration_s must be >= 0, got {duration_s}")
        self.embedding_duration.labels(namespace, profile, stage, provider).observe(duration_s)
        self.embeddings_generated.labels(namespace, profile, stage, provider).inc(generated)
        self.cache_hits.labels(namespace, profile, stage).inc(cache_hits)
        self.cache_misses.labels(namespace, profile, stage).inc(cache_misses)
        if generated > 0 and duration_s > 0:
            self.embeddings_per_second.labels(namespace, profile, stage, provider).set(generated / duration_s)

    def count_failure(self, namespace: str, profile: str, stage: str, error_type: str) -> None:
        """Count a failed batch; pass the exception's class name, e.g. `GpuNotAvailableError`."""
        self.failures.labels(namespace, profile, stage, error_type).inc()

    def count_cross_tenant(self, namespace: str, tenant: str, n: int = 1) -> None:
        """Count refused cross-tenant attempts (`n`: a running total carried over from earlier runs)."""
        self.cross_tenant_attempts.labels(namespace, tenant).inc(n)

    def count_token_budget(self, namespace: str, profile: str, outcome: str, n: int = 1) -> None:
        """Count over-budget chunks; `outcome` is one of TOKEN_BUDGET_OUTCOMES to keep the series few."""
        if outcome not in TOKEN_BUDGET_OUTCOMES:
            raise ValueError(f"outcome must be one of {TOKEN_BUDGET_OUTCOMES}, got {outcome!r}")
        self.token_budget_chunks.labels(namespace, profile, outcome).inc(n)

    def set_recall(self, namespace: str, profile: str, recall: float, floor: float) -> None:
        """Record Recall@10 beside its floor, so an alert can compare the two series."""
        self.recall_at_10.labels(namespace, profile).set(recall)
        self.recall_at_10_floor.labels(namespace, profile).set(floor)

    def write_textfile(self, path: Path) -> Path:
        """Write the Prometheus text format to `path` atomically (temp file beside it, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_to_textfile(str(path), self.registry)
        return path

    def push(
        self,
        gateway_url: str,
        job: str = DEFAULT_JOB,
        grouping_key: Mapping[str, str] | None = None,
        timeout_s: float = PUSH_TIMEOUT_S,
    ) -> None:
        """Add this run's metrics to the Pushgateway group; same-named metrics of that group are replaced."""
        try:
            pushadd_to_gateway(
                gateway_url,
                job=job,
                registry=self.registry,
                grouping_key=dict(grouping_key or {}),
                timeout=timeout_s,
            )
        except (OSError, ValueError) as error:  # urllib raises URLError/HTTPError/timeouts, all OSError
            raise MetricsPushError(gateway_url, error) from error


def textfile_name(grouping_key: Mapping[str, str]) -> str:
    """A stable, filesystem-safe `.prom` name per grouping key, so a rerun replaces its own file."""
    parts = [_safe_name_part(str(value)) for _, value in sorted(grouping_key.items())]
    return "__".join(parts or ["run"]) + ".prom"


def _safe_name_part(value: str) -> str:
    safe = _UNSAFE_NAME_CHARS.sub("_", value)[:_MAX_NAME_PART]
    safe = "_" * (len(safe) - len(safe.lstrip("."))) + safe.lstrip(".")  # no hidden files, no `..`
    if safe != value or not safe:
        # A hash keeps values apart that differ only in replaced characters (`a/b` vs `a_b`).
        safe = f"{safe}-{hashlib.sha256(value.encode('utf-8')).hexdigest()[:8]}"
    return safe


def publish(
    metrics: PipelineMetrics,
    data_dir: Path,
    environ: Mapping[str, str],
    grouping_key: Mapping[str, str],
    job: str = DEFAULT_JOB,
) -> PublishResult:
    """Write `<data_dir>/metrics/<key>.prom`, then push if PROMETHEUS_PUSHGATEWAY_URL is set.

    The file is written first so an unreachable gateway loses nothing; a failed push is returned,
    not raised, because metrics must not fail the pipeline run.
    """
    textfile = metrics.write_textfile(Path(data_dir) / METRICS_DIRNAME / textfile_name(grouping_key))
    gateway_url = (environ.get(PUSHGATEWAY_URL_ENV) or "").strip()
    if not gateway_url:
        return PublishResult(textfile=textfile)
    try:
        metrics.push(gateway_url, job=job, grouping_key=grouping_key)
    except MetricsPushError as error:
        return PublishResult(textfile=textfile, push_error=error)
    return PublishResult(textfile=textfile, pushed_to=gateway_url)


def increment_total(path: Path, key: str) -> int:
    """Add one to `key` in a JSON file of running totals (locked, replaced atomically); the new total."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        totals = read_json_or(path, {})
        total = int(totals.get(key, 0)) + 1
        totals[key] = total
        atomic_write_json(path, totals)
    return total
