"""CloudEvents for embedding-stage batches, and the sinks that carry them to operators.

Every stage batch reports `started`, then `completed` or `failed`, in one fixed schema so
downstream consumers (dashboards, alerting, the platform's event bus) need no per-stage
parsing. Events are built and serialised with the CloudEvents SDK's v1.0 core API; the wire
form is structured-mode JSON (attributes and `data` in one document).
"""

from __future__ import annotations

import fcntl
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Protocol

from cloudevents.core.bindings import kafka as kafka_binding
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, Field

EVENT_SOURCE = "services.embedding.worker"
EVENT_TYPE_PREFIX = "com.medical-kg.embedding."
DATA_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = JSONFormat.CONTENT_TYPE  # application/cloudevents+json
CORRELATION_ID_ATTR = "correlationid"

KAFKA_BOOTSTRAP_SERVERS_ENV = "KAFKA_BOOTSTRAP_SERVERS"
EVENTS_TOPIC_ENV = "MEDKG_EVENTS_TOPIC"
DEFAULT_EVENTS_TOPIC = "embedding.events.v1"
JSONL_EVENTS_PATH = Path("events") / "embedding-events.jsonl"

_FORMAT = JSONFormat()


class EventKind(StrEnum):
    STARTED = "started"
    COMPLETED = "completed"
    FAILED = "failed"


class EventError(BaseModel):
    """Why a batch failed, in a form that survives JSON (no traceback objects)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: str
    message: str

    @classmethod
    def from_exception(cls, exc: BaseException) -> EventError:
        return cls(type=type(exc).__name__, message=str(exc))


class StageBatchPayload(BaseModel):
    """The per-batch numbers; defaults are the zeros a `started` event carries."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    tenant_id: str
    profile: str
    stage: str
    provider: str
    duration_ms: float = Field(default=0.0, ge=0)
    embeddings_generated: int = Field(default=0, ge=0)
    cache_hits: int = Field(default=0, ge=0)
    cache_misses: int = Field(default=0, ge=0)
    error: EventError | None = None


def _utc(time: datetime | None) -> datetime:
    if time is None:
        return datetime.now(UTC)
    if time.tzinfo is None:
        raise ValueError("event time must be timezone-aware (a naive time has no RFC 3339 form)")
    return time.astimezone(UTC)


def _event_data(kind: EventKind, namespace: str, payload: StageBatchPayload) -> dict[str, Any]:
    if (kind is EventKind.FAILED) != (payload.error is not None):
        raise ValueError(
            f"'{kind}' events {'need' if kind is EventKind.FAILED else 'must not carry'} an error"
        )
    counts = (payload.duration_ms, payload.embeddings_generated, payload.cache_hits, payload.cache_misses)
    if kind is EventKind.STARTED and any(counts):
        raise ValueError("'started' events carry zero duration and counts; the batch has not run yet")
    data: dict[str, Any] = {
        "tenant_id": payload.tenant_id,
        "namespace": namespace,
        "profile": payload.profile,
        "stage": payload.stage,
        "provider": payload.provider,
        "duration_ms": payload.duration_ms,
        "embeddings_generated": payload.embeddings_generated,
        "cache_hits": payload.cache_hits,
        "cache_misses": payload.cache_misses,
    }
    if payload.error is not None:
        data["error"] = payload.error.model_dump()
    return data


def build_event(
    kind: EventKind | str,
    *,
    namespace: str,
    run_id: str,
    payload: StageBatchPayload,
    event_id: str | None = None,
    time: datetime | None = None,
) -> CloudEvent:
    """One stage-batch event; `run_id` (the Dagster run) becomes the `correlationid` extension."""
    kind = EventKind(kind)
    attributes = {
        "specversion": "1.0",
        "type": EVENT_TYPE_PREFIX + kind.value,
        "source": EVENT_SOURCE,
        "subject": namespace,
        "id": event_id or str(uuid.uuid4()),
        "time": _utc(time),
        "datacontenttype": DATA_CONTENT_TYPE,
        CORRELATION_ID_ATTR: run_id,
    }
    return CloudEvent(attributes, _event_data(kind, namespace, payload))


def event_to_json(event: CloudEvent) -> str:
    """Structured-mode JSON on one line (the SDK escapes newlines inside strings)."""
    return _FORMAT.write(event).decode("utf-8")


def event_from_json(text: str | bytes) -> CloudEvent:
    return _FORMAT.read(CloudEvent, text)  # type: ignore[return-value]


class EventSink(Protocol):
    def emit(self, event: CloudEvent) -> None: ...


class JsonlEventSink:
    """Appends one event per line; safe for many processes writing the same file."""

    def __init__(self, path: Path):
        self.path = Path(path)

    def emit(self, event: CloudEvent) -> None:
        line = (event_to_json(event) + "\n").encode("utf-8")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            # O_APPEND makes each write land at the end; the lock covers the rare short write,
            # whose remainder would otherwise be interleaved with another process's line.
            fcntl.flock(fd, fcntl.LOCK_EX)
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)  # closing releases the lock


class KafkaDeliveryError(RuntimeError):
    """An event did not reach the broker; raised so a lost audit trail is never silent."""


class KafkaEventSink:
    """Produces structured-mode events keyed by namespace, waiting for the broker's ack."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = DEFAULT_EVENTS_TOPIC,
        *,
        flush_timeout_s: float = 10.0,
        producer_config: Mapping[str, Any] | None = None,
    ):
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.flush_timeout_s = flush_timeout_s
        self._config = {"bootstrap.servers": bootstrap_servers, **(producer_config or {})}
        self._producer = None

    @property
    def producer(self):
        # Created on first use: a Producer starts background threads and connections.
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(self._config)
        return self._producer

    def emit(self, event: CloudEvent) -> None:
        message = kafka_binding.to_structured_event(event, key_mapper=lambda e: e.get_subject())
        failures: list[str] = []

        def on_delivery(err, _msg) -> None:
            if err is not None:
                failures.append(err.str())

        where = f"Kafka topic '{self.topic}' at bootstrap servers '{self.bootstrap_servers}'"
        producer = self.producer
        producer.produce(
            self.topic, key=message.key, value=message.value, headers=message.headers, on_delivery=on_delivery
        )
        if producer.flush(self.flush_timeout_s) > 0:
            # Drop the stuck message so a caller's retry cannot produce a late duplicate.
            producer.purge()
            producer.poll(0)
            raise KafkaDeliveryError(
                f"CloudEvent {event.get_id()} was not delivered to {where} within {self.flush_timeout_s}s"
            )
        if failures:
            raise KafkaDeliveryError(f"CloudEvent {event.get_id()} delivery to {where} failed: {failures[0]}")


def event_sink_from_env(environ: Mapping[str, str], data_dir: Path) -> EventSink:
    """Kafka when `KAFKA_BOOTSTRAP_SERVERS` is set (non-blank), else a JSONL file in the data dir."""
    servers = environ.get(KAFKA_BOOTSTRAP_SERVERS_ENV, "").strip()
    if servers:
        topic = environ.get(EVENTS_TOPIC_ENV, "").strip() or DEFAULT_EVENTS_TOPIC
        return KafkaEventSink(servers, topic)
    return JsonlEventSink(Path(data_dir) / JSONL_EVENTS_PATH)
