"""A configured Kafka broker that is down: stage batches stay fast, say once where the events went."""

import logging
import socket
import time

from dagster import Failure, job, op

from medkg_assets.observability.events import event_from_json
from medkg_assets.resources.telemetry import TelemetryResource
from medkg_assets_tests.conftest import current_settings

# Measured on the 2-core dev machine: three stage batches (six events) against a refused broker
# take about 0.1 s in all; before, each event waited its 10 s flush timeout (60 s here).
RUN_CEILING_S = 8.0
STAGES = ("dense", "sparse", "rerank")


def _closed_local_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _run(instance, servers: str, fail_stage: str | None = None):
    @op
    def batches(context, telemetry: TelemetryResource):
        for stage in STAGES:
            try:
                with telemetry.stage_batch(
                    context.log, context.run_id, "tiny", "tenant-a", "minilm_cpu", stage, "test"
                ):
                    if stage == fail_stage:
                        raise Failure(description=f"{stage} broke")
            except Failure:
                pass

    @job(
        resource_defs={
            "telemetry": TelemetryResource(
                data_dir=str(current_settings().data_dir), kafka_bootstrap_servers=servers
            )
        }
    )
    def kafka_down():
        batches()

    started = time.monotonic()
    result = kafka_down.execute_in_process(instance=instance)
    return result, time.monotonic() - started


def _warnings(instance, run_id):
    return [
        entry.user_message
        for entry in instance.all_logs(run_id)
        if entry.level == logging.WARNING and "Kafka" in entry.user_message
    ]


def test_a_down_broker_costs_a_bounded_wait_and_one_warning_per_batch_and_loses_no_event(data_dir, instance):
    servers = f"127.0.0.1:{_closed_local_port()}"
    result, elapsed = _run(instance, servers)
    assert result.success
    assert elapsed < RUN_CEILING_S, f"{len(STAGES)} stage batches took {elapsed:.2f}s against a down broker"
    warnings = _warnings(instance, result.run_id)
    assert len(warnings) == len(STAGES), warnings  # one per batch, not one per event
    for stage, warning in zip(STAGES, warnings, strict=True):
        assert f"tiny|minilm_cpu stage {stage}" in warning
        assert f"bootstrap servers '{servers}'" in warning and "2 event(s) written to" in warning
    spool = current_settings().data_dir / "events" / "kafka-undelivered.jsonl"
    events = [event_from_json(line) for line in spool.read_text().splitlines()]
    assert [(e.get_data()["stage"], e.get_type().rsplit(".", 1)[1]) for e in events] == [
        (stage, kind) for stage in STAGES for kind in ("started", "completed")
    ]
    assert {e.get_extension("correlationid") for e in events} == {result.run_id}


def test_a_failed_batch_still_reports_its_undelivered_events(data_dir, instance):
    result, _ = _run(instance, f"127.0.0.1:{_closed_local_port()}", fail_stage="sparse")
    warnings = _warnings(instance, result.run_id)
    assert len(warnings) == len(STAGES), warnings
    [failed] = [w for w in warnings if "stage sparse" in w]
    assert "(failed)" in failed and "(started)" in failed
