"""`TelemetryResource`: Prometheus metrics and CloudEvents for every stage batch of a run.

Metrics always land in `<data dir>/metrics/*.prom` and go to a Pushgateway when
PROMETHEUS_PUSHGATEWAY_URL is set; events go to `<data dir>/events/embedding-events.jsonl`, or to
Kafka when KAFKA_BOOTSTRAP_SERVERS is set. A sink that is down is logged, never fails a run: a
Kafka broker that is down costs one bounded wait per stage batch, the batch's events go to
`<data dir>/events/kafka-undelivered.jsonl` and one warning per batch says so.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from dagster import ConfigurableResource, DagsterLogManager, Failure

from medkg_assets.observability.events import (
    EVENTS_TOPIC_ENV,
    KAFKA_BOOTSTRAP_SERVERS_ENV,
    EventError,
    EventKind,
    EventSink,
    KafkaDeliveryError,
    StageBatchPayload,
    build_event,
    event_sink_from_env,
)
from medkg_assets.observability.metrics import (
    METRICS_DIRNAME,
    PUSHGATEWAY_URL_ENV,
    PipelineMetrics,
    increment_total,
    publish,
)
from medkg_assets.stages.reports import StageFigures

ACCESS_STAGE = "access"


@dataclass
class BatchFigures:
    """What a stage batch reports when it ends: the stage report's figures (`StageFigures`)."""

    provider: str
    figures: StageFigures = field(default_factory=StageFigures)

    def update_from(self, figures: StageFigures, default_provider: str) -> None:
        self.figures = figures
        self.provider = figures.provider or default_provider


def root_cause(error: BaseException) -> BaseException:
    """The error under a Dagster `Failure` (what operators alert on), else the error itself."""
    return error.__cause__ if isinstance(error, Failure) and error.__cause__ is not None else error


class TelemetryResource(ConfigurableResource):
    """Sinks for metrics and events under `data_dir`; Pushgateway and Kafka when their URLs are set
    (`definitions.py` sets them from PROMETHEUS_PUSHGATEWAY_URL, KAFKA_BOOTSTRAP_SERVERS and
    MEDKG_EVENTS_TOPIC)."""

    data_dir: str
    pushgateway_url: str | None = None
    kafka_bootstrap_servers: str | None = None
    events_topic: str | None = None

    def _environ(self) -> dict[str, str]:
        """The sinks' settings in the shape `observability/` reads them."""
        environ: dict[str, str] = {}
        for name, value in (
            (PUSHGATEWAY_URL_ENV, self.pushgateway_url),
            (KAFKA_BOOTSTRAP_SERVERS_ENV, self.kafka_bootstrap_servers),
            (EVENTS_TOPIC_ENV, self.events_topic),
        ):
            if value:
                environ[name] = value
        return environ

    def _publish(self, log: DagsterLogManager, metrics: PipelineMetrics, key: dict[str, str]) -> None:
        result = publish(metrics, Path(self.data_dir), self._environ(), key)
        if result.push_error is not None:
            log.warning(f"metrics kept in {result.textfile}; {result.push_error}")

    @staticmethod
    def _emit(
        log: DagsterLogManager, sink: EventSink, kind: EventKind, namespace: str, run_id: str, payload
    ) -> None:
        try:
            sink.emit(build_event(kind, namespace=namespace, run_id=run_id, payload=payload))
        except (KafkaDeliveryError, OSError) as error:
            log.warning(f"embedding.{kind.value} event for {namespace} not delivered: {error}")

    @contextmanager
    def stage_batch(
        self,
        log: DagsterLogManager,
        run_id: str,
        namespace: str,
        tenant: str,
        profile: str,
        stage: str,
        provider: str,
    ) -> Iterator[BatchFigures]:
        """Emit `started`, then `completed` with the batch's figures or `failed` with its error."""
        figures = BatchFigures(provider=provider)
        base = StageBatchPayload(tenant_id=tenant, profile=profile, stage=stage, provider=provider)
        sink = event_sink_from_env(self._environ(), Path(self.data_dir))  # one per batch
        try:
            yield from self._batch(log, sink, figures, base, run_id, namespace, profile, stage)
        finally:
            # A Kafka broker that is down costs one bounded wait per batch and one warning that
            # says where the batch's events went instead (the spool), not a wait and a warning each.
            warning = sink.take_warning()
            if warning:
                log.warning(f"embedding events of {namespace}|{profile} stage {stage}: {warning}")

    def _batch(
        self,
        log: DagsterLogManager,
        sink: EventSink,
        figures: BatchFigures,
        base: StageBatchPayload,
        run_id: str,
        namespace: str,
        profile: str,
        stage: str,
    ) -> Iterator[BatchFigures]:
        self._emit(log, sink, EventKind.STARTED, namespace, run_id, base)
        metrics = PipelineMetrics()
        started = time.perf_counter()
        try:
            yield figures
        except Exception as error:
            cause = root_cause(error)
            duration = time.perf_counter() - started
            metrics.count_failure(namespace, profile, stage, type(cause).__name__)
            self._publish(log, metrics, {"namespace": namespace, "profile": profile, "stage": stage})
            failed = base.model_copy(
                update={"duration_ms": round(duration * 1000, 3), "error": EventError.from_exception(cause)}
            )
            self._emit(log, sink, EventKind.FAILED, namespace, run_id, failed)
            raise
        duration = time.perf_counter() - started
        counts = figures.figures
        metrics.observe_stage(
            namespace,
            profile,
            stage,
            figures.provider,
            duration,
            counts.generated,
            counts.cache_hits,
            counts.cache_misses,
        )
        for outcome, count in counts.token_budget.items():
            if count:
                metrics.count_token_budget(namespace, profile, outcome, count)
        if counts.recall_at_10 is not None:
            floor = counts.recall_floor if counts.recall_floor is not None else math.nan
            metrics.set_recall(namespace, profile, counts.recall_at_10, floor)
        self._publish(log, metrics, {"namespace": namespace, "profile": profile, "stage": stage})
        completed = base.model_copy(
            update={
                "provider": figures.provider,
                "duration_ms": round(duration * 1000, 3),
                "embeddings_generated": counts.generated,
                "cache_hits": counts.cache_hits,
                "cache_misses": counts.cache_misses,
            }
        )
        self._emit(log, sink, EventKind.COMPLETED, namespace, run_id, completed)

    def count_denied(self, log: DagsterLogManager, namespace: str, tenant: str) -> int:
        """Count a refused cross-tenant attempt; returns the namespace's running total for `tenant`.

        Runs are short-lived, so the total is kept in `<data dir>/metrics/cross_tenant_totals.json`
        and pushed as the counter's value: the series grows across runs as a counter should.
        """
        total = increment_total(
            Path(self.data_dir) / METRICS_DIRNAME / "cross_tenant_totals.json", f"{namespace}|{tenant}"
        )
        metrics = PipelineMetrics()
        metrics.count_cross_tenant(namespace, tenant, total)
        self._publish(log, metrics, {"namespace": namespace, "stage": ACCESS_STAGE, "tenant": tenant})
        return total
