"""CloudEvents for embedding-stage batches, and the sinks that carry them to operators.

Every stage batch reports `started`, then `completed` or `failed`, in one fixed schema so
downstream consumers (dashboards, alerting, the platform's event bus) need no per-stage
parsing. Events are built and serialised with the CloudEvents SDK's v1.0 core API; the wire
form is structured-mode JSON (attributes and `data` in one document).
"""

from __future__ import annotations

import fcntl
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cloudevents.core.bindings import kafka as kafka_binding
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from confluent_kafka import KafkaError, Message, Producer

EVENT_SOURCE = "services.embedding.worker"
EVENT_TYPE_PREFIX = "com.medical-kg.embedding."
DATA_CONTENT_TYPE = "application/json"
STRUCTURED_CONTENT_TYPE = JSONFormat.CONTENT_TYPE  # application/cloudevents+json
CORRELATION_ID_ATTR = "correlationid"

KAFKA_BOOTSTRAP_SERVERS_ENV = "KAFKA_BOOTSTRAP_SERVERS"
EVENTS_TOPIC_ENV = "MEDKG_EVENTS_TOPIC"
DEFAULT_EVENTS_TOPIC = "embedding.events.v1"
JSONL_EVENTS_PATH = Path("events") / "embedding-events.jsonl"
KAFKA_SPOOL_PATH = Path("events") / "kafka-undelivered.jsonl"

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

    def take_warning(self) -> str | None:
        """What went wrong since the last call, as one operator warning (None: nothing did)."""
        ...


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

    def take_warning(self) -> str | None:
        return None  # a failed write raises OSError from `emit`


class KafkaDeliveryError(RuntimeError):
    """An event did not reach the broker; raised so a lost audit trail is never silent."""


# How long one event may wait for the broker's ack (librdkafka `message.timeout.ms`) and how long
# a TCP connect to a broker may hang (`socket.connection.setup.timeout.ms`, librdkafka's default is
# 30 s). A broker that refuses connections is detected in milliseconds (all brokers down).
KAFKA_DELIVERY_TIMEOUT_S = 5.0
KAFKA_CONNECT_TIMEOUT_S = 3.0
_FLUSH_SLICE_S = 0.05


class KafkaEventSink:
    """Produces structured-mode events keyed by namespace, waiting for the broker's ack.

    One sink serves one stage batch. The first event that cannot be delivered (the ack did not
    come within `delivery_timeout_s`, librdkafka reported every broker down, or the delivery
    failed) marks the broker unavailable for the rest of the sink's life: later events are not
    offered to Kafka at all. Without a `spool` each undelivered event raises `KafkaDeliveryError`;
    with one (what `event_sink_from_env` builds) the event is appended to the spool file for replay
    and `take_warning` reports the batch's undelivered events in one message.
    """

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str = DEFAULT_EVENTS_TOPIC,
        *,
        delivery_timeout_s: float = KAFKA_DELIVERY_TIMEOUT_S,
        connect_timeout_s: float = KAFKA_CONNECT_TIMEOUT_S,
        spool: JsonlEventSink | None = None,
        producer_config: Mapping[str, Any] | None = None,
    ):
        self.bootstrap_servers = bootstrap_servers
        self.topic = topic
        self.spool = spool
        self._config = {
            "bootstrap.servers": bootstrap_servers,
            "message.timeout.ms": int(delivery_timeout_s * 1000),
            "socket.connection.setup.timeout.ms": int(min(connect_timeout_s, delivery_timeout_s) * 1000),
            **(producer_config or {}),
            "error_cb": self._on_error,
        }
        # The longest one event waits: the producer's own delivery timeout, plus a margin for the
        # delivery report to come back.
        self.wait_s = self._config["message.timeout.ms"] / 1000 + 1.0
        self._producer: Producer | None = None
        self._brokers_down: str | None = None
        self.unavailable: str | None = None  # why the broker was given up on, once it was
        self.spooled: list[str] = []  # "<id> (<type>)" of events written to the spool
        self.lost: list[str] = []  # events neither delivered nor spooled
        self._spool_error: str | None = None
        self._transport_error: str | None = None

    @property
    def where(self) -> str:
        return f"Kafka topic '{self.topic}' at bootstrap servers '{self.bootstrap_servers}'"

    @property
    def producer(self) -> Producer:
        # Created on first use: a Producer starts background threads and connections.
        if self._producer is None:
            from confluent_kafka import Producer

            self._producer = Producer(self._config)
        return self._producer

    def _on_error(self, error: KafkaError) -> None:
        # Served from poll/flush on the emitting thread.
        from confluent_kafka import KafkaError

        if error.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_down = error.str()
        elif error.code() in (KafkaError._TRANSPORT, KafkaError._RESOLVE) and self._brokers_down is None:
            self._transport_error = error.str()

    def _deliver(self, event: CloudEvent) -> None:
        """Send one event and wait for its ack; KafkaDeliveryError (and `unavailable` set) if none."""
        if self.unavailable is not None:
            raise KafkaDeliveryError(
                f"CloudEvent {event.get_id()} not offered to {self.where}: "
                f"broker already found unavailable ({self.unavailable})"
            )
        message = kafka_binding.to_structured_event(event, key_mapper=lambda e: e.get_subject())
        failures: list[str] = []

        def on_delivery(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err.str())

        # The same headers, as the value type Producer.produce declares (a dict's value type is invariant).
        headers: dict[str, str | bytes | None] = dict(message.headers)
        producer = self.producer
        producer.produce(
            self.topic, key=message.key, value=message.value, headers=headers, on_delivery=on_delivery
        )
        deadline = time.monotonic() + self.wait_s
        pending = producer.flush(0)
        while pending > 0 and not failures and self._brokers_down is None and time.monotonic() < deadline:
            pending = producer.flush(min(_FLUSH_SLICE_S, max(deadline - time.monotonic(), 0)))
        if pending > 0:
            # Drop the stuck message so a later retry or replay cannot race a late duplicate.
            producer.purge()
            producer.poll(0)
            self._producer = None  # never used again: let it go (it stops reconnecting)
            waited = time.monotonic() - deadline + self.wait_s
            if self._brokers_down is not None:
                details = "; ".join(
                    filter(None, [self._transport_error, f"librdkafka: {self._brokers_down}"])
                )
                self.unavailable = f"no broker reachable after {waited:.1f}s ({details})"
            else:
                self.unavailable = f"no ack within {waited:.1f}s"
            raise KafkaDeliveryError(
                f"CloudEvent {event.get_id()} was not delivered to {self.where}: {self.unavailable}"
            )
        if failures:
            self.unavailable = failures[0]
            self._producer = None
            raise KafkaDeliveryError(
                f"CloudEvent {event.get_id()} delivery to {self.where} failed: {failures[0]}"
            )
        self._brokers_down = self._transport_error = None  # delivered: any earlier outage is over

    def emit(self, event: CloudEvent) -> None:
        try:
            self._deliver(event)
        except KafkaDeliveryError:
            if self.spool is None:
                raise
            label = f"{event.get_id()} ({event.get_type().removeprefix(EVENT_TYPE_PREFIX)})"
            try:
                self.spool.emit(event)
            except OSError as error:
                self.lost.append(label)
                self._spool_error = f"{type(error).__name__}: {error}"
            else:
                self.spooled.append(label)

    def take_warning(self) -> str | None:
        """One message for the events not delivered since the last call (None: all were)."""
        spooled, self.spooled = self.spooled, []
        lost, self.lost = self.lost, []
        if not spooled and not lost:
            return None
        parts = []
        if spooled:
            assert self.spool is not None  # events are only spooled when there is a spool
            parts.append(
                f"{len(spooled)} event(s) written to {self.spool.path} for replay: {', '.join(spooled)}"
            )
        if lost:
            parts.append(
                f"{len(lost)} event(s) LOST, the spool is not writable ({self._spool_error}): "
                + ", ".join(lost)
            )
        return f"{self.where} unavailable ({self.unavailable}); " + "; ".join(parts)


def event_sink_from_env(environ: Mapping[str, str], data_dir: Path) -> EventSink:
    """Kafka when `KAFKA_BOOTSTRAP_SERVERS` is set (non-blank), else a JSONL file in the data dir.

    A Kafka sink spools what the broker does not take to `<data dir>/events/kafka-undelivered.jsonl`
    (the same structured-mode lines as the JSONL sink, ready to be produced again).
    """
    servers = environ.get(KAFKA_BOOTSTRAP_SERVERS_ENV, "").strip()
    if servers:
        topic = environ.get(EVENTS_TOPIC_ENV, "").strip() or DEFAULT_EVENTS_TOPIC
        return KafkaEventSink(servers, topic, spool=JsonlEventSink(Path(data_dir) / KAFKA_SPOOL_PATH))
    return JsonlEventSink(Path(data_dir) / JSONL_EVENTS_PATH)
